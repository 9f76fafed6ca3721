"""``reconciler plan`` through the plan cache: same output, and unchanged files are not parsed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters import loader
from tests.func.conftest import Project


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """tests/conftest.py's, but each file named by its path under manifests/."""
    seen: list[str] = []
    real = loader._file

    def counting(path: str, ctx: Any) -> Any:
        seen.append(os.path.relpath(path, "manifests"))
        return real(path, ctx)

    monkeypatch.setattr(loader, "_file", counting)
    return seen


def plan_output(project: Project, capsys: pytest.CaptureFixture[str], *more: str) -> str:
    capsys.readouterr()
    assert project.run("plan", "--output", "json", *more) in (0, 2)
    return capsys.readouterr().out


def test_second_plan_parses_nothing_and_says_the_same(
    project: Project, capsys: pytest.CaptureFixture[str], parses: list[str]
) -> None:
    assert project.run("apply") == 0
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))  # one render to plan

    parses.clear()
    first = plan_output(project, capsys)
    assert len(parses) == 4  # every manifest file (the state dir now exists: cache written)
    parses.clear()
    second = plan_output(project, capsys)
    assert parses == []
    assert second == first
    assert '"render": 1' in first

    shutil.rmtree(project.state / "cache")
    assert plan_output(project, capsys) == first  # uncached: the same plan


def test_editing_one_file_reparses_exactly_that_file(
    project: Project, capsys: pytest.CaptureFixture[str], parses: list[str]
) -> None:
    assert project.run("apply") == 0
    plan_output(project, capsys)
    series = project.manifests / "tutorials" / "series.yaml"
    series.write_text(series.read_text() + "\n# a comment changes the file, not the plan\n")
    parses.clear()
    out = plan_output(project, capsys, "--detailed-exitcode")
    assert parses == ["tutorials/series.yaml"]
    assert '"render": 0' in out

    timeline = project.manifests / "recaps" / "weekly-recap.timeline.json"
    timeline.write_text(timeline.read_text().replace('"Out": 26', '"Out": 25'))
    parses.clear()
    out = plan_output(project, capsys)
    assert parses == ["recaps/weekly-recap.yaml"]
    assert '"render": 1' in out and "weekly-recap" in out


# A plan in a fresh process (forking is refused beside threads, and earlier tests may leave
# some in this one) whose loader forks even for a handful of files and says so on stderr.
FORKING_PLAN = """
import os, sys
from reconciler.adapters import forkjoin, loader, state, state_cache
from reconciler.cli.main import main

if os.environ.get("TRUST_STATE_NOW"):  # the state read cache without waiting 2 s
    state_cache.RACY_NS = -(10**18)

real = forkjoin.fork_map
def fork_map(fn, items, processes, **kw):
    print(f"forked: {processes} processes", file=sys.stderr)
    return real(fn, items, processes, batch=1, **kw)
forkjoin.fork_map = fork_map
loader.PER_WORKER = 1
prefetch = state.StateStore.prefetch
def announced(store):
    print("state read meanwhile", file=sys.stderr)
    prefetch(store)
state.StateStore.prefetch = announced
sys.exit(main(sys.argv[1:]))
"""


def forking_plan(
    project: Project, jobs: str, *more: str, trust_state: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECONCILER_JOBS": jobs}
    if trust_state:
        env["TRUST_STATE_NOW"] = "1"
    return subprocess.run(
        [sys.executable, "-c", FORKING_PLAN, "plan", *project.args(), *more],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_parallel_cold_plan_says_what_a_serial_one_says(project: Project) -> None:
    assert project.run("apply") == 0
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))
    shutil.rmtree(project.state / "cache", ignore_errors=True)
    parallel = forking_plan(project, "2", "--output", "json")
    assert parallel.returncode == 0, parallel.stderr
    assert "forked: 2 processes" in parallel.stderr
    assert "state read meanwhile" in parallel.stderr
    shutil.rmtree(project.state / "cache")
    serial = forking_plan(project, "1", "--output", "json")
    assert "forked" not in serial.stderr
    assert serial.stdout == parallel.stdout
    assert '"render": 1' in parallel.stdout


def test_a_parallel_load_of_a_broken_catalogue_leaves_state_untouched(project: Project) -> None:
    assert project.run("apply") == 0
    shutil.rmtree(project.state / "cache", ignore_errors=True)

    def files() -> list[tuple[str, int]]:
        return sorted((str(p), p.stat().st_mtime_ns) for p in project.state.rglob("*"))

    before = files()
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("  title:", "  tittle:"))
    broken = forking_plan(project, "2", trust_state=True)  # so the state is read meanwhile
    assert broken.returncode == 1
    assert "forked: 2 processes" in broken.stderr
    assert "state read meanwhile" in broken.stderr
    assert "spec.tittle" in broken.stderr
    assert files() == before  # not even the state's read cache
    promo.write_text(promo.read_text().replace("  tittle:", "  title:"))
    fixed = forking_plan(project, "2", trust_state=True)
    assert fixed.returncode == 0, fixed.stderr
    assert (project.state / "cache" / "state.pickle").is_file()  # the one a valid plan wrote


SLOW_FORKING_PLAN = """
import os, sys, time
from reconciler.adapters import forkjoin, loader
from reconciler.cli.main import main

fork_map = forkjoin.fork_map
forkjoin.fork_map = lambda fn, items, processes, **kw: fork_map(fn, items, processes, batch=1, **kw)

parent, real = os.getpid(), loader._parse
def slow(key, ctx, cache):
    if os.getpid() != parent:  # a child: say who it is, then take its time
        with open(os.environ["PIDS"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(0.5)
    return real(key, ctx, cache)
loader._parse = slow
loader.PER_WORKER = 1
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_a_parallel_load_stops_every_process(
    project: Project, tmp_path: Path
) -> None:
    shutil.rmtree(project.state / "cache", ignore_errors=True)
    pids = tmp_path / "pids"
    env = {**os.environ, "RECONCILER_JOBS": "2", "PIDS": str(pids)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_FORKING_PLAN, "plan", *project.args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not pids.exists() and time.monotonic() < deadline:  # the child is at work
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    children = {int(p) for p in pids.read_text().split()}
    assert len(children) == 1
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    assert not (project.state / "cache").exists()
