"""Drift: how a remote project differs from what reconciler last applied. Pure.

Compared semantically (canonical form, never as text): the Timeline, the title, and the
description and cover URL when the last-applied spec sets them. An optional field the
manifest leaves out is not managed: VOD fills in a default cover thumbnail, and a console
edit of a field git does not own is not a change *outside git*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.core.canonical import canonicalize
from reconciler.core.diff import DiffEntry, diff_specs

DRIFT_FIELDS = ("timeline", "title", "description", "coverURL")
RENDER_DRIFT_FIELDS = ("timeline",)  # a difference here costs a render to revert
OPTIONAL_FIELDS = ("description", "coverURL")  # compared only when the applied spec sets them


class RemoteProject(Protocol):
    """What drift needs of a fetched project (``reconciler.adapters.vod.models.Project``)."""

    @property
    def title(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def cover_url(self) -> str | None: ...
    @property
    def timeline(self) -> dict[str, Any] | None: ...


def remote_spec(project: RemoteProject) -> dict[str, Any]:
    """The remote project in spec keys, canonical; empty strings count as absent."""
    raw = {
        "timeline": project.timeline,
        "title": project.title,
        "description": project.description,
        "coverURL": project.cover_url,
    }
    out: dict[str, Any] = canonicalize({k: v for k, v in raw.items() if v not in (None, "")})
    return out


def _managed(applied: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        f for f in DRIFT_FIELDS if f not in OPTIONAL_FIELDS or applied.get(f) not in (None, "")
    )


def _view(spec: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: spec[f] for f in fields if spec.get(f) not in (None, "")}


@dataclass(frozen=True)
class ProjectDrift:
    """One project's drift. ``entries`` read ``path: last applied -> remote``."""

    name: str
    project_id: str | None
    deleted: bool = False
    fields: tuple[str, ...] = ()
    entries: tuple[DiffEntry, ...] = ()
    remote: dict[str, Any] | None = None  # remote_spec() of the project; None when deleted

    @property
    def drifted(self) -> bool:
        return self.deleted or bool(self.fields)

    @property
    def render_drift(self) -> bool:
        return any(f in RENDER_DRIFT_FIELDS for f in self.fields)

    @property
    def summary(self) -> str:
        if self.deleted:
            return "deleted outside git"
        if not self.fields:
            return "in sync"
        return f"{', '.join(self.fields)} changed outside git since the last apply"

    def heal_diff(self, desired: Mapping[str, Any]) -> tuple[DiffEntry, ...]:
        """What reverting the drift changes remotely: ``path: remote -> desired``."""
        fields = _managed(desired)
        return tuple(diff_specs(_view(self.remote or {}, fields), _view(desired, fields)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "project_id": self.project_id,
            "drifted": self.drifted,
            "deleted": self.deleted,
            "fields": list(self.fields),
            "summary": self.summary,
            "diff": [str(e) for e in self.entries],
        }


def compare(
    name: str,
    project_id: str | None,
    applied: Mapping[str, Any],
    remote: Mapping[str, Any] | None,
) -> ProjectDrift:
    """Drift of one project: ``applied`` is the state's spec, ``remote`` a remote_spec()
    (None when the project no longer exists remotely)."""
    if remote is None:
        return ProjectDrift(name, project_id, deleted=True)
    fields: list[str] = []
    entries: list[DiffEntry] = []
    for f in _managed(applied):
        found = diff_specs(_view(applied, (f,)), _view(remote, (f,)))
        if found:
            fields.append(f)
            entries.extend(found)
    return ProjectDrift(name, project_id, False, tuple(fields), tuple(entries), dict(remote))
