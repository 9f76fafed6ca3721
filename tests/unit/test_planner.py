"""The planner is pure: literal inputs, exact expected plans."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.canonical import applied_spec, spec_hashes
from reconciler.core.planner import PlanOptions, plan
from reconciler.core.state import State, apply_event


@dataclass
class M:
    name: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def spec(out: float = 5, title: str = "T", **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "timeline": {
            "VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 0, "Out": out}]}]
        },
        **extra,
    }


def applied(*manifests: M, **ids: str) -> State:
    state = State(lineage="L")
    for m in manifests:
        s = applied_spec(m.spec)
        apply_event(
            state,
            {
                "type": "rendered",
                "name": m.name,
                "at": "2026-01-01T00:00:00Z",
                "project_id": ids.get(m.name, f"p-{m.name}"),
                "media_id": "x",
                "spec": s,
                "hashes": spec_hashes(s).as_dict(),
                "labels": m.labels,
                "annotations": m.annotations,
            },
        )
    return state


def actions(p: Any) -> list[tuple[str, str]]:
    return [(c.name, c.action) for c in p.changes]


def test_new_project_is_created() -> None:
    p = plan([M("a", spec())], State(lineage="L"))
    assert actions(p) == [("a", "create")]
    assert p.has_changes and p.summary["create"] == 1


def test_unchanged_is_noop_and_no_changes() -> None:
    m = M("a", spec())
    p = plan([m], applied(m))
    assert actions(p) == [("a", "noop")]
    assert not p.has_changes


def test_timeline_change_renders_with_field_diff() -> None:
    state = applied(M("a", spec(out=5)))
    p = plan([M("a", spec(out=7))], state)
    (c,) = p.changes
    assert (c.action, c.project_id) == ("render", "p-a")
    assert c.reasons == ("timeline changed",)
    assert [str(d) for d in c.diff] == ["VideoTracks[0].VideoTrackClips[0].Out: 5 -> 7"]


def test_title_only_is_update() -> None:
    state = applied(M("a", spec()))
    (c,) = plan([M("a", spec(title="New"))], state).changes
    assert (c.action, c.reasons) == ("update", ("title changed",))


def test_produce_config_and_media_metadata_are_render_relevant() -> None:
    state = applied(M("a", spec()))
    (c,) = plan([M("a", spec(produceConfig={"TemplateGroupId": "x"}))], state).changes
    assert c.action == "render" and c.reasons == ("produceConfig changed",)
    (c,) = plan([M("a", spec(mediaMetadata={"Title": "x"}))], state).changes
    assert c.action == "render"


def test_user_data_alone_is_recorded_without_a_call() -> None:
    state = applied(M("a", spec()))
    p = plan([M("a", spec(userData={"Extend": {"k": "v"}}))], state)
    (c,) = p.changes
    assert (c.action, c.record) == ("noop", True)
    assert not p.has_changes


def test_labels_and_number_formatting_never_render() -> None:
    state = applied(M("a", spec(out=5)))
    p = plan([M("a", spec(out=5.0), labels={"team": "x"})], state)
    (c,) = p.changes
    assert c.action == "noop" and not p.has_changes


def test_force_renders_unchanged() -> None:
    m = M("a", spec())
    (c,) = plan([m], applied(m), PlanOptions(force=frozenset({"a"}))).changes
    assert (c.action, c.reasons) == ("render", ("forced with --force",))


def test_adopt_when_project_id_given_and_not_in_state() -> None:
    (c,) = plan([M("a", spec(projectId="abc"))], State(lineage="L")).changes
    assert (c.action, c.project_id) == ("adopt", "abc")


def test_orphan_and_prune_guards() -> None:
    a, b = M("a", spec()), M("b", spec())
    state = applied(a, b)
    assert actions(plan([a], state)) == [("a", "noop"), ("b", "orphan")]
    assert actions(plan([a], state, PlanOptions(prune=True))) == [("a", "noop"), ("b", "delete")]
    p = plan([a], state, PlanOptions(prune=True, max_deletes=0))
    assert actions(p) == [("a", "noop"), ("b", "orphan")] and p.refusals
    p = plan([], state, PlanOptions(prune=True))
    assert all(c.action == "orphan" for c in p.changes) and "empty" in p.refusals[0]
    p = plan([], state, PlanOptions(prune=True, allow_empty=True))
    assert [c.action for c in p.changes] == ["delete", "delete"]


def test_prune_annotation_protects() -> None:
    a = M("a", spec(), annotations={"reconciler/prune": "disabled"})
    p = plan([], applied(a), PlanOptions(prune=True, allow_empty=True))
    assert actions(p) == [("a", "orphan")]
    assert "protected" in p.changes[0].reasons[0]


def test_only_and_selector() -> None:
    a, b = M("a", spec(), labels={"team": "x"}), M("b", spec(), labels={"team": "y"})
    state = State(lineage="L")
    assert actions(plan([a, b], state, PlanOptions(only=frozenset({"b"})))) == [("b", "create")]
    assert actions(plan([a, b], state, PlanOptions(selector={"team": "x"}))) == [("a", "create")]


def test_interrupted_render_is_verified_first() -> None:
    state = applied(M("a", spec()))
    apply_event(
        state,
        {
            "type": "intent",
            "name": "a",
            "op": "render",
            "render_hash": "h",
            "at": "2026-01-01T00:00:01Z",
        },
    )
    (c,) = plan([M("a", spec(out=9))], state).changes
    assert (c.action, c.verify) == ("render", True)
    assert c.pending is not None and c.pending["render_hash"] == "h"


def test_permanent_failure_is_not_resubmitted_for_same_spec() -> None:
    state = applied(M("a", spec()))
    bad = spec(out=999)
    apply_event(
        state,
        {
            "type": "failed",
            "name": "a",
            "op": "render",
            "render_hash": spec_hashes(applied_spec(bad)).render,
            "code": "X",
            "message": "m",
            "request_id": "r",
            "at": "t",
        },
    )
    (c,) = plan([M("a", bad)], state).changes
    assert c.action == "noop" and c.held and "--retry-failed" in c.reasons[0]
    (c,) = plan([M("a", bad)], state, PlanOptions(retry_failed=True)).changes
    assert c.action == "render"
    (c,) = plan([M("a", spec(out=998))], state).changes
    assert c.action == "render"


def test_canonical_version_bump_rehashes_stored_spec() -> None:
    m = M("a", spec())
    state = applied(m)
    state.canonical_version = 0
    for entry in state.projects.values():
        entry["hashes"] = {"render": "old", "metadata": "old", "userdata": "old"}
    assert actions(plan([m], state)) == [("a", "noop")]


def test_plan_is_pure() -> None:
    m = M("a", spec())
    state = applied(m)
    before = copy.deepcopy(state.to_json())
    plan([M("a", spec(out=9))], state, PlanOptions(prune=True))
    assert state.to_json() == before


def test_json_shape() -> None:
    p = plan([M("a", spec())], State(lineage="L"))
    data = p.as_dict()
    assert data["format_version"] == 1
    assert set(data["changes"][0]) == {"name", "action", "project_id", "reasons", "diff"}
    assert data["summary"]["create"] == 1
