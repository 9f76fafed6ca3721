"""State store: snapshot + journal + backup + lock, on real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from reconciler.adapters.state import StateStore, read_holder, state_lock
from reconciler.errors import LockHeldError, StateCorruptError, StateError


def ev(name: str, kind: str = "created", **data: object) -> dict[str, object]:
    return {
        "type": kind,
        "name": name,
        "at": "2026-01-01T00:00:00Z",
        "project_id": f"p-{name}",
        **data,
    }


def test_journal_survives_without_snapshot(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    store.close()  # "crash": no snapshot
    state = StateStore(tmp_path).load()
    assert state.projects["a"]["project_id"] == "p-a"


def test_snapshot_folds_journal_and_keeps_backup(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    store.snapshot()
    assert (tmp_path / "journal.jsonl").read_bytes() == b""
    first = json.loads((tmp_path / "state.json").read_text())
    assert first["serial"] == 1 and first["format_version"] == 1 and first["lineage"]
    store.record(ev("b"))
    store.snapshot()
    assert json.loads((tmp_path / "state.json.bak").read_text()) == first
    assert set(StateStore(tmp_path).load().projects) == {"a", "b"}
    assert (tmp_path / ".gitignore").read_text().splitlines()[1] == ".lock"


def test_stale_journal_lines_are_not_applied_twice(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    journal = (tmp_path / "journal.jsonl").read_bytes()
    store.snapshot()
    store.record({"type": "forgotten", "name": "a"})
    store.snapshot()
    # Simulate a crash after the snapshot rename but before the journal truncation.
    (tmp_path / "journal.jsonl").write_bytes(journal)
    assert StateStore(tmp_path).load().projects == {}


def test_torn_last_line_is_ignored_and_cut_before_appending(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    store.close()
    with open(tmp_path / "journal.jsonl", "a") as fh:
        fh.write('{"lineage": "x", "ba')
    store = StateStore(tmp_path)
    assert set(store.load().projects) == {"a"}
    store.record(ev("b"))
    store.close()
    assert set(StateStore(tmp_path).load().projects) == {"a", "b"}


def test_corrupt_state_names_the_backup(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    store.snapshot()
    store.record(ev("b"))
    store.snapshot()
    (tmp_path / "state.json").write_text('{"format_version": 1, "ser')
    with pytest.raises(StateCorruptError) as info:
        StateStore(tmp_path).load()
    assert "state.json.bak" in str(info.value)


def test_newer_format_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(
        json.dumps({"format_version": 99, "serial": 1, "lineage": "x", "projects": {}})
    )
    with pytest.raises(StateError, match="newer"):
        StateStore(tmp_path).load()


def _hold(directory: str, ready: multiprocessing.synchronize.Event, release: float) -> None:
    with state_lock(Path(directory)):
        ready.set()
        time.sleep(release)


def test_lock_names_holder_and_is_released_when_holder_dies(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), ready, 60))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockHeldError) as info, state_lock(tmp_path, timeout=0.2):
            pass
        assert f"pid {proc.pid}" in str(info.value)
        assert read_holder(tmp_path)["pid"] == proc.pid
    finally:
        os.kill(proc.pid, 9)
        proc.join()
    with state_lock(tmp_path, timeout=2) as info2:  # kill -9 released the flock
        assert info2["pid"] == os.getpid()


def test_stale_temp_files_are_removed_under_the_lock(tmp_path: Path) -> None:
    stale = tmp_path / ".state.json.4242.deadbeef.tmp"
    stale.write_text("half a snapshot")
    (tmp_path / "state.json").write_text("{}")
    with state_lock(tmp_path, timeout=1):
        assert not stale.exists()
    assert (tmp_path / "state.json").read_text() == "{}"
