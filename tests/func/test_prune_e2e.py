"""Prune end to end (product.md §3): opt-in, shown before it happens, and guarded."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from reconciler.adapters.emulator.testing import in_process_client
from reconciler.adapters.state import StateStore
from tests.func.conftest import Project


def state_projects(p: Project) -> dict[str, dict[str, Any]]:
    return StateStore(p.state).peek().projects


def get_project(p: Project, project_id: str) -> dict[str, Any]:
    emu = p.emulator()
    try:
        return in_process_client(emu).call("GetEditingProject", ProjectId=project_id)
    finally:
        emu.close()


@pytest.fixture
def applied(project: Project) -> Project:
    assert project.run("apply") == 0
    return project


def test_orphans_are_kept_unless_pruned(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    sting = state_projects(p)["brand-sting"]["project_id"]
    (p.manifests / "brand-sting.yaml").unlink()
    capsys.readouterr()
    before = len(p.calls())
    assert p.run("plan") == 0
    assert f"? orphan  brand-sting ({sting})" in capsys.readouterr().out
    assert p.run("apply") == 0
    assert len(p.calls()) == before  # an orphan costs nothing and is not deleted
    assert "brand-sting" in state_projects(p)
    assert get_project(p, sting)["Project"]["ProjectId"] == sting


def test_prune_is_planned_then_deletes_the_remote_project(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    sting = state_projects(p)["brand-sting"]["project_id"]
    (p.manifests / "brand-sting.yaml").unlink()
    capsys.readouterr()

    # The plan shows each deletion before it happens, and plan deletes nothing.
    assert p.run("plan", "--prune", "--output", "json", "--detailed-exitcode") == 2
    doc = json.loads(capsys.readouterr().out)
    deletes = [c for c in doc["changes"] if c["action"] == "delete"]
    assert [(c["name"], c["project_id"]) for c in deletes] == [("brand-sting", sting)]
    assert doc["summary"]["delete"] == 1
    assert not p.calls("DeleteEditingProject")

    assert p.run("apply", "--prune") == 0
    out = capsys.readouterr().out
    announced = out.index(f"deleting brand-sting ({sting})")
    assert announced < out.index("deleted   brand-sting")
    (call,) = p.calls("DeleteEditingProject")
    assert call.params["ProjectIds"] == sting
    assert "brand-sting" not in state_projects(p)
    gone = get_project(p, sting)
    assert gone["Code"] == "InvalidEditingProject.NotFound"
    before = len(p.calls())
    assert p.run("apply", "--prune") == 0  # nothing left to prune
    assert len(p.calls()) == before


def test_max_deletes_refuses_the_whole_prune(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    (p.manifests / "brand-sting.yaml").unlink()
    shutil.rmtree(p.manifests / "tutorials")  # two more projects
    capsys.readouterr()
    assert p.run("plan", "--prune", "--max-deletes", "2") == 0
    out = capsys.readouterr().out
    assert "! refusing to prune 3 projects: more than --max-deletes 2" in out
    assert "- delete" not in out and "pruning was refused" in out
    assert p.run("apply", "--prune", "--max-deletes", "2") == 1
    assert "refused: refusing to prune 3 projects" in capsys.readouterr().err
    assert not p.calls("DeleteEditingProject")
    assert p.run("apply", "--prune", "--max-deletes", "3") == 0
    assert len(p.calls("DeleteEditingProject")) == 3


def test_empty_manifest_set_needs_allow_empty(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    shutil.rmtree(p.manifests)
    p.manifests.mkdir()
    capsys.readouterr()
    assert p.run("apply", "--prune") == 1
    assert "refusing to prune: the manifest set is empty" in capsys.readouterr().err
    assert not p.calls("DeleteEditingProject")
    assert len(state_projects(p)) == 5

    assert p.run("apply", "--prune", "--allow-empty") == 0
    # weekly-recap carries reconciler/prune: disabled, so it survives even this.
    assert len(p.calls("DeleteEditingProject")) == 4
    assert list(state_projects(p)) == ["weekly-recap"]


def test_annotation_protects_a_project(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    recap = state_projects(p)["weekly-recap"]
    assert recap["annotations"]["reconciler/prune"] == "disabled"  # kept in the state
    shutil.rmtree(p.manifests / "recaps")
    capsys.readouterr()
    assert p.run("plan", "--prune") == 0
    out = capsys.readouterr().out
    assert "? orphan  weekly-recap" in out
    assert "protected by annotation reconciler/prune: disabled" in out
    assert p.run("apply", "--prune") == 0
    assert not p.calls("DeleteEditingProject")
    assert get_project(p, recap["project_id"])["Project"]["ProjectId"] == recap["project_id"]
