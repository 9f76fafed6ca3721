"""Import end to end: an existing VOD project comes under git without paying for a render."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import yaml

from reconciler.adapters.emulator.testing import in_process_client
from reconciler.adapters.state import StateStore
from reconciler.cli.main import main
from tests.func.conftest import Project

TIMELINE = {
    "VideoTracks": [
        {
            "VideoTrackClips": [
                {"MediaId": "aa11aa11aa11aa11aa11aa11aa11aa11", "In": 0, "Out": 4.5},
                {"MediaId": "bb22bb22bb22bb22bb22bb22bb22bb22"},
            ]
        }
    ],
    "AudioTracks": [
        {
            "AudioTrackClips": [
                {"MediaId": "cc33cc33cc33cc33cc33cc33cc33cc33", "Out": 30.0, "TimelineIn": 0}
            ]
        }
    ],
}


def vod(p: Project, action: str, **params: str) -> dict[str, Any]:
    emu = p.emulator()
    try:
        return in_process_client(emu).call(action, **params)
    finally:
        emu.close()


def console_project(p: Project, timeline: dict[str, Any] | None = None, **extra: str) -> str:
    """A project made outside reconciler (console, another tool)."""
    doc = vod(
        p,
        "AddEditingProject",
        Title="Legacy promo: 2025",
        Timeline=json.dumps(timeline or TIMELINE),
        **extra,
    )
    project_id: str = doc["Project"]["ProjectId"]
    return project_id


@pytest.fixture
def empty(project: Project) -> Project:
    shutil.rmtree(project.manifests)
    project.manifests.mkdir()
    return project


def test_import_then_plan_shows_no_change(
    empty: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = empty
    pid = console_project(p, Description="made in the console")
    assert p.run("import", pid, "--name", "legacy-promo") == 0
    path = p.manifests / "legacy-promo.yaml"
    text = path.read_text()
    assert text.startswith(f"# Imported from VOD project {pid}")
    assert "{" not in text.split("timeline:", 1)[1]  # block style, readable
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "reconciler/v1" and doc["kind"] == "EditingProject"
    assert doc["metadata"] == {"name": "legacy-promo"}
    spec = doc["spec"]
    assert list(spec) == ["projectId", "title", "description", "coverURL", "timeline"]
    assert spec["projectId"] == pid and spec["title"] == "Legacy promo: 2025"
    assert spec["timeline"] == TIMELINE  # keys as VOD returns them
    entry = StateStore(p.state).peek().projects["legacy-promo"]
    assert entry["project_id"] == pid and "last_render" not in entry

    capsys.readouterr()
    assert main(["validate", str(p.manifests)]) == 0
    assert p.run("plan", "--detailed-exitcode") == 0
    assert "Plan: 0 to create, 0 to render, 0 to update, 0 to adopt" in capsys.readouterr().out
    assert p.run("apply") == 0
    assert p.run("drift") == 0
    assert not p.calls("ProduceEditingProjectVideo")
    assert not p.calls("UpdateEditingProject")

    # From now on it is an ordinary managed project: an edit renders that same project.
    path.write_text(text.replace("Out: 4.5", "Out: 4.0"))
    assert p.run("apply") == 0
    (render,) = p.calls("ProduceEditingProjectVideo")
    assert render.params["ProjectId"] == pid


def test_import_refuses_to_overwrite_or_duplicate(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = project
    pid = console_project(p)
    capsys.readouterr()
    # a name another manifest already uses
    assert p.run("import", pid, "--name", "spring-promo") == 1
    assert "a manifest named 'spring-promo' already exists" in capsys.readouterr().err
    # a file that exists
    (p.manifests / "taken.yaml").write_text("# someone's notes\n")
    assert p.run("import", pid, "--name", "taken") == 1
    assert "--force-overwrite" in capsys.readouterr().err
    assert (p.manifests / "taken.yaml").read_text() == "# someone's notes\n"
    assert p.run("import", pid, "--name", "taken", "--force-overwrite") == 0
    assert yaml.safe_load((p.manifests / "taken.yaml").read_text())["spec"]["projectId"] == pid
    capsys.readouterr()
    # a name already in the state, and a project already managed
    assert p.run("import", pid, "--name", "taken", "--force-overwrite") == 1
    assert "'taken' is already in the state" in capsys.readouterr().err
    assert p.run("import", pid, "--name", "again") == 1
    assert f"project {pid} is already managed as 'taken'" in capsys.readouterr().err
    assert not (p.manifests / "again.yaml").exists()
    # a bad name, a project that does not exist
    assert p.run("import", pid, "--name", "Bad_Name") == 1
    assert "not a valid manifest name" in capsys.readouterr().err
    assert p.run("import", "f" * 32, "--name", "ghost") == 1
    assert "InvalidEditingProject.NotFound" in capsys.readouterr().err
    assert not (p.manifests / "ghost.yaml").exists()
    assert not p.calls("ProduceEditingProjectVideo")


def test_import_validates_with_the_loader(
    empty: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = empty
    pid = console_project(p, timeline={"VideoTracks": []})  # VOD takes it; a manifest cannot
    capsys.readouterr()
    assert p.run("import", pid, "--name", "no-tracks") == 1
    err = capsys.readouterr().err
    assert "no-tracks.yaml:" in err and "the timeline has no tracks" in err
    assert not (p.manifests / "no-tracks.yaml").exists()
    assert StateStore(p.state).peek().projects == {}
