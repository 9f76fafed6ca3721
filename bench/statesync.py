"""Write a state directory that is in sync with a catalogue, without calling any API.

For the plan benchmarks (and (h), with ``seed_emulator``): the state is what ``apply`` would
have left after creating and rendering every project (the same ``created`` + ``rendered``
events folded by the real state code and written by the real ``StateStore``), with made-up
project and media IDs. A plan against it is a plan of the whole catalogue that finds nothing
to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reconciler.adapters.emulator import Emulator
from reconciler.adapters.loader import load_manifests
from reconciler.adapters.state import StateStore
from reconciler.core.planner import plan
from reconciler.core.state import State, apply_event


def _fake_id(kind: str, name: str) -> str:
    return hashlib.md5(f"{kind}:{name}".encode()).hexdigest()


def sync_state(manifests: Path, state_dir: Path) -> int:
    """Write ``state_dir`` in sync with ``manifests``; return the number of projects."""
    loaded = load_manifests(manifests)
    if loaded.issues:
        raise SystemExit(f"the generated catalogue is invalid: {loaded.issues[0]}")
    state = State(lineage="bench-" + _fake_id("lineage", str(manifests))[:12])
    at = "2024-05-01T00:00:00Z"
    for change in plan(loaded.manifests, state).changes:
        assert change.spec is not None and change.hashes is not None
        project_id = _fake_id("project", change.name)
        common = {"name": change.name, "at": at}
        apply_event(state, {"type": "created", "project_id": project_id, **common})
        apply_event(
            state,
            {
                "type": "rendered",
                "project_id": project_id,
                "media_id": _fake_id("media", change.name),
                "request_id": _fake_id("request", change.name).upper(),
                "spec": change.spec,
                "hashes": change.hashes.as_dict(),
                "labels": change.labels,
                "annotations": change.annotations,
                **common,
            },
        )
    store = StateStore(state_dir)
    store.state = state
    store.pending_events = len(state.projects)
    store.snapshot()
    return len(state.projects)


def seed_emulator(state_dir: Path) -> int:
    """Make the projects ``state_dir`` names exist in its embedded emulator (``--endpoint
    emulator``), with the state's made-up IDs, so that an apply against it really renders;
    the count created (0 when they are there already)."""
    state = StateStore(state_dir).load()
    emulator = Emulator.embedded(state_dir)
    try:
        return emulator.import_projects(
            {e["project_id"]: e["spec"].get("title") or name for name, e in state.projects.items()}
        )
    finally:
        emulator.close()
