"""A read cache of the state for read-only commands (``StateStore.peek``).

``state/cache/state.pickle`` holds the state exactly as ``StateStore.load`` built it from
``state.json`` and the journal, keyed on the signatures (size, mtime_ns, ctime_ns, inode,
device) of both files; snapshots are replaced atomically and the journal only grows, so any
write changes a signature. The bulky parts of each entry (``spec``, ``history``,
``last_render``) and its ``hashes`` stay pickled until something reads them, in a cold
section after the entries (``cachefile.ColdSection``): a plan of 10,000 unchanged
projects needs their hashes -- one ``hash_key`` string per entry meanwhile -- not their
27 MB of JSON.

The cache is only ever a faster way to the same ``State``: anything unexpected (another
key, a corrupt file, files modified too recently to trust their timestamps) means reading
state.json as usual. Like the plan cache it is plain builtins read by an unpickler that
refuses every global.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.adapters.cachefile import (
    RACY_NS,
    ColdSection,
    gc_paused,
    hash_key,
    publish,
    stat_signature,
    sweep_temps,
    unpickle_plain,
    write_cache_file,
)
from reconciler.core.state import State

if TYPE_CHECKING:
    from reconciler.adapters.state import StateStore

__all__ = ["LazyEntry", "peek"]

CACHE_FILE = "state.pickle"
FORMAT = 3
# Kept out of the dict until read. "hashes" too when it is the usual three strings (and the
# entry has a spec): the entry then carries them as one ``hash_key`` string instead.
DEFERRED = frozenset({"spec", "history", "last_render", "hashes"})
_PARTS = ("render", "metadata", "userdata")


class LazyEntry(dict[str, Any]):
    """A state entry whose deferred keys are decoded on first use.

    A real dict: reading a deferred key, or anything that looks at the whole entry
    (iteration, comparison, copying, ``repr``, JSON), first decodes them into the dict
    itself, in their original order; from then on it is the entry ``load()`` returns.
    Every other key is in the dict itself from the start (the planner relies on it).
    The deferred part is a pickle (``blob``), or where that pickle is in the cache file.

    ``hash_key``: while "hashes" is deferred, ``cachefile.hash_key`` of them (set only
    for an entry with a spec): what the planner compares for an unchanged project. It is
    None from the first decoding on, so it can never disagree with the dict.
    """

    __slots__ = ("_blob", "_cold", "_order", "hash_key")

    def __init__(
        self,
        eager: dict[str, Any],
        order: tuple[str, ...],
        blob: bytes,
        hash_key: str | None = None,
    ) -> None:
        super().__init__(eager)
        self._order = order
        self._blob: bytes | tuple[Any, ...] | None = blob
        self._cold: _Cold | None = None
        self.hash_key = hash_key

    def _fill(self) -> None:
        self.hash_key = None  # every mutation comes through here (see _decoding)
        blob, self._blob = self._blob, None
        if blob is not None:
            if isinstance(blob, tuple):  # a cache row: (eager, order, offset, size)
                assert self._cold is not None
                blob = self._cold.read(blob[2], blob[3])
            rest = unpickle_plain(blob)
            items = [(k, rest[k] if k in rest else dict.__getitem__(self, k)) for k in self._order]
            dict.clear(self)
            dict.update(self, items)

    def __missing__(self, key: str) -> Any:
        if self._blob is not None and key in self._order:
            self._fill()
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if self._blob is not None and key in DEFERRED and not dict.__contains__(self, key):
            self._fill()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (self._blob is not None and key in self._order)

    def __len__(self) -> int:
        return len(self._order) if self._blob is not None else dict.__len__(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        self._fill()
        return copy.deepcopy(dict(self.items()), memo)

    def __copy__(self) -> dict[str, Any]:
        self._fill()
        return dict(self.items())

    def __reduce_ex__(self, protocol: Any) -> Any:
        self._fill()
        return (dict, (dict(self.items()),))


def _decoding(name: str) -> Any:
    method = getattr(dict, name)

    def decoded(self: LazyEntry, *args: Any, **kwargs: Any) -> Any:
        self._fill()
        return method(self, *args, **kwargs)

    decoded.__name__ = name
    return decoded


for _name in (
    "__iter__",
    "__reversed__",
    "__eq__",
    "__ne__",
    "__repr__",
    "__or__",
    "__ror__",
    "__ior__",
    "__setitem__",
    "__delitem__",
    "keys",
    "values",
    "items",
    "copy",
    "pop",
    "popitem",
    "setdefault",
    "update",
    "clear",
):
    setattr(LazyEntry, _name, _decoding(_name))


def _key(store: StateStore) -> tuple[Any, ...]:
    from reconciler.adapters.state import JOURNAL_FILE, STATE_FILE

    snapshot = stat_signature(os.fspath(store.dir / STATE_FILE))
    journal = stat_signature(os.fspath(store.dir / JOURNAL_FILE))
    return (FORMAT, __version__, store.history, os.path.abspath(store.dir), snapshot, journal)


def _trusted(key: tuple[Any, ...]) -> bool:
    """A snapshot exists and neither file changed in the last ``RACY_NS`` (see there)."""
    sigs = [s for s in key[4:] if s is not None]
    horizon = time.time_ns() - RACY_NS
    return key[4] is not None and all(max(s[2], s[3]) < horizon for s in sigs)


def _read(path: Path, key: tuple[Any, ...]) -> tuple[State, int] | None:
    """The cached state and its count of replayed journal events."""
    try:
        with open(path, "rb") as fh:
            if unpickle_plain(fh) != key:
                return None
            lineage, serial, canonical_version, pending, rows, size = unpickle_plain(fh)
            base = fh.tell()
            if type(size) is not int or os.fstat(fh.fileno()).st_size != base + size:
                return None  # truncated, or something appended
            cold = ColdSection(os.dup(fh.fileno()), base, size)
        return State(lineage, serial, canonical_version, _projects(rows, cold)), int(pending)
    except Exception:  # missing, corrupt, foreign: read state.json instead
        return None


def _projects(rows: dict[str, tuple[Any, ...]], cold: _Cold) -> dict[str, dict[str, Any]]:
    """The entries of a cache body's rows, their deferred parts read from ``cold``."""
    new, update, lazy = LazyEntry.__new__, dict.update, LazyEntry
    projects: dict[str, dict[str, Any]] = {}
    for name, row in rows.items():
        if row[1]:  # some keys deferred: see LazyEntry (built without its __init__)
            entry = new(lazy)
            update(entry, row[0])
            entry._order, entry._blob, entry._cold, entry.hash_key = row[1], row, cold, row[4]
            projects[name] = entry
        else:
            projects[name] = row[0]
    return projects


class _Written:
    """A cold section just laid out, read from memory as ``ColdSection`` reads the file."""

    __slots__ = ("data",)

    def __init__(self, pieces: list[bytes]) -> None:
        self.data = b"".join(pieces)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


_Cold = ColdSection | _Written


def _row(
    entry: dict[str, Any],
) -> tuple[dict[str, Any], tuple[str, ...], bytes | None, str | None]:
    """(eager part, key order, pickle of the deferred part, hash_key) of one entry."""
    h = entry.get("hashes")
    key = None
    if (
        "spec" in entry
        and isinstance(h, dict)
        and tuple(h) == _PARTS
        and all(type(v) is str and "\n" not in v for v in h.values())
    ):
        key = hash_key(h["render"], h["metadata"], h["userdata"])
    deferred = DEFERRED if key is not None else DEFERRED - {"hashes"}
    eager = {k: v for k, v in entry.items() if k not in deferred}
    if not eager or len(eager) == len(entry):
        return entry, (), None, None
    rest = {k: v for k, v in entry.items() if k in deferred}
    return eager, tuple(entry), pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL), key


def _intern(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _layout(state: State, pending: int) -> tuple[tuple[Any, ...], list[bytes]]:
    """What ``_write`` writes after the key: the state with every entry's deferred part
    replaced by its place in the cold section, and that section's pieces (the deferred
    parts, pickled one by one)."""
    rows: dict[str, tuple[Any, ...]] = {}
    orders: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per key order: shared
    pieces: list[bytes] = []
    size = 0
    for name, entry in state.projects.items():
        eager, order, blob, hkey = _row(entry)
        if blob is None:
            rows[name] = (eager, (), 0, 0, None)
            continue
        if isinstance(labels := eager.get("labels"), dict):  # they repeat: share them
            eager["labels"] = {_intern(k): _intern(v) for k, v in labels.items()}
        rows[name] = (eager, orders.setdefault(order, order), size, len(blob), hkey)
        pieces.append(blob)
        size += len(blob)
    return (state.lineage, state.serial, state.canonical_version, pending, rows, size), pieces


def _write(
    path: Path,
    key: tuple[Any, ...],
    layout: tuple[tuple[Any, ...], list[bytes]],
    *,
    unpublished_in: Path | None = None,
) -> Path | None:
    """The key, then the layout's body, then its cold section; with ``unpublished_in``
    into a temp file there, which is returned (None if the write failed)."""
    body, pieces = layout
    with contextlib.suppress(OSError, pickle.PicklingError, ValueError, TypeError):
        sweep_temps(path, path.parent.parent)  # the prefetch's, from a killed run
        return write_cache_file(
            path, key, body, lambda fh: fh.writelines(pieces), unpublished_in=unpublished_in
        )
    return None


def prefetch(store: StateStore) -> None:
    """Read the state now, for a ``peek`` to come (run while forked parsers load the
    manifests), and write the read cache ``peek`` would write, here where its cost is shared
    with the parsing -- into a temp file in ``state/`` that ``peek`` moves into
    ``state/cache/``, or ``discard`` deletes: a plan that stops at invalid manifests leaves
    ``state/`` as it was. A failure is dropped here: ``peek`` reads again and reports it."""
    path = store.dir / "cache" / CACHE_FILE
    key = _key(store)
    try:
        with gc_paused():
            cached = _read(path, key) if _trusted(key) else None
            if cached is None:
                state, pending = store.load(), store.pending_events
                store._prefetched = (key, (state, pending), None)
                if _trusted(key) and _key(store) == key:  # what was read is what key says
                    with contextlib.suppress(Exception):  # a cache: never worth a failure
                        layout = _layout(state, pending)
                        written = _write(path, key, layout, unpublished_in=store.dir)
                        store._prefetched = (key, (state, pending), written)  # for discard()
                        # and the state as a peek will read it from that cache: the planner
                        # compares one hash key per project, and the full entries go now
                        (lineage, serial, version, _, rows, _), pieces = layout
                        state = State(lineage, serial, version, _projects(rows, _Written(pieces)))
                        store.state = state
                        store._prefetched = (key, (state, pending), written)
            else:
                store._prefetched = (key, cached, None)
    except Exception:  # reported by the peek that follows
        discard(store)


def discard(store: StateStore) -> None:
    """Drop what ``prefetch`` read, and the read cache it wrote and no ``peek`` published."""
    early, store._prefetched = store._prefetched, None
    if early is not None and early[2] is not None:
        with contextlib.suppress(OSError):
            os.unlink(early[2])


def peek(store: StateStore) -> State:
    """``store.load()``, through the read cache when the state files are unchanged."""
    path = store.dir / "cache" / CACHE_FILE
    key = _key(store)
    early = store._prefetched
    if early is not None and early[0] == key:  # prefetched, and nothing changed since
        store._prefetched = None
        state, store.pending_events = early[1]
        store.state = state
        if early[2] is not None:  # the read cache it wrote: now it may be used
            try:
                publish(early[2], path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(early[2])
        return state
    discard(store)
    if _trusted(key):
        with gc_paused():
            cached = _read(path, key)
        if cached is not None:
            store.state, store.pending_events = cached
            return cached[0]
    with gc_paused():
        state = store.load()
    if _trusted(key) and _key(store) == key:  # what was read is what the key describes
        with contextlib.suppress(OSError, pickle.PicklingError, ValueError, TypeError):
            _write(path, key, _layout(state, store.pending_events))
    return state
