"""Delivery of ProduceMediaComplete events to ``UserData.MessageCallback.CallbackURL``.

Like VOD: an HTTP POST of the JSON event, success = 200 within the timeout, up to three attempts
one second apart. Unlike VOD, only loopback URLs are called (the emulator must never reach the
internet); other URLs are recorded as ``skipped``. Optional VOD callback authentication headers
(``X-VOD-TIMESTAMP``, ``X-VOD-SIGNATURE``) are sent when a private key is configured.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import queue
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.adapters.emulator.config import EmulatorConfig

Recorder = Callable[[int, str, int, str | None], None]  # seq, delivery, attempts, error


def is_loopback(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CallbackDispatcher:
    """A worker thread (started on first use) that POSTs queued events."""

    def __init__(
        self, config: EmulatorConfig, record: Recorder, clock: Callable[[], float]
    ) -> None:
        self._config = config
        self._record = record
        self._clock = clock
        self._queue: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, seq: int, url: str, event: dict[str, Any]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="emulator-callbacks", daemon=True
                )
                self._thread.start()
        self._queue.put((seq, url, event))

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event was handled; False on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        self._queue.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=self._config.callback_timeout, trust_env=False) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    self._deliver(client, *item)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, seq: int, url: str, event: dict[str, Any]) -> None:
        error: str | None = None
        attempts = 0
        total = max(1, self._config.callback_attempts)
        for attempts in range(1, total + 1):
            try:
                response = client.post(
                    url, content=json.dumps(event).encode(), headers=self._headers(url)
                )
                if response.status_code == 200:
                    self._record(seq, "delivered", attempts, None)
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempts < total and self._stop.wait(self._config.callback_retry_interval):
                break
        self._record(seq, "failed", attempts, error)

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = self._config.callback_private_key
        if key:
            ts = str(int(self._clock()))
            headers["X-VOD-TIMESTAMP"] = ts
            headers["X-VOD-SIGNATURE"] = hashlib.md5(f"{url}|{ts}|{key}".encode()).hexdigest()
        return headers
