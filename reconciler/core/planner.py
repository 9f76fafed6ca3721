"""The planner: (desired manifests, state, options, drift) -> Plan. Pure; no I/O, no clock.

Actions (product.md §3-4): create, render, update, adopt, noop, orphan, delete. Drift (a
remote project changed outside git, see ``reconciler.core.drift``) is only reported, unless
``PlanOptions.heal`` asks to revert it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

from reconciler.core.canonical import (
    CANONICAL_VERSION,
    METADATA_KEYS,
    RENDER_KEYS,
    SpecHashes,
    applied_spec,
    spec_hashes,
)
from reconciler.core.diff import DiffEntry, diff_specs
from reconciler.core.drift import ProjectDrift
from reconciler.core.plan_fastpath import parts_of, up_to_date
from reconciler.core.plan_model import (
    ACTIONS,
    PRUNE_ANNOTATION,
    Change,
    DesiredProject,
    Plan,
    PlanOptions,
)
from reconciler.core.state import State

__all__ = [  # the plan's types live in plan_model; importing them from here keeps working
    "ACTIONS",
    "PRUNE_ANNOTATION",
    "Change",
    "DesiredProject",
    "Plan",
    "PlanOptions",
    "plan",
]


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


def _plan_desired(m: DesiredProject, state: State, options: PlanOptions) -> Change:
    entry = state.projects.get(m.name)
    # A cached manifest carries its hashes: an unchanged project is then planned without
    # canonicalising (or even reading) either spec.
    parts = parts_of(m)
    if parts is not None:
        change = up_to_date(m, parts, entry, state, options)
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
        parts = getattr(m, "fast_digest", None) or parts_of(m)
        change = (
            None if parts is None else up_to_date(m, parts, projects.get(m.name), state, options)
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
