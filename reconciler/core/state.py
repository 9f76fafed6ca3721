"""The state as data: what was last applied per project, and the events that change it.

Pure: the store (``reconciler.adapters.state``) persists snapshots and an append-only
journal of these events; replaying the journal over the snapshot with ``apply_event``
gives the current state, so a crash at any instant loses nothing that was journaled.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.canonical import CANONICAL_VERSION

STATE_FORMAT_VERSION = 1
DEFAULT_HISTORY = 10


@dataclass
class State:
    lineage: str
    serial: int = 0
    canonical_version: int = CANONICAL_VERSION
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": STATE_FORMAT_VERSION,
            "serial": self.serial,
            "lineage": self.lineage,
            "canonical_version": self.canonical_version,
            "projects": {k: self.projects[k] for k in sorted(self.projects)},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls(
            lineage=str(data["lineage"]),
            serial=int(data["serial"]),
            canonical_version=int(data.get("canonical_version", CANONICAL_VERSION)),
            projects=dict(data.get("projects", {})),
        )

    def copy(self) -> State:
        return State(
            self.lineage, self.serial, self.canonical_version, copy.deepcopy(self.projects)
        )


# Event types, each a dict {"type": ..., "name": ..., ...}. Keep them small: they are
# the journal's lines.
EVENT_TYPES = frozenset(
    {
        "intent",  # about to make a non-idempotent call: {op, render_hash, project_id?, at}
        "created",  # AddEditingProject answered: {project_id, request_id, at}
        "rendered",  # ProduceEditingProjectVideo answered: {project_id, media_id, spec, hashes, ..}
        "updated",  # UpdateEditingProject answered: {spec, hashes, at}
        "recorded",  # state caught up without a paid call (noop, adopt, userData, verified)
        "failed",  # a permanent failure: {op, render_hash, code, message, request_id, at}
        "cleared",  # an intent turned out not to have happened: {at, seen_modified?}
        "deleted",  # remote project deleted: {request_id, at}
        "forgotten",  # state rm: forget without deleting remotely
        "moved",  # state mv: {new_name}
        "produced",  # final production status learned: {media_id, status, at, error_code?}
    }
)


def _entry(state: State, name: str) -> dict[str, Any]:
    return state.projects.setdefault(name, {})


def apply_event(state: State, event: dict[str, Any], *, history: int = DEFAULT_HISTORY) -> None:
    """Fold one journal event into ``state`` (in place)."""
    kind = event["type"]
    name = event["name"]
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown state event {kind!r}")
    if kind == "forgotten":
        state.projects.pop(name, None)
        return
    if kind == "deleted":
        state.projects.pop(name, None)
        return
    if kind == "moved":
        if name in state.projects:
            state.projects[event["new_name"]] = state.projects.pop(name)
        return
    entry = _entry(state, name)
    for key in ("labels", "annotations"):
        if key in event:
            entry[key] = event[key]
    if kind == "intent":
        entry["pending"] = {
            "op": event["op"],
            "render_hash": event.get("render_hash"),
            "at": event["at"],
        }
        if event.get("title") is not None:
            entry["pending"]["title"] = event["title"]
        if event.get("project_id"):  # a render's target (an adopt has no project_id yet)
            entry["pending"]["project_id"] = event["project_id"]
    elif kind == "created":
        entry["project_id"] = event["project_id"]
        entry["created_at"] = event["at"]
        entry.pop("pending", None)
    elif kind == "cleared":
        entry.pop("pending", None)
        if event.get("seen_modified"):  # VOD's ModifiedTime when the intent was settled
            entry["seen_modified_at"] = event["seen_modified"]
        if not entry.get("project_id") and not entry.get("spec"):
            state.projects.pop(name, None)
    elif kind in ("rendered", "updated", "recorded"):
        if event.get("project_id"):
            entry["project_id"] = event["project_id"]
        entry["spec"] = event["spec"]
        entry["hashes"] = event["hashes"]
        entry["applied_at"] = event["at"]
        entry.pop("pending", None)
        if kind == "rendered":
            entry.pop("failed", None)
            render = {
                "media_id": event.get("media_id"),
                "request_id": event.get("request_id"),
                "submitted_at": event["at"],
                "render_hash": event["hashes"]["render"],
                "status": "Producing" if event.get("media_id") else "Unknown",
            }
            entry["last_render"] = render
            renders = entry.setdefault("history", [])
            renders.append(dict(render))
            del renders[:-history]
    elif kind == "failed":
        entry.pop("pending", None)
        entry["failed"] = {
            k: event.get(k) for k in ("op", "render_hash", "code", "message", "request_id", "at")
        }
    elif kind == "produced":
        last: dict[str, Any] = entry.get("last_render") or {}
        if last and last.get("media_id") == event.get("media_id"):
            last["status"] = event["status"]
            last["finished_at"] = event["at"]
            if event.get("error_code"):
                last["error_code"] = event["error_code"]
            for item in entry.get("history", []):
                if item.get("media_id") == event.get("media_id"):
                    item.update(status=event["status"], finished_at=event["at"])
