"""Drift detection: fetch each applied project (GetEditingProject) and compare it with the
last-applied spec using the pure ``reconciler.core.drift``. Read-only: never writes the state.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.drift import ProjectDrift, compare, remote_spec
from reconciler.core.state import State
from reconciler.engine.protocol import VodLike
from reconciler.errors import VodError

NOT_FOUND = "InvalidEditingProject.NotFound"


@dataclass
class DriftReport:
    """Every checked project's drift, the projects that could not be checked, and why."""

    projects: list[ProjectDrift] = field(default_factory=list)
    errors: dict[str, VodError] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[ProjectDrift]:
        return [d for d in self.projects if d.drifted]

    def by_name(self) -> dict[str, ProjectDrift]:
        return {d.name: d for d in self.projects}

    def as_dict(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "projects": [d.as_dict() for d in self.projects],
            "errors": {
                name: {"code": e.code, "message": e.message, "request_id": e.request_id}
                for name, e in sorted(self.errors.items())
            },
            "skipped": dict(sorted(self.skipped.items())),
            "summary": {
                "checked": len(self.projects),
                "drifted": len(self.drifted),
                "errors": len(self.errors),
                "skipped": len(self.skipped),
            },
        }


def _checkable(entry: dict[str, Any]) -> str | None:
    """Why a state entry cannot be compared, or None when it can."""
    if entry.get("pending"):
        return "an interrupted call is pending; run apply to settle it first"
    if not entry.get("project_id"):
        return "no remote project recorded yet"
    if not entry.get("spec"):
        return "nothing applied yet"
    return None


def _one(client: VodLike, name: str, entry: dict[str, Any]) -> ProjectDrift | VodError:
    project_id = entry["project_id"]
    try:
        project = client.get_editing_project(project_id)
    except VodError as exc:
        if exc.code == NOT_FOUND:
            return compare(name, project_id, entry["spec"], None)
        return exc
    return compare(name, project_id, entry["spec"], remote_spec(project))


def detect(
    client: VodLike,
    state: State,
    names: Iterable[str] | None = None,
    *,
    parallelism: int = 8,
) -> DriftReport:
    """Compare the projects named (default: every project in the state) with VOD."""
    wanted = sorted(state.projects if names is None else set(names) & set(state.projects))
    report = DriftReport()
    checked: list[tuple[str, dict[str, Any]]] = []
    for name in wanted:
        entry = state.projects[name]
        why = _checkable(entry)
        if why is None:
            checked.append((name, entry))
        else:
            report.skipped[name] = why
    if not checked:
        return report
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(checked)))) as pool:
        results = list(pool.map(lambda item: _one(client, *item), checked))
    for (name, _), result in zip(checked, results, strict=True):
        if isinstance(result, VodError):
            report.errors[name] = result
        else:
            report.projects.append(result)
    return report
