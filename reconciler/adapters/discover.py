"""Finding manifest files (a sorted walk that skips hidden names and reports symlink loops) and
reading one (size, binary, UTF-8 and conflict-marker checks), for ``loader``."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ManifestIssue

if TYPE_CHECKING:
    from reconciler.adapters.manifest_cache import Reads

__all__ = [
    "MAX_FILE_BYTES",
    "START",
    "Context",
    "Pos",
    "SourceError",
    "decode_source",
    "discover",
    "read_source",
]

MAX_FILE_BYTES = 5 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml")
START = (1, 1)  # for problems with a whole file or directory

Pos = tuple[int, int]
_CONFLICT = re.compile(r"^(?:<{7}|>{7})(?: |$)|^={7}\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SourceError:
    """A problem with a file as a whole (or its YAML syntax), at a 1-based line and column."""

    line: int
    col: int
    message: str


class Context:
    def __init__(self, root: str, repository: str | None = None) -> None:
        """``repository``: where ``timelineFile`` paths must stay (default: the git work tree
        holding ``root``, else ``root`` itself)."""
        cwd = os.getcwd()
        self.prefix = cwd if cwd.endswith(os.sep) else cwd + os.sep
        self.issues: list[ManifestIssue] = []
        self.timelines: set[str] = set()  # real paths of the timeline files referenced
        self.reads: Reads | None = None  # what the current file's load reads, for the cache
        base = root if os.path.isdir(root) else os.path.dirname(root)
        top = repository or _git_top(base)
        self.repo = os.path.realpath(top or base)
        self.repo_is_root = top is None  # no repository known: the manifests root stands in

    def display(self, path: str) -> str:
        # paths the loader builds are absolute and normal already; abspath is for the others
        full = path if os.path.isabs(path) else os.path.abspath(path)
        return full[len(self.prefix) :] if full.startswith(self.prefix) else full

    def report(self, path: str, at: Pos, message: str, ref: str = "-", loc: str = "-") -> None:
        self.issues.append(ManifestIssue(self.display(path), *at, ref, loc, message))

    def source(self, path: str, err: SourceError, ref: str = "-", loc: str = "-") -> None:
        self.report(path, (err.line, err.col), err.message, ref, loc)

    def repo_for(self, manifest: str) -> str:
        real = os.path.realpath(os.path.dirname(os.path.abspath(manifest)))
        if real == self.repo or real.startswith(self.repo + os.sep):
            return self.repo
        return _git_top(real) or real  # a file given outside the manifests' repository


def _git_top(start: str) -> str | None:
    directory = os.path.abspath(start)
    while not os.path.exists(os.path.join(directory, ".git")):
        if os.path.dirname(directory) == directory:
            return None
        directory = os.path.dirname(directory)
    return directory


_NAME = attrgetter("name")


def _walk(top: str, ancestors: dict[tuple[int, int], str], out: list[str], ctx: Context) -> None:
    try:
        with os.scandir(top) as it:
            entries = sorted(it, key=_NAME)
    except OSError as exc:
        return ctx.report(top, START, f"cannot read directory: {exc.strerror}")
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            st = entry.stat() if entry.is_dir() else None
        except OSError:  # a symlink loop or a vanished entry: reading it reports why
            st = None
        if st is not None:
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                back = ctx.display(ancestors[key])
                ctx.report(entry.path, START, f"symlink loop back to {back!r}: remove the link")
                continue
            ancestors[key] = entry.path
            _walk(entry.path, ancestors, out, ctx)
            del ancestors[key]
        elif entry.name.lower().endswith(_SUFFIXES) and not entry.is_dir(follow_symlinks=False):
            out.append(entry.path)
    return None


def discover(root: str, paths: Sequence[Path] | None, ctx: Context) -> list[tuple[str, str]]:
    """(absolute path, path as found) of every manifest file, without duplicates."""
    files: list[tuple[str, str]] = []
    for target in [root] if paths is None else [os.fspath(p) for p in paths]:
        if os.path.isdir(target):
            found: list[str] = []
            st = os.stat(target)
            _walk(target, {(st.st_dev, st.st_ino): target}, found, ctx)
            # os.path.abspath of each, cheaply: scandir paths are target + clean names
            cut = len(target if target.endswith(os.sep) else target + os.sep)
            base = os.path.join(os.path.abspath(target), "")
            files += [(base + f[cut:], f) for f in sorted(found)]
        elif os.path.lexists(target):
            files.append((os.path.abspath(target), target))
        elif paths is None:
            ctx.report(
                target, START, "manifests directory not found: create it or pass --manifests DIR"
            )
        else:
            ctx.report(target, START, "no such file or directory")
    if paths is None:  # one walk never finds a path twice
        return files
    unique: dict[str, str] = {}
    for absolute, f in files:
        unique.setdefault(absolute, f)
    return list(unique.items())


def read_source(path: str, ctx: Context) -> str | SourceError:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SourceError(1, 1, "symlink loop: the link never reaches a file: fix it")
        if not os.path.exists(path):
            return SourceError(1, 1, "cannot read: file not found (a broken symlink?)")
        return SourceError(1, 1, f"cannot read file: {exc.strerror}")
    try:  # os.read on the descriptor: no buffered file object per manifest
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SourceError(1, 1, "not a regular file: remove it from the manifests")
        raw = b""
        if st.st_size <= MAX_FILE_BYTES:
            raw = os.read(fd, st.st_size + 1)
            # a file that grew since the fstat is still read up to one byte over the limit
            while st.st_size < len(raw) <= MAX_FILE_BYTES:
                more = os.read(fd, MAX_FILE_BYTES + 1 - len(raw))
                if not more:
                    break
                raw += more
    finally:
        os.close(fd)
    if ctx.reads is not None:
        ctx.reads.read(path, st, raw)
    if st.st_size > MAX_FILE_BYTES or len(raw) > MAX_FILE_BYTES:
        mib = max(st.st_size, len(raw)) / 1024 / 1024
        return SourceError(
            1,
            1,
            f"file is {mib:.1f} MiB, over the 5 MiB limit for manifest "
            "files: split it or move it out of the manifests directory",
        )
    return decode_source(raw)


def decode_source(raw: bytes) -> str | SourceError:
    """Bytes -> text, or why this is not a manifest file we can read."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return SourceError(1, 1, "file is not UTF-8 text (it looks like UTF-16): save it as UTF-8")
    if b"\0" in raw:
        return SourceError(
            1,
            1,
            "binary file (contains NUL bytes), not a YAML manifest: "
            "move it out of the manifests directory",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[raw.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8", "replace"))
        return SourceError(
            line,
            col + 1,
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x} "
            f"at line {line}): save it as UTF-8",
        )
    text = text.removeprefix("\ufeff")
    # the regex scans line by line; a substring search first keeps clean files cheap
    marker = (
        _CONFLICT.search(text)
        if "<<<<<<<" in text or ">>>>>>>" in text or "=======" in text
        else None
    )
    if marker:
        line = text.count("\n", 0, marker.start()) + 1
        return SourceError(
            line,
            1,
            f"unresolved merge conflict (marker {marker.group()[:7]!r}): "
            "resolve the conflict and remove the markers",
        )
    return text
