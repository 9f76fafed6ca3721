"""Token bucket pacing and adaptation, backoff policy, retry classification, stats."""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters.vod.ratelimit import (
    RetryPolicy,
    StatsRecorder,
    TokenBucket,
    is_retryable,
    is_throttling,
    retry_after_seconds,
)


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def max_in_window(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, t + window - 1e-9) - i for i, t in enumerate(ordered)), default=0
    )


def test_slots_are_exactly_one_over_rate_apart() -> None:
    clock = FakeClock()
    bucket = TokenBucket(40, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(200):
        bucket.acquire()
        starts.append(clock())
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(starts)}
    assert gaps == {0.025}
    assert max_in_window(starts) == 40


def test_burst_allows_that_many_immediately() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=5, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
    assert bucket.reserve() == pytest.approx(0.1)


def test_concurrent_reservations_never_share_a_slot() -> None:
    clock = FakeClock()  # frozen: every reservation after the first goes into debt
    bucket = TokenBucket(50, clock=clock, sleep=clock.sleep)
    delays: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            delay = bucket.reserve()
            with lock:
                delays.append(delay)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(round(d * 50) for d in delays) == list(range(400))


@settings(max_examples=60, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=60),
    arrivals=st.lists(
        st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=150
    ),
)
def test_no_window_ever_exceeds_the_rate(rate: int, arrivals: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    starts = []
    base = clock()
    for arrival in sorted(arrivals):
        clock.now = max(clock.now, base + arrival)  # callers arrive in order
        starts.append(clock() + bucket.reserve())
    assert max_in_window(starts) <= rate


def test_throttling_cuts_the_rate_once_per_cooldown_then_recovers() -> None:
    clock = FakeClock()
    bucket = TokenBucket(
        40, clock=clock, sleep=clock.sleep, decrease=0.5, cooldown=1.0, recovery=5.0
    )
    assert bucket.on_throttled() is True
    assert bucket.rate == pytest.approx(20)
    assert bucket.on_throttled() is False  # same burst of rejections
    clock.now += 0.5
    assert bucket.on_throttled() is False
    assert bucket.rate == pytest.approx(22.5)  # recovered 0.5 s * 5/s meanwhile
    clock.now += 0.5
    assert bucket.on_throttled() is True
    assert bucket.rate == pytest.approx(12.5)
    clock.now += 100
    assert bucket.rate == pytest.approx(40)  # never above the configured maximum


def test_slower_rate_spaces_slots_further() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep, decrease=0.5, recovery=0.0)
    bucket.acquire()
    bucket.on_throttled()
    assert bucket.reserve() == pytest.approx(0.2)


def test_rate_has_a_floor() -> None:
    clock = FakeClock()
    bucket = TokenBucket(
        40, clock=clock, sleep=clock.sleep, decrease=0.1, recovery=0.0, min_rate=3.0
    )
    for _ in range(5):
        bucket.on_throttled()
        clock.now += 2
    assert bucket.rate == pytest.approx(3.0)


@pytest.mark.parametrize(
    "kwargs", [{"rate": 0}, {"rate": 1, "burst": 0.5}, {"rate": 1, "decrease": 0}]
)
def test_bucket_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(**kwargs)  # type: ignore[arg-type]


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(base=0.2, cap=10.0)
    assert [policy.delay(n, 1.0) for n in range(1, 9)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    )
    assert policy.delay(3, 0.0) == 0.0
    assert policy.delay(3, 0.5) == pytest.approx(0.4)
    assert policy.delay(10_000, 1.0) == 10.0  # no overflow on absurd attempt counts


def test_retry_after_wins_when_longer_and_is_capped() -> None:
    policy = RetryPolicy(base=0.2, cap=10.0, retry_after_cap=30.0)
    assert policy.delay(1, 1.0, retry_after=1.5) == pytest.approx(1.5)
    assert policy.delay(6, 1.0, retry_after=1.5) == pytest.approx(6.4)
    assert policy.delay(1, 1.0, retry_after=500.0) == pytest.approx(30.0)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1500", 1.5), (" 200 ", 0.2), ("0", None), ("-5", None), ("soon", None), ("", None)],
)
def test_retry_after_header_is_milliseconds(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"x-acs-retry-after": value}) == seconds


def test_retry_after_absent() -> None:
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("code", "status", "throttling", "retryable"),
    [
        ("Throttling", 400, True, True),
        ("Throttling.User", 400, True, True),
        ("throttling.api", 400, True, True),
        ("Rejected.Throttling", 400, True, True),
        ("ServiceUnavailable", 503, False, True),
        ("ServiceUnAvailable", 503, False, True),
        ("InternalError", 500, False, True),
        ("UnknownError", 500, False, True),
        ("SignatureNonceUsed", 400, False, True),
        ("Whatever", 502, False, True),
        ("Whatever", 504, False, True),
        ("", 429, True, True),
        ("InvalidParameter", 400, False, False),
        ("SignatureDoesNotMatch", 400, False, False),
        ("InvalidTimeStamp.Expired", 400, False, False),
        ("Forbidden.RAM", 403, False, False),
        ("InvalidEditingProject.NotFound", 404, False, False),
        ("NotImplemented", 501, False, False),
    ],
)
def test_classification(code: str, status: int, throttling: bool, retryable: bool) -> None:
    assert is_throttling(code, status) is throttling
    assert is_retryable(code, status) is retryable


def test_stats_track_the_busiest_second() -> None:
    clock = FakeClock()
    stats = StatsRecorder(clock)
    for _ in range(5):
        stats.sent()
        clock.now += 0.1  # 5 within 0.5 s
    clock.now += 1.0
    for _ in range(3):
        stats.sent()
    stats.count("calls", 8)
    stats.error("Throttling.User")
    stats.error("Throttling.User")
    snap = stats.snapshot()
    assert snap.attempts == 8
    assert snap.calls == 8
    assert snap.max_qps == 5
    assert snap.errors == {"Throttling.User": 2}
