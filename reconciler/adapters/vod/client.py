"""VodClient: the only code that speaks HTTP to VOD (or to the emulator through ``transport``).

One client is shared by the engine's worker threads: one httpx.Client, one token bucket and
one parallelism semaphore. Every attempt is re-signed; transient failures are retried with
backoff, but a call that may already have created or rendered something is never sent twice
on a guess: it fails with ``VodTransportError(ambiguous=True)`` instead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from reconciler.adapters.vod import models as m
from reconciler.adapters.vod.auth import (
    USER_AGENT,
    Clock,
    NonceFactory,
    encode_query,
    install_httpx_log_redaction,
    make_auth,
    new_nonce,
    scrub,
)
from reconciler.adapters.vod.credentials import Credentials, CredentialsProvider
from reconciler.adapters.vod.endpoints import resolve_endpoint
from reconciler.adapters.vod.ratelimit import (
    ClientStats,
    RetryPolicy,
    StatsRecorder,
    TokenBucket,
    is_retryable,
    is_throttling,
    retry_after_seconds,
)
from reconciler.errors import VodApiError, VodError, VodTransportError

log = logging.getLogger("reconciler.vod")
ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_PAGES = 10_000  # 1M projects: far beyond any account, a guard against a looping server

_CHECK_FIRST = (
    "it may have taken effect: check with GetEditingProject / SearchEditingProject "
    "before sending it again"
)
_HINTS = {
    "signaturedoesnotmatch": "check the AccessKey secret",
    "invalidaccesskeyid.notfound": "check the AccessKey ID and the endpoint's region",
    "invalidtimestamp.expired": "the system clock is off; sync it (NTP) and retry",
    "forbidden.ram": "the RAM user lacks a vod:<Action> permission",
}


@dataclass
class _Failure:
    error: VodError
    ambiguous: bool = False  # the request may have reached VOD and acted
    retry_after: float | None = None


class VodClient:
    """Typed, rate-limited, retrying client for the VOD editing-project APIs."""

    def __init__(
        self,
        *,
        credentials: Credentials | CredentialsProvider,
        endpoint: str | None = None,
        region: str | None = None,
        signature: Literal["v3", "v2"] = "v3",
        transport: httpx.BaseTransport | None = None,
        qps: float = 40.0,
        parallelism: int = 8,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        bucket: TokenBucket | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        nonce: NonceFactory = new_nonce,
        user_agent: str = USER_AGENT,
    ) -> None:
        if signature not in ("v3", "v2"):
            raise ValueError("signature must be 'v3' or 'v2'")
        if parallelism < 1:
            raise ValueError("parallelism must be >= 1")
        self.endpoint = resolve_endpoint(endpoint, region)
        self.signature = signature
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._bucket = bucket or TokenBucket(qps, clock=monotonic, sleep=sleep)
        self._slots = threading.BoundedSemaphore(parallelism)
        self._stats = StatsRecorder(monotonic)
        self._clock, self._sleep, self._rand, self._nonce = clock, sleep, rand, nonce
        self._user_agent = user_agent
        install_httpx_log_redaction()
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            limits=httpx.Limits(max_connections=parallelism, max_keepalive_connections=parallelism),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"VodClient(endpoint={self.endpoint.base_url!r}, signature={self.signature!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VodClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def stats(self) -> ClientStats:
        return self._stats.snapshot()

    # ----------------------------------------------------------------------- operations

    def add_editing_project(
        self,
        title: str,
        description: str | None = None,
        timeline: dict[str, Any] | None = None,
        cover_url: str | None = None,
        division: str | None = None,
    ) -> m.Project:
        request = m.AddEditingProjectRequest(
            title=title,
            description=description,
            timeline=timeline,
            cover_url=cover_url,
            division=division,
        )
        return self.call(request, m.ProjectEnvelope).project

    def update_editing_project(
        self,
        project_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        timeline: dict[str, Any] | None = None,
        cover_url: str | None = None,
    ) -> str:
        """Returns the RequestId."""
        request = m.UpdateEditingProjectRequest(
            project_id=project_id,
            title=title,
            description=description,
            timeline=timeline,
            cover_url=cover_url,
        )
        return self.call_raw(request).get("RequestId") or ""

    def get_editing_project(self, project_id: str) -> m.Project:
        request = m.GetEditingProjectRequest(project_id=project_id)
        return self.call(request, m.ProjectEnvelope).project

    def search_editing_projects(
        self,
        *,
        title: str | None = None,
        status: str | Sequence[str] | None = None,
        start_time: str | datetime | None = None,
        end_time: str | datetime | None = None,
        sort_by: str | None = None,
    ) -> list[m.Project]:
        """Every matching project (all pages, 100 per page; no Timeline in search results)."""
        first = m.SearchEditingProjectRequest(
            title=title, status=status, start_time=start_time, end_time=end_time, sort_by=sort_by
        )
        found: dict[str, m.Project] = {}
        for page_no in range(1, MAX_PAGES + 1):
            page = self.call(first.model_copy(update={"page_no": page_no}), m.SearchPage)
            for project in page.projects:  # a project created meanwhile can shift pages
                found.setdefault(project.project_id, project)
            short = len(page.projects) < first.page_size
            if short or (page.total and page_no * first.page_size >= page.total):
                break
        return list(found.values())

    def delete_editing_projects(self, project_ids: str | Sequence[str]) -> str:
        """Returns the RequestId."""
        request = m.DeleteEditingProjectRequest(project_ids=project_ids)
        return self.call_raw(request).get("RequestId") or ""

    def produce_editing_project_video(
        self,
        *,
        project_id: str | None = None,
        timeline: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        cover_url: str | None = None,
        media_metadata: dict[str, Any] | None = None,
        produce_config: dict[str, Any] | None = None,
        user_data: dict[str, Any] | None = None,
    ) -> m.ProduceResult:
        request = m.ProduceEditingProjectVideoRequest(
            project_id=project_id,
            timeline=timeline,
            title=title,
            description=description,
            cover_url=cover_url,
            media_metadata=media_metadata,
            produce_config=produce_config,
            user_data=user_data,
        )
        return self.call(request, m.ProduceResult)

    # ----------------------------------------------------------------------- machinery

    def call(self, request: m.VodRequest, model: type[ModelT]) -> ModelT:
        body = self.call_raw(request)
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            problem = f"{exc.error_count()} field(s) invalid, first: {exc.errors()[0]['loc']}"
        raise VodTransportError(  # outside `except`: the pydantic error quotes the body
            f"unexpected response shape ({problem})"
            + ("" if request.idempotent else f"; the call succeeded, {_CHECK_FIRST}"),
            action=request.action,
            code="InvalidResponse",
            request_id=body.get("RequestId"),
            ambiguous=not request.idempotent,
        )

    def call_raw(self, request: m.VodRequest) -> dict[str, Any]:
        """Send ``request`` with retries; return VOD's JSON answer."""
        self._stats.count("calls")
        query = encode_query(request.to_query())
        for attempt in range(1, self._retry.max_attempts + 1):
            outcome = self._attempt(request, query)
            if isinstance(outcome, dict):
                return outcome
            error = outcome.error
            self._stats.error(error.code)
            if outcome.ambiguous and not request.idempotent:
                self._stats.count("ambiguous")
                raise VodTransportError(
                    f"{error.message}; the request was sent but no usable answer came back, so "
                    f"{_CHECK_FIRST}",
                    action=request.action,
                    code=error.code,
                    request_id=error.request_id,
                    http_status=error.http_status,
                    ambiguous=True,
                    hint="do not resend blindly: a repeat may act twice",
                )
            if not error.retryable or attempt == self._retry.max_attempts:
                raise error
            delay = self._retry.delay(attempt, self._rand(), outcome.retry_after)
            log.info(
                "%s: %s (RequestId %s); retry %d/%d in %.2fs",
                request.action,
                error.code,
                error.request_id,
                attempt,
                self._retry.max_attempts - 1,
                delay,
            )
            self._stats.count("retries")
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _current_credentials(self) -> Credentials:
        if isinstance(self._credentials, Credentials):
            return self._credentials
        return self._credentials.get_credentials()  # refreshed STS tokens take effect here

    def _attempt(self, request: m.VodRequest, query: bytes) -> dict[str, Any] | _Failure:
        creds = self._current_credentials()
        auth = make_auth(
            self.signature,
            creds,
            request.action,
            clock=self._clock,
            nonce=self._nonce,
            user_agent=self._user_agent,
        )
        http_request = self._http.build_request("POST", self.endpoint.base_url + "/")
        http_request.url = http_request.url.copy_with(query=query or None)
        failure: _Failure | None = None
        with self._slots:  # the token is taken inside the slot, so sends keep its spacing
            self._bucket.acquire()
            self._stats.sent()
            started = time.monotonic()
            try:
                response = self._http.send(http_request, auth=auth)
            except httpx.TransportError as exc:
                failure = _transport_failure(request.action, exc, creds)
        if failure is not None:
            log.debug("%s: %s", request.action, failure.error.code)
            return failure
        log.debug(
            "%s: HTTP %d in %.0f ms (RequestId %s)",
            request.action,
            response.status_code,
            (time.monotonic() - started) * 1000,
            response.headers.get("x-acs-request-id"),
        )
        return self._interpret(request.action, response, creds)

    def _interpret(
        self, action: str, response: httpx.Response, creds: Credentials
    ) -> dict[str, Any] | _Failure:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if 200 <= status < 300:
            if isinstance(body, dict):
                return body
            return _Failure(
                VodTransportError(
                    f"HTTP {status} with a body that is not a JSON object",
                    action=action,
                    code="InvalidResponse",
                    http_status=status,
                    retryable=True,
                ),
                ambiguous=True,
            )
        try:
            doc = m.ApiErrorBody.model_validate(body) if isinstance(body, dict) else None
        except ValidationError:
            doc = None
        if doc is None:
            # No VOD error document: a gateway or proxy answered. After a 5xx from one of
            # them VOD may or may not have processed the request.
            content_type = response.headers.get("content-type", "?").split(";")[0]
            return _Failure(
                VodApiError(
                    f"HTTP {status} without a VOD error document ({content_type})",
                    action=action,
                    code=f"HTTP{status}",
                    http_status=status,
                    retryable=is_retryable("", status),
                ),
                ambiguous=status >= 500,
            )
        if is_throttling(doc.code, status):
            self._stats.count("throttled")
            self._bucket.on_throttled()
        message = scrub(doc.message, creds.secrets()) or "(no message)"
        request_id = doc.request_id or response.headers.get("x-acs-request-id")
        return _Failure(
            VodApiError(
                message,
                action=action,
                code=doc.code,
                request_id=request_id,
                http_status=status,
                retryable=is_retryable(doc.code, status),
                hint=_HINTS.get(doc.code.lower()),
            ),
            retry_after=retry_after_seconds(response.headers),
        )


def _transport_failure(action: str, exc: httpx.TransportError, creds: Credentials) -> _Failure:
    """Classify a failure to get an answer; builds the error but never chains the original
    (its request carries the signed URL and the Authorization header)."""
    detail = scrub(str(exc), creds.secrets()) or type(exc).__name__
    kind = type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in detail:
        return _Failure(
            VodTransportError(
                f"TLS certificate rejected: {detail}",
                action=action,
                code=kind,
                hint="check the endpoint",
            )
        )
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached VOD: safe to send again, even for AddEditingProject / Produce.
        return _Failure(
            VodTransportError(
                f"could not connect ({kind}: {detail})", action=action, code=kind, retryable=True
            )
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        return _Failure(
            VodTransportError(f"request not sent ({kind}: {detail})", action=action, code=kind)
        )
    # Read/write timeout, reset or dropped connection: the request may have been processed.
    return _Failure(
        VodTransportError(
            f"no answer ({kind}: {detail})",
            action=action,
            code=kind,
            retryable=True,
            ambiguous=True,
        ),
        ambiguous=True,
    )
