"""Drift is a semantic comparison (pure), and the planner folds it in: report, or heal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.core.canonical import applied_spec, spec_hashes
from reconciler.core.drift import ProjectDrift, compare, remote_spec
from reconciler.core.planner import PlanOptions, plan
from reconciler.core.state import State, apply_event
from reconciler.engine.drift import detect
from reconciler.errors import VodApiError

TIMELINE = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 0, "Out": 5}]}]}


@dataclass
class Remote:
    title: str | None = "T"
    description: str | None = None
    cover_url: str | None = None
    timeline: dict[str, Any] | None = field(default_factory=lambda: dict(TIMELINE))
    project_id: str = "p-a"
    status: str | None = "Produced"


@dataclass
class M:
    name: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def spec(**extra: Any) -> dict[str, Any]:
    return applied_spec({"title": "T", "timeline": TIMELINE, **extra})


def state_with(name: str, s: dict[str, Any], **entry: Any) -> State:
    state = State(lineage="L")
    apply_event(
        state,
        {
            "type": "rendered",
            "name": name,
            "at": "2026-01-01T00:00:00Z",
            "project_id": f"p-{name}",
            "media_id": "x",
            "spec": s,
            "hashes": spec_hashes(s).as_dict(),
            "labels": {},
            "annotations": {},
        },
    )
    state.projects[name].update(entry)
    return state


# ----------------------------------------------------------------------- compare (pure)


def test_semantically_equal_remote_is_in_sync() -> None:
    reordered = {"VideoTracks": [{"VideoTrackClips": [{"Out": 5.0, "In": 0.0, "MediaId": "m1"}]}]}
    d = compare("a", "p", spec(), remote_spec(Remote(timeline=reordered)))
    assert not d.drifted and d.fields == () and d.summary == "in sync"


def test_timeline_and_title_changes_are_field_level() -> None:
    changed = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 0, "Out": 7}]}]}
    d = compare("a", "p", spec(), remote_spec(Remote(title="X", timeline=changed)))
    assert d.fields == ("timeline", "title") and d.render_drift
    assert [str(e) for e in d.entries] == [
        "VideoTracks[0].VideoTrackClips[0].Out: 5 -> 7",
        'title: "T" -> "X"',
    ]
    assert d.summary == "timeline, title changed outside git since the last apply"
    assert [str(e) for e in d.heal_diff(spec())] == [
        "VideoTracks[0].VideoTrackClips[0].Out: 7 -> 5",
        'title: "X" -> "T"',
    ]


def test_optional_fields_are_compared_only_when_managed() -> None:
    # VOD fills in a cover thumbnail; a manifest without coverURL does not manage it.
    remote = remote_spec(Remote(cover_url="https://auto/thumb.jpg", description="console"))
    assert not compare("a", "p", spec(), remote).drifted
    managed = spec(coverURL="https://x/c.jpg", description="git")
    d = compare("a", "p", managed, remote)
    assert d.fields == ("description", "coverURL") and not d.render_drift
    # an empty string is VOD's way of saying "absent"
    assert not compare("a", "p", spec(), remote_spec(Remote(description=""))).drifted


def test_deleted_and_missing_timeline() -> None:
    gone = compare("a", "p", spec(), None)
    assert gone.deleted and gone.drifted and gone.summary == "deleted outside git"
    d = compare("a", "p", spec(), remote_spec(Remote(timeline=None)))
    assert d.fields == ("timeline",)
    assert str(d.entries[0]).startswith("timeline: {") and str(d.entries[0]).endswith("(absent)")


# ----------------------------------------------------------------------- the planner


def drift_of(name: str, s: dict[str, Any], remote: Remote | None) -> dict[str, ProjectDrift]:
    return {name: compare(name, f"p-{name}", s, None if remote is None else remote_spec(remote))}


def acts(p: Any) -> list[tuple[str, str]]:
    return [(c.name, c.action) for c in p.changes]


def test_drift_is_reported_as_noop_without_heal() -> None:
    s = spec()
    drift = drift_of("a", s, Remote(title="X"))
    p = plan([M("a", {"title": "T", "timeline": TIMELINE})], state_with("a", s), drift=drift)
    (change,) = p.changes
    assert change.action == "noop" and change.drift and not change.record  # report only
    assert change.reasons[0].startswith("drift: title changed outside git")
    assert "up to date" not in change.reasons
    assert [str(e) for e in change.diff] == ['title: "T" -> "X"']
    assert not p.has_changes


@pytest.mark.parametrize(
    ("remote", "action"),
    [
        (Remote(title="X"), "update"),
        (Remote(timeline={"VideoTracks": []}), "render"),
        (Remote(title="X", timeline={"AudioTracks": []}), "render"),
        (None, "create"),
    ],
)
def test_heal_reverts_with_the_cheapest_call(remote: Remote | None, action: str) -> None:
    s = spec()
    options = PlanOptions(heal=True)
    p = plan(
        [M("a", {"title": "T", "timeline": TIMELINE})],
        state_with("a", s),
        options,
        drift=drift_of("a", s, remote),
    )
    assert acts(p) == [("a", action)] and p.has_changes
    assert p.changes[0].drift and not p.changes[0].record


def test_heal_keeps_manifest_changes_and_guards() -> None:
    s = spec()
    desired = {"title": "T", "timeline": {**TIMELINE, "AudioTracks": []}}
    # the manifest changed the timeline too: one render, which also reverts the drift
    p = plan(
        [M("a", desired)],
        state_with("a", s),
        PlanOptions(heal=True),
        drift=drift_of("a", s, Remote(title="X")),
    )
    assert acts(p) == [("a", "render")] and "this render reverts it" in p.changes[0].reasons[-1]
    # an adopted project deleted remotely is not silently replaced by a new one
    adopted = {"projectId": "p-a", "title": "T", "timeline": TIMELINE}
    p = plan(
        [M("a", adopted)],
        state_with("a", applied_spec(adopted)),
        PlanOptions(heal=True),
        drift=drift_of("a", applied_spec(adopted), None),
    )
    assert acts(p) == [("a", "noop")] and "spec.projectId" in p.changes[0].reasons[0]
    # the spec's last render failed permanently: healing would only fail again
    failed = state_with("a", s, failed={"render_hash": spec_hashes(s).render, "code": "C"})
    p = plan(
        [M("a", {"title": "T", "timeline": TIMELINE})],
        failed,
        PlanOptions(heal=True),
        drift=drift_of("a", s, Remote(timeline={"VideoTracks": []})),
    )
    assert acts(p) == [("a", "noop")]


def test_no_drift_input_keeps_the_plan_unchanged() -> None:
    s = spec()
    state = state_with("a", s)
    desired = [M("a", {"title": "T", "timeline": TIMELINE})]
    assert plan(desired, state) == plan(desired, state, drift={})
    in_sync = drift_of("a", s, Remote())
    assert plan(desired, state, PlanOptions(heal=True), drift=in_sync) == plan(desired, state)


# ----------------------------------------------------------------------- detection (fake VOD)


class FakeVod:
    def __init__(self, projects: dict[str, Remote | Exception]) -> None:
        self.projects = projects
        self.asked: list[str] = []

    def get_editing_project(self, project_id: str) -> Remote:
        self.asked.append(project_id)
        found = self.projects[project_id]
        if isinstance(found, Exception):
            raise found
        return found

    def __getattr__(self, name: str) -> Any:  # nothing else may be called: detection reads
        raise AssertionError(f"drift detection called {name}")


def error(code: str) -> VodApiError:
    return VodApiError("m", action="GetEditingProject", code=code, request_id="R")


def test_detect_reads_only_and_classifies() -> None:
    s = spec()
    state = State(lineage="L")
    for name in ("a", "b", "c", "d", "e"):
        state.projects.update(state_with(name, s).projects)
    state.projects["e"]["pending"] = {"op": "render", "at": "2026-01-01T00:00:00Z"}
    fake = FakeVod(
        {
            "p-a": Remote(),
            "p-b": Remote(title="X"),
            "p-c": error("InvalidEditingProject.NotFound"),
            "p-d": error("Forbidden.RAM"),
        }
    )
    report = detect(fake, state, parallelism=2)  # type: ignore[arg-type]
    assert sorted(fake.asked) == ["p-a", "p-b", "p-c", "p-d"]
    assert [d.name for d in report.drifted] == ["b", "c"]
    assert report.by_name()["c"].deleted
    assert list(report.errors) == ["d"] and "pending" in report.skipped["e"]
    doc = report.as_dict()
    assert doc["summary"] == {"checked": 3, "drifted": 2, "errors": 1, "skipped": 1}
    only: Sequence[str] = ["a", "zzz"]
    assert [d.name for d in detect(fake, state, only).projects] == ["a"]  # type: ignore[arg-type]
