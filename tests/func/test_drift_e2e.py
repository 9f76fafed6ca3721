"""Drift end to end: edits made through VOD's API are detected, reported and (only with
--heal) reverted with exactly the call they need."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.adapters.emulator.testing import in_process_client
from reconciler.adapters.state import StateStore
from tests.func.conftest import ACCESS, Project, start_server


def vod(p: Project, action: str, **params: str) -> dict[str, Any]:
    """A signed call straight to the emulator, as another tool or the console would make."""
    emu = p.emulator()
    try:
        doc = in_process_client(emu).call(action, **params)
    finally:
        emu.close()
    assert "Code" not in doc, doc
    return doc


def entry(p: Project, name: str) -> dict[str, Any]:
    return StateStore(p.state).peek().projects[name]


def edited_timeline(p: Project, name: str, old: str, new: str) -> str:
    text = json.dumps(entry(p, name)["spec"]["timeline"], separators=(",", ":"))
    assert old in text
    return text.replace(old, new, 1)


def test_drift_detected_then_healed_with_one_render(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = project
    assert p.run("apply") == 0
    promo = entry(p, "spring-promo")["project_id"]
    timeline = edited_timeline(p, "spring-promo", '"Out":12', '"Out":9')
    vod(p, "UpdateEditingProject", ProjectId=promo, Timeline=timeline, Title="Edited in console")
    capsys.readouterr()
    state_before = (p.state / "state.json").read_bytes()

    assert p.run("drift") == 3
    out = capsys.readouterr().out
    assert f"~ spring-promo ({promo}): timeline, title changed outside git since the last" in out
    assert "VideoTracks[0].VideoTrackClips[0].Out: 12 -> 9" in out
    assert 'title: "Spring promo" -> "Edited in console"' in out
    assert "Drift: 1 of 5 checked projects drifted" in out
    assert p.run("drift", "--output", "json") == 3
    doc = json.loads(capsys.readouterr().out)
    (drifted,) = [d for d in doc["projects"] if d["drifted"]]
    assert drifted["fields"] == ["timeline", "title"] and drifted["project_id"] == promo
    assert (p.state / "state.json").read_bytes() == state_before  # read-only
    assert (p.state / "journal.jsonl").read_text() == ""

    # apply never reverts drift by itself: not a single call.
    before = len(p.calls())
    assert p.run("apply") == 0
    assert len(p.calls()) == before

    # plan --refresh shows it as a noop with the reason and the diff; no change to apply.
    capsys.readouterr()
    assert p.run("plan", "--refresh", "--detailed-exitcode") == 0
    out = capsys.readouterr().out
    assert "  noop    spring-promo" in out
    assert "drift: timeline, title changed outside git since the last apply" in out
    assert "VideoTracks[0].VideoTrackClips[0].Out: 12 -> 9" in out
    assert p.run("plan", "--heal", "--output", "json") == 0
    changes = {c["name"]: c for c in json.loads(capsys.readouterr().out)["changes"]}
    assert changes["spring-promo"]["action"] == "render"
    assert "VideoTracks[0].VideoTrackClips[0].Out: 9 -> 12" in changes["spring-promo"]["diff"]

    # apply --heal: exactly one render, with the desired spec.
    before = len(p.calls())
    assert p.run("apply", "--heal") == 0
    new = [c for c in p.calls()[before:] if c.action != "GetEditingProject"]
    assert [(c.action, c.params["ProjectId"]) for c in new] == [
        ("ProduceEditingProjectVideo", promo)
    ]
    sent = json.loads(new[0].params["Timeline"])
    assert sent["VideoTracks"][0]["VideoTrackClips"][0]["Out"] == 12
    assert new[0].params["Title"] == "Spring promo"
    assert p.run("drift") == 0
    before = len(p.calls())
    assert p.run("apply", "--heal") == 0  # healed: nothing left to do
    assert {c.action for c in p.calls()[before:]} <= {"GetEditingProject"}


def test_metadata_drift_heals_with_an_update_and_no_render(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = project
    assert p.run("apply") == 0
    sting = entry(p, "brand-sting")["project_id"]
    vod(p, "UpdateEditingProject", ProjectId=sting, Title="Renamed by hand")
    assert p.run("drift") == 3
    before = len(p.calls())
    assert p.run("apply", "--heal") == 0
    new = [c for c in p.calls()[before:] if c.action != "GetEditingProject"]
    assert [(c.action, c.params.get("Title")) for c in new] == [
        ("UpdateEditingProject", "Brand sting")
    ]


def test_semantically_equal_timeline_is_not_drift(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = project
    assert p.run("apply") == 0
    promo = entry(p, "spring-promo")["project_id"]
    # Same Timeline, other key order and 12 -> 12.0: text differs, meaning does not.
    timeline = json.loads(edited_timeline(p, "spring-promo", '"Out":12', '"Out":12.0'))
    reordered = json.dumps(dict(reversed(list(timeline.items()))), separators=(",", ":"))
    vod(p, "UpdateEditingProject", ProjectId=promo, Timeline=reordered)
    emu = p.emulator()
    try:
        stored = next(x for x in emu.projects() if x.project_id == promo).timeline
    finally:
        emu.close()
    assert stored is not None and '"Out":12.0' in stored and stored.startswith('{"VideoTracks"')
    assert p.run("drift") == 0


def test_deleted_outside_git_is_drift(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    p = project
    assert p.run("apply") == 0
    gone = entry(p, "tutorial-02-first-edit")["project_id"]
    vod(p, "DeleteEditingProject", ProjectIds=gone)
    capsys.readouterr()
    assert p.run("drift") == 3
    assert f"- tutorial-02-first-edit ({gone}): deleted outside git" in capsys.readouterr().out
    before = len(p.calls())
    assert p.run("apply", "--heal") == 0
    new = [c.action for c in p.calls()[before:] if c.action != "GetEditingProject"]
    assert new == ["AddEditingProject", "ProduceEditingProjectVideo"]
    assert entry(p, "tutorial-02-first-edit")["project_id"] != gone
    assert p.run("drift") == 0


def test_drift_that_cannot_be_checked_exits_1(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(project.root / "emu")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS[0])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS[1])
    try:
        p = Project(project.root, "v2", server)
        assert p.run("apply", "--only", "brand-sting") == 0
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
        capsys.readouterr()
        assert p.run("drift") == 1
        out = capsys.readouterr().out
        assert (
            "! brand-sting: could not be checked: GetEditingProject: SignatureDoesNotMatch" in out
        )
        assert "not-the-secret" not in out
    finally:
        server.stop()
