"""Benchmark plumbing: run a command as users do (a fresh process) and measure it.

``measure`` times a subprocess from spawn to exit and reads its own peak RSS with
``os.wait4`` (the rusage of exactly that child, not the running maximum over all children
that ``getrusage(RUSAGE_CHILDREN)`` gives), from a small launcher (see bench/spawn.py).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float  # peak resident set size of the process
    rc: int
    out: str
    err: str


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without reconciler or Alibaba Cloud settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECONCILER_", "ALIBABA_CLOUD_", "ALICLOUD_"))
    }
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def measure(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900
) -> Run:
    """Run ``cmd`` to completion (through bench/spawn.py): wall time, peak RSS, exit code and
    output. The time is taken around the command itself, not around the launcher."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as result,
    ):
        launcher = [PYTHON, "-S", str(ROOT / "bench" / "spawn.py"), result.name, *cmd]
        env = dict(env or clean_env())
        subprocess.run(launcher, cwd=cwd, env=env, stdout=out, stderr=err, timeout=timeout)
        measured = json.loads(Path(result.name).read_text())
        out.seek(0)
        err.seek(0)
        return Run(
            measured["seconds"],
            measured["rss_kb"] / 1024,  # KiB on Linux
            measured["rc"],
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def reconciler(*args: str) -> list[str]:
    return [PYTHON, "-m", "reconciler", *args]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def check(run: Run, what: str) -> Run:
    if run.rc not in (0, 2):
        raise SystemExit(f"{what} failed (exit {run.rc}):\n{run.out[-2000:]}\n{run.err[-2000:]}")
    return run
