"""``CachedManifest``: a manifest as the plan cache keeps it and hands it back -- one tuple,
its hot fields first, its spec decoded only when something reads it (``manifest_cache``)."""

from __future__ import annotations

import pickle
import sys
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from reconciler.adapters.cachefile import ColdSection, hash_key, unpickle_plain
from reconciler.core.canonical import SpecDigest, SpecHashes, spec_digest

if TYPE_CHECKING:
    from reconciler.core.models import Manifest

__all__ = ["BLOB", "COLD", "SIZE", "CachedManifest"]

_LAYOUT = (  # a manifest row: the hot part of a cached manifest, then where its spec is
    "name",
    "labels",
    "annotations",
    "path",
    "line",
    "deps",
    "hash_key",  # see hash_key()
    "project_id",
)
BLOB, SIZE, COLD = len(_LAYOUT), len(_LAYOUT) + 1, len(_LAYOUT) + 2


class CachedManifest(tuple):  # type: ignore[type-arg]
    """A ``Manifest`` from the cache (or just parsed): the same fields, plus its ``digest``.

    A tuple (``_LAYOUT``, then the spec's pickle or its place in the cache file): 10,000 of
    them are built per plan, and a tuple is the cheapest object to build. ``spec`` is
    decoded on first use; an unchanged project is planned from ``fast_digest`` alone.
    (It mirrors ``Manifest`` instead of subclassing it because ``reconciler.core.models``
    imports pydantic, which a cached run does not otherwise need.)
    """

    if TYPE_CHECKING:
        name: str
        labels: dict[str, str]
        annotations: dict[str, str]
        path: str
        line: int
        deps: tuple[str, ...]
        fast_digest: tuple[str, str | None]
    else:
        name = property(itemgetter(0))
        labels = property(itemgetter(1))
        annotations = property(itemgetter(2))
        path = property(itemgetter(3))
        line = property(itemgetter(4))
        deps = property(itemgetter(5))
        # (hash_key(), projectId): what the planner compares with the state
        fast_digest = property(itemgetter(slice(6, 8)))

    @property
    def digest(self) -> SpecDigest:
        return SpecDigest(SpecHashes(*self[6].split("\n")), self[7])

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] | None = self.__dict__.get("_spec")
        if spec is None:
            blob, cold = self[BLOB], self[COLD]
            spec = unpickle_plain(blob if cold is None else cold.read(blob, self[SIZE]))
            self.__dict__["_spec"] = spec
        return spec

    @property
    def ref(self) -> str:
        return f"EditingProject/{self[0]}"

    def _fields(self) -> tuple[Any, ...]:
        return (self.name, self.labels, self.annotations, self.spec, self.path, self.line)

    def __eq__(self, other: object) -> bool:  # equal to the Manifest it stands for
        theirs = tuple(getattr(other, f, None) for f in ("name", "labels", "annotations"))
        theirs += tuple(getattr(other, f, None) for f in ("spec", "path", "line"))
        return self._fields() == theirs and self.deps == tuple(getattr(other, "deps", ()))

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CachedManifest(name={self.name!r}, path={self.path!r}, line={self.line})"

    @classmethod
    def of(cls, manifest: Manifest, *, canonical: bool = False) -> CachedManifest:
        """A just-parsed manifest, digested and ready to be cached.

        The parsed spec is let go (it is decoded again if read): at 10,000 manifests keeping
        a million small objects alive costs more memory and GC time than re-decoding the few
        specs a plan of unchanged projects reads. ``canonical``: see ``spec_digest``.
        """
        spec = manifest.spec
        blob = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        digest = spec_digest(spec, canonical=canonical)
        h = digest.hashes
        name = manifest.name
        intern = sys.intern  # label keys and values repeat across a catalogue: share them
        labels = {intern(k): intern(v) for k, v in manifest.labels.items()}
        annotations = {intern(k): v for k, v in manifest.annotations.items()}
        row = (name, labels, annotations, manifest.path, manifest.line, tuple(manifest.deps))
        key = hash_key(h.render, h.metadata, h.userdata)
        return cls((*row, key, digest.project_id, blob, None, None))

    def __reduce__(self) -> Any:  # a copy or pickle carries its spec's pickle itself
        blob, cold = self[BLOB], self[COLD]
        if cold is not None:
            blob = cold.read(blob, self[SIZE])
        return (CachedManifest, ((*self[:BLOB], blob, None, None),))

    def row(self) -> tuple[Any, ...]:
        """Plain data for the cache file (the blob, or its place in the cold section)."""
        return tuple(self[:COLD])

    @classmethod
    def from_row(cls, row: tuple[Any, ...], cold: ColdSection | None) -> CachedManifest:
        return cls((*row, cold))
