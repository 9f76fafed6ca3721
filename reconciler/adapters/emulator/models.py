"""Plain records the emulator keeps: projects, produce jobs, calls, events, credentials."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.adapters.vod.credentials import Credentials

STATUSES = ("Normal", "Producing", "Produced", "ProduceFailed")


def iso(ts: float) -> str:
    """UTC ``yyyy-MM-ddTHH:mm:ssZ`` as VOD formats every time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


# The emulator's key pairs are the product's credentials type (kept under the old name too).
DemoCredentials = Credentials


@dataclass
class Project:
    project_id: str
    title: str
    description: str | None
    cover_url: str | None
    timeline: str | None  # compact JSON text, exactly what GetEditingProject returns
    region_id: str
    storage_location: str
    status: str
    creation_time: int
    modified_time: int
    last_job: str | None = None
    duration: float = 0.0

    def to_api(self, *, with_timeline: bool) -> dict[str, Any]:
        """The Project object of Get (with Timeline) and Search (without) answers."""
        out: dict[str, Any] = {
            "ProjectId": self.project_id,
            "Title": self.title,
            "Description": self.description,
            "CoverURL": self.cover_url,
            "CreationTime": iso(self.creation_time),
            "ModifiedTime": iso(self.modified_time),
            "RegionId": self.region_id,
            "StorageLocation": self.storage_location,
            "Status": self.status,
        }
        if with_timeline:
            out["Timeline"] = self.timeline
        else:
            out["Duration"] = self.duration
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Job:
    """One ProduceEditingProjectVideo submission; its outcome is decided at submit time."""

    media_id: str
    project_id: str
    submitted: float
    due: float
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    callback_url: str | None = None
    duration: float = 0.0
    settled: bool = False

    @property
    def status(self) -> str:
        if not self.settled:
            return "Producing"
        return "Produced" if self.ok else "ProduceFailed"

    def event(self) -> dict[str, Any]:
        """The ProduceMediaComplete event (vod-api.md §4)."""
        out: dict[str, Any] = {
            "EventTime": iso(self.due),
            "EventType": "ProduceMediaComplete",
            "Status": "success" if self.ok else "fail",
            "MediaId": self.media_id,
            "ProjectId": self.project_id,
        }
        if not self.ok:
            out["ErrorCode"] = self.error_code
            out["ErrorMessage"] = self.error_message
        return out


@dataclass(frozen=True)
class CallRecord:
    """One API call as received; never holds a signature, secret or security token."""

    time: float
    action: str
    params: dict[str, str]
    signature_version: str  # "v2" | "v3" | "-" when it could not be told
    project_ids: tuple[str, ...]
    status: int
    code: str  # "OK" or the error Code
    request_id: str
    access_key_id: str | None = None
    dropped: bool = False  # processed, but the answer was lost on purpose (fault injection)

    @property
    def project_id(self) -> str | None:
        return self.project_ids[0] if len(self.project_ids) == 1 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "Time": self.time,
            "Action": self.action,
            "Params": self.params,
            "SignatureVersion": self.signature_version,
            "ProjectIds": list(self.project_ids),
            "Status": self.status,
            "Code": self.code,
            "RequestId": self.request_id,
            "AccessKeyId": self.access_key_id,
            "Dropped": self.dropped,
        }


@dataclass
class EventRecord:
    """A ProduceMediaComplete event and what became of its callback."""

    seq: int
    time: float
    media_id: str
    event: dict[str, Any]
    callback_url: str | None
    delivery: str  # pending | delivered | failed | skipped (not loopback) | none (no URL)
    attempts: int = 0
    last_error: str | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "Seq": self.seq,
            "Time": self.time,
            "MediaId": self.media_id,
            "Event": self.event,
            "CallbackURL": self.callback_url,
            "Delivery": self.delivery,
            "Attempts": self.attempts,
            "LastError": self.last_error,
        }
