"""Deciding what became of an interrupted call, from what VOD shows (pure; no I/O).

The executor (``reconciler.engine.apply``) fetches the project and journals the outcome;
these functions only compare times, hashes and Timelines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.canonical import (
    METADATA_KEYS,
    RENDER_KEYS,
    SpecHashes,
    canonicalize,
    spec_hashes,
)
from reconciler.core.planner import Change
from reconciler.engine.protocol import ProjectLike

# How far apart the client's clock and VOD's may be when matching an interrupted call.
CLOCK_TOLERANCE = timedelta(seconds=30)
# An interrupted render that leaves VOD's Timeline as the last apply left it (only
# produceConfig/mediaMetadata changed, --force, --retry-failed) cannot be recognised by the
# Timeline: it counts as having happened only if VOD's ModifiedTime (whole seconds) is at
# least this much later than the last change the state records. Such a render is therefore
# never sent sooner than RENDER_GAP + 1 s after that change, so a render that happened always
# passes and an earlier call never does, while the two clocks are within 1 s of each other.
RENDER_GAP = timedelta(seconds=2)
PRODUCING = ("Producing", "Produced", "ProduceFailed")
# Spec keys outside the Timeline: a diff touching only these leaves VOD's Timeline unchanged.
_NOT_TIMELINE = frozenset((*RENDER_KEYS[1:], *METADATA_KEYS, "userData"))


def change_hashes(change: Change) -> SpecHashes:
    """The desired spec's hashes: the planner's, computed only for a change without them."""
    if change.hashes is not None:
        return change.hashes
    assert change.spec is not None
    return spec_hashes(change.spec)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def keeps_timeline(change: Change) -> bool:
    """Whether rendering ``change`` leaves the remote Timeline as the state says it is."""
    return change.action == "render" and all(
        d.path.split(".", 1)[0].split("[", 1)[0] in _NOT_TIMELINE for d in change.diff
    )


def render_gap_wait(change: Change, now: float) -> float:
    """Seconds to wait before a same-Timeline render so ``render_happened`` can tell (0: none)."""
    last = parse_time(change.last_change_at)
    if last is None or not keeps_timeline(change):
        return 0.0
    return (last + RENDER_GAP + timedelta(seconds=1)).timestamp() - now


def render_happened(change: Change, pending: dict[str, Any], project: ProjectLike) -> bool:
    """Whether VOD shows the interrupted render of exactly this spec."""
    spec = change.spec
    assert spec is not None
    if pending.get("render_hash") != change_hashes(change).render:
        return False  # the spec moved on: it needs its own render either way
    if project.status not in PRODUCING or canonicalize(project.timeline or {}) != canonicalize(
        spec["timeline"]
    ):
        return False  # a ProduceEditingProjectVideo would have set both
    modified = parse_time(project.modified_time)
    if modified is None:
        return False
    if keeps_timeline(change):
        # The Timeline was already this: only a modification after the last recorded
        # change (and the gap ``Executor._keep_render_gap`` kept) shows the render arrived.
        last = parse_time(change.last_change_at)
        return last is not None and modified >= last + RENDER_GAP
    intent_at = parse_time(pending.get("at"))
    return intent_at is not None and modified >= intent_at - CLOCK_TOLERANCE
