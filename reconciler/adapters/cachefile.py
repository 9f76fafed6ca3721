"""What the cache files in ``state/cache/`` (the plan cache, the state read cache) share: file
signatures and digests, the unpickler that refuses every global, ``gc_paused``, ``ColdSection``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "RACY_NS",
    "ColdSection",
    "Sig",
    "content_digest",
    "gc_paused",
    "hash_key",
    "publish",
    "signature",
    "stat_signature",
    "sweep_temps",
    "unpickle_plain",
    "write_cache_file",
]

RACY_NS = 2_000_000_000  # coarser than any common file system's timestamp granularity
TEMP_SUFFIX = ".tmp"  # a cache file being written: ".<name>.<pid>.<random>.tmp"
STALE_TEMP_S = 3600  # a temp file this old is left from a killed run

Sig = tuple[int, int, int, int, int, int]  # mode, size, mtime_ns, ctime_ns, inode, device


def hash_key(render: str, metadata: str, userdata: str) -> str:
    """A spec's three hashes as one string, as the caches keep them (one string to decode
    and compare instead of three); the planner splits it on newlines when it must."""
    return f"{render}\n{metadata}\n{userdata}"


def signature(st: os.stat_result) -> Sig:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def stat_signature(path: str) -> Sig | None:
    try:
        return signature(os.stat(path))
    except (OSError, ValueError):  # missing, unreadable, or not a valid path at all
        return None


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _PlainUnpickler(pickle.Unpickler):
    """Builtin containers and scalars only: any global (a class, a function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the plan cache may not name {module}.{name}")


def unpickle_plain(source: bytes | BinaryIO) -> Any:
    """One pickle of plain builtins from ``source`` (bytes, or a file positioned at it)."""
    return _PlainUnpickler(io.BytesIO(source) if isinstance(source, bytes) else source).load()


_FROZEN_AT: list[float] = []  # when gc_paused last froze the heap (time.monotonic)
THAW_AFTER_S = 1.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while building acyclic data in bulk, nor over that data afterwards.

    At 10,000 projects the collector's passes over what was just loaded (a young pass after
    each bulk load, then an older and a full one while planning: ~40 ms) cost more than the
    loading. So the heap is frozen on the way out (``gc.freeze``: the collector no longer
    examines what exists now; reference counting still frees it). Freezing also shelters
    any garbage cycles pending at that moment, so a bulk load more than ``THAW_AFTER_S``
    after the last freeze first unfreezes and collects: a long-running process (``watch``)
    keeps nothing frozen for long, a one-shot command never pays a full collection. A
    caller that disabled the collector itself is left alone.
    """
    if not gc.isenabled():
        yield
        return
    if _FROZEN_AT and time.monotonic() - _FROZEN_AT[0] > THAW_AFTER_S:
        gc.unfreeze()
        _FROZEN_AT.clear()
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        _FROZEN_AT[:] = [time.monotonic()]
        gc.enable()


_pread = getattr(os, "pread", None)
_SEEK_LOCK = threading.Lock()


class ColdSection:
    """The cold part of a cache file (the plan cache's specs; the state cache's deferred parts):
    pickles one after the other, each read on demand by its offset and size.

    It holds the file open from the moment its entries were read, so what it reads is
    that file's even if another run has replaced it since (the file is never written in
    place); the descriptor is closed when the last manifest using it is gone.
    """

    __slots__ = ("__weakref__", "base", "fd", "size")

    def __init__(self, fd: int, base: int, size: int) -> None:
        self.fd, self.base, self.size = fd, base, size
        weakref.finalize(self, os.close, fd)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise pickle.UnpicklingError("the plan cache points outside its specs")
        data: bytes
        if _pread is not None:  # positioned reads: safe from several threads at once
            data = _pread(self.fd, length, self.base + offset)
        else:
            with _SEEK_LOCK:
                os.lseek(self.fd, self.base + offset, os.SEEK_SET)
                data = os.read(self.fd, length)
        if len(data) != length:
            raise pickle.UnpicklingError("the plan cache file is truncated")
        return data

    def section(self) -> bytes:
        return self.read(0, self.size)

    def __copy__(self) -> ColdSection:  # an open file: copies share it
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ColdSection:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a ColdSection is an open file: it cannot be pickled")

    def copy_to(self, out: BinaryIO) -> None:
        """Append the whole section to ``out`` (in the kernel where it can)."""
        out.flush()
        start = out.tell()
        try:
            done = 0
            while done < self.size:
                n = os.copy_file_range(self.fd, out.fileno(), self.size - done, self.base + done)
                if n <= 0:
                    raise OSError("copy_file_range copied nothing")
                done += n
            out.seek(0, os.SEEK_END)
        except (AttributeError, OSError):  # not Linux, or a file system that cannot
            out.seek(start)
            out.truncate()
            out.write(self.section())


def write_cache_file(
    path: Path,
    key: object,
    body: object,
    write_cold: Callable[[BinaryIO], None],
    *,
    unpublished_in: Path | None = None,
) -> Path | None:
    """Write a cache file whole: the key, the body, then the cold section ``write_cold`` adds.

    Temp file and rename, so a reader sees the old file or the new one; no fsync: a cache
    torn by a power cut fails its checks on the next read and is rebuilt (never trusted).
    With ``unpublished_in`` (a directory) the temp file is written there and returned, for
    the caller to ``publish`` (or delete) later; nothing else is created meanwhile.
    """
    directory = path.parent if unpublished_in is None else unpublished_in
    if unpublished_in is None:
        _ensure_directory(directory)
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}"
    kept = False
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(key, fh, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(body, fh, protocol=pickle.HIGHEST_PROTOCOL)
            write_cold(fh)
        if unpublished_in is not None:
            kept = True
            return tmp
        os.replace(tmp, path)
    finally:
        if not kept:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return None


def publish(tmp: Path, path: Path) -> None:
    """Put a cache file written with ``unpublished_in`` in its place."""
    _ensure_directory(path.parent)
    os.replace(tmp, path)


def _ensure_directory(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir()
        (directory / ".gitignore").write_text("# the plan cache: never commit it\n*\n")


def sweep_temps(path: Path, directory: Path) -> None:
    """Delete the temp files of ``path`` in ``directory`` that a killed run left (older
    than an hour)."""
    horizon = time.time() - STALE_TEMP_S
    prefix = f".{path.name}."
    with contextlib.suppress(OSError), os.scandir(directory) as it:
        for entry in it:
            if entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < horizon:
                        os.unlink(entry.path)
