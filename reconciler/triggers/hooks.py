"""Installing, chaining and removing reconciler's git hooks without clobbering anyone else's.

Our hook is a tiny ``/bin/sh`` script that ``exec``s ``<python> -m reconciler hooks run KIND``
with the absolute interpreter path, so it works from a virtualenv. A marker comment on its
second line identifies it. A foreign hook found at install time is moved aside to
``KIND.local`` (recorded in our script), run first by ``hooks run`` with the same arguments
and stdin, and put back by ``uninstall``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError

MARKER = "# reconciler-hook:"
CHAINED = "# reconciler-chained:"
KINDS = ("post-receive", "pre-push")


class HookError(ConfigError):
    """A hook cannot be installed or removed as asked."""


@dataclass(frozen=True)
class InstallResult:
    path: Path
    moved_aside: Path | None  # the foreign hook moved aside (and chained) by this install
    updated: bool  # an earlier install of ours was replaced


def local_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.local")


def read_head(path: Path, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode(errors="replace")
    except OSError:
        return ""


def is_ours(path: Path) -> bool:
    return any(line.startswith(MARKER) for line in read_head(path).splitlines()[:5])


def chained_by_us(path: Path) -> bool:
    return any(line.startswith(CHAINED) for line in read_head(path).splitlines()[:8])


def render_script(kind: str, argv: Sequence[str], *, chained: bool) -> str:
    """The hook file: a marker, a note for humans, and one exec line."""
    lines = [
        "#!/bin/sh",
        f"{MARKER} {kind}",
        "# Written by `reconciler hooks install`; `reconciler hooks uninstall` removes it.",
    ]
    if chained:
        lines.append(f"{CHAINED} {kind}.local (a hook that was here before; it runs first)")
    # -P: the hook's cwd (a repository, maybe with a "reconciler" directory) must not
    # shadow the installed package.
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-P", "-m", "reconciler", *argv])
    lines.append(f'exec {command} "$@"')
    return "\n".join(lines) + "\n"


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, path)


def install_hook(hooks: Path, kind: str, argv: Sequence[str]) -> InstallResult:
    """Write our hook; a foreign one is moved to KIND.local and chained. Idempotent."""
    if kind not in KINDS:
        raise HookError(f"unknown hook kind {kind!r}")
    hooks.mkdir(parents=True, exist_ok=True)
    path = hooks / kind
    aside = local_path(path)
    moved: Path | None = None
    updated = False
    exists = path.exists() or path.is_symlink()
    if exists and is_ours(path):
        updated = True
        chained = chained_by_us(path)
    elif exists:
        if aside.exists() or aside.is_symlink():
            raise HookError(
                f"{path} is not ours and {aside} already exists",
                hint="merge them by hand, or move one away, then run install again",
            )
        path.rename(aside)
        moved, chained = aside, True
    else:
        chained = False
    _write_executable(path, render_script(kind, argv, chained=chained))
    return InstallResult(path=path, moved_aside=moved, updated=updated)


def uninstall_hook(hooks: Path, kind: str) -> str:
    """Remove our hook and restore what install moved aside; never touch a foreign hook."""
    path = hooks / kind
    if not (path.exists() or path.is_symlink()):
        return f"{path}: no hook installed"
    if not is_ours(path):
        return f"{path}: not written by reconciler, left alone"
    restore = chained_by_us(path)
    path.unlink()
    aside = local_path(path)
    if restore and (aside.exists() or aside.is_symlink()):
        aside.rename(path)
        return f"{path}: removed; the previous hook was restored from {aside.name}"
    return f"{path}: removed"


def run_chained(hook: Path, args: Sequence[str], stdin: bytes) -> int | None:
    """Run the foreign hook kept beside ours (if any) with our args and stdin; its exit code."""
    aside = local_path(hook)
    if not aside.is_file() or not os.access(aside, os.X_OK):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        proc = subprocess.run([str(aside), *args], input=stdin, check=False)
    except OSError as exc:
        print(f"reconciler: could not run the chained hook {aside}: {exc}", file=sys.stderr)
        return 1
    return proc.returncode
