"""State store: snapshot + journal + backup + lock, on real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters.state import StateStore, read_holder, state_lock, state_text
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
    second = (tmp_path / "state.json").read_bytes()
    store.record(ev("c"))
    store.snapshot()  # the backup is a link to the old snapshot: replacing it keeps its bytes
    assert (tmp_path / "state.json.bak").read_bytes() == second
    assert (tmp_path / "state.json").read_bytes() != second
    assert (tmp_path / "state.json").stat().st_nlink == 1
    assert not list(tmp_path.glob(".*.tmp"))
    assert (tmp_path / ".gitignore").read_text().splitlines()[1] == ".lock"


def test_a_render_changes_a_few_lines_of_its_project_only(tmp_path: Path) -> None:
    """state.json is committed: mappings are indented down to each project's fields, and
    each field's value is one line, so a render's diff names what changed."""
    store = StateStore(tmp_path)
    store.load()
    spec = {"timeline": {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", "Out": 5}]}]}}
    for name in ("a", "b"):
        store.record(ev(name))
        store.record(ev(name, "rendered", media_id="m1", spec=spec, hashes={"render": "r"}))
    store.snapshot()
    before = (tmp_path / "state.json").read_text().splitlines()
    assert before[:3] == ["{", ' "format_version": 1,', ' "serial": 1,']
    assert ' "projects": {' in before and '  "a": {' in before
    assert (
        '   "spec": {"timeline": {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", '
        '"Out": 5}]}]}},' in before
    )
    changed = {"timeline": {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", "Out": 6}]}]}}
    store.record(ev("b", "rendered", media_id="m2", spec=changed, hashes={"render": "s"}))
    store.snapshot()
    after = (tmp_path / "state.json").read_text().splitlines()
    diff = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    at_b = after.index('  "b": {')
    assert diff[0] == (' "serial": 1,', ' "serial": 2,')
    assert all(after.index(y) > at_b for _, y in diff[1:])  # only b's lines, after its name
    assert any(y.startswith('   "spec": ') and '"Out": 6' in y for _, y in diff)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_docs = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_docs, max_size=4))
def test_state_text_is_the_json_of_the_indented_dump(doc: dict[str, object]) -> None:
    text = state_text(doc)
    assert json.dumps(json.loads(text)) == json.dumps(doc)  # NaN included, key order kept
    if not any(isinstance(v, dict) and v for v in doc.values()):
        assert text.count("\n") == (len(doc) + 1 if doc else 0)


def test_the_backup_is_copied_where_hard_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("no hard links here")

    store = StateStore(tmp_path)
    store.load()
    store.record(ev("a"))
    store.snapshot()
    first = (tmp_path / "state.json").read_bytes()
    monkeypatch.setattr(os, "link", no_links)
    store.record(ev("b"))
    store.snapshot()
    assert (tmp_path / "state.json.bak").read_bytes() == first
    assert (tmp_path / "state.json.bak").stat().st_ino != (tmp_path / "state.json").stat().st_ino


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
