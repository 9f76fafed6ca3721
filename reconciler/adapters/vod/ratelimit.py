"""Pacing and retry decisions for VOD calls: an adaptive token bucket, the backoff policy,
which failures are worth another attempt, and call stats.

Everything takes its clock, sleep and randomness as arguments so tests run instantly and
deterministically; everything shared between worker threads is guarded by a lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from reconciler.errors import VodTransportError

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """At most ``rate`` acquisitions per second, shared by all threads; slows down on throttling.

    Callers *reserve* a slot under the lock and sleep outside it, so waiting threads do not
    serialise on the lock and slots are handed out in arrival order. With ``burst=1`` the
    slots are exactly ``1/rate`` apart, so no 1-second window ever holds more than ``rate``.

    Throttling (VOD's per-account limit is shared with everyone else on the account) cuts the
    rate by ``decrease``, at most once per ``cooldown`` so one burst of rejections counts once;
    the rate then creeps back by ``recovery`` per second up to the configured maximum (AIMD).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        decrease: float = 0.8,
        cooldown: float = 1.0,
        recovery: float | None = None,
        min_rate: float | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if not 0 < decrease <= 1:
            raise ValueError("decrease must be in (0, 1]")
        self.max_rate = float(rate)
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock, self._sleep = clock, sleep
        self._decrease, self._cooldown = decrease, cooldown
        self._recovery = self.max_rate / 8 if recovery is None else recovery
        self._min_rate = (
            min(self.max_rate, max(0.5, self.max_rate / 20)) if min_rate is None else min_rate
        )
        self._last = clock()
        self._last_cut = float("-inf")
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        with self._lock:
            self._advance(self._clock())
            return self._rate

    def _advance(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        # Tokens accrue at the rate in force before any recovery in this interval: erring on
        # the slow side keeps the promise "never above the rate".
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._rate < self.max_rate:
            self._rate = min(self.max_rate, self._rate + elapsed * self._recovery)

    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait before using it."""
        with self._lock:
            self._advance(self._clock())
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def acquire(self) -> float:
        """Block until a slot is ours; return the time waited."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay

    def on_throttled(self) -> bool:
        """VOD said Throttling: slow down (once per cooldown). True if the rate was cut."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if now - self._last_cut < self._cooldown:
                return False
            self._last_cut = now
            self._rate = max(self._min_rate, self._rate * self._decrease)
            return True


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; honours ``x-acs-retry-after`` (ms)."""

    max_attempts: int = 6
    base: float = 0.2
    cap: float = 10.0
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base < 0 or self.cap < 0:
            raise ValueError("max_attempts must be >= 1; base and cap >= 0")

    def delay(self, attempt: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 60))
        wait = rand * ceiling
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_cap))
        return wait


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``x-acs-retry-after`` as seconds: a positive integer of milliseconds, as the SDK reads it."""
    raw = headers.get("x-acs-retry-after", "").strip()
    try:
        millis = int(raw)
    except ValueError:
        return None
    return millis / 1000.0 if millis > 0 else None


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what a client has done so far."""

    calls: int = 0  # operations started (a paged search counts once per page)
    attempts: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    throttled: int = 0  # responses with a Throttling* code
    ambiguous: int = 0  # non-idempotent calls abandoned because they may have taken effect
    errors: Mapping[str, int] = field(default_factory=dict)  # failed attempts per code
    max_qps: int = 0  # most requests sent within any 1-second window


class StatsRecorder:
    """Thread-safe counters behind ``VodClient.stats``."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._window: deque[float] = deque()
        self._max_qps = 0

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def error(self, code: str) -> None:
        with self._lock:
            self._errors[code] += 1

    def sent(self) -> None:
        with self._lock:
            now = self._clock()
            self._counts["attempts"] += 1
            self._window.append(now)
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            self._max_qps = max(self._max_qps, len(self._window))

    def snapshot(self) -> ClientStats:
        with self._lock:
            c = self._counts
            return ClientStats(
                calls=c["calls"],
                attempts=c["attempts"],
                retries=c["retries"],
                throttled=c["throttled"],
                ambiguous=c["ambiguous"],
                errors=dict(self._errors),
                max_qps=self._max_qps,
            )


# Codes worth another attempt (compared case-insensitively): VOD spells the 503 code both
# ServiceUnavailable and ServiceUnAvailable; SignatureNonceUsed only needs a fresh nonce,
# which every re-signed attempt has.
_RETRYABLE_CODES = frozenset(
    {
        "rejected.throttling",
        "serviceunavailable",
        "internalerror",
        "unknownerror",
        "signaturenonceused",
    }
)
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


def is_throttling(code: str, http_status: int | None = None) -> bool:
    lowered = code.lower()
    return (
        lowered.startswith("throttling") or lowered == "rejected.throttling" or http_status == 429
    )


def is_retryable(code: str, http_status: int | None = None) -> bool:
    return (
        is_throttling(code, http_status)
        or code.lower() in _RETRYABLE_CODES
        or http_status in RETRYABLE_STATUSES
    )


def transport_error(action: str, exc: httpx.TransportError, detail: str) -> VodTransportError:
    """A failure to get any answer, classified by whether the request can have reached VOD.

    ``detail`` is the already-scrubbed text of ``exc``; the exception itself is never chained
    (its request carries the signed URL and the Authorization header).
    """
    kind = type(exc).__name__
    detail = detail or kind
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in detail:
        return VodTransportError(
            f"TLS certificate rejected: {detail}",
            action=action,
            code=kind,
            hint="check the endpoint",
        )
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached VOD: safe to send again, even AddEditingProject or a production.
        return VodTransportError(
            f"could not connect ({kind}: {detail})", action=action, code=kind, retryable=True
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        return VodTransportError(f"request not sent ({kind}: {detail})", action=action, code=kind)
    # Read/write timeout, reset or dropped connection: the request may have been processed.
    return VodTransportError(
        f"no answer ({kind}: {detail})", action=action, code=kind, retryable=True, ambiguous=True
    )
