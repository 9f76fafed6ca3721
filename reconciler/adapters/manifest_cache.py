"""The plan cache: per-file manifest load results in ``state/cache/``, so that planning an
unchanged catalogue costs a ``stat`` per file instead of a YAML parse and a validation.

When an entry is reused. A manifest file's entry holds what loading it produced (its
documents, their canonical hashes, its issues, the timeline files it referenced) and the
signature -- mode, size, mtime_ns, ctime_ns, inode, device -- of every file that load read
or looked for: the manifest and each ``timelineFile``, a missing one included. The entry is
reused only if all of them still have that signature. File timestamps are coarse (a clock
tick or worse), so a file rewritten within the tick it was read in could keep its
signature ("racy git"): for files modified less than ``RACY_NS`` before the run started,
the entry also keeps a digest of the bytes read, and is reused only if the bytes match.

Trust. The cache is keyed on the reconciler version, ``CANONICAL_VERSION``, a fingerprint of
the loader's and the validators' source files, the working directory (paths are shown
relative to it), the manifests root and the repository. A different key, a truncated or
corrupt file or an unexpected shape means an empty cache -- rebuilt, never an error. The
file holds plain builtins only and is read by an unpickler that refuses every global, so a
planted cache file cannot run code (and, not knowing inode numbers and nanosecond ctimes,
cannot match either).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import io
import os
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from reconciler import __version__
from reconciler.core.canonical import CANONICAL_VERSION, SpecDigest, SpecHashes, spec_digest
from reconciler.errors import ManifestIssue

if TYPE_CHECKING:
    from reconciler.core.models import Manifest

__all__ = ["CACHE_FILE", "CachedManifest", "Hit", "ManifestCache", "Reads", "gc_paused"]

CACHE_FILE = "manifests.pickle"
FORMAT = 1
RACY_NS = 2_000_000_000  # coarser than any common file system's timestamp granularity
_PACKAGE = Path(__file__).resolve().parent.parent
_SOURCES = (  # code whose change can change what loading a file yields
    "adapters/loader.py",
    "adapters/yamlpos.py",
    "adapters/manifest_cache.py",
    "core/models.py",
    "core/timeline.py",
    "core/canonical.py",
)

Sig = tuple[int, int, int, int, int, int]  # mode, size, mtime_ns, ctime_ns, inode, device


def signature(st: os.stat_result) -> Sig:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def stat_signature(path: str) -> Sig | None:
    try:
        return signature(os.stat(path))
    except (OSError, ValueError):  # missing, unreadable, or not a valid path at all
        return None


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _PlainUnpickler(pickle.Unpickler):
    """Builtin containers and scalars only: any global (a class, a function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the plan cache may not name {module}.{name}")


def unpickle_plain(source: bytes | BinaryIO) -> Any:
    """One pickle of plain builtins from ``source`` (bytes, or a file positioned at it)."""
    return _PlainUnpickler(io.BytesIO(source) if isinstance(source, bytes) else source).load()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while building acyclic data in bulk: at 10,000 projects its passes over
    the growing heap cost more than the decoding itself (they resume afterwards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class CachedManifest:
    """A ``Manifest`` from the cache (or just parsed): the same fields, plus its ``digest``.

    ``spec`` is decoded on first use; an unchanged project is planned from ``digest`` alone.
    (It mirrors ``Manifest`` instead of subclassing it because ``reconciler.core.models``
    imports pydantic, which a cached run does not otherwise need.)
    """

    __slots__ = (
        "_blob",
        "_spec",
        "annotations",
        "deps",
        "digest",
        "labels",
        "line",
        "name",
        "path",
    )

    def __init__(
        self,
        name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        path: str,
        line: int,
        deps: tuple[str, ...],
        digest: SpecDigest,
        blob: bytes,
        spec: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.labels, self.annotations = name, labels, annotations
        self.path, self.line, self.deps = path, line, deps
        self.digest, self._blob, self._spec = digest, blob, spec

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = unpickle_plain(self._blob)
        return self._spec

    @property
    def ref(self) -> str:
        return f"EditingProject/{self.name}"

    def _fields(self) -> tuple[Any, ...]:
        return (self.name, self.labels, self.annotations, self.spec, self.path, self.line)

    def __eq__(self, other: object) -> bool:  # equal to the Manifest it stands for
        theirs = tuple(getattr(other, f, None) for f in ("name", "labels", "annotations"))
        theirs += tuple(getattr(other, f, None) for f in ("spec", "path", "line"))
        return self._fields() == theirs and self.deps == tuple(getattr(other, "deps", ()))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CachedManifest(name={self.name!r}, path={self.path!r}, line={self.line})"

    @classmethod
    def of(cls, manifest: Manifest) -> CachedManifest:
        """A just-parsed manifest, digested and ready to be cached.

        The parsed spec is let go (it is decoded again if read): at 10,000 manifests keeping
        a million small objects alive costs more memory and GC time than re-decoding the few
        specs a plan of unchanged projects reads.
        """
        spec = manifest.spec
        blob = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        return cls(
            manifest.name,
            manifest.labels,
            manifest.annotations,
            manifest.path,
            manifest.line,
            manifest.deps,
            spec_digest(spec),
            blob,
        )

    def row(self) -> tuple[Any, ...]:
        """Plain data for the cache file."""
        h = self.digest.hashes
        return (
            self.name,
            self.labels,
            self.annotations,
            self.path,
            self.line,
            self.deps,
            (h.render, h.metadata, h.userdata),
            self.digest.project_id,
            self._blob,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CachedManifest:
        name, labels, annotations, path, line, deps, hashes, project_id, blob = row
        digest = SpecDigest(SpecHashes(*hashes), project_id)
        return cls(name, labels, annotations, path, line, tuple(deps), digest, blob)


class Reads:
    """What loading one manifest file read or looked for (filled in by the loader)."""

    def __init__(self) -> None:
        self.files: list[tuple[str, Sig | None, bytes | None]] = []  # path, signature, bytes
        self.timelines: list[str] = []  # real paths of the timeline files referenced

    def read(self, path: str, st: os.stat_result, raw: bytes) -> None:
        self.files.append((os.path.abspath(path), signature(st), raw))

    def looked_for(self, path: str) -> None:
        """A file that was not read (missing, not a file, outside the repository)."""
        self.files.append((os.path.abspath(path), stat_signature(path), None))


class Hit:
    """A cached file's load result: what ``_file`` returned and reported."""

    __slots__ = ("docs", "issues", "timelines")

    def __init__(
        self,
        docs: list[tuple[str, str, str, CachedManifest | None]],
        issues: list[ManifestIssue],
        timelines: tuple[str, ...],
    ) -> None:
        self.docs, self.issues, self.timelines = docs, issues, timelines


def _fingerprint() -> tuple[Any, ...]:
    """Versions and source files that decide what loading a file yields."""
    parts: list[Any] = [FORMAT, __version__, CANONICAL_VERSION]
    for rel in _SOURCES:
        parts.append(stat_signature(os.fspath(_PACKAGE / rel)))
    for package in ("yaml", "pydantic", "pydantic_core"):
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        parts.append((package, origin, stat_signature(origin) if origin else None))
    return tuple(parts)


class ManifestCache:
    """One run's view of the cache file: ``get`` validated entries, ``put`` new ones, ``save``."""

    def __init__(self, directory: Path, scope: tuple[str, ...]) -> None:
        self.path = directory / CACHE_FILE
        self.key = (_fingerprint(), scope)
        self.started_ns = time.time_ns()  # before anything is read: see RACY_NS
        self._old: dict[str, tuple[Any, ...]] = {}
        self._new: dict[str, tuple[Any, ...]] = {}
        self._changed = False
        self.hits = self.misses = 0
        self._load()

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        """Around the loop over every file: see ``gc_paused``."""
        return gc_paused()

    # ------------------------------------------------------------------ reading

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as fh:  # two pickles: the key, then the entries
                if unpickle_plain(fh) != self.key:
                    return
                entries = unpickle_plain(fh)
        except Exception:  # missing, truncated, corrupt, foreign: start empty
            return
        if isinstance(entries, dict):
            self._old = entries

    def _fresh(self, path: str, sig: Sig | None, digest: bytes | None) -> bool | None:
        """True: unchanged; None: unchanged and no longer racy (drop the digest); False: changed."""
        if stat_signature(path) != sig:
            return False
        if digest is None:
            return True
        try:
            with open(path, "rb") as fh:
                if _digest(fh.read()) != digest:
                    return False
        except OSError:
            return False
        return None if sig is None or not self._racy(sig) else True

    def get(self, path: str) -> Hit | None:
        """The entry of ``path`` if it is still valid (else None: parse it again)."""
        row = self._old.get(path)
        if row is None:
            return None
        try:
            hit = self._hit(path, row)
        except (TypeError, ValueError, IndexError, KeyError, pickle.UnpicklingError):
            hit = None  # a malformed entry is a miss like any other
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def _hit(self, path: str, row: tuple[Any, ...]) -> Hit | None:
        files, docs, issues, timelines = row
        for file, sig, digest in files:
            if digest is not None:
                break
            try:  # the common case, inlined: one stat of an unchanged, settled file
                if signature(os.stat(file)) != sig:
                    return None
            except (OSError, ValueError):
                if sig is not None:
                    return None
        else:
            files = None
        if files is not None:  # some file was recently modified: compare its bytes too
            settled = []
            for file, sig, digest in files:
                fresh = self._fresh(file, sig, digest)
                if fresh is False:
                    return None
                settled.append((file, sig, digest if fresh else None))
            if settled != list(files):
                row = (tuple(settled), docs, issues, timelines)
                self._changed = True  # digests no longer needed are dropped
        self._new[path] = row
        return Hit(
            [(n, at, ref, m and CachedManifest.from_row(m)) for n, at, ref, m in docs],
            [ManifestIssue(*i) for i in issues],
            timelines,
        )

    # ------------------------------------------------------------------ writing

    def _racy(self, sig: Sig) -> bool:
        return max(sig[2], sig[3]) >= self.started_ns - RACY_NS

    def put(
        self,
        path: str,
        reads: Reads,
        docs: list[tuple[str, str, str, CachedManifest | None]],
        issues: list[ManifestIssue],
    ) -> None:
        """Remember one file's load; not cacheable unless the file itself was read first."""
        if not reads.files or reads.files[0][0] != path or reads.files[0][1] is None:
            return
        files = tuple(
            (file, sig, _digest(raw) if raw is not None and sig and self._racy(sig) else None)
            for file, sig, raw in reads.files
        )
        rows = tuple((name, at, ref, None if m is None else m.row()) for name, at, ref, m in docs)
        issue_rows = tuple((i.path, i.line, i.col, i.ref, i.field, i.message) for i in issues)
        self._new[path] = (files, rows, issue_rows, tuple(reads.timelines))
        self._changed = True

    def save(self) -> None:
        """Write the entries of this run if anything changed; failures are ignored."""
        if not self._changed and self._new.keys() == self._old.keys():
            return
        with contextlib.suppress(OSError, pickle.PicklingError, ValueError, TypeError):
            self._write()

    def _write(self) -> None:
        directory = self.path.parent
        if not directory.parent.is_dir():
            return  # no state directory yet: a read-only plan does not create one
        if not directory.is_dir():
            directory.mkdir()
            (directory / ".gitignore").write_text("# the plan cache: never commit it\n*\n")
        tmp = directory / f".{CACHE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "wb") as fh:
                pickle.dump(self.key, fh, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(self._new, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
