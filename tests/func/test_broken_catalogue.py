"""A broken catalogue: every error reported with path:line:col, exit 1, no call, state untouched."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.func.conftest import Project


def _snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_broken_catalogue_is_rejected_whole(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.run("apply") == 0
    calls_before = len(project.calls())
    state_before = _snapshot(project.state)
    capsys.readouterr()

    m = project.manifests
    promo = m / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("  title: Spring promo", "  tittle: Spring promo"))
    sting = m / "brand-sting.yaml"
    sting.write_text(
        sting.read_text().replace("In: 0\n            Out: 6", "In: 6\n            Out: 2")
    )
    (m / "copy.yaml").write_text(
        (m / "brand-sting.yaml")
        .read_text()
        .replace("In: 6\n            Out: 2", "In: 0\n            Out: 2")
    )
    (m / "broken.yaml").write_text("apiVersion: reconciler/v1\nkind: [EditingProject\n")
    (m / "latin1.yaml").write_bytes("title: caf\xe9\n".encode("latin-1"))

    assert project.run("apply") == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if re.match(r"^\S+:\d+:\d+: ", line)]
    text = "\n".join(lines)
    assert re.search(
        r"spring-promo\.yaml:\d+:\d+: EditingProject/spring-promo: spec\.tittle: ", text
    ), text
    assert re.search(
        r"brand-sting\.yaml:\d+:\d+: EditingProject/brand-sting: "
        r"spec\.timeline\.VideoTracks\[0\]\.VideoTrackClips\[0\]\.Out: ",
        text,
    ), text
    assert re.search(
        r"copy\.yaml:\d+:\d+: EditingProject/brand-sting: metadata\.name: .*"
        r"brand-sting\.yaml",
        text,
    ) or re.search(r"brand-sting\.yaml:\d+:\d+: .*metadata\.name: .*copy\.yaml", text), text
    assert re.search(r"broken\.yaml:\d+:\d+: ", text), text
    assert re.search(r"latin1\.yaml:\d+:\d+: .*UTF-8", text), text
    assert "Traceback" not in err
    assert len(project.calls()) == calls_before
    assert _snapshot(project.state) == state_before
    # plan and validate agree.
    assert project.run("plan") == 1
    from reconciler.cli.main import main

    assert main(["validate", "--manifests", str(m)]) == 1
    assert _snapshot(project.state) == state_before


def test_skip_invalid_applies_the_valid_and_never_prunes(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.run("apply") == 0
    calls_before = len(project.calls())
    sting = project.manifests / "brand-sting.yaml"
    sting.write_text(sting.read_text().replace("  title: Brand sting", "  tittle: Brand sting"))
    promo = project.manifests / "campaigns" / "spring-promo.yaml"
    promo.write_text(promo.read_text().replace("Out: 12", "Out: 11"))
    capsys.readouterr()

    # Without the flag nothing is applied; with it the valid change goes through, the
    # invalid project is reported and, though its manifest is unusable, not pruned.
    assert project.run("apply", "--prune") == 1
    assert len(project.calls()) == calls_before
    assert project.run("apply", "--skip-invalid", "--prune") == 0
    err = capsys.readouterr().err
    assert re.search(r"warning: skipped: \S*brand-sting\.yaml:\d+:\d+: .*spec\.tittle", err)
    assert [c.action for c in project.calls()[calls_before:]] == ["ProduceEditingProjectVideo"]
    assert "DeleteEditingProject" not in {c.action for c in project.calls()}
