"""The editing-project API semantics (vod-api.md §1-2): one method per Action, plus settling.

Every method runs inside the caller's store transaction and the emulator lock, takes the merged
request parameters and returns the answer document without ``RequestId`` plus the project ids
the call concerned (for the call log).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from reconciler.adapters.emulator.apierrors import (
    ApiFault,
    invalid,
    missing,
    missing_parameter,
    project_not_found,
)
from reconciler.adapters.emulator.auth import parse_timestamp
from reconciler.adapters.emulator.config import EmulatorConfig
from reconciler.adapters.emulator.media import MediaLibrary, parse_timeline
from reconciler.adapters.emulator.models import STATUSES, Job, Project, iso
from reconciler.adapters.emulator.store import Store

Answer = tuple[dict[str, Any], tuple[str, ...]]
SORTS = {"creationtime:desc": False, "creationtime:asc": True, "desc": False, "asc": True}
USER_DATA_MAX = 256  # characters, per the current SDK docs (vod-api.md §3.5)


def compact(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class Actions:
    def __init__(
        self, store: Store, media: MediaLibrary, config: EmulatorConfig, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._media = media
        self._config = config
        self._clock = clock
        self._storage = (
            f"outin-{hashlib.md5(config.region.encode()).hexdigest()}.oss-"
            f"{config.region}.aliyuncs.com"
        )
        self.handlers: dict[str, Callable[[dict[str, str]], Answer]] = {
            "AddEditingProject": self.add,
            "UpdateEditingProject": self.update,
            "GetEditingProject": self.get,
            "SearchEditingProject": self.search,
            "DeleteEditingProject": self.delete,
            "ProduceEditingProjectVideo": self.produce,
        }

    # ------------------------------------------------------------------ CRUD
    def add(self, p: dict[str, str]) -> Answer:
        if not p.get("Title"):
            raise missing("Title")
        timeline = parse_timeline(p["Timeline"]) if p.get("Timeline") else None
        project = self.new_project(
            p["Title"],
            p.get("Description") or None,
            p.get("CoverURL") or None,
            timeline,
            p.get("Division"),
        )
        if project.cover_url is None and timeline is not None:
            project.cover_url = self._auto_cover(timeline)
        self._store.insert_project(project)
        doc = {
            k: v
            for k, v in project.to_api(with_timeline=False).items()
            if k in ("ProjectId", "Title", "Description", "Status", "CreationTime", "ModifiedTime")
        }
        return {"Project": doc}, (project.project_id,)

    def update(self, p: dict[str, str]) -> Answer:
        project = self._project(p)
        timeline = parse_timeline(p["Timeline"]) if p.get("Timeline") else None
        self._apply(project, p, timeline)
        self._store.save_project(project)
        return {}, (project.project_id,)

    def get(self, p: dict[str, str]) -> Answer:
        project = self._project(p)
        return {"Project": project.to_api(with_timeline=True)}, (project.project_id,)

    def search(self, p: dict[str, str]) -> Answer:
        page_no = _int(p, "PageNo", 1, 1, None)
        page_size = _int(p, "PageSize", 10, 1, 100)
        sort = (p.get("SortBy") or "CreationTime:Desc").lower()
        if sort not in SORTS:
            raise invalid("SortBy")
        statuses = [s.strip() for s in (p.get("Status") or "").split(",") if s.strip()]
        if any(s not in STATUSES for s in statuses):
            raise invalid("Status")
        start, end = _time(p, "StartTime"), _time(p, "EndTime")
        total, rows = self._store.search_projects(
            title=p.get("Title") or None,
            statuses=statuses or None,
            start=start,
            end=end,
            ascending=SORTS[sort],
            offset=(page_no - 1) * page_size,
            limit=page_size,
        )
        found = [r.to_api(with_timeline=False) for r in rows]
        return {"Total": total, "ProjectList": {"Project": found}}, ()

    def delete(self, p: dict[str, str]) -> Answer:
        ids = tuple(i.strip() for i in (p.get("ProjectIds") or "").split(",") if i.strip())
        if not ids:
            raise missing("ProjectIds")
        if not self._store.delete_projects(ids):
            raise project_not_found()
        return {}, ids

    # ------------------------------------------------------------------ production
    def produce(self, p: dict[str, str]) -> Answer:
        if not p.get("ProjectId") and not p.get("Timeline"):
            raise missing_parameter("ProjectId or Timeline")
        self._check_json(p)
        given = parse_timeline(p["Timeline"]) if p.get("Timeline") else None
        if p.get("ProjectId"):
            project = self._project(p)
            if given is None and project.timeline is None:
                raise invalid("Timeline", "The project has no timeline to produce.")
            self._reject(given or json.loads(project.timeline or "{}"))
            if given is not None:
                self._apply(project, p, given)
            timeline: dict[str, Any] = given or json.loads(project.timeline or "{}")
        else:
            assert given is not None
            self._reject(given)
            timeline = given
            project = self.new_project(
                p.get("Title") or "",
                p.get("Description") or None,
                p.get("CoverURL") or None,
                timeline,
                None,
            )
            self._store.insert_project(project)
        verdict = self._media.evaluate(timeline)
        now = self._clock()
        job = Job(
            media_id=uuid.uuid4().hex,
            project_id=project.project_id,
            submitted=now,
            due=now + self._config.produce_delay,
            ok=verdict.ok,
            error_code=verdict.error_code,
            error_message=verdict.error_message,
            callback_url=_callback_url(p.get("UserData")),
            duration=verdict.duration,
        )
        self._store.insert_job(job)
        project.status, project.last_job = "Producing", job.media_id
        self._store.save_project(project)
        return {"MediaId": job.media_id, "ProjectId": project.project_id}, (project.project_id,)

    def settle(self, now: float) -> list[Job]:
        """Finish every job due by ``now`` (once, across processes); returns the finished jobs."""
        done = []
        for job in self._store.due_jobs(now):
            if not self._store.claim_job(job.media_id):
                continue
            job.settled = True
            project = self._store.get_project(job.project_id)
            if project is not None and project.last_job == job.media_id:
                project.status = job.status
                self._store.save_project(project)
            if job.ok:  # the produced video becomes usable media
                self._store.put_media(job.media_id, job.duration, "produced")
            done.append(job)
        return done

    # ------------------------------------------------------------------ helpers
    def _project(self, p: dict[str, str]) -> Project:
        if not p.get("ProjectId"):
            raise missing("ProjectId")
        project = self._store.get_project(p["ProjectId"])
        if project is None:
            raise project_not_found()
        return project

    def new_project(
        self,
        title: str,
        description: str | None,
        cover: str | None,
        timeline: dict[str, Any] | None,
        division: str | None,
    ) -> Project:
        now = int(self._clock())
        return Project(
            project_id=uuid.uuid4().hex,
            title=title,
            description=description,
            cover_url=cover,
            timeline=None if timeline is None else compact(timeline),
            region_id=division or self._config.region,
            storage_location=self._storage,
            status="Normal",
            creation_time=now,
            modified_time=now,
            duration=0.0 if timeline is None else self._media.evaluate(timeline).duration,
        )

    def _apply(self, project: Project, p: dict[str, str], timeline: dict[str, Any] | None) -> None:
        if p.get("Title"):
            project.title = p["Title"]
        if "Description" in p:
            project.description = p["Description"] or None
        if "CoverURL" in p:
            project.cover_url = p["CoverURL"] or None
        if timeline is not None:
            project.timeline = compact(timeline)
            project.duration = self._media.evaluate(timeline).duration
        project.modified_time = int(self._clock())

    def _reject(self, timeline: dict[str, Any]) -> None:
        """The ``reject_media_ids`` fault: refuse the production synchronously."""
        if not self._config.reject_media_ids:
            return
        for track in timeline.get("VideoTracks") or []:
            for clip in track.get("VideoTrackClips") or []:
                if clip.get("MediaId") in self._config.reject_media_ids:
                    raise invalid(
                        "Timeline", f"The media {clip['MediaId']} cannot be used for production."
                    )

    def _auto_cover(self, timeline: dict[str, Any]) -> str | None:
        """VOD uses the first video material's thumbnail when no CoverURL was given."""
        for track in timeline.get("VideoTracks") or []:
            for clip in track.get("VideoTrackClips") or []:
                return f"https://{self._storage}/{clip['MediaId']}/snapshots/normal/00001.jpg"
        return None

    def _check_json(self, p: dict[str, str]) -> None:
        for name in ("MediaMetadata", "ProduceConfig", "UserData"):
            if p.get(name):
                try:
                    doc = json.loads(p[name])
                except ValueError:
                    doc = None
                if not isinstance(doc, dict):
                    raise invalid(name, "It must be a JSON object.")
        if len(p.get("UserData") or "") > USER_DATA_MAX:
            raise invalid("UserData", f"It must be at most {USER_DATA_MAX} characters.")
        config = json.loads(p.get("ProduceConfig") or "{}")
        if self._config.region != "cn-shanghai" and not config.get("StorageLocation"):
            raise invalid("ProduceConfig", "StorageLocation is required outside cn-shanghai.")


def _int(p: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = p.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name) from None
    if value < low or (high is not None and value > high):
        raise invalid(name, f"It must be between {low} and {high}." if high else "")
    return value


def _time(p: dict[str, str], name: str) -> int | None:
    if not p.get(name):
        return None
    ts = parse_timestamp(p[name])
    if ts is None:
        raise invalid(name, "Use the UTC format yyyy-MM-ddTHH:mm:ssZ.")
    return int(ts)


def _callback_url(user_data: str | None) -> str | None:
    try:
        doc = json.loads(user_data or "{}")
        url = doc.get("MessageCallback", {}).get("CallbackURL")
    except (ValueError, AttributeError):
        return None
    return url if isinstance(url, str) and url else None


__all__ = ["Actions", "ApiFault", "compact", "iso"]
