"""``reconciler validate`` and ``reconciler schema`` driven through ``main([...])`` in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main

GOOD = """\
apiVersion: reconciler/v1
kind: EditingProject
metadata:
  name: {name}
spec:
  title: Promo
  timeline:
    VideoTracks:
      - VideoTrackClips:
          - {{MediaId: m1, In: 0, Out: 5}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILER_MANIFESTS", raising=False)
    (tmp_path / ".git").mkdir()
    manifests = tmp_path / "manifests"
    (manifests / "team").mkdir(parents=True)
    (manifests / "a.yaml").write_text(GOOD.format(name="a"))
    (manifests / "team" / "b.yaml").write_text(GOOD.format(name="b"))
    return tmp_path


def break_b(project: Path) -> None:
    text = GOOD.format(name="b").replace("In: 0", "In: 9").replace("title:", "tittle:")
    (project / "manifests" / "team" / "b.yaml").write_text(text)


def test_valid_set(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("ok: 2 manifests valid (2 files checked)\n", "")
    assert not (project / "state").exists()  # validate never touches state


def test_invalid_set_lists_every_issue(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    break_b(project)
    assert main(["validate"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "manifests/team/b.yaml:6:3: EditingProject/b: spec.title: 'title' is required: "
        "add a title for the project",
        "manifests/team/b.yaml:6:3: EditingProject/b: spec.tittle: unknown field 'tittle': "
        "did you mean 'title'?",
        "manifests/team/b.yaml:10:39: EditingProject/b: "
        "spec.timeline.VideoTracks[0].VideoTrackClips[0].Out: Out (5) must be greater than "
        "In (9): swap them or fix the trim",
        "invalid: 3 issues in 1 file; 1 manifest valid (2 files checked)",
    ]


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    break_b(project)
    assert main(["validate", "--output", "json"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is False and report["manifests"] == 1
    assert report["issues"][2] == {
        "path": "manifests/team/b.yaml",
        "line": 10,
        "col": 39,
        "ref": "EditingProject/b",
        "field": "spec.timeline.VideoTracks[0].VideoTrackClips[0].Out",
        "message": "Out (5) must be greater than In (9): swap them or fix the trim",
    }
    assert main(["validate", "--output", "json", "manifests/a.yaml"]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "manifests": 1, "issues": []}


def test_paths_and_manifests_option(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    break_b(project)
    assert main(["validate", "manifests/a.yaml"]) == 0
    assert capsys.readouterr().out == "ok: 1 manifest valid (1 file checked)\n"
    (project / "manifests").rename(project / "deploy")
    assert main(["validate", "--manifests", "deploy/team"]) == 1
    assert "deploy/team/b.yaml:6:3:" in capsys.readouterr().err


def test_manifests_directory_from_the_environment(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "manifests").rename(project / "deploy")
    monkeypatch.setenv("RECONCILER_MANIFESTS", "deploy")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "ok: 2 manifests valid (2 files checked)\n"


def test_missing_manifests_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILER_MANIFESTS", raising=False)
    assert main(["validate"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "manifests:1:1: -: -: manifests directory not found: create it or pass --manifests DIR",
        "invalid: 1 issue in 1 file; 0 manifests valid (0 files checked)",
    ]


def test_schema_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["Timeline"]["additionalProperties"] is True
    assert schema["$defs"]["Spec"]["additionalProperties"] is False
    assert main(["schema", "-o", "reconciler.schema.json"]) == 0
    assert json.loads((project / "reconciler.schema.json").read_text()) == schema


def test_committed_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/manifest.schema.json (referenced by the examples) matches `reconciler schema`."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == committed.read_text(encoding="utf-8"), (
        "regenerate with: reconciler schema > docs/manifest.schema.json"
    )
