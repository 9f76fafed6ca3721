"""A read cache of the state for read-only commands (``StateStore.peek``).

``state/cache/state.pickle`` holds the state exactly as ``StateStore.load`` built it from
``state.json`` and the journal, keyed on the signatures (size, mtime_ns, ctime_ns, inode,
device) of both files; snapshots are replaced atomically and the journal only grows, so any
write changes a signature. The bulky parts of each entry (``spec``, ``history``,
``last_render``) stay pickled until something reads them: a plan of 10,000 unchanged
projects needs their hashes, not their 27 MB of JSON.

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
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.adapters.manifest_cache import (
    RACY_NS,
    gc_paused,
    stat_signature,
    unpickle_plain,
)
from reconciler.core.state import State

if TYPE_CHECKING:
    from reconciler.adapters.state import StateStore

__all__ = ["LazyEntry", "peek"]

CACHE_FILE = "state.pickle"
FORMAT = 1
DEFERRED = frozenset({"spec", "history", "last_render"})


class LazyEntry(dict[str, Any]):
    """A state entry whose deferred keys are decoded on first use.

    A real dict: reading a deferred key, or anything that looks at the whole entry
    (iteration, comparison, copying, ``repr``, JSON), first decodes them into the dict
    itself, in their original order; from then on it is the entry ``load()`` returns.
    """

    __slots__ = ("_blob", "_order")

    def __init__(self, eager: dict[str, Any], order: tuple[str, ...], blob: bytes) -> None:
        super().__init__(eager)
        self._order = order
        self._blob: bytes | None = blob

    def _fill(self) -> None:
        blob, self._blob = self._blob, None
        if blob is not None:
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
            lineage, serial, canonical_version, pending, rows = unpickle_plain(fh)
        projects = {
            name: LazyEntry(eager, order, blob) if blob is not None else eager
            for name, (eager, order, blob) in rows.items()
        }
        return State(lineage, serial, canonical_version, projects), int(pending)
    except Exception:  # missing, corrupt, foreign: read state.json instead
        return None


def _row(entry: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...], bytes | None]:
    eager = {k: v for k, v in entry.items() if k not in DEFERRED}
    if not eager or len(eager) == len(entry):
        return entry, (), None
    rest = {k: v for k, v in entry.items() if k in DEFERRED}
    return eager, tuple(entry), pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL)


def _write(path: Path, key: tuple[Any, ...], state: State, pending: int) -> None:
    directory = path.parent
    rows = {name: _row(entry) for name, entry in state.projects.items()}
    body = (state.lineage, state.serial, state.canonical_version, pending, rows)
    if not directory.is_dir():
        directory.mkdir()
        (directory / ".gitignore").write_text("# the plan cache: never commit it\n*\n")
    tmp = directory / f".{CACHE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(key, fh, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(body, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def peek(store: StateStore) -> State:
    """``store.load()``, through the read cache when the state files are unchanged."""
    path = store.dir / "cache" / CACHE_FILE
    key = _key(store)
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
            _write(path, key, state, store.pending_events)
    return state
