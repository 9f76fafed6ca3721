"""A damaged state directory is a clear error naming what to restore, never a silent reset.

Starting over with an empty state would create and render every project a second time, so
``apply``, ``plan`` and ``status`` refuse, exit 1, name the backup (or the damaged journal
line) and leave every state file as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.func.conftest import Project

FILES = ("state.json", "state.json.bak", "journal.jsonl")


def _bytes(state: Path) -> dict[str, bytes | None]:
    return {n: (state / n).read_bytes() if (state / n).exists() else None for n in FILES}


@pytest.fixture
def applied(project: Project) -> Project:
    """Two applies, so state.json, its backup and the emulator all hold the catalogue."""
    assert project.run("apply") == 0
    sting = project.manifests / "brand-sting.yaml"
    sting.write_text(sting.read_text().replace("Out: 6\n", "Out: 5\n", 1))
    assert project.run("apply") == 0
    assert (project.state / "state.json.bak").exists()
    return project


def _truncate(state: Path) -> None:
    data = (state / "state.json").read_bytes()
    (state / "state.json").write_bytes(data[: len(data) // 2])


def _empty(state: Path) -> None:
    (state / "state.json").write_bytes(b"")


def _projects_not_an_object(state: Path) -> None:
    doc = json.loads((state / "state.json").read_text())
    doc["projects"] = list(doc["projects"].items())
    (state / "state.json").write_text(json.dumps(doc))


def _projects_missing(state: Path) -> None:
    doc = json.loads((state / "state.json").read_text())
    del doc["projects"]
    (state / "state.json").write_text(json.dumps(doc))


def _deleted(state: Path) -> None:
    (state / "state.json").unlink()


def _binary_garbage(state: Path) -> None:
    (state / "state.json").write_bytes(b"\x00\xff\xfe garbage \x80")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "projects-not-an-object": _projects_not_an_object,
    "projects-missing": _projects_missing,
    "deleted-with-backup-present": _deleted,
    "binary-garbage": _binary_garbage,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_state_file_names_the_backup_and_changes_nothing(
    applied: Project, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    calls = len(p.calls())
    DAMAGE[damage](p.state)
    before = _bytes(p.state)
    capsys.readouterr()
    for verb in ("apply", "plan", "status"):
        assert p.run(verb) == 1, verb
        err = capsys.readouterr().err
        assert "state.json.bak" in err, (verb, err)
        assert f"cp {p.state / 'state.json.bak'} {p.state / 'state.json'}" in err, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert _bytes(p.state) == before, verb
    assert len(p.calls()) == calls  # not one API call: no project was created again


def _journal_with_events(p: Project) -> list[str]:
    """Leave three journal lines after the snapshot (a crash before the snapshot)."""
    from reconciler.adapters.state import StateStore

    store = StateStore(p.state)
    store.load()
    for n in range(3):
        store.record({"type": "forgotten", "name": f"never-there-{n}"})
    store.close()
    lines = (p.state / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 3
    return lines


@pytest.mark.parametrize(
    "bad", ['{"lineage": "x", "base": 1, "ev', "[1, 2, 3]", '{"lineage": "x"}', "\x00\x01"]
)
def test_damaged_journal_line_in_the_middle_is_reported_with_its_line(
    applied: Project, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    lines = _journal_with_events(p)
    lines[1] = bad
    (p.state / "journal.jsonl").write_text("\n".join(lines) + "\n")
    before = _bytes(p.state)
    capsys.readouterr()
    for verb in ("apply", "plan"):
        assert p.run(verb) == 1
        err = capsys.readouterr().err
        assert f"{p.state / 'journal.jsonl'}:2 is damaged" in err, err
        assert "state.json.bak" in err and "repair or delete line 2" in err, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert _bytes(p.state) == before


def test_a_torn_last_journal_line_is_a_crash_mid_append_and_is_tolerated(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    lines = _journal_with_events(p)
    torn = lines[-1][: len(lines[-1]) // 2]
    (p.state / "journal.jsonl").write_text("\n".join([*lines[:-1], torn]))
    assert p.run("plan", "--detailed-exitcode") == 0
    assert p.run("apply") == 0
    assert "0 failed" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad manifests

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
GOOD = (
    (BAD / "missing-title" / "manifest.yaml").read_text().replace("spec:\n", "spec:\n  title: T\n")
)


def _tree(state: Path) -> dict[str, bytes]:
    """Every file of the state directory but the lock, byte for byte."""
    return {
        str(f.relative_to(state)): f.read_bytes()
        for f in sorted(state.rglob("*"))
        if f.is_file() and f.name != ".lock"
    }


def _built_cases() -> dict[str, Callable[[Path], None]]:
    """The cases git stores badly, made at test time (as in tests/unit/test_bad_fixtures.py)."""

    def huge(d: Path) -> None:
        with open(d / "huge.yaml", "wb") as fh:
            fh.truncate(5 * 1024 * 1024 + 1)

    def binary(d: Path) -> None:
        (d / "logo.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")

    def utf16(d: Path) -> None:
        (d / "win.yaml").write_bytes(GOOD.encode("utf-16"))

    def symlink_loops(d: Path) -> None:
        os.symlink("b.yaml", d / "a.yaml")
        os.symlink("a.yaml", d / "b.yaml")
        (d / "team").mkdir()
        os.symlink("..", d / "team" / "up")

    return {"built:huge": huge, "built:binary": binary, "built:utf16": utf16,
            "built:symlink-loops": symlink_loops}  # fmt: skip


def test_no_bad_manifest_touches_the_state_or_calls_vod(
    applied: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = applied
    state_before, calls_before = _tree(p.state), len(p.calls())
    cases: dict[str, Callable[[Path], None]] = {
        case.name: (lambda d, src=case: shutil.copytree(src, d, symlinks=True, dirs_exist_ok=True))
        for case in sorted(BAD.iterdir())
        if case.is_dir()
    }
    cases |= _built_cases()
    assert len(cases) >= 30 + 4
    capsys.readouterr()
    for name, make in cases.items():
        target = p.manifests / "zz-bad"
        target.mkdir()
        make(target)
        for verb in ("apply", "plan"):
            assert p.run(verb) == 1, (name, verb)
            err = capsys.readouterr().err
            assert "Traceback" not in err and "internal error" not in err, (name, err)
            assert re.search(r"zz-bad/\S*:\d+:\d+: ", err), (name, err)
        assert _tree(p.state) == state_before, name
        shutil.rmtree(target)
    assert len(p.calls()) == calls_before
    assert p.run("apply") == 0  # and the catalogue itself is still fine
