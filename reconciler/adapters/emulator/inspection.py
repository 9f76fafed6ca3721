"""Inspection for tests: the call log, counts, state dumps and out-of-band edits.

The same operations are reachable in-process (methods of ``Emulator``) and over HTTP under
``/_emulator/`` (unauthenticated, for local tests only)::

    GET  /_emulator/health                     {"ok": true}
    GET  /_emulator/calls[?action=A&limit=N]   {"Calls": [CallRecord...]}
    GET  /_emulator/counts                     {"ByAction": {A: n}, "ByProject": {P: {A: n}}}
    POST /_emulator/reset                      forget the call log and counts
    GET  /_emulator/projects                   every project with its Timeline and last job
    POST /_emulator/projects/<id>/timeline     body: a Timeline JSON -> set it "outside git"
    GET  /_emulator/jobs | /_emulator/events   produce jobs / ProduceMediaComplete events
    GET  /_emulator/media                      {MediaId: seconds}
    POST /_emulator/media                      body {MediaId: seconds} -> register media
    POST /_emulator/settle                     finish the productions that are due now
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler.adapters.emulator.apierrors import JSON_CONTENT_TYPE, ApiFault, project_not_found
from reconciler.adapters.emulator.media import parse_timeline
from reconciler.adapters.emulator.models import CallRecord, EventRecord, Job, Project
from reconciler.adapters.emulator.store import Store

if TYPE_CHECKING:
    from reconciler.adapters.emulator.actions import Actions
    from reconciler.adapters.emulator.media import MediaLibrary
    from reconciler.adapters.emulator.service import EmulatorResponse


@dataclass(frozen=True)
class Counts:
    by_action: dict[str, int]
    by_project: dict[tuple[str, str], int]  # (action, project_id) -> n

    def of(self, action: str, project_id: str | None = None) -> int:
        if project_id is None:
            return self.by_action.get(action, 0)
        return self.by_project.get((action, project_id), 0)

    def to_json(self) -> dict[str, Any]:
        per_project: dict[str, dict[str, int]] = {}
        for (action, pid), n in sorted(self.by_project.items()):
            per_project.setdefault(pid, {})[action] = n
        return {"ByAction": dict(sorted(self.by_action.items())), "ByProject": per_project}


class InspectionMixin:
    _lock: threading.RLock
    _store: Store
    _media: MediaLibrary
    _actions: Actions
    _clock: Callable[[], float]

    def settle(self) -> int:  # provided by Emulator; declared for the methods below
        raise NotImplementedError("InspectionMixin is only used through Emulator")

    def calls(self, action: str | None = None, limit: int | None = None) -> list[CallRecord]:
        """Calls received, oldest first (``limit``: only the most recent ones)."""
        with self._lock:
            return self._store.calls(action=action, limit=limit)

    def counts(self) -> Counts:
        by_action: dict[str, int] = {}
        by_project: dict[tuple[str, str], int] = {}
        with self._lock:
            rows = self._store.counts()
        for action, pid, n in rows:
            if pid:
                by_project[(action, pid)] = n
            else:
                by_action[action] = n
        return Counts(by_action, by_project)

    def reset_calls(self) -> None:
        with self._lock, self._store.transaction():
            self._store.reset_calls()

    def projects(self) -> list[Project]:
        with self._lock:
            return self._store.all_projects()

    def jobs(self) -> list[Job]:
        with self._lock:
            return self._store.jobs()

    def events(self) -> list[EventRecord]:
        with self._lock:
            return self._store.events()

    def media(self) -> dict[str, float]:
        with self._lock:
            return self._store.media()

    def register_media(self, media: dict[str, float]) -> None:
        with self._lock, self._store.transaction():
            self._media.seed(media, source="api")

    def set_timeline(self, project_id: str, timeline: dict[str, Any] | str) -> None:
        """Change a project's Timeline out of band (as the console would); no call is logged."""
        text = timeline if isinstance(timeline, str) else json.dumps(timeline)
        doc = parse_timeline(text)
        with self._lock, self._store.transaction():
            project = self._store.get_project(project_id)
            if project is None:
                raise project_not_found()
            project.timeline = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            project.modified_time = int(self._clock())
            self._store.save_project(project)

    def import_projects(self, titles: dict[str, str]) -> int:
        """Create projects out of band, with these IDs and titles and no Timeline yet, as if
        made earlier (a benchmark's state names them without having called anyone); IDs
        already here are left alone. No call is logged. Returns how many were created."""
        created = 0
        with self._lock, self._store.transaction():
            for project_id, title in titles.items():
                if self._store.get_project(project_id) is None:
                    project = self._actions.new_project(title, None, None, None, None)
                    self._store.insert_project(replace(project, project_id=project_id))
                    created += 1
        return created

    # ------------------------------------------------------------------ HTTP
    def inspect(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: bytes
    ) -> EmulatorResponse:
        from reconciler.adapters.emulator.service import EmulatorResponse

        try:
            status, doc = self._route(method.upper(), path.rstrip("/"), dict(query), body)
        except ApiFault as fault:
            status, doc = fault.status, {"Code": fault.code, "Message": fault.message}
        except ValueError as exc:
            status, doc = 400, {"Code": "InvalidParameter", "Message": str(exc)}
        out = json.dumps(doc, ensure_ascii=False).encode()
        return EmulatorResponse(status, [("Content-Type", JSON_CONTENT_TYPE)], out)

    def _route(self, method: str, path: str, q: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = path.split("/")[2:]  # "", "_emulator", ...
        route = "/".join(parts)
        if method == "GET" and route == "health":
            return 200, {"ok": True}
        if method == "GET" and route == "calls":
            limit = int(q["limit"]) if q.get("limit") else None
            return 200, {"Calls": [c.to_json() for c in self.calls(q.get("action"), limit)]}
        if method == "GET" and route == "counts":
            return 200, self.counts().to_json()
        if method == "POST" and route == "reset":
            self.reset_calls()
            return 200, {"ok": True}
        if method == "GET" and route == "projects":
            return 200, {"Projects": [asdict(p) for p in self.projects()]}
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "projects"
            and parts[2] == "timeline"
        ):
            self.set_timeline(parts[1], body.decode("utf-8"))
            return 200, {"ok": True}
        if method == "GET" and route == "jobs":
            return 200, {"Jobs": [asdict(j) for j in self.jobs()]}
        if method == "GET" and route == "events":
            return 200, {"Events": [e.to_json() for e in self.events()]}
        if route == "media":
            if method == "POST":
                doc = json.loads(body or b"{}")
                if not isinstance(doc, dict):
                    raise ValueError("expected {MediaId: seconds}")
                self.register_media({str(k): float(v) for k, v in doc.items()})
            return 200, {"Media": self.media()}
        if method == "POST" and route == "settle":
            return 200, {"Settled": self.settle()}
        return 404, {"Code": "NotFound", "Message": f"no inspection endpoint {method} {path}"}
