"""Thin git plumbing for the hooks: run git, parse hook input, check a commit out into a tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError

ZERO_SHA = "0" * 40
# Set by git for the hook it runs; they would point our own git calls at the wrong place.
_GIT_CONTEXT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")


class GitError(ConfigError):
    """A git command the hooks need failed (the message carries git's own stderr)."""


def git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    base = dict(os.environ if env is None else env)
    for name in _GIT_CONTEXT_VARS:
        base.pop(name, None)
    return base


def git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run ``git ARGS`` (with ``env`` added to the environment) and return its stdout; a
    failure becomes a GitError with git's words."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env={**git_env(), **(env or {})},
            check=False,
            timeout=120,
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:2])} took longer than 120 s") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise GitError(f"git {' '.join(args)}: {detail}")
    return proc.stdout


def git_text(args: Sequence[str], *, cwd: Path | None = None) -> str:
    return git(args, cwd=cwd).decode(errors="replace").strip()


def hooks_dir(repo: Path) -> Path:
    """Where git looks for this repository's hooks (honours core.hooksPath)."""
    path = Path(git_text(["rev-parse", "--git-path", "hooks"], cwd=repo))
    return path if path.is_absolute() else (repo / path).resolve()


def is_bare(repo: Path) -> bool:
    return git_text(["rev-parse", "--is-bare-repository"], cwd=repo) == "true"


def toplevel(path: Path) -> Path:
    return Path(git_text(["rev-parse", "--show-toplevel"], cwd=path))


def rev_parse(git_dir: Path, rev: str) -> str | None:
    try:
        return git_text(
            ["--git-dir", str(git_dir), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"]
        )
    except GitError:
        return None


@dataclass(frozen=True)
class RefUpdate:
    """One line of post-receive / pre-push input, normalised."""

    ref: str  # the ref that moves (post-receive: the updated ref; pre-push: the local ref)
    old: str
    new: str
    remote_ref: str = ""

    @property
    def deleted(self) -> bool:
        return self.new == ZERO_SHA


def parse_post_receive(text: str) -> list[RefUpdate]:
    """``<old> <new> <ref>`` per line."""
    updates: list[RefUpdate] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(ref=parts[2], old=parts[0], new=parts[1]))
    return updates


def parse_pre_push(text: str) -> list[RefUpdate]:
    """``<local ref> <local sha> <remote ref> <remote sha>`` per line."""
    updates: list[RefUpdate] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            updates.append(RefUpdate(ref=parts[0], new=parts[1], remote_ref=parts[2], old=parts[3]))
    return updates


def replace_work_tree(git_dir: Path, sha: str, work: Path) -> None:
    """Make ``work`` hold exactly the tree of ``sha``, rewriting only the files that differ.

    ``git read-tree --reset -u`` against an index of our own beside ``work`` (the
    repository's HEAD and index are not touched, which matters in a bare repository whose
    HEAD decides what clones get), then ``git clean`` for anything else in ``work``. Files
    the commit did not change keep their inode and ctime, so the plan cache knows them by a
    ``stat``: a push of one changed file among 10,000 rewrites one file, not 10,000. Without
    that index (the first push, or it was lost) ``work`` is emptied first. A symbolic link
    that leads outside ``work`` is refused.
    """
    index = work.with_name(f".{work.name}.index")
    if not index.is_file():
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    env = {"GIT_INDEX_FILE": str(index)}
    base = ["--git-dir", str(git_dir), "--work-tree", str(work)]
    git([*base, "read-tree", "--reset", "-u", sha], env=env)
    git([*base, "clean", "-fdxq"], env=env)
    listing = git([*base, "ls-files", "-s", "-z"], env=env).split(b"\0")
    root = os.path.realpath(work)
    for entry in listing:
        if entry.startswith(b"120000 "):  # a symbolic link
            name = os.fsdecode(entry.split(b"\t", 1)[1])
            target = os.path.realpath(work / name)
            if os.path.commonpath([root, target]) != root:
                raise GitError(
                    f"{name} in {sha[:12]} is a symbolic link that leads outside the "
                    "repository: replace it with the file itself"
                )
