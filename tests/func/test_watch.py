"""`reconciler watch`: the debounced loop, with a real observer on real files and the emulator.

Nothing here sleeps to wait for the watch: tests wait on the loop's listener and ``idle``
event with deadlines. (The only pauses are the gaps between simulated editor saves.)
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.config import resolve_settings
from reconciler.adapters.loader import load_manifests
from reconciler.adapters.state import state_lock
from reconciler.cli.watch_cmd import Report, Watcher
from reconciler.core.planner import PlanOptions
from reconciler.errors import LockHeldError
from reconciler.triggers.cache import ManifestCache
from reconciler.triggers.watch import Batch, WatchLoop
from tests.func.conftest import Project, spawn_watch

DEADLINE = 10.0


class Recorder:
    """A loop listener: keeps every (batch, result, error) and lets tests wait for them."""

    def __init__(self) -> None:
        self.items: list[tuple[Batch, Any, BaseException | None]] = []
        self._cond = threading.Condition()

    def __call__(self, batch: Batch, result: Any, error: BaseException | None) -> None:
        with self._cond:
            self.items.append((batch, result, error))
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[list[Any]], bool], timeout: float = DEADLINE) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.items), timeout), self.items

    def wait(self, count: int, timeout: float = DEADLINE) -> list[Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), (
                f"only {len(self.items)} of {count} reconciles within {timeout}s"
            )
            return [result for _, result, _ in self.items]


@pytest.fixture
def run_loop() -> Iterator[Callable[[WatchLoop], threading.Thread]]:
    started: list[tuple[WatchLoop, threading.Thread]] = []

    def start(loop: WatchLoop) -> threading.Thread:
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        started.append((loop, thread))
        return thread

    yield start
    for loop, thread in started:
        loop.stop()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the watch loop did not stop"


# --------------------------------------------------------------------------- the loop alone


def test_a_burst_is_one_batch_and_batches_never_overlap(run_loop: Any) -> None:
    active, most = 0, 0
    release, running = threading.Event(), threading.Event()
    lock = threading.Lock()

    def reconcile(batch: Batch) -> frozenset[Path]:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        if batch.number == 1:
            running.set()
            assert release.wait(DEADLINE)  # a slow apply: events keep arriving meanwhile
        with lock:
            active -= 1
        return batch.paths

    loop = WatchLoop(reconcile, debounce=0.05)
    seen = Recorder()
    loop.add_listener(seen)
    run_loop(loop)
    seen.wait(1)  # the initial reconcile
    for i in range(5):
        loop.notify(Path(f"/m/{i}.yaml"))
    assert running.wait(DEADLINE)  # batch 1 is being applied; more files change meanwhile
    loop.notify(Path("/m/late.yaml"))
    loop.notify(Path("/m/later.yaml"))
    release.set()
    results = seen.wait(3)
    assert loop.idle.wait(DEADLINE)
    assert results[1] == frozenset(Path(f"/m/{i}.yaml") for i in range(5))
    assert results[2] == frozenset({Path("/m/late.yaml"), Path("/m/later.yaml")})
    assert loop.reconciles == 3 and most == 1


def test_a_failed_reconcile_is_retried_and_the_loop_goes_on(run_loop: Any) -> None:
    attempts: list[Batch] = []

    def reconcile(batch: Batch) -> None:
        attempts.append(batch)
        if len(attempts) == 1:
            raise LockHeldError("the state is locked by someone else")

    loop = WatchLoop(reconcile, debounce=0.01, retry_delay=0.05)
    seen = Recorder()
    loop.add_listener(seen)
    run_loop(loop)
    seen.wait(2)
    assert isinstance(seen.items[0][2], LockHeldError)
    assert seen.items[1][0].retry and seen.items[1][2] is None


def test_stop_during_debounce_ends_without_reconciling() -> None:
    calls: list[Batch] = []
    loop = WatchLoop(calls.append, debounce=30.0)
    thread = threading.Thread(target=loop.run, kwargs={"initial": False}, daemon=True)
    thread.start()
    loop.notify(Path("/m/a.yaml"))
    loop.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive() and calls == []


# --------------------------------------------------------------------------- the file cache


@pytest.mark.parametrize("plan_cache", [False, True])
def test_the_cache_agrees_with_a_full_load_and_rereads_only_changes(
    project: Project, plan_cache: bool
) -> None:
    project.state.mkdir(exist_ok=True)
    cache = ManifestCache(
        project.manifests, cache_dir=project.state / "cache" if plan_cache else None
    )

    def check(expected_reread: set[str]) -> None:
        snap = cache.refresh()
        full = load_manifests(project.manifests)
        assert sorted(m.name for m in snap.manifests) == sorted(m.name for m in full.manifests)
        assert set(snap.issues) == set(full.issues)
        assert {p.name for p in snap.reread} == expected_reread

    check({"brand-sting.yaml", "spring-promo.yaml", "weekly-recap.yaml", "series.yaml"})
    check(set())  # nothing changed: nothing read
    sting = project.manifests / "brand-sting.yaml"
    sting.write_text(sting.read_text() + "oops: [\n")
    check({"brand-sting.yaml"})
    dup = project.manifests / "campaigns" / "copy.yaml"  # a name used in two files
    dup.write_text((project.manifests / "campaigns" / "spring-promo.yaml").read_text())
    check({"copy.yaml"})
    dup.unlink()
    (project.manifests / "clips.timeline.yaml").write_text(  # a YAML timeline, not a manifest
        "VideoTracks:\n  - VideoTrackClips:\n      - {MediaId: cc3308ac59615a54328bc3443b0e8011}\n"
    )
    sting.write_text(
        "apiVersion: reconciler/v1\nkind: EditingProject\nmetadata: {name: brand-sting}\n"
        "spec: {title: Sting, timelineFile: clips.timeline.yaml}\n"
    )
    check({"brand-sting.yaml", "clips.timeline.yaml"})
    assert not cache.refresh().issues


def test_a_restart_parses_only_what_changed_since_the_plan_cache_knew_it(
    project: Project, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    """The first refresh loads every file in one pass through the plan cache that `plan`
    and `apply` keep: restarting a watch on a large catalogue does not parse it again."""
    parsed = parses
    project.state.mkdir(exist_ok=True)
    monkeypatch.chdir(project.root)
    load_manifests(Path("manifests"), cache_dir=Path("state/cache"))  # what a plan leaves
    sting = project.manifests / "brand-sting.yaml"
    sting.write_text(sting.read_text().replace("Out: 6", "Out: 5"))
    parsed.clear()
    snap = ManifestCache(Path("manifests"), cache_dir=Path("state/cache")).refresh()
    assert parsed == ["brand-sting.yaml"]
    full = load_manifests(Path("manifests"))
    assert snap.manifests == sorted(full.manifests, key=lambda m: m.path) and not snap.issues
    parsed.clear()
    watch = ManifestCache(Path("manifests"), cache_dir=Path("state/cache"))
    watch.refresh()
    assert parsed == []
    # A later refresh of a few files leaves the plan cache whole (it keeps one run's files)
    promo, recap = (
        project.manifests / "campaigns" / "spring-promo.yaml",
        project.manifests / "recaps" / "weekly-recap.yaml",
    )
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))
    recap.write_text(recap.read_text() + "# a comment\n")
    parsed.clear()
    assert len(watch.refresh().reread) == 2 and sorted(parsed) == [
        "spring-promo.yaml",
        "weekly-recap.yaml",
    ]
    parsed.clear()
    load_manifests(Path("manifests"), cache_dir=Path("state/cache"))
    assert sorted(parsed) == ["spring-promo.yaml", "weekly-recap.yaml"]  # not every file


# --------------------------------------------------------------------------- real files


@pytest.fixture
def start_watch(project: Project) -> Iterator[Callable[..., tuple[Watcher, Recorder]]]:
    """Runs the real ``Watcher`` (observer + loop + session) in a thread; stops it after."""
    running: list[tuple[Watcher, threading.Thread]] = []

    def start(
        *,
        debounce: float = 0.3,
        options: PlanOptions | None = None,
        poll: bool = False,
        **flags: Any,
    ) -> tuple[Watcher, Recorder]:
        settings = resolve_settings(
            {
                "manifests": project.manifests,
                "state": project.state,
                "endpoint": "emulator",
                **flags,
            },
            {},
            project.root,
        )
        watcher = Watcher(settings, options or PlanOptions(), debounce=debounce, poll=poll)
        seen = Recorder()
        watcher.loop.add_listener(seen)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        running.append((watcher, thread))
        seen.wait(1)  # the initial reconcile
        assert seen.items[0][2] is None, f"the initial reconcile failed: {seen.items[0][2]!r}"
        assert isinstance(seen.items[0][1], Report)
        return watcher, seen

    yield start
    for watcher, thread in running:
        watcher.stop()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the watch did not stop"


def renders(project: Project, name: str | None = None) -> int:
    calls = project.calls("ProduceEditingProjectVideo")
    if name is None:
        return len(calls)
    pid = json.loads((project.state / "state.json").read_text())["projects"][name]["project_id"]
    return sum(1 for c in calls if c.params.get("ProjectId") == pid)


def test_five_saves_in_200ms_are_one_reconcile(project: Project, start_watch: Any) -> None:
    watcher, seen = start_watch(debounce=0.5)  # the default
    assert renders(project) == 5
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    original = promo.read_text()
    started = time.monotonic()
    for out in (13, 14, 15, 16, 17):  # an editor saving five times while the user types
        promo.write_text(original.replace("Out: 12", f"Out: {out}"))
        time.sleep(0.04)
    assert time.monotonic() - started < 0.5  # all inside one debounce window
    report: Report = seen.wait(2)[1]
    assert watcher.loop.idle.wait(DEADLINE)
    assert watcher.loop.reconciles == 2  # the initial one, then exactly one for the burst
    assert report.result.counts["rendered"] == 1
    assert report.snapshot.reread == [promo.absolute()]  # only the changed file was re-read
    assert renders(project, "spring-promo") == 2  # the create, then one render for the burst
    assert "changed manifests/campaigns/spring-promo.yaml" in report.line()


def test_invalid_edit_is_reported_and_never_pruned_then_the_fix_applies(
    project: Project, start_watch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _watcher, seen = start_watch(options=PlanOptions(prune=True))
    sting = project.manifests / "brand-sting.yaml"
    good = sting.read_text()
    sting.write_text(good + "oops: [\n")  # half-typed
    broken: Report = seen.wait(2)[1]
    assert broken.snapshot.issues
    assert all(i.path == "manifests/brand-sting.yaml" for i in broken.snapshot.issues)
    err = capsys.readouterr().err
    assert f"invalid: {broken.snapshot.issues[0]}" in err
    assert "manifests/brand-sting.yaml:" in err
    assert broken.plan.summary["orphan"] == 0 and broken.plan.summary["delete"] == 0
    assert "1 invalid file skipped" in broken.line()

    promo = project.manifests / "campaigns" / "spring-promo.yaml"  # the valid ones still apply
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))
    meanwhile: Report = seen.wait(3)[2]
    assert meanwhile.result.counts["rendered"] == 1 and meanwhile.snapshot.issues

    sting.write_text(good.replace("Out: 6\n", "Out: 5\n"))  # fixed, with a real change
    fixed: Report = seen.wait(4)[3]
    assert not fixed.snapshot.issues
    assert project.calls("DeleteEditingProjects") == []
    assert fixed.result.counts["rendered"] == 1
    assert renders(project, "brand-sting") == 2  # the create, then the fixed edit
    assert all(error is None for _, _, error in seen.items)


def test_a_timeline_file_change_renders_its_project(project: Project, start_watch: Any) -> None:
    _watcher, seen = start_watch(debounce=0.2)
    timeline = project.manifests / "recaps" / "weekly-recap.timeline.json"
    text = timeline.read_text()
    timeline.write_text(text.replace('"In": 4.5, "Out": 14.5', '"In": 5, "Out": 15'))
    report: Report = seen.wait(2)[1]
    assert report.result.counts["rendered"] == 1
    assert renders(project, "weekly-recap") == 2


def test_poll_mode_for_filesystems_without_events(project: Project, start_watch: Any) -> None:
    _watcher, seen = start_watch(debounce=0.2, poll=True)
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 8"))
    report: Report = seen.wait(2)[1]
    assert report.result.counts["rendered"] == 1
    assert report.snapshot.reread == [promo]


def test_a_concurrent_apply_is_excluded_by_the_lock(project: Project, start_watch: Any) -> None:
    watcher, seen = start_watch(debounce=0.1, lock_timeout=0.1)
    watcher.loop.retry_delay = 0.2
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    with state_lock(project.state):  # what a concurrent `reconciler apply` holds
        promo.write_text(promo.read_text().replace("Out: 12", "Out: 9"))
        seen.wait(2)
        assert isinstance(seen.items[1][2], LockHeldError)  # reported; the watch goes on
        assert renders(project, "spring-promo") == 1
    seen.wait_until(lambda items: items[-1][2] is None and len(items) > 2)
    batch, retried, _ = seen.items[-1]
    assert batch.retry and retried.result.counts["rendered"] == 1
    assert all(isinstance(error, LockHeldError) for _, _, error in seen.items[1:-1])
    assert renders(project, "spring-promo") == 2


def test_ctrl_c_stops_cleanly_and_saves_state(project: Project) -> None:
    proc = spawn_watch(project)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=DEADLINE)
        assert first.startswith("watch #0: initial: 5 created")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE)
    assert proc.returncode == 0, err
    assert "state saved" in err and "Traceback" not in err
    assert (project.state / "state.json").is_file()
