"""Fault run: a catalogue applied by ``reconciler apply`` (a subprocess) against an emulator
server that throttles 30% of requests, answers 5% with a 5xx and takes 200 ms per answer.

Then the same catalogue with a permanent error on three projects: the others are applied,
the three reported, and the next run makes no call at all. Prints the counts from the
emulator's call log (every attempt VOD saw).

    python bench/faults.py [--projects 200] [--throttle 0.3] [--errors 0.05] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer  # noqa: E402

ACCESS = ("LTAIfaultbench000000", "fault-bench-secret-value-000000")


def write_catalogue(manifests: Path, n: int, rejected: Sequence[int] = ()) -> None:
    for i in range(n):
        folder = manifests / f"team-{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        first = f"bad-{i:03d}" if i in rejected else f"m{i:03d}a"
        clips = [
            {"MediaId": first, "In": 0, "Out": 5},
            {"MediaId": f"m{i:03d}b", "In": 2, "Out": 3 + i % 7},
        ]
        doc = {
            "apiVersion": "reconciler/v1",
            "kind": "EditingProject",
            "metadata": {"name": f"p-{i:03d}"},
            "spec": {
                "title": f"Project {i:03d}",
                "timeline": {"VideoTracks": [{"VideoTrackClips": clips}]},
            },
        }
        (folder / f"p-{i:03d}.yaml").write_text(json.dumps(doc, indent=1))


def apply(root: Path, url: str, args: argparse.Namespace) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env |= {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS[0],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS[1],
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "reconciler", "apply", "--manifests", str(root / "m")]
    command += ["--state", str(root / "state"), "--endpoint", url, "--signature", "v3"]
    command += ["--parallelism", str(args.parallelism), "--qps", str(args.qps)]
    started = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def counts(emulator: Emulator) -> dict[str, Any]:
    calls = emulator.calls()
    ok = [c for c in calls if c.status == 200]
    codes = Counter(c.code for c in calls)
    renders = Counter(c.params["ProjectId"] for c in ok if c.action == "ProduceEditingProjectVideo")
    titles = Counter(c.params["Title"] for c in ok if c.action == "AddEditingProject")
    return {
        "attempts": len(calls),
        "calls_succeeded": dict(Counter(c.action for c in ok)),
        "retries": len(calls) - len(ok) - sum(1 for c in calls if c.code == "InvalidParameter"),
        "throttled": codes["Throttling.User"],
        "5xx": codes["InternalError"] + codes["ServiceUnavailable"],
        "rejected": codes["InvalidParameter"],
        "projects_rendered_twice": sum(1 for n in renders.values() if n > 1),
        "projects_created_twice": sum(1 for n in titles.values() if n > 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--throttle", type=float, default=0.3)
    ap.add_argument("--errors", type=float, default=0.05)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--parallelism", type=int, default=32)
    ap.add_argument("--qps", type=float, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    n, ok = args.projects, True
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="reconciler-faults-") as tmp:
        root = Path(tmp) / "transient"
        write_catalogue(root / "m", n)
        config = EmulatorConfig(
            throttle_rate=args.throttle,
            error_rate=args.errors,
            latency=args.latency,
            seed=args.seed,
        )
        with Emulator(None, dict([ACCESS]), config) as emulator:
            server = EmulatorServer(emulator).start()
            try:
                rc, out, err, seconds = apply(root, server.url, args)
                report["faulty"] = {"exit": rc, "seconds": round(seconds, 1), **counts(emulator)}
                report["faulty"]["summary"] = out.strip().splitlines()[-1]
                ok &= rc == 0 and report["faulty"]["calls_succeeded"] == {
                    "AddEditingProject": n,
                    "ProduceEditingProjectVideo": n,
                }
            finally:
                server.stop()

        root = Path(tmp) / "permanent"
        rejected = (7, n // 2 - 7, n - 49)
        write_catalogue(root / "m", n, rejected)
        config = EmulatorConfig(reject_media_ids=frozenset(f"bad-{i:03d}" for i in rejected))
        with Emulator(None, dict([ACCESS]), config) as emulator:
            server = EmulatorServer(emulator).start()
            try:
                rc, out, err, seconds = apply(root, server.url, args)
                failed = [line for line in err.splitlines() if line.startswith("failed: ")]
                before = len(emulator.calls())
                rc2, _, _, _ = apply(root, server.url, args)
                report["permanent"] = {
                    "exit": rc,
                    "reported": failed,
                    **counts(emulator),
                    "next_run_exit": rc2,
                    "next_run_calls": len(emulator.calls()) - before,
                }
                ok &= rc == 1 and len(failed) == 3 and rc2 == 0 and before == len(emulator.calls())
            finally:
                server.stop()
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
