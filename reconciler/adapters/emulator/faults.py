"""Fault injection: latency, a global QPS limit, random throttling and 5xx, dropped answers.

All randomness comes from one ``random.Random(seed)``, so a seeded run fails the same requests
every time (given the same request order).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable

from reconciler.adapters.emulator.apierrors import INTERNAL, THROTTLED, UNAVAILABLE, ApiFault
from reconciler.adapters.emulator.config import EmulatorConfig


class Faults:
    def __init__(
        self,
        config: EmulatorConfig,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._window: deque[float] = deque()

    def _random(self) -> float:
        with self._lock:
            return self._rng.random()

    def delay(self) -> None:
        """Sleep the configured latency (call outside any lock)."""
        cfg = self._config
        seconds = cfg.latency + (cfg.latency_jitter * self._random() if cfg.latency_jitter else 0)
        if seconds > 0:
            self._sleep(seconds)

    def admit(self) -> None:
        """Apply the QPS limit (sliding 1-s window over admitted requests), then the random
        throttling and 5xx rates (both refuse the request before it is processed)."""
        limit = self._config.qps_limit
        if limit is not None:
            now = self._clock()
            with self._lock:
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) >= limit:
                    raise ApiFault(*THROTTLED)
                self._window.append(now)
        if self._config.throttle_rate and self._random() < self._config.throttle_rate:
            raise ApiFault(*THROTTLED)
        if self._config.error_rate and self._random() < self._config.error_rate:
            raise ApiFault(*(INTERNAL if self._random() < 0.5 else UNAVAILABLE))

    def drop(self, action: str | None) -> bool:
        """Whether to lose the answer to this (already processed) request."""
        cfg = self._config
        if not cfg.drop_rate or (cfg.drop_actions and action not in cfg.drop_actions):
            return False
        return self._random() < cfg.drop_rate
