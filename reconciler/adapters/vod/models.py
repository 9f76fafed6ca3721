"""Typed requests and responses of the VOD editing-project operations (API 2017-03-21).

Requests know their action name, whether repeating them is safe, and how to become query
parameters; responses parse VOD's JSON leniently (numbers sometimes arrive as strings, the
project Timeline arrives as a JSON string).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reconciler.adapters.vod.auth import scrub
from reconciler.adapters.vod.ratelimit import is_retryable
from reconciler.errors import VodApiError, VodError, VodTransportError

PROJECT_STATUSES = ("Normal", "Producing", "Produced", "ProduceFailed")


def wire_value(value: Any) -> str:
    """A parameter as VOD reads it: JSON values compact and unescaped, booleans lower-case."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


# --------------------------------------------------------------------------- requests


class VodRequest(_Wire):
    """One operation's parameters; field aliases are VOD's parameter names."""

    action: ClassVar[str]
    # False when a repeat may act twice (create a second project, start a second render).
    idempotent: ClassVar[bool] = True

    def to_query(self) -> list[tuple[str, str]]:
        data = self.model_dump(by_alias=True, exclude_none=True)
        return [(name, wire_value(value)) for name, value in data.items()]


def _utc(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class AddEditingProjectRequest(VodRequest):
    action: ClassVar[str] = "AddEditingProject"
    idempotent: ClassVar[bool] = False
    title: str = Field(alias="Title", min_length=1)
    description: str | None = Field(default=None, alias="Description")
    timeline: dict[str, Any] | None = Field(default=None, alias="Timeline")
    cover_url: str | None = Field(default=None, alias="CoverURL")
    division: str | None = Field(default=None, alias="Division")


class UpdateEditingProjectRequest(VodRequest):
    action: ClassVar[str] = "UpdateEditingProject"
    project_id: str = Field(alias="ProjectId", min_length=1)
    title: str | None = Field(default=None, alias="Title")
    description: str | None = Field(default=None, alias="Description")
    timeline: dict[str, Any] | None = Field(default=None, alias="Timeline")
    cover_url: str | None = Field(default=None, alias="CoverURL")


class GetEditingProjectRequest(VodRequest):
    action: ClassVar[str] = "GetEditingProject"
    project_id: str = Field(alias="ProjectId", min_length=1)


class SearchEditingProjectRequest(VodRequest):
    action: ClassVar[str] = "SearchEditingProject"
    title: str | None = Field(default=None, alias="Title")
    status: str | None = Field(default=None, alias="Status")  # comma-separated statuses
    start_time: str | None = Field(default=None, alias="StartTime")
    end_time: str | None = Field(default=None, alias="EndTime")
    sort_by: str | None = Field(default=None, alias="SortBy")
    page_no: int = Field(default=1, alias="PageNo", ge=1)
    page_size: int = Field(default=100, alias="PageSize", ge=1, le=100)

    @field_validator("status", mode="before")
    @classmethod
    def _join_status(cls, value: Any) -> Any:
        if isinstance(value, Sequence) and not isinstance(value, str):
            value = ",".join(value)
        for item in (value or "").split(","):
            if item and item not in PROJECT_STATUSES:
                raise ValueError(f"unknown status {item!r}; expected one of {PROJECT_STATUSES}")
        return value or None

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _format_time(cls, value: Any) -> Any:
        return _utc(value)


class DeleteEditingProjectRequest(VodRequest):
    action: ClassVar[str] = "DeleteEditingProject"
    project_ids: str = Field(alias="ProjectIds", min_length=1)

    @field_validator("project_ids", mode="before")
    @classmethod
    def _join_ids(cls, value: Any) -> Any:
        ids = [value] if isinstance(value, str) else list(value)
        if not ids or any(not isinstance(i, str) or not i or "," in i for i in ids):
            raise ValueError("project IDs must be non-empty strings without commas")
        return ",".join(ids)


class ProduceEditingProjectVideoRequest(VodRequest):
    action: ClassVar[str] = "ProduceEditingProjectVideo"
    idempotent: ClassVar[bool] = False
    project_id: str | None = Field(default=None, alias="ProjectId")
    timeline: dict[str, Any] | None = Field(default=None, alias="Timeline")
    title: str | None = Field(default=None, alias="Title")
    description: str | None = Field(default=None, alias="Description")
    cover_url: str | None = Field(default=None, alias="CoverURL")
    media_metadata: dict[str, Any] | None = Field(default=None, alias="MediaMetadata")
    produce_config: dict[str, Any] | None = Field(default=None, alias="ProduceConfig")
    user_data: dict[str, Any] | None = Field(default=None, alias="UserData")

    @model_validator(mode="after")
    def _needs_project_or_timeline(self) -> ProduceEditingProjectVideoRequest:
        if not self.project_id and self.timeline is None:
            raise ValueError("ProduceEditingProjectVideo needs a project_id or a timeline")
        return self


# --------------------------------------------------------------------------- responses


def _number_or_none(value: Any) -> Any:
    """VOD's samples send numbers as strings ("9.42"); an empty string means absent."""
    if isinstance(value, str):
        value = value.strip()
        return None if value == "" else value
    return value


class Project(_Wire):
    """An editing project as VOD reports it. ``timeline`` is parsed JSON (None if absent)."""

    project_id: str = Field(alias="ProjectId")
    title: str | None = Field(default=None, alias="Title")
    description: str | None = Field(default=None, alias="Description")
    cover_url: str | None = Field(default=None, alias="CoverURL")
    status: str | None = Field(default=None, alias="Status")
    creation_time: str | None = Field(default=None, alias="CreationTime")
    modified_time: str | None = Field(default=None, alias="ModifiedTime")
    region_id: str | None = Field(default=None, alias="RegionId")
    storage_location: str | None = Field(default=None, alias="StorageLocation")
    duration: float | None = Field(default=None, alias="Duration")
    timeline: dict[str, Any] | None = Field(default=None, alias="Timeline")
    request_id: str | None = Field(default=None, alias="RequestId")  # of the call that said so

    @field_validator("duration", mode="before")
    @classmethod
    def _lenient_duration(cls, value: Any) -> Any:
        return _number_or_none(value)

    @field_validator("timeline", mode="before")
    @classmethod
    def _parse_timeline(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None
            parsed = json.loads(value)  # a ValueError here becomes a ValidationError
            if not isinstance(parsed, dict):
                raise ValueError("the Timeline is not a JSON object")
            return parsed
        return value


class ProduceResult(_Wire):
    """The accepted production: the MediaId the rendered video will have."""

    media_id: str = Field(alias="MediaId", min_length=1)
    project_id: str | None = Field(default=None, alias="ProjectId")
    request_id: str | None = Field(default=None, alias="RequestId")


class ProjectEnvelope(_Wire):
    """AddEditingProject / GetEditingProject: ``{RequestId, Project}``."""

    request_id: str | None = Field(default=None, alias="RequestId")
    project: Project = Field(alias="Project")

    def stamped(self) -> Project:
        """The project, carrying the RequestId of the answer."""
        return self.project.model_copy(update={"request_id": self.request_id})


class SearchPage(_Wire):
    """One page of SearchEditingProject: ``{RequestId, Total, ProjectList: {Project: [...]}}``."""

    request_id: str | None = Field(default=None, alias="RequestId")
    total: int = Field(default=0, alias="Total")
    projects: list[Project] = Field(default_factory=list, alias="ProjectList")

    @field_validator("total", mode="before")
    @classmethod
    def _lenient_total(cls, value: Any) -> Any:
        value = _number_or_none(value)
        if isinstance(value, str):
            value = float(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return 0 if value is None else value

    @field_validator("projects", mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, dict):  # VOD nests the list: ProjectList.Project
            value = value.get("Project")
        if isinstance(value, dict):  # some XML-to-JSON paths collapse a one-item list
            value = [value]
        return value or []


class ApiErrorBody(_Wire):
    """VOD's error document: ``{RequestId, HostId, Code, Message, Recommend}``."""

    code: str = Field(alias="Code", min_length=1)
    message: str = Field(default="", alias="Message")
    request_id: str | None = Field(default=None, alias="RequestId")
    host_id: str | None = Field(default=None, alias="HostId")
    recommend: str | None = Field(default=None, alias="Recommend")


# --------------------------------------------------------------------------- what an answer means

ModelT = TypeVar("ModelT", bound=BaseModel)
CHECK_FIRST = (
    "it may have taken effect: check with GetEditingProject / SearchEditingProject "
    "before sending it again"
)
HINTS = {
    "signaturedoesnotmatch": "check the AccessKey secret",
    "invalidaccesskeyid.notfound": "check the AccessKey ID and the endpoint's region",
    "invalidtimestamp.expired": "the system clock is off; sync it (NTP) and retry",
    "forbidden.ram": "the RAM user lacks a vod:<Action> permission",
}


def answer_error(
    action: str, status: int, body: object, headers: Mapping[str, str], secrets: Iterable[str]
) -> VodError | None:
    """None for a success; otherwise the error the answer amounts to, flagged retryable
    and/or ambiguous (the request may have been processed)."""
    if 200 <= status < 300:
        if isinstance(body, dict):
            return None
        return VodTransportError(
            f"HTTP {status} with a body that is not a JSON object",
            action=action,
            code="InvalidResponse",
            http_status=status,
            retryable=True,
            ambiguous=True,
        )
    try:
        doc = ApiErrorBody.model_validate(body) if isinstance(body, dict) else None
    except ValidationError:
        doc = None
    if doc is None:
        # Not VOD's error document: a gateway or proxy answered, and after a 5xx from one
        # of them nobody can tell whether VOD processed the request.
        content_type = headers.get("content-type", "?").split(";")[0]
        return VodApiError(
            f"HTTP {status} without a VOD error document ({content_type})",
            action=action,
            code=f"HTTP{status}",
            http_status=status,
            retryable=is_retryable("", status),
            ambiguous=status >= 500,
        )
    # VOD's own error document, even with a 5xx, means VOD refused the request.
    return VodApiError(
        scrub(doc.message, secrets) or "(no message)",
        action=action,
        code=doc.code,
        request_id=doc.request_id or headers.get("x-acs-request-id"),
        http_status=status,
        retryable=is_retryable(doc.code, status),
        hint=HINTS.get(doc.code.lower()),
    )


def ambiguous_error(request: VodRequest, error: VodError) -> VodTransportError:
    """What a non-idempotent call raises when it may or may not have acted."""
    return VodTransportError(
        f"{error.message}; the request was sent but no usable answer came back, so {CHECK_FIRST}",
        action=request.action,
        code=error.code,
        request_id=error.request_id,
        http_status=error.http_status,
        ambiguous=True,
        hint="do not resend blindly: a repeat may act twice",
    )


def parse_answer(model: type[ModelT], body: dict[str, Any], request: VodRequest) -> ModelT:
    """Validate a success body; a shape we cannot read is an error (ambiguous if the call
    created or rendered something)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = f"{exc.error_count()} field(s) invalid, first: {exc.errors()[0]['loc']}"
    suffix = "" if request.idempotent else f"; the call succeeded, {CHECK_FIRST}"
    raise VodTransportError(  # outside `except`: the pydantic error quotes the body
        f"unexpected response shape ({problem}){suffix}",
        action=request.action,
        code="InvalidResponse",
        request_id=body.get("RequestId"),
        ambiguous=not request.idempotent,
    )
