"""Thin git plumbing for the hooks: run git, parse hook input, export a commit to a directory."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import uuid
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


def git(args: Sequence[str], *, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    """Run ``git ARGS`` and return its stdout; a failure becomes a GitError with git's words."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env=git_env(),
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


def export_commit(git_dir: Path, sha: str, dest: Path) -> None:
    """Write the tree of ``sha`` into ``dest`` (created fresh), like a clean checkout.

    ``git archive`` leaves the repository untouched (no HEAD, no index), which matters in a
    bare repository whose HEAD decides what clones get.
    """
    data = git(["--git-dir", str(git_dir), "archive", "--format=tar", sha])
    dest.mkdir(parents=True, exist_ok=False)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.extractall(dest, filter="data")


def replace_work_tree(git_dir: Path, sha: str, work: Path) -> None:
    """Make ``work`` hold exactly the tree of ``sha``: export beside it, then swap it in."""
    work.parent.mkdir(parents=True, exist_ok=True)
    fresh = work.with_name(f".{work.name}.{uuid.uuid4().hex[:8]}.new")
    try:
        export_commit(git_dir, sha, fresh)
        if work.exists():
            old = work.with_name(f".{work.name}.{uuid.uuid4().hex[:8]}.old")
            work.rename(old)
            fresh.rename(work)
            shutil.rmtree(old, ignore_errors=True)
        else:
            fresh.rename(work)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)
