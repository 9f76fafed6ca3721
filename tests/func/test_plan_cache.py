"""``reconciler plan`` through the plan cache: same output, and unchanged files are not parsed."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from reconciler.adapters import loader
from tests.func.conftest import Project


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = loader._file

    def counting(path: str, ctx: Any) -> Any:
        seen.append(os.path.relpath(path, "manifests"))
        return real(path, ctx)

    monkeypatch.setattr(loader, "_file", counting)
    return seen


def plan_output(project: Project, capsys: pytest.CaptureFixture[str], *more: str) -> str:
    capsys.readouterr()
    assert project.run("plan", "--output", "json", *more) in (0, 2)
    return capsys.readouterr().out


def test_second_plan_parses_nothing_and_says_the_same(
    project: Project, capsys: pytest.CaptureFixture[str], parses: list[str]
) -> None:
    assert project.run("apply") == 0
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))  # one render to plan

    parses.clear()
    first = plan_output(project, capsys)
    assert len(parses) == 4  # every manifest file (the state dir now exists: cache written)
    parses.clear()
    second = plan_output(project, capsys)
    assert parses == []
    assert second == first
    assert '"render": 1' in first

    shutil.rmtree(project.state / "cache")
    assert plan_output(project, capsys) == first  # uncached: the same plan


def test_editing_one_file_reparses_exactly_that_file(
    project: Project, capsys: pytest.CaptureFixture[str], parses: list[str]
) -> None:
    assert project.run("apply") == 0
    plan_output(project, capsys)
    series = project.manifests / "tutorials" / "series.yaml"
    series.write_text(series.read_text() + "\n# a comment changes the file, not the plan\n")
    parses.clear()
    out = plan_output(project, capsys, "--detailed-exitcode")
    assert parses == ["tutorials/series.yaml"]
    assert '"render": 0' in out

    timeline = project.manifests / "recaps" / "weekly-recap.timeline.json"
    timeline.write_text(timeline.read_text().replace('"Out": 26', '"Out": 25'))
    parses.clear()
    out = plan_output(project, capsys)
    assert parses == ["recaps/weekly-recap.yaml"]
    assert '"render": 1' in out and "weekly-recap" in out
