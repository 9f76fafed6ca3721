"""Golden bad manifests: each case directory under tests/fixtures/bad holds broken manifests and
``expected.txt``, the exact ``path:line:col: ref: field: message`` lines the loader must report
(plus an optional ``# valid: NAME...`` line naming the manifests that still load). Cases that
git stores badly (huge, binary, symlink loops) are built in ``tmp_path`` at test time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.adapters.loader import MAX_FILE_BYTES, load_manifests

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
GOOD = """\
apiVersion: reconciler/v1
kind: EditingProject
metadata:
  name: promo
spec:
  title: Promo
  timeline:
    VideoTracks:
      - VideoTrackClips:
          - {MediaId: m1, In: 0, Out: 5}
"""


def _outcome(root: Path = Path(".")) -> list[str]:
    result = load_manifests(root)
    lines = [str(issue) for issue in result.issues]
    if result.manifests:
        lines.append("# valid: " + " ".join(m.name for m in result.manifests))
    return lines


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = BAD / case
    expected = (directory / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert expected, "a bad case must expect at least one issue"
    monkeypatch.chdir(directory)
    assert _outcome() == expected


def test_every_case_fails_validation_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli.main import main

    for case in CASES:
        monkeypatch.chdir(BAD / case)
        assert main(["validate", "--manifests", "."]) == 1, case
        err = capsys.readouterr().err
        assert "Traceback" not in err and "internal error" not in err, case


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()  # the repository root
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    monkeypatch.chdir(tmp_path)
    return manifests


def test_huge_file_is_refused_without_parsing(project: Path) -> None:
    with open(project / "huge.yaml", "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: cheap to make, and all NULs if read
    assert _outcome(Path("manifests")) == [
        "manifests/huge.yaml:1:1: -: -: file is 5.0 MiB, over the 5 MiB limit for manifest "
        "files: split it or move it out of the manifests directory"
    ]


def test_binary_file(project: Path) -> None:
    (project / "logo.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    assert _outcome(Path("manifests")) == [
        "manifests/logo.yaml:1:1: -: -: binary file (contains NUL bytes), not a YAML manifest: "
        "move it out of the manifests directory"
    ]


def test_utf16_file(project: Path) -> None:
    (project / "win.yaml").write_bytes(GOOD.encode("utf-16"))
    assert _outcome(Path("manifests")) == [
        "manifests/win.yaml:1:1: -: -: file is not UTF-8 text (it looks like UTF-16): "
        "save it as UTF-8"
    ]


def test_directory_symlink_loop_is_reported_not_followed(project: Path) -> None:
    (project / "team").mkdir()
    (project / "team" / "promo.yaml").write_text(GOOD)
    os.symlink("..", project / "team" / "up")
    assert _outcome(Path("manifests")) == [
        "manifests/team/up:1:1: -: -: symlink loop back to 'manifests': remove the link",
        "# valid: promo",
    ]


def test_file_symlink_loop_and_broken_link(project: Path) -> None:
    os.symlink("b.yaml", project / "a.yaml")
    os.symlink("a.yaml", project / "b.yaml")
    os.symlink("gone.yaml", project / "c.yaml")
    assert _outcome(Path("manifests")) == [
        "manifests/a.yaml:1:1: -: -: symlink loop: the link never reaches a file: fix it",
        "manifests/b.yaml:1:1: -: -: symlink loop: the link never reaches a file: fix it",
        "manifests/c.yaml:1:1: -: -: cannot read: file not found (a broken symlink?)",
    ]


def test_timeline_file_escaping_through_a_symlink(project: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "cut.json").write_text('{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]}')
    os.symlink(outside / "cut.json", project / "cut.json")
    text = GOOD.split("  timeline:")[0] + "  timelineFile: cut.json\n"
    (project / "promo.yaml").write_text(text)
    assert _outcome(Path("manifests")) == [
        "manifests/promo.yaml:7:17: EditingProject/promo: spec.timelineFile: timelineFile "
        "'cut.json' points outside the repository: keep it inside"
    ]


def test_missing_manifests_directory(project: Path) -> None:
    assert _outcome(Path("nowhere")) == [
        "nowhere:1:1: -: -: manifests directory not found: create it or pass --manifests DIR"
    ]
