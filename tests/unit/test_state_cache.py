"""The state read cache: ``peek`` through it gives exactly what ``load`` gives."""

from __future__ import annotations

import copy
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters import manifest_cache, state_cache
from reconciler.adapters.state import StateStore
from reconciler.adapters.state_cache import CACHE_FILE, LazyEntry

ENTRY = {
    "project_id": "p1",
    "created_at": "2026-01-01T00:00:00Z",
    "labels": {"team": "t"},
    "annotations": {},
    "spec": {"title": "T", "timeline": {"VideoTracks": []}},
    "hashes": {"render": "r", "metadata": "m", "userdata": "u"},
    "applied_at": "2026-01-01T00:00:00Z",
    "last_render": {"media_id": "x", "status": "Producing"},
    "history": [{"media_id": "x", "status": "Producing"}],
}


def lazy() -> LazyEntry:
    eager, order, blob, key = state_cache._row(copy.deepcopy(ENTRY))
    assert blob is not None and key == "r\nm\nu"
    return LazyEntry(eager, order, blob, key)


def test_lazy_entry_answers_without_decoding_until_it_must() -> None:
    entry = lazy()
    assert entry.get("project_id") == "p1" and entry["labels"] == {"team": "t"}
    assert "spec" in entry and "hashes" in entry and "nope" not in entry
    assert len(entry) == len(ENTRY) and entry.hash_key == "r\nm\nu"
    assert entry._blob is not None  # still deferred
    assert entry.get("spec") == ENTRY["spec"]
    assert entry._blob is None and entry.hash_key is None  # decoded: the dict says it all
    assert entry["hashes"] == ENTRY["hashes"]


def test_hash_key_never_outlives_a_change() -> None:
    entry = lazy()
    entry["hashes"]["render"] = "r2"  # reading "hashes" decodes the entry first
    assert entry.hash_key is None
    entry = lazy()
    entry["project_id"] = "p2"
    assert entry.hash_key is None and entry["hashes"] == ENTRY["hashes"]


def test_irregular_hashes_stay_in_the_dict() -> None:
    odd = {**copy.deepcopy(ENTRY), "hashes": {"render": "r"}}
    eager, _, blob, key = state_cache._row(odd)
    assert key is None and eager["hashes"] == {"render": "r"} and blob is not None
    no_spec = {k: v for k, v in copy.deepcopy(ENTRY).items() if k != "spec"}
    assert state_cache._row(no_spec)[3] is None


@pytest.mark.parametrize(
    "use",
    [
        lambda e: e == ENTRY,
        lambda e: ENTRY == e,  # noqa: SIM300 (the plain dict on the left, on purpose)
        lambda e: list(e) == list(ENTRY),
        lambda e: list(e.items()) == list(ENTRY.items()),
        lambda e: dict(e) == ENTRY,
        lambda e: {**e} == ENTRY,
        lambda e: json.dumps(e) == json.dumps(ENTRY),
        lambda e: json.dumps(e, indent=1) == json.dumps(ENTRY, indent=1),
        lambda e: copy.deepcopy(e) == ENTRY and type(copy.deepcopy(e)) is dict,
        lambda e: copy.copy(e) == ENTRY,
        lambda e: pickle.loads(pickle.dumps(e)) == ENTRY,
        lambda e: repr(e) == repr(ENTRY),
        lambda e: e["spec"] == ENTRY["spec"],
        lambda e: e.pop("history") == ENTRY["history"] and "history" not in e,
    ],
)
def test_lazy_entry_is_the_entry(use: Any) -> None:
    assert use(lazy())


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    """A state with two projects, its files treated as old enough to trust."""
    monkeypatch.setattr(state_cache, "RACY_NS", -(10**18))
    store = StateStore(tmp_path / "state")
    store.load()
    for name in ("a", "b"):
        store.record({"type": "created", "name": name, "at": "t", "project_id": f"p-{name}"})
        store.record(
            {
                "type": "rendered",
                "name": name,
                "at": "t",
                "project_id": f"p-{name}",
                "media_id": "m",
                "spec": ENTRY["spec"],
                "hashes": ENTRY["hashes"],
                "labels": {},
                "annotations": {},
            }
        )
    store.snapshot()
    store.record({"type": "forgotten", "name": "b"})  # and one journaled event
    store.close()
    return StateStore(tmp_path / "state")


def test_peek_through_the_cache_equals_load(store: StateStore) -> None:
    expected = StateStore(store.dir).load().to_json()
    first = store.peek()
    assert (store.dir / "cache" / CACHE_FILE).is_file()
    second = StateStore(store.dir).peek()
    assert any(isinstance(e, LazyEntry) for e in second.projects.values())
    assert first.to_json() == expected == second.to_json()
    assert json.dumps(second.to_json()) == json.dumps(expected)


def test_a_new_event_invalidates(store: StateStore) -> None:
    store.peek()
    writer = StateStore(store.dir)
    writer.load()
    writer.record({"type": "forgotten", "name": "a"})
    writer.close()
    assert StateStore(store.dir).peek().projects == {}


def test_recently_written_state_is_not_cached(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_cache, "RACY_NS", manifest_cache.RACY_NS)
    store.peek()
    assert not (store.dir / "cache" / CACHE_FILE).exists()


def test_a_damaged_cache_is_ignored(store: StateStore) -> None:
    store.peek()
    path = store.dir / "cache" / CACHE_FILE
    path.write_bytes(path.read_bytes()[:100])
    assert StateStore(store.dir).peek().to_json() == StateStore(store.dir).load().to_json()


def test_a_cache_cut_short_in_its_deferred_part_is_ignored(store: StateStore) -> None:
    store.peek()
    path = store.dir / "cache" / CACHE_FILE
    path.write_bytes(path.read_bytes()[:-10])  # the eager part intact, a spec cut short
    assert StateStore(store.dir).peek().to_json() == StateStore(store.dir).load().to_json()


def test_deferred_parts_come_from_the_file_that_was_read(store: StateStore) -> None:
    store.peek()
    entry = StateStore(store.dir).peek().projects["a"]
    assert isinstance(entry, LazyEntry) and entry._blob is not None
    (store.dir / "cache" / CACHE_FILE).unlink()  # replaced or removed meanwhile
    assert entry["spec"] == ENTRY["spec"] and entry["hashes"] == ENTRY["hashes"]


def test_a_prefetch_writes_the_read_cache_and_the_peek_after_it_equals_load(
    store: StateStore,
) -> None:
    expected = StateStore(store.dir).load().to_json()
    store.prefetch()
    path = store.dir / "cache" / CACHE_FILE
    assert not path.parent.exists()  # written meanwhile, but not where a reader takes it
    (written,) = store.dir.glob(f".{CACHE_FILE}.*.tmp")
    peeked = store.peek()
    assert isinstance(peeked.projects["a"], LazyEntry)  # as read from that cache ...
    assert peeked.projects["a"].hash_key is not None  # (the planner's one comparison)
    assert peeked.to_json() == expected  # ... and equal to what load gives
    assert path.is_file() and not written.exists()  # the peek moved it into place
    assert list(store.dir.rglob("*.tmp")) == []
    warm = StateStore(store.dir)
    warm.prefetch()  # now from that cache
    assert warm.peek().to_json() == expected


def test_a_state_changed_while_the_prefetch_reads_it_is_not_cached(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = StateStore.load

    def load_then_change(self: StateStore) -> Any:
        state = real(self)
        writer = StateStore(self.dir)
        real(writer)
        writer.record({"type": "forgotten", "name": "a"})
        writer.close()
        return state

    monkeypatch.setattr(StateStore, "load", load_then_change)
    store.prefetch()
    assert not (store.dir / "cache").exists()
    monkeypatch.setattr(StateStore, "load", real)
    assert "a" not in store.peek().projects  # read again: the prefetched state is stale


def test_a_discarded_prefetch_leaves_state_as_it_was(store: StateStore) -> None:
    def files() -> list[tuple[str, int]]:
        return sorted((str(p), p.stat().st_mtime_ns) for p in store.dir.rglob("*"))

    before = files()
    store.prefetch()
    assert len(list(store.dir.glob(f".{CACHE_FILE}.*.tmp"))) == 1  # written meanwhile
    store.discard_prefetch()  # what a plan of invalid manifests does: no peek follows
    assert files() == before


def test_temp_files_of_killed_runs_are_swept_when_an_hour_old(store: StateStore) -> None:
    old, fresh = store.dir / f".{CACHE_FILE}.1.aa.tmp", store.dir / f".{CACHE_FILE}.2.bb.tmp"
    for leftover in (old, fresh):
        leftover.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    store.peek()
    assert not old.exists() and fresh.exists()


def test_a_state_changed_after_the_prefetch_is_read_again(store: StateStore) -> None:
    store.prefetch()
    writer = StateStore(store.dir)
    writer.load()
    writer.record({"type": "forgotten", "name": "a"})
    writer.close()
    assert store.peek().projects == {}


def test_a_prefetch_that_fails_leaves_the_error_to_the_peek(store: StateStore) -> None:
    (store.dir / "state.json").write_text("{not json")
    store.prefetch()  # no exception here
    with pytest.raises(Exception, match=r"state\.json"):
        store.peek()
