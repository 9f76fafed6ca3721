"""State surgery end to end: list, show, rm (forget, never delete remotely), mv (no render)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.adapters.emulator.testing import in_process_client
from reconciler.adapters.state import StateStore, state_lock
from reconciler.cli.main import main
from tests.func.conftest import Project


def state(p: Project, *args: str) -> int:
    return main(["state", "--state", str(p.state), *args])


def projects(p: Project) -> dict[str, dict[str, Any]]:
    return StateStore(p.state).peek().projects


@pytest.fixture
def applied(project: Project, capsys: pytest.CaptureFixture[str]) -> Project:
    assert project.run("apply") == 0
    capsys.readouterr()
    return project


def test_list_and_show(applied: Project, capsys: pytest.CaptureFixture[str]) -> None:
    p = applied
    assert state(p, "list") == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == sorted(projects(p))
    assert dict(rows)["brand-sting"] == projects(p)["brand-sting"]["project_id"]
    assert state(p, "show", "brand-sting") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == projects(p)["brand-sting"]
    assert state(p, "show", "nope") == 1
    err = capsys.readouterr().err
    assert "no project named 'nope'" in err and "reconciler state list" in err


def test_rm_forgets_without_deleting_remotely(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    sting = projects(p)["brand-sting"]["project_id"]
    assert state(p, "rm", "brand-sting", "nope") == 1  # all or nothing
    assert "brand-sting" in projects(p)
    capsys.readouterr()
    before = len(p.calls())
    assert state(p, "rm", "brand-sting") == 0
    assert "the remote project still exists" in capsys.readouterr().out
    assert "brand-sting" not in projects(p) and len(projects(p)) == 4
    assert len(p.calls()) == before  # state surgery never touches VOD
    emu = p.emulator()
    try:
        doc = in_process_client(emu).call("GetEditingProject", ProjectId=sting)
    finally:
        emu.close()
    assert doc["Project"]["ProjectId"] == sting
    # The manifest is still there, so reconciler now sees a new project to create.
    assert p.run("plan") == 0
    assert "+ create  brand-sting" in capsys.readouterr().out


def test_mv_renames_without_a_render(applied: Project, capsys: pytest.CaptureFixture[str]) -> None:
    p = applied
    old = projects(p)["brand-sting"]
    path = p.manifests / "brand-sting.yaml"
    path.write_text(path.read_text().replace("name: brand-sting", "name: brand-intro"))
    assert p.run("plan", "--detailed-exitcode") == 2  # before the mv: create + orphan
    capsys.readouterr()

    assert state(p, "mv", "brand-sting", "brand-intro") == 0
    assert "moved brand-sting -> brand-intro" in capsys.readouterr().out
    assert projects(p)["brand-intro"] == old and "brand-sting" not in projects(p)
    before = len(p.calls())
    assert p.run("plan", "--detailed-exitcode") == 0
    assert p.run("apply") == 0
    assert len(p.calls()) == before

    capsys.readouterr()
    assert state(p, "mv", "brand-intro", "spring-promo") == 1
    assert "'spring-promo' is already in the state" in capsys.readouterr().err
    assert state(p, "mv", "brand-intro", "Not A Name") == 1
    assert "not a valid manifest name" in capsys.readouterr().err
    assert state(p, "mv", "nope", "other") == 1


def test_surgery_waits_for_the_lock_and_names_the_holder(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    with state_lock(p.state):
        assert state(p, "--lock-timeout", "0.2", "rm", "brand-sting") == 1
    err = capsys.readouterr().err
    assert "is locked by pid" in err
    assert "brand-sting" in projects(p)
