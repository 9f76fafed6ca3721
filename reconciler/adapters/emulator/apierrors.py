"""VOD error answers: the exception the handlers raise and the JSON document it becomes."""

from __future__ import annotations

import json
from typing import Any

RECOMMEND = "https://error-center.aliyun.com/status/search?Keyword={code}&source=PopGw"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"


class ApiFault(Exception):
    """A VOD error answer (Code, Message, HTTP status); never escapes the emulator."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def error_body(fault: ApiFault, request_id: str, host_id: str) -> bytes:
    doc: dict[str, Any] = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": fault.code,
        "Message": fault.message,
        "Recommend": RECOMMEND.format(code=fault.code),
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def missing(name: str) -> ApiFault:
    """A required business parameter is absent: ``Missing{Name}``."""
    return ApiFault(
        f"Missing{name}",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def missing_parameter(name: str) -> ApiFault:
    """A required protocol parameter (or one of a required pair) is absent."""
    return ApiFault(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def invalid(name: str, why: str = "") -> ApiFault:
    detail = f" {why}" if why else ""
    return ApiFault("InvalidParameter", f'The specified parameter "{name}" is not valid.{detail}')


def project_not_found() -> ApiFault:
    return ApiFault(
        "InvalidEditingProject.NotFound", "The specified editing project does not exist.", 404
    )


THROTTLED = ("Throttling.User", "Request was denied due to user flow throttling.", 400)
INTERNAL = (
    "InternalError",
    "The request processing has failed due to some unknown error, exception or failure.",
    500,
)
UNAVAILABLE = (
    "ServiceUnavailable",
    "The request has failed due to a temporary failure of the server.",
    503,
)
