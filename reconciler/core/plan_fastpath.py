"""The planner's fast path: an unchanged project decided from precomputed hashes alone.

At catalogue scale most projects are unchanged; a cached manifest carries its hashes, so
they are planned without canonicalising (or even reading) either spec. Anything unusual
returns None and takes the full path in ``reconciler.core.planner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from types import MappingProxyType
from typing import Any

from reconciler.core.canonical import CANONICAL_VERSION, SpecDigest, SpecHashes, applied_spec
from reconciler.core.plan_model import Change, DesiredProject, PlanOptions
from reconciler.core.state import State


class _UpToDate(Change):
    """An "up to date" noop decided from precomputed hashes: its canonical spec (and its
    ``SpecHashes``) are built only if something reads them (at catalogue scale, nothing
    usually does). Its fixed fields are class attributes (see ``of``)."""

    action = "noop"
    reasons = ("up to date",)

    @property
    def spec(self) -> dict[str, Any] | None:
        d = self.__dict__
        if "_spec" not in d:
            d["_spec"] = applied_spec(d.pop("_m").spec)
        spec: dict[str, Any] | None = d["_spec"]
        return spec

    @spec.setter
    def spec(self, value: dict[str, Any] | None) -> None:
        self.__dict__["_spec"] = value

    @property
    def hashes(self) -> SpecHashes | None:
        d = self.__dict__
        if "_hashes" not in d:
            render, metadata, userdata = d.pop("_key").split("\n")
            d["_hashes"] = SpecHashes(render, metadata, userdata)
        hashes: SpecHashes | None = d["_hashes"]
        return hashes

    @hashes.setter
    def hashes(self, value: SpecHashes | None) -> None:
        self.__dict__["_hashes"] = value

    def __eq__(self, other: object) -> bool:  # equal to the Change the slow path builds
        if not isinstance(other, Change):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(Change))

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def of(
        cls,
        m: DesiredProject,
        project_id: str,
        key: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> Change:
        """``key``: the desired hashes, joined by newlines (see ``parts_of``).

        Only what differs between noops is set on the instance: every other field is a
        class attribute (``action``, ``reasons`` above; the defaults of ``Change``).
        """
        change = cls.__new__(cls)
        d = change.__dict__
        d["name"] = m.name
        d["project_id"] = project_id
        d["labels"] = labels
        d["annotations"] = annotations
        d["_m"] = m
        d["_key"] = key
        return change


# every field an "up to date" noop does not set itself has a plain default to fall back on
assert all(
    f.name in ("name", "project_id", "labels", "annotations", "action", "reasons")
    or (f.default is not MISSING and f.default_factory is MISSING)
    for f in fields(Change)
)


def parts_of(m: DesiredProject) -> tuple[str, str | None] | None:
    """(hash key, projectId) of a manifest that carries its hashes: ``fast_digest`` (the plan
    cache's manifests) or a ``SpecDigest`` as ``digest``. The hash key is the render,
    metadata and userdata hashes joined by newlines (``cachefile.hash_key``)."""
    parts: tuple[str, str | None] | None = getattr(m, "fast_digest", None)
    if parts is None:
        digest: SpecDigest | None = getattr(m, "digest", None)
        if digest is not None:
            h = digest.hashes
            parts = (f"{h.render}\n{h.metadata}\n{h.userdata}", digest.project_id)
    return parts


_NONE: Mapping[str, str] = MappingProxyType({})  # a missing labels/annotations entry


def up_to_date(
    m: DesiredProject,
    parts: tuple[str, str | None],
    entry: Mapping[str, Any] | None,
    state: State,
    options: PlanOptions,
) -> Change | None:
    """The "up to date" noop ``_plan_desired`` would return, decided from hashes alone; None
    when it would not say "up to date" (or when that takes more than hashes to tell).

    Entries are read with ``dict.get``: the state's entries are dicts, and a lazily decoded
    one (``state_cache.LazyEntry``) holds every key but spec/history/last_render/hashes
    itself; while it holds back its hashes it has a ``hash_key`` (and a spec).
    """
    if not isinstance(entry, dict) or state.canonical_version != CANONICAL_VERSION:
        return None  # (_hashes_of would re-derive the stored hashes from the stored spec)
    get = dict.get
    project_id = get(entry, "project_id")
    if not project_id or get(entry, "pending") or (options.force and m.name in options.force):
        return None
    key, wanted_id = parts
    if wanted_id and wanted_id != project_id:
        return None
    stored = None if type(entry) is dict else getattr(entry, "hash_key", None)
    if stored is not None:
        if stored != key:
            return None
    else:
        h = get(entry, "hashes")
        if h is None or "spec" not in entry:
            return None
        if (h["render"], h["metadata"], h["userdata"]) != tuple(key.split("\n")):
            return None
    labels, annotations = m.labels, m.annotations
    if get(entry, "labels", _NONE) != labels or get(entry, "annotations", _NONE) != annotations:
        return None
    return _UpToDate.of(m, project_id, key, dict(labels), dict(annotations))
