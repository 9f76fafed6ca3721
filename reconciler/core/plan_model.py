"""The plan as data: options, one change per project, the plan (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.core.canonical import SpecHashes
from reconciler.core.diff import DiffEntry

ACTIONS = ("create", "render", "update", "adopt", "noop", "orphan", "delete")
PRUNE_ANNOTATION = "reconciler/prune"


class DesiredProject(Protocol):
    """What the planner needs of a manifest (``reconciler.adapters.loader.Manifest``)."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def annotations(self) -> dict[str, str]: ...
    @property
    def spec(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PlanOptions:
    only: frozenset[str] = frozenset()
    selector: Mapping[str, str] = field(default_factory=dict)
    force: frozenset[str] = frozenset()
    prune: bool = False
    max_deletes: int = 10
    allow_empty: bool = False
    retry_failed: bool = False
    heal: bool = False  # revert drift: render a drifted timeline, update drifted metadata


@dataclass(frozen=True)
class Change:
    name: str
    action: str
    project_id: str | None
    reasons: tuple[str, ...]
    diff: tuple[DiffEntry, ...] = ()
    spec: dict[str, Any] | None = None  # canonical desired spec (None for orphan/delete)
    hashes: SpecHashes | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    record: bool = False  # a noop that still updates the state (e.g. userData changed)
    verify: bool = False  # an interrupted call must be checked remotely before acting
    pending: dict[str, Any] | None = None  # the interrupted call's journaled intent
    held: bool = False  # not resubmitted: this spec's last render failed permanently
    drift: bool = False  # the remote project changed outside git (see the reasons)
    # When an apply last changed this project remotely (state times, the engine's clock): VOD's
    # ModifiedTime must be later for an interrupted render that left the Timeline as it was
    # to count as having happened (see ``reconciler.engine.apply``).
    last_change_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "project_id": self.project_id,
            "reasons": list(self.reasons),
            "diff": [str(d) for d in self.diff],
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    refusals: tuple[str, ...] = ()  # guard rails that stopped part of the plan (prune limits)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """True when apply would touch VOD (orphans and local-only bookkeeping do not)."""
        return any(
            c.action in ("create", "render", "update", "adopt", "delete") for c in self.changes
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "changes": [c.as_dict() for c in self.changes],
            "summary": self.summary,
        }
