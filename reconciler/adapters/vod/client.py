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
from datetime import datetime
from typing import Any, Literal

import httpx

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
from reconciler.adapters.vod.credentials import (
    AccessKeyLike,
    Credentials,
    CredentialsProvider,
    as_provider,
)
from reconciler.adapters.vod.endpoints import Endpoint, resolve_endpoint
from reconciler.adapters.vod.ratelimit import (
    ClientStats,
    RetryPolicy,
    StatsRecorder,
    TokenBucket,
    is_throttling,
    retry_after_seconds,
    transport_error,
)
from reconciler.errors import VodError

log = logging.getLogger("reconciler.vod")
MAX_PAGES = 10_000  # 1M projects: far beyond any account, a guard against a looping server
# The bucket spaces *scheduled* sends exactly 1/rate apart, but threads wake a little late
# and packets travel unevenly, so the server can see 41 requests in one second at 40/s.
# Pacing 5% below the configured QPS absorbs ~60 ms of such jitter at 40/s.
QPS_HEADROOM = 0.05
# Throttling is VOD saying "slower", not "failed": it gets a budget of its own, apart from
# the policy's attempts for other failures, so a run on a busy account (even 30% of calls
# throttled) still completes. The token bucket slows down meanwhile; backoff stays capped.
THROTTLED_ATTEMPTS = 16


class VodClient:
    """Typed, rate-limited, retrying client for the VOD editing-project APIs."""

    def __init__(
        self,
        *,
        credentials: Credentials | CredentialsProvider | AccessKeyLike,
        endpoint: str | Endpoint | None = None,
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
        if parallelism < 1 or qps <= 0:
            raise ValueError("parallelism must be >= 1 and qps > 0")
        if isinstance(endpoint, Endpoint):
            self.endpoint = endpoint
        else:
            self.endpoint = resolve_endpoint(region, endpoint)
        self.signature = signature
        self._credentials = as_provider(credentials)
        self._retry = retry or RetryPolicy()
        pace = qps * (1 - QPS_HEADROOM)
        self._bucket = bucket or TokenBucket(pace, clock=monotonic, sleep=sleep)
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
        return self.call(request, m.ProjectEnvelope).stamped()

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
        return self.call(request, m.ProjectEnvelope).stamped()

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
                stamped = project.model_copy(update={"request_id": page.request_id})
                found.setdefault(project.project_id, stamped)
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

    def call(self, request: m.VodRequest, model: type[m.ModelT]) -> m.ModelT:
        return m.parse_answer(model, self.call_raw(request), request)

    def call_raw(self, request: m.VodRequest) -> dict[str, Any]:
        """Send ``request`` with retries; return VOD's JSON answer."""
        self._stats.count("calls")
        query = encode_query(request.to_query())
        budget = {False: self._retry.max_attempts, True: THROTTLED_ATTEMPTS}
        used = {False: 0, True: 0}  # failed attempts: other failures, throttling
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(request, query)
            if isinstance(outcome, dict):
                return outcome
            error, retry_after = outcome
            self._stats.error(error.code)
            if error.ambiguous and not request.idempotent:
                self._stats.count("ambiguous")
                raise m.ambiguous_error(request, error)
            kind = is_throttling(error.code, error.http_status)
            used[kind] += 1
            if not error.retryable or used[kind] >= budget[kind]:
                raise error  # built outside any `except`: no chained httpx error
            delay = self._retry.delay(attempt, self._rand(), retry_after)
            log.info(
                "%s: %s (RequestId %s); retry %d/%d in %.2fs",
                request.action,
                error.code,
                error.request_id,
                used[kind],
                budget[kind] - 1,
                delay,
            )
            self._stats.count("retries")
            self._sleep(delay)

    def _attempt(
        self, request: m.VodRequest, query: bytes
    ) -> dict[str, Any] | tuple[VodError, float | None]:
        creds = self._credentials.get_credentials()  # a refreshed STS token takes effect here
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
        failure: VodError | None = None
        with self._slots:  # the token is taken inside the slot, so sends keep its spacing
            self._bucket.acquire()
            self._stats.sent()
            try:
                response = self._http.send(http_request, auth=auth)
            except httpx.TransportError as exc:
                # httpx errors carry the signed request: keep only a scrubbed description.
                failure = transport_error(request.action, exc, scrub(str(exc), creds.secrets()))
        if failure is not None:
            log.debug("%s: %s", request.action, failure.code)
            return failure, None
        log.debug(
            "%s: HTTP %d (RequestId %s)",
            request.action,
            response.status_code,
            response.headers.get("x-acs-request-id"),
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        error = m.answer_error(
            request.action, response.status_code, body, response.headers, creds.secrets()
        )
        if error is None:
            assert isinstance(body, dict)
            return body
        if is_throttling(error.code, error.http_status):
            self._stats.count("throttled")
            self._bucket.on_throttled()
        return error, retry_after_seconds(response.headers)
