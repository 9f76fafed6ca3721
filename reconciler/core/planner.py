"""The planner: (desired manifests, state, options, drift) -> Plan. Pure; no I/O, no clock.

Actions (product.md §3-4): create, render, update, adopt, noop, orphan, delete. Drift (a
remote project changed outside git, see ``reconciler.core.drift``) is only reported, unless
``PlanOptions.heal`` asks to revert it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Protocol

from reconciler.core.canonical import (
    CANONICAL_VERSION,
    METADATA_KEYS,
    RENDER_KEYS,
    SpecDigest,
    SpecHashes,
    applied_spec,
    spec_hashes,
)
from reconciler.core.diff import DiffEntry, diff_specs
from reconciler.core.drift import ProjectDrift
from reconciler.core.state import State

ACTIONS = ("create", "render", "update", "adopt", "noop", "orphan", "delete")
PRUNE_ANNOTATION = "reconciler/prune"


class DesiredProject(Protocol):
    """What the planner needs of a manifest (``reconciler.adapters.loader.Manifest``)."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def annotations(self) -> dict[str, str]: ...
    @property
    def spec(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PlanOptions:
    only: frozenset[str] = frozenset()
    selector: Mapping[str, str] = field(default_factory=dict)
    force: frozenset[str] = frozenset()
    prune: bool = False
    max_deletes: int = 10
    allow_empty: bool = False
    retry_failed: bool = False
    heal: bool = False  # revert drift: render a drifted timeline, update drifted metadata


@dataclass(frozen=True)
class Change:
    name: str
    action: str
    project_id: str | None
    reasons: tuple[str, ...]
    diff: tuple[DiffEntry, ...] = ()
    spec: dict[str, Any] | None = None  # canonical desired spec (None for orphan/delete)
    hashes: SpecHashes | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    record: bool = False  # a noop that still updates the state (e.g. userData changed)
    verify: bool = False  # an interrupted call must be checked remotely before acting
    pending: dict[str, Any] | None = None  # the interrupted call's journaled intent
    held: bool = False  # not resubmitted: this spec's last render failed permanently
    drift: bool = False  # the remote project changed outside git (see the reasons)
    # When an apply last changed this project remotely (state times, the engine's clock): VOD's
    # ModifiedTime must be later for an interrupted render that left the Timeline as it was
    # to count as having happened (see ``reconciler.engine.apply``).
    last_change_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "project_id": self.project_id,
            "reasons": list(self.reasons),
            "diff": [str(d) for d in self.diff],
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    refusals: tuple[str, ...] = ()  # guard rails that stopped part of the plan (prune limits)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """True when apply would touch VOD (orphans and local-only bookkeeping do not)."""
        return any(
            c.action in ("create", "render", "update", "adopt", "delete") for c in self.changes
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "changes": [c.as_dict() for c in self.changes],
            "summary": self.summary,
        }


def _selected(name: str, labels: Mapping[str, str], options: PlanOptions) -> bool:
    if options.only and name not in options.only:
        return False
    return all(labels.get(k) == v for k, v in options.selector.items())


def _hashes_of(entry: Mapping[str, Any], state: State) -> SpecHashes | None:
    """Stored hashes, re-derived from the stored spec when the canonical form changed.

    The stored spec itself is read only when it must be re-hashed (a state store may load
    it lazily): the state writes ``spec`` and ``hashes`` together.
    """
    if "spec" not in entry:
        return None
    h = entry.get("hashes")
    if state.canonical_version == CANONICAL_VERSION and h is not None:
        return SpecHashes(render=h["render"], metadata=h["metadata"], userdata=h["userdata"])
    spec = entry["spec"]
    return None if spec is None else spec_hashes(spec)


def _last_change_at(entry: Mapping[str, Any] | None) -> str | None:
    """The latest time the state records for a call that changed this project remotely."""
    if not entry:
        return None
    times = (
        entry.get("applied_at"),
        entry.get("created_at"),
        (entry.get("last_render") or {}).get("submitted_at"),
        (entry.get("failed") or {}).get("at"),
        entry.get("seen_modified_at"),  # VOD's ModifiedTime when an interrupted call was settled
    )
    known = [t for t in times if isinstance(t, str) and t]
    return max(known) if known else None  # one fixed UTC format: text order is time order


def _changed_keys(diff: Iterable[DiffEntry]) -> list[str]:
    keys: list[str] = []
    for d in diff:
        head = d.path.split(".", 1)[0].split("[", 1)[0]
        key = (
            head if head in (*RENDER_KEYS, *METADATA_KEYS, "userData", "projectId") else "timeline"
        )
        if key not in keys:
            keys.append(key)
    return keys


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
        """``key``: the desired hashes, joined by newlines (see ``_parts_of``).

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


def _parts_of(m: DesiredProject) -> tuple[str, str | None] | None:
    """(hash key, projectId) of a manifest that carries its hashes: ``fast_digest`` (the plan
    cache's manifests) or a ``SpecDigest`` as ``digest``. The hash key is the render,
    metadata and userdata hashes joined by newlines (``manifest_cache.hash_key``)."""
    parts: tuple[str, str | None] | None = getattr(m, "fast_digest", None)
    if parts is None:
        digest: SpecDigest | None = getattr(m, "digest", None)
        if digest is not None:
            h = digest.hashes
            parts = (f"{h.render}\n{h.metadata}\n{h.userdata}", digest.project_id)
    return parts


_NONE: Mapping[str, str] = MappingProxyType({})  # a missing labels/annotations entry


def _up_to_date(
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


def _plan_desired(m: DesiredProject, state: State, options: PlanOptions) -> Change:
    entry = state.projects.get(m.name)
    # A cached manifest carries its hashes: an unchanged project is then planned without
    # canonicalising (or even reading) either spec.
    parts = _parts_of(m)
    if parts is not None:
        change = _up_to_date(m, parts, entry, state, options)
        if change is not None:
            return change
    spec = applied_spec(m.spec)
    hashes = SpecHashes(*parts[0].split("\n")) if parts is not None else spec_hashes(spec)
    common: dict[str, Any] = {
        "spec": spec,
        "hashes": hashes,
        "labels": dict(m.labels),
        "annotations": dict(m.annotations),
    }
    wanted_id = spec.get("projectId")

    if entry is None or not (entry.get("project_id") or entry.get("pending")):
        if wanted_id:
            return Change(
                m.name,
                "adopt",
                wanted_id,
                ("spec.projectId names an existing project not yet in the state",),
                **common,
            )
        return Change(
            m.name, "create", None, ("new project",), tuple(diff_specs(None, spec)), **common
        )

    project_id = entry.get("project_id")
    pending = entry.get("pending")
    if pending:
        op = pending.get("op", "render")
        reason = (
            f"an earlier {op} was interrupted; VOD is asked what happened before "
            "anything is submitted again"
        )
        action = "create" if op == "create" and not project_id else "render"
        if action == "render":  # the project the intent named (an adopt has none recorded yet)
            project_id = pending.get("project_id") or project_id or wanted_id
        return Change(
            m.name,
            action,
            project_id,
            (reason,),
            tuple(diff_specs(entry.get("spec"), spec)),
            verify=True,
            pending=dict(pending),
            last_change_at=_last_change_at(entry),
            **common,
        )

    if wanted_id and wanted_id != project_id:
        return Change(
            m.name,
            "adopt",
            wanted_id,
            (f"spec.projectId changed from {project_id} to {wanted_id}",),
            **common,
        )

    old = _hashes_of(entry, state)
    forced = m.name in options.force

    def diff() -> tuple[DiffEntry, ...]:  # only for the changes that show one
        return tuple(diff_specs(entry.get("spec"), spec))

    if old is None or old.render != hashes.render or forced:
        failed = entry.get("failed")
        if (
            not forced
            and not options.retry_failed
            and failed
            and failed.get("render_hash") == hashes.render
        ):
            return Change(
                m.name,
                "noop",
                project_id,
                (
                    f"the last render of this spec failed permanently ({failed.get('code')}:"
                    f" {failed.get('message')}); change the spec or pass --retry-failed",
                ),
                diff(),
                held=True,
                **common,
            )
        changes = diff()
        render_reasons = (
            ["forced with --force"]
            if forced and old and old.render == hashes.render
            else [f"{k} changed" for k in _changed_keys(changes) if k in RENDER_KEYS]
            or ["spec changed"]
        )
        return Change(
            m.name,
            "render",
            project_id,
            tuple(render_reasons),
            changes,
            last_change_at=_last_change_at(entry),
            **common,
        )
    if old.metadata != hashes.metadata:
        changes = diff()
        reasons = tuple(f"{k} changed" for k in _changed_keys(changes) if k in METADATA_KEYS)
        return Change(
            m.name, "update", project_id, reasons or ("metadata changed",), changes, **common
        )
    if old.userdata != hashes.userdata:
        return Change(
            m.name,
            "noop",
            project_id,
            ("userData changed: recorded now, sent with the next render",),
            diff(),
            record=True,
            **common,
        )
    if entry.get("labels", {}) != common["labels"] or (
        entry.get("annotations", {}) != common["annotations"]
    ):
        return Change(
            m.name,
            "noop",
            project_id,
            ("labels/annotations changed (local only)",),
            record=True,
            **common,
        )
    return Change(m.name, "noop", project_id, ("up to date",), **common)


def _with_drift(change: Change, d: ProjectDrift, entry: Mapping[str, Any], heal: bool) -> Change:
    """Fold one project's drift into its planned change (report it, or revert it with heal)."""
    if change.action in ("create", "adopt") or change.verify or change.spec is None:
        return change  # nothing applied to drift from, or the state must be settled first
    reason = f"drift: {d.summary}"
    kept = tuple(r for r in change.reasons if r != "up to date")
    failed = entry.get("failed") or {}
    if change.hashes and failed.get("render_hash") == change.hashes.render:
        heal = False  # the desired spec failed to render; reverting would only fail again
    if not heal:
        if change.action != "noop":
            return replace(change, reasons=(*kept, reason), drift=True)
        fix = "apply --heal creates it again" if d.deleted else "apply --heal reverts it"
        return replace(
            change,
            reasons=(f"{reason} ({fix})", *kept),
            diff=change.diff + d.entries,
            drift=True,
        )
    if d.deleted:
        if change.spec.get("projectId"):
            why = f"{reason}; not recreated: spec.projectId names the deleted project"
            return replace(change, reasons=(why, *kept), drift=True)
        return replace(
            change,
            action="create",
            project_id=None,
            reasons=(f"{reason}; --heal creates it again", *kept),
            diff=tuple(diff_specs(None, change.spec)),
            drift=True,
        )
    if change.action == "render" or (change.action == "update" and not d.render_drift):
        why = f"{reason}; this {change.action} reverts it"
        return replace(change, reasons=(*kept, why), drift=True)
    action, how = ("render", "a render") if d.render_drift else ("update", "an update")
    return replace(
        change,
        action=action,
        reasons=(f"{reason}; --heal reverts it with {how}", *kept),
        diff=d.heal_diff(change.spec),
        record=False,
        drift=True,
    )


_by_name = attrgetter("name")


def plan(
    desired: Sequence[DesiredProject],
    state: State,
    options: PlanOptions | None = None,
    drift: Mapping[str, ProjectDrift] | None = None,
) -> Plan:
    options = options or PlanOptions()
    changes: list[Change] = []
    wanted = {m.name for m in desired}
    selecting = bool(options.only or options.selector)
    projects = state.projects
    for m in sorted(desired, key=_by_name):
        if selecting and not _selected(m.name, m.labels, options):
            continue
        # the unchanged project, first: most of a catalogue, planned from hashes alone
        parts = getattr(m, "fast_digest", None) or _parts_of(m)
        change = (
            None if parts is None else _up_to_date(m, parts, projects.get(m.name), state, options)
        )
        if change is None:
            change = _plan_desired(m, state, options)
        found = drift.get(m.name) if drift else None
        if found is not None and found.drifted:
            entry = projects.get(m.name, {})
            change = _with_drift(change, found, entry, options.heal)
        changes.append(change)

    refusals: list[str] = []
    orphans = [
        (name, projects[name])
        for name in sorted(name for name in projects if name not in wanted)
        if _selected(name, projects[name].get("labels", {}), options)
    ]
    deletable: list[str] = []
    for name, entry in orphans:
        protected = entry.get("annotations", {}).get(PRUNE_ANNOTATION) == "disabled"
        if options.prune and not protected and entry.get("project_id"):
            deletable.append(name)
    if options.prune and deletable and not desired and not options.allow_empty:
        refusals.append(
            "refusing to prune: the manifest set is empty (pass --allow-empty if "
            "you really mean to delete every project)"
        )
        deletable = []
    if len(deletable) > options.max_deletes:
        refusals.append(
            f"refusing to prune {len(deletable)} project{'s' if len(deletable) != 1 else ''}: "
            f"more than --max-deletes {options.max_deletes}"
        )
        deletable = []
    for name, entry in orphans:
        if name in deletable:
            changes.append(
                Change(
                    name,
                    "delete",
                    entry.get("project_id"),
                    ("manifest removed; --prune deletes the remote project",),
                )
            )
        else:
            why = "manifest removed; kept remotely (use apply --prune to delete)"
            if entry.get("annotations", {}).get(PRUNE_ANNOTATION) == "disabled":
                why = f"manifest removed; protected by annotation {PRUNE_ANNOTATION}: disabled"
            elif options.prune and refusals and entry.get("project_id"):
                why = "manifest removed; not deleted: pruning was refused (see below)"
            changes.append(Change(name, "orphan", entry.get("project_id"), (why,)))
    return Plan(tuple(changes), tuple(refusals))
