"""Executes a plan against VOD: concurrency, durable intents, ambiguity checks, outcomes.

Every non-idempotent call (AddEditingProject, ProduceEditingProjectVideo) is preceded by a
journaled *intent* and followed by a journaled result, so after a crash the next run knows
a call may have happened and asks VOD (GetEditingProject / SearchEditingProject) before
it pays for anything again. The client is injected: tests run this same engine against
the emulator.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.core.canonical import canonicalize
from reconciler.core.planner import Change, Plan
from reconciler.engine.protocol import VodLike
from reconciler.engine.recovery import (
    CLOCK_TOLERANCE,
    change_hashes,
    parse_time,
    render_gap_wait,
    render_happened,
)
from reconciler.errors import VodError


class Journal(Protocol):
    """The part of the state store the engine writes to."""

    def record(self, event: dict[str, Any]) -> None: ...


@dataclass
class Outcome:
    name: str
    action: str  # what was done: created, rendered, updated, adopted, recorded, unchanged,
    #              deleted, orphaned, failed
    project_id: str | None = None
    media_id: str | None = None
    request_id: str | None = None
    detail: str = ""
    error: VodError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(o.action for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Executor:
    """Carries out one plan; ``run`` is the entry point."""

    def __init__(
        self,
        journal: Journal,
        client: VodLike,
        *,
        parallelism: int = 8,
        clock: Callable[[], str] = utc_now,
        on_outcome: Callable[[Outcome], None] | None = None,
        known_project_ids: frozenset[str] = frozenset(),
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.journal = journal
        self.client = client
        self.parallelism = parallelism
        self.clock = clock
        self.on_outcome = on_outcome
        self.known_project_ids = known_project_ids
        self._now = now
        self._sleep = sleep
        self._lock = threading.Lock()
        self._claimed: set[str] = set()  # projects an interrupted create was matched with

    # ------------------------------------------------------------------ entry point

    def run(self, plan: Plan) -> ApplyResult:
        result = ApplyResult()

        def one(change: Change) -> None:
            outcome = self._execute(change)
            with self._lock:
                result.outcomes.append(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome)

        quiet = [c for c in plan.changes if c.action in ("noop", "orphan")]
        loud = [c for c in plan.changes if c.action not in ("noop", "orphan")]
        for change in quiet:
            one(change)
        # Interrupted calls are settled first: a project this run creates must not be
        # mistaken (same title) for one an interrupted run created.
        for batch in ([c for c in loud if c.verify], [c for c in loud if not c.verify]):
            if batch:
                with ThreadPoolExecutor(max_workers=max(1, self.parallelism)) as pool:
                    for future in [pool.submit(one, c) for c in batch]:
                        future.result()
        order = {c.name: i for i, c in enumerate(plan.changes)}
        result.outcomes.sort(key=lambda o: order.get(o.name, 0))
        return result

    # ------------------------------------------------------------------ helpers

    def _event(self, kind: str, change: Change, **data: Any) -> None:
        event: dict[str, Any] = {"type": kind, "name": change.name, "at": self.clock(), **data}
        if kind in ("rendered", "updated", "recorded"):
            event.setdefault("spec", change.spec)
            assert change.spec is not None
            event.setdefault("hashes", change_hashes(change).as_dict())
            event["labels"] = change.labels
            event["annotations"] = change.annotations
        self.journal.record(event)

    def _failed(self, change: Change, exc: VodError, op: str, *, permanent: bool) -> Outcome:
        if permanent:
            self._event(
                "failed",
                change,
                op=op,
                render_hash=change.hashes.render if change.hashes else None,
                code=exc.code,
                message=exc.message,
                request_id=exc.request_id,
            )
        elif not exc.ambiguous:
            self._event("cleared", change)  # VOD answered: nothing happened, retry next run
        return Outcome(
            change.name,
            "failed",
            change.project_id,
            request_id=exc.request_id,
            detail=f"{op} failed",
            error=exc,
        )

    def _execute(self, change: Change) -> Outcome:
        try:
            if change.action == "noop":
                if change.record:
                    self._event("recorded", change, project_id=change.project_id)
                    return Outcome(
                        change.name, "recorded", change.project_id, detail="; ".join(change.reasons)
                    )
                held = change.reasons != ("up to date",)  # e.g. a failed render not retried
                detail = "; ".join(change.reasons) if held else ""
                return Outcome(change.name, "unchanged", change.project_id, detail=detail)
            if change.action == "orphan":
                return Outcome(
                    change.name, "orphaned", change.project_id, detail="; ".join(change.reasons)
                )
            if change.verify:
                settled = self._verify(change)
                if isinstance(settled, Outcome):
                    return settled
                change = settled
            handler = {
                "create": self._create,
                "render": self._render_change,
                "update": self._update,
                "adopt": self._adopt,
                "delete": self._delete,
            }[change.action]
            return handler(change)
        except VodError as exc:  # an unexpected read failure (e.g. Get during verify)
            return Outcome(
                change.name,
                "failed",
                change.project_id,
                request_id=exc.request_id,
                detail=f"{change.action} failed",
                error=exc,
            )

    # ------------------------------------------------------------------ actions

    def _spec(self, change: Change) -> dict[str, Any]:
        assert change.spec is not None
        return change.spec

    def _create(self, change: Change) -> Outcome:
        spec = self._spec(change)
        self._event("intent", change, op="create", title=spec["title"])
        try:
            project = self.client.add_editing_project(
                title=spec["title"],
                description=spec.get("description"),
                cover_url=spec.get("coverURL"),
            )
        except VodError as exc:
            return self._failed(change, exc, "AddEditingProject", permanent=False)
        self._event("created", change, project_id=project.project_id, request_id=project.request_id)
        outcome = self._render(change, project.project_id)
        if outcome.ok:
            outcome.action = "created"
        return outcome

    def _render_change(self, change: Change) -> Outcome:
        assert change.project_id is not None
        return self._render(change, change.project_id)

    def _render(self, change: Change, project_id: str) -> Outcome:
        spec = self._spec(change)
        render_hash = change_hashes(change).render
        self._keep_render_gap(change)
        self._event("intent", change, op="render", render_hash=render_hash, project_id=project_id)
        try:
            result = self.client.produce_editing_project_video(
                project_id=project_id,
                timeline=spec["timeline"],
                title=spec["title"],
                description=spec.get("description"),
                cover_url=spec.get("coverURL"),
                media_metadata=spec.get("mediaMetadata"),
                produce_config=spec.get("produceConfig"),
                user_data=spec.get("userData"),
            )
        except VodError as exc:
            permanent = not exc.retryable and not exc.ambiguous
            out = self._failed(change, exc, "ProduceEditingProjectVideo", permanent=permanent)
            out.project_id = project_id
            return out
        self._event(
            "rendered",
            change,
            project_id=project_id,
            media_id=result.media_id,
            request_id=result.request_id,
        )
        return Outcome(
            change.name,
            "rendered",
            project_id,
            media_id=result.media_id,
            request_id=result.request_id,
        )

    def _update(self, change: Change) -> Outcome:
        spec = self._spec(change)
        assert change.project_id is not None
        try:
            request_id = self.client.update_editing_project(
                change.project_id,
                title=spec["title"],
                description=spec.get("description", ""),
                cover_url=spec.get("coverURL"),
            )
        except VodError as exc:
            return Outcome(
                change.name,
                "failed",
                change.project_id,
                request_id=exc.request_id,
                detail="UpdateEditingProject failed",
                error=exc,
            )
        self._event("updated", change, project_id=change.project_id)
        return Outcome(change.name, "updated", change.project_id, request_id=request_id)

    def _adopt(self, change: Change) -> Outcome:
        spec = self._spec(change)
        project_id = change.project_id
        assert project_id is not None
        project = self.client.get_editing_project(project_id)
        if canonicalize(project.timeline or {}) == canonicalize(spec["timeline"]):
            remote_meta = (project.title or "", project.description or "", project.cover_url or "")
            wanted_meta = (spec["title"], spec.get("description", ""), spec.get("coverURL", ""))
            if remote_meta != wanted_meta:
                change = replace(change, project_id=project_id)
                out = self._update(change)
                if out.ok:
                    out.action = "adopted"
                    out.detail = "timeline already matched; metadata updated, no render"
                return out
            self._event("recorded", change, project_id=project_id)
            return Outcome(
                change.name,
                "adopted",
                project_id,
                detail="timeline already matched; recorded without a render",
            )
        out = self._render(change, project_id)
        if out.ok:
            out.action = "adopted"
            out.detail = "timeline differed; rendered"
        return out

    def _delete(self, change: Change) -> Outcome:
        assert change.project_id is not None
        try:
            request_id = self.client.delete_editing_projects([change.project_id])
        except VodError as exc:
            if exc.code != "InvalidEditingProject.NotFound":
                return Outcome(
                    change.name,
                    "failed",
                    change.project_id,
                    request_id=exc.request_id,
                    detail="DeleteEditingProject failed",
                    error=exc,
                )
            request_id = exc.request_id or ""
        self.journal.record(
            {"type": "deleted", "name": change.name, "at": self.clock(), "request_id": request_id}
        )
        return Outcome(change.name, "deleted", change.project_id, request_id=request_id)

    # ------------------------------------------------------------------ crash recovery

    def _pending(self, change: Change) -> dict[str, Any]:
        return {"at": None, **(change.pending or {})}

    def _keep_render_gap(self, change: Change) -> None:
        """Wait (rarely: just after another change) so ``render_happened`` can tell."""
        wait = render_gap_wait(change, self._now())
        if wait > 0:
            self._sleep(wait)

    def _verify(self, change: Change) -> Outcome | Change:
        """Settle an interrupted call: its outcome, or the change to carry on with."""
        pending = self._pending(change)
        since = parse_time(pending.get("at"))
        since = since - CLOCK_TOLERANCE if since else None
        spec = self._spec(change)
        if pending.get("op") == "create" and not change.project_id:
            title = pending.get("title") or spec["title"]
            found = [
                p
                for p in self.client.search_editing_projects(title=title)
                if p.title == title
                and p.project_id not in self.known_project_ids
                and (since is None or (parse_time(p.creation_time) or since) >= since)
            ]
            with self._lock:  # two interrupted creates with one title must not share a project
                found = [p for p in found if p.project_id not in self._claimed]
                newest = max(found, key=lambda p: p.creation_time or "") if found else None
                if newest is not None:
                    self._claimed.add(newest.project_id)
            if newest is None:
                self._event("cleared", change)
                return change
            self._event("created", change, project_id=newest.project_id, request_id=None)
            out = self._render(change, newest.project_id)
            if out.ok:
                out.action = "created"
                out.detail = "found the project an interrupted run had created; rendered it"
            return out
        if pending.get("op") == "render" and change.project_id:
            project = self.client.get_editing_project(change.project_id)
            if render_happened(change, pending, project):
                self._event(
                    "rendered", change, project_id=change.project_id, media_id=None, request_id=None
                )
                return Outcome(
                    change.name,
                    "recorded",
                    change.project_id,
                    detail="an interrupted run's render had reached VOD; recorded, "
                    "not paid for twice",
                )
            # Whatever modified the project (even the interrupted call, for a spec since
            # changed) is now known: the next render must come, and be judged, after it.
            seen = project.modified_time
            self._event("cleared", change, seen_modified=seen)
            if seen and (change.last_change_at or "") < seen:
                return replace(change, last_change_at=seen)
        return change
