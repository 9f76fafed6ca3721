"""The plan cache: per-file manifest load results in ``state/cache/``, so that planning an
unchanged catalogue costs a ``stat`` per file instead of a YAML parse and a validation.

When an entry is reused. A manifest file's entry holds what loading it produced (its
documents, their canonical hashes, its issues, the timeline files it referenced) and the
signature -- mode, size, mtime_ns, ctime_ns, inode, device -- of every file that load read
or looked for: the manifest and each ``timelineFile``, a missing one included, with a digest
(BLAKE2b-128) of the bytes of each file read. The entry is reused if every file still has
that signature, or else still has those bytes: a fresh checkout of the same tree (the
post-receive hook exports each pushed commit into a new work tree; ``git checkout`` of a
branch and back) gives every file a new inode and ctime but costs only a read per
unchanged file, not a parse; the entry then takes the new signatures. File timestamps are
coarse (a clock tick or worse), so a file rewritten within the tick it was read in could
keep its signature ("racy git"): for files modified less than ``RACY_NS`` before the run
started, the bytes are compared on every use until the signature is old enough to trust.

Hot and cold. Deciding that a project is unchanged needs, per manifest, its name, labels,
annotations, path, line, deps, hashes and projectId: the hot part of the file, read whole
(the common file -- the manifest alone, settled, one document -- is one flat tuple). The specs
follow as a cold section, one pickle each at an offset its entry records, read only for the
manifests something looks into (``CachedManifest.spec``), through the descriptor opened when
the entries were read (``ColdSection``). A rewrite copies the old section as it is and appends
the new specs, compacting it once less than half of it is still used.

Scopes. A cache file serves one scope -- working directory, manifests root, repository -- and
is named after it; the few most recently written stay (``KEEP``). So the clone's own plan and
the pre-push hook's plan of the commit being pushed (its own tree, the same state directory)
do not evict each other.

Trust. The cache is keyed on the reconciler version, ``CANONICAL_VERSION``, a fingerprint of
the loader's and the validators' source files, the working directory (paths are shown
relative to it), the manifests root and the repository. A different key, a truncated or
corrupt file or an unexpected shape means an empty cache -- rebuilt, never an error. The
file holds plain builtins only and is read by an unpickler that refuses every global, so a
planted cache file cannot run code; nor can it be used at all without its key, which holds
the signatures (inode, nanosecond ctime) of the installed source files.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import stat
import time
from pathlib import Path
from typing import Any, BinaryIO

from reconciler import __version__
from reconciler.adapters.cached_manifest import BLOB, COLD, SIZE, CachedManifest
from reconciler.adapters.cachefile import (
    RACY_NS,
    ColdSection,
    Sig,
    content_digest,
    gc_paused,
    hash_key,
    signature,
    stat_signature,
    unpickle_plain,
    write_cache_file,
)
from reconciler.core.canonical import CANONICAL_VERSION
from reconciler.errors import ManifestIssue

__all__ = [
    "CACHE_FILE",
    "KEEP",
    "RACY_NS",
    "CachedManifest",
    "ColdSection",
    "Doc",
    "Hit",
    "ManifestCache",
    "Reads",
    "cache_path",
    "gc_paused",
    "hash_key",
    "stat_signature",
    "unpickle_plain",
]

CACHE_FILE = "manifests-{}.pickle"  # one per scope (see cache_path)
KEEP = 4  # cache files kept per directory, the most recently written
FORMAT = 5
_PACKAGE = Path(__file__).resolve().parent.parent
_SOURCES = (  # code whose change can change what loading a file yields
    "adapters/loader.py",
    "adapters/discover.py",
    "adapters/timeline_file.py",
    "adapters/yamlpos.py",
    "adapters/fastyaml.py",
    "adapters/manifest_cache.py",
    "adapters/cached_manifest.py",
    "adapters/cachefile.py",
    "core/models.py",
    "core/timeline.py",
    "core/canonical.py",
)

_AT = 6 + COLD  # in a flat entry (see _pack): signature, manifest row, at, ref, digest
_FLAT = _AT + 3


class Reads:
    """What loading one manifest file read or looked for (filled in by the loader)."""

    def __init__(self) -> None:
        self.files: list[tuple[str, Sig | None, bytes | None]] = []  # path, signature, bytes
        self.timelines: list[str] = []  # real paths of the timeline files referenced

    def read(self, path: str, st: os.stat_result, raw: bytes) -> None:
        full = path if os.path.isabs(path) else os.path.abspath(path)  # the loader's are
        self.files.append((full, signature(st), raw))

    def looked_for(self, path: str) -> None:
        """A file that was not read (missing, not a file, outside the repository)."""
        self.files.append((os.path.abspath(path), stat_signature(path), None))


Doc = tuple[str, str, str, CachedManifest | None]  # name, "path:line:col", ref, manifest
Hit = tuple[list[Doc], list[ManifestIssue], tuple[str, ...]]  # docs, issues, timelines


def _fingerprint() -> tuple[Any, ...]:
    """Versions and source files that decide what loading a file yields."""
    parts: list[Any] = [FORMAT, __version__, CANONICAL_VERSION]
    for rel in _SOURCES:
        parts.append(stat_signature(os.fspath(_PACKAGE / rel)))
    for package in ("yaml", "yaml_rs", "pydantic", "pydantic_core"):
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        parts.append((package, origin, stat_signature(origin) if origin else None))
    return tuple(parts)


class ManifestCache:
    """One run's view of the cache file: ``get`` validated entries, ``put`` new ones, ``save``.

    The file: a pickle of the key, a pickle of ``(entries, size of the cold section)``,
    then the cold section (every spec, pickled on its own). The entries are the hot part:
    per manifest file the signatures that validate it, and per document what deciding
    "unchanged" needs (name, labels, annotations, path, line, deps, hashes, projectId)
    plus where its spec is. Specs are read only for the manifests something looks into.
    """

    def __init__(self, directory: Path, scope: tuple[str, ...]) -> None:
        self.path = cache_path(directory, scope)
        self.key = (_fingerprint(), scope)
        self.started_ns = time.time_ns()  # before anything is read: see RACY_NS
        self._old: dict[str, tuple[Any, ...]] = {}
        self._new: dict[str, tuple[Any, ...]] = {}
        self._cold: ColdSection | None = None
        self._put: set[str] = set()  # the entries of files parsed in this run
        self._changed = False
        self.hits = self.misses = 0
        self._load()

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        """Around the loop over every file: see ``gc_paused``."""
        return gc_paused()

    # ------------------------------------------------------------------ reading

    def _load(self) -> None:
        try:
            with gc_paused(), open(self.path, "rb") as fh:
                if unpickle_plain(fh) != self.key:
                    return
                entries, size = unpickle_plain(fh)
                base = fh.tell()
                if not isinstance(entries, dict) or type(size) is not int:
                    return
                if os.fstat(fh.fileno()).st_size != base + size:
                    return  # truncated, or something appended
                cold = ColdSection(os.dup(fh.fileno()), base, size)
        except Exception:  # missing, truncated, corrupt, foreign: start empty
            return
        self._old, self._cold = entries, cold

    def _same_bytes(self, path: str, st: os.stat_result, digest: bytes) -> bool:
        """``path`` (now ``st``) still holds the bytes ``digest`` was taken of."""
        if not stat.S_ISREG(st.st_mode):
            return False
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                raw = os.read(fd, st.st_size + 1)
            finally:
                os.close(fd)
        except OSError:
            return False
        return content_digest(raw) == digest

    def get(self, path: str) -> Hit | None:
        """The entry of ``path`` if it is still valid (else None: parse it again)."""
        row = self._old.get(path)
        if row is None:
            return None
        try:
            if len(row) == _FLAT:  # the common case: see _pack
                try:
                    st = os.stat(path)
                except (OSError, ValueError):
                    return self._miss()
                # signature(st), inlined: this runs for every file of every plan
                sig = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
                if sig != row[:6]:
                    if sig[1] != row[1] or not self._same_bytes(path, st, row[-1]):
                        return self._miss()
                    # the same bytes (a fresh checkout): keep the entry, with the new signature
                    doc = (row[6], row[_AT], row[_AT + 1], row[6:_AT])
                    row = _pack(((path, sig, row[-1], self._racy(sig)),), (doc,), (), ())
                    self._changed = True
                    if len(row) != _FLAT:  # racy: its bytes are compared next time too
                        self._new[path] = row
                        self.hits += 1
                        return [(*doc[:3], CachedManifest((*doc[3], self._cold)))], [], ()
                m = CachedManifest((*row[6:_AT], self._cold))
                self._new[path] = row
                self.hits += 1
                return [(row[6], row[_AT], row[_AT + 1], m)], [], ()
            files, docs, issues, timelines = row
            settled = self._settle(files)
            if settled is None:
                return self._miss()
            if settled != files:
                row = _pack(settled, docs, issues, timelines)
                self._changed = True  # new signatures, or ones old enough to trust now
            cold = self._cold
            hit: Hit = (
                [(n, at, ref, m and CachedManifest((*m, cold))) for n, at, ref, m in docs],
                [ManifestIssue(*i) for i in issues],
                timelines,
            )
        except (TypeError, ValueError, IndexError, KeyError, pickle.UnpicklingError):
            return self._miss()  # a malformed entry is a miss like any other
        self._new[path] = row
        self.hits += 1
        return hit

    def _miss(self) -> Hit | None:
        self.misses += 1
        return None

    def _settle(self, files: tuple[Any, ...]) -> Any:
        """``files`` as they should now be kept if every one is unchanged, else None.

        A file read (with a digest) is unchanged if its signature is, unless that was racy,
        or if its bytes are; a file only looked for, if its signature (or absence) is."""
        settled: list[tuple[str, Sig | None, bytes | None, bool]] = []
        for file, sig, digest, racy in files:
            try:
                st = os.stat(file)
            except (OSError, ValueError):
                if sig is not None:
                    return None
                settled.append((file, None, None, False))
                continue
            now = signature(st)
            if digest is None:
                if now != sig:
                    return None
            elif (now != sig or racy) and not self._same_bytes(file, st, digest):
                return None
            settled.append((file, now, digest, digest is not None and self._racy(now)))
        return tuple(settled)

    # ------------------------------------------------------------------ writing

    def _racy(self, sig: Sig) -> bool:
        return max(sig[2], sig[3]) >= self.started_ns - RACY_NS

    def entry(
        self,
        path: str,
        reads: Reads,
        docs: list[Doc],
        issues: list[ManifestIssue],
    ) -> tuple[Any, ...] | None:
        """One file's load as the entry to keep for it (``adopt``); None when it may not be
        cached (the file itself was not read first). Pure: a forked loader computes it."""
        if not reads.files or reads.files[0][0] != path or reads.files[0][1] is None:
            return None
        files = tuple(
            (
                file,
                sig,
                None if raw is None else content_digest(raw),
                raw is not None and sig is not None and self._racy(sig),
            )
            for file, sig, raw in reads.files
        )
        rows = tuple((name, at, ref, None if m is None else m.row()) for name, at, ref, m in docs)
        issue_rows = tuple((i.path, i.line, i.col, i.ref, i.field, i.message) for i in issues)
        return _pack(files, rows, issue_rows, tuple(reads.timelines))

    def adopt(self, path: str, entry: tuple[Any, ...] | None) -> None:
        """Keep ``entry`` (from ``entry``) for the file just parsed."""
        if entry is not None:
            self._new[path] = entry
            self._put.add(path)
            self._changed = True

    def save(self) -> None:
        """Write the entries of this run if anything changed; failures are ignored."""
        if not self._changed and self._new.keys() == self._old.keys():
            return
        with contextlib.suppress(OSError, pickle.PicklingError, ValueError, TypeError):
            self._write()

    def _garbage(self) -> int:
        """Bytes of the old cold section that no entry of this run uses any more (or more)."""
        garbage, new = 0, self._new
        for path, row in self._old.items():
            now = new.get(path)
            if now is None or _specs(now) is not _specs(row):
                garbage += sum(m[SIZE] for _, _, _, m in _docs(row) if m is not None)
        return garbage

    def _layout(self, keep: bool) -> tuple[dict[str, tuple[Any, ...]], list[Any], int]:
        """The entries to write, every spec placed in the cold section, and what follows
        the old section (``keep``: the entries reused from it keep their places) or, when
        compacting, the whole new section."""
        old, size = self._cold, 0
        if keep:
            assert old is not None
            size, rows, view = old.size, self._put, memoryview(b"")
        else:
            rows = set(self._new)
            view = memoryview(old.section() if old is not None and old.size else b"")
        pieces: list[Any] = []
        entries = dict(self._new)
        for path in rows:
            row, docs = entries[path], []
            for name, at, ref, m in _docs(row):
                if m is not None and (m[SIZE] is None or not keep):
                    if m[SIZE] is None:  # just parsed: its pickle is in the row
                        blob: Any = m[BLOB]
                    else:
                        blob = view[m[BLOB] : m[BLOB] + m[SIZE]]
                    pieces.append(blob)
                    m = (*m[:BLOB], size, len(blob))
                    size += len(blob)
                docs.append((name, at, ref, m))
            if len(row) == _FLAT:
                entries[path] = (*row[:6], *docs[0][3], *row[_AT:])
            else:
                entries[path] = (row[0], tuple(docs), *row[2:])
        return entries, pieces, size

    def _write(self) -> None:
        directory = self.path.parent
        if not directory.parent.is_dir():
            return  # no state directory yet: a read-only plan does not create one
        old = self._cold  # kept while at least half of it is still used, else compacted
        keep = old is not None and self._garbage() * 2 <= old.size
        entries, pieces, size = self._layout(keep)

        def cold(fh: BinaryIO) -> None:
            if keep and old is not None and old.size:
                old.copy_to(fh)
            fh.writelines(pieces)

        write_cache_file(self.path, self.key, (entries, size), cold)
        _prune(directory, keep=self.path)


def cache_path(directory: Path, scope: tuple[str, ...]) -> Path:
    """The cache file of one scope: the clone's own plan and the pre-push hook's plan of the
    commit being pushed (another tree, the same state directory) each keep theirs warm."""
    tag = hashlib.blake2b(repr(scope).encode(), digest_size=8).hexdigest()
    return directory / CACHE_FILE.format(tag)


def _prune(directory: Path, keep: Path) -> None:
    """Only the ``KEEP`` most recently written cache files stay (and not the single file of
    earlier versions, ``manifests.pickle``)."""
    found: list[tuple[int, str]] = []
    with contextlib.suppress(OSError), os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if name == "manifests.pickle":
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif name.startswith("manifests-") and name.endswith(".pickle"):
                with contextlib.suppress(OSError):
                    found.append((entry.stat().st_mtime_ns, name))
    found.sort(reverse=True)
    for _, name in found[KEEP:]:
        if name != keep.name:
            with contextlib.suppress(OSError):
                os.unlink(directory / name)


def _pack(
    files: tuple[tuple[str, Sig | None, bytes | None, bool], ...],
    docs: tuple[tuple[str, str, str, tuple[Any, ...] | None], ...],
    issues: tuple[tuple[Any, ...], ...],
    timelines: tuple[str, ...],
) -> tuple[Any, ...]:
    """One file's entry: ``(files, docs, issues, timelines)`` (per file: path, signature,
    digest of the bytes read or None, racy), or in the common case -- the manifest file
    alone, not racy, one valid document -- one flat tuple: its signature, its manifest row,
    the document's "path:line:col" and ref, its digest (fewer objects to unpickle)."""
    sig = files[0][1] if len(files) == 1 and files[0][2] is not None and not files[0][3] else None
    if (
        sig is not None
        and len(docs) == 1
        and docs[0][3] is not None
        and not issues
        and not timelines
    ):
        _, at, ref, m = docs[0]
        assert m is not None
        return (*sig, *m, at, ref, files[0][2])
    return (files, docs, issues, timelines)


def _docs(row: tuple[Any, ...]) -> Any:
    """The (name, at, ref, manifest row) of an entry's documents."""
    if len(row) == _FLAT:
        return ((row[6], row[_AT], row[_AT + 1], row[6:_AT]),)
    return row[1]


def _specs(row: tuple[Any, ...]) -> Any:
    """What holds an entry's places in the cold section (kept as is while they are reused)."""
    return row if len(row) == _FLAT else row[1]
