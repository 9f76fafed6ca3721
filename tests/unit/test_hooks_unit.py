"""Hook files: rendering, install/uninstall without clobbering, chaining, hook input parsing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reconciler.errors import ReconcilerError
from reconciler.triggers import gitutil
from reconciler.triggers.hooks import (
    HookError,
    install_hook,
    is_ours,
    render_script,
    run_chained,
    uninstall_hook,
)

ARGV = ["hooks", "run", "post-receive", "--repo", "/srv/my repo.git"]
FOREIGN = "#!/bin/sh\necho theirs\n"


def write_hook(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_script_runs_this_interpreter_with_quoted_arguments() -> None:
    script = render_script("post-receive", ARGV, chained=False)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert lines[1] == "# reconciler-hook: post-receive"
    assert lines[-1].startswith(f"exec {sys.executable} -P -m reconciler hooks run post-receive")
    assert "'/srv/my repo.git'" in lines[-1]  # shell-quoted
    assert lines[-1].endswith('"$@"')
    assert "reconciler-chained" not in script


def test_install_into_an_empty_hooks_dir(tmp_path: Path) -> None:
    result = install_hook(tmp_path / "hooks", "post-receive", ARGV)
    assert result.path == tmp_path / "hooks" / "post-receive"
    assert result.moved_aside is None and not result.updated
    assert is_ours(result.path)
    assert result.path.stat().st_mode & 0o111


def test_install_moves_a_foreign_hook_aside_and_is_idempotent(tmp_path: Path) -> None:
    write_hook(tmp_path / "pre-push", FOREIGN)
    first = install_hook(tmp_path, "pre-push", ["hooks", "run", "pre-push"])
    assert first.moved_aside == tmp_path / "pre-push.local"
    assert (tmp_path / "pre-push.local").read_text() == FOREIGN
    script = (tmp_path / "pre-push").read_text()
    assert "# reconciler-chained: pre-push.local" in script

    again = install_hook(tmp_path, "pre-push", ["hooks", "run", "pre-push"])
    assert again.updated and again.moved_aside is None
    assert (tmp_path / "pre-push").read_text() == script  # still chained, nothing moved twice
    assert (tmp_path / "pre-push.local").read_text() == FOREIGN


def test_install_refuses_when_both_a_foreign_hook_and_a_local_exist(tmp_path: Path) -> None:
    write_hook(tmp_path / "pre-push", FOREIGN)
    write_hook(tmp_path / "pre-push.local", "#!/bin/sh\necho older\n")
    with pytest.raises(HookError) as info:
        install_hook(tmp_path, "pre-push", ["hooks", "run", "pre-push"])
    assert isinstance(info.value, ReconcilerError)
    assert (tmp_path / "pre-push").read_text() == FOREIGN  # untouched


def test_uninstall_restores_only_what_install_moved(tmp_path: Path) -> None:
    write_hook(tmp_path / "post-receive", FOREIGN)
    install_hook(tmp_path, "post-receive", ARGV)
    assert "restored" in uninstall_hook(tmp_path, "post-receive")
    assert (tmp_path / "post-receive").read_text() == FOREIGN
    assert not (tmp_path / "post-receive.local").exists()
    assert "left alone" in uninstall_hook(tmp_path, "post-receive")
    assert (tmp_path / "post-receive").read_text() == FOREIGN


def test_uninstall_keeps_a_local_hook_install_did_not_move(tmp_path: Path) -> None:
    install_hook(tmp_path, "post-receive", ARGV)
    write_hook(tmp_path / "post-receive.local", FOREIGN)  # the user's own, added later
    assert uninstall_hook(tmp_path, "post-receive").endswith("removed")
    assert not (tmp_path / "post-receive").exists()
    assert (tmp_path / "post-receive.local").read_text() == FOREIGN
    assert "no hook" in uninstall_hook(tmp_path, "post-receive")


def test_chained_hook_gets_the_same_args_and_stdin(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    write_hook(
        tmp_path / "pre-push.local", f'#!/bin/sh\necho "$@" > "{out}"\ncat >> "{out}"\nexit 3\n'
    )
    code = run_chained(tmp_path / "pre-push", ["origin", "/srv/x.git"], b"refs/heads/main a b c\n")
    assert code == 3
    assert out.read_text() == "origin /srv/x.git\nrefs/heads/main a b c\n"
    assert run_chained(tmp_path / "post-receive", [], b"") is None  # nothing to chain


def test_parse_hook_input() -> None:
    old, new = "1" * 40, "2" * 40
    updates = gitutil.parse_post_receive(f"{old} {new} refs/heads/main\n{new} {'0' * 40} refs/x\n")
    assert [(u.ref, u.old, u.new, u.deleted) for u in updates] == [
        ("refs/heads/main", old, new, False),
        ("refs/x", new, "0" * 40, True),
    ]
    pushed = gitutil.parse_pre_push(f"refs/heads/dev {new} refs/heads/main {old}\n\n")
    assert [(u.ref, u.new, u.remote_ref, u.old) for u in pushed] == [
        ("refs/heads/dev", new, "refs/heads/main", old)
    ]


def test_git_env_drops_the_hook_context() -> None:
    env = gitutil.git_env(
        {"GIT_DIR": ".", "GIT_INDEX_FILE": "x", "PATH": "/bin", "GIT_AUTHOR_NAME": "a"}
    )
    assert env == {"PATH": "/bin", "GIT_AUTHOR_NAME": "a"}


def test_install_errors_are_user_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["hooks", "install"]) == 1
    assert "--bare REPO" in capsys.readouterr().err
    assert main(["hooks", "install", "--bare", str(tmp_path)]) == 1
    assert "is not a bare git repository" in capsys.readouterr().err
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["hooks", "uninstall", "--pre-push"]) == 1
    err = capsys.readouterr().err
    assert "not inside a git clone" in err and "Traceback" not in err
