"""ProduceMediaComplete callbacks (vod-api.md §4): a receiver HTTP server with the optional
VOD signature check, and ``ProducedRecorder``, which writes final render statuses into the
state ("produced" events, journaled under the state lock, then snapshotted).

The receiver answers 200 at once and records in a worker thread, because the state lock may
be held by a running apply; anything it misses (a crash, a dropped callback) is recovered by
``reconciler wait`` or ``status --refresh``, which ask GetEditingProject.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.adapters.state import StateStore, state_lock
from reconciler.errors import LockHeldError, ReconcilerError

log = logging.getLogger("reconciler.callbacks")
MAX_BODY = 1 << 20  # a ProduceMediaComplete event is a few hundred bytes
FINAL_STATUSES = ("Produced", "ProduceFailed")


@dataclass(frozen=True)
class Produced:
    """A render's final status; ``name`` None means "the project whose last render it is"."""

    media_id: str | None
    status: str  # Produced | ProduceFailed
    at: str
    error_code: str | None = None
    name: str | None = None


class ProducedRecorder:
    """Records ``Produced`` updates in a state directory, each under the state lock."""

    def __init__(self, directory: Path, *, history: int = 10, lock_timeout: float = 5.0) -> None:
        self.directory = directory
        self.history = history
        self.lock_timeout = lock_timeout

    def record(self, updates: Sequence[Produced]) -> list[tuple[str | None, str]]:
        """Per update: (project name or None, "recorded" | "unchanged" | "unknown")."""
        outcomes: list[tuple[str | None, str]] = []
        with state_lock(self.directory, timeout=self.lock_timeout):
            store = StateStore(self.directory, history=self.history)
            try:
                state = store.load()
                for u in updates:
                    name = u.name or _owner(state.projects, u.media_id)
                    last = (state.projects.get(name or "") or {}).get("last_render") or {}
                    if name is None or not last or last.get("media_id") != u.media_id:
                        outcomes.append((name, "unknown"))  # not this project's last render
                    elif last.get("status") == u.status and last.get("finished_at"):
                        outcomes.append((name, "unchanged"))
                    else:
                        event: dict[str, Any] = {
                            "type": "produced",
                            "name": name,
                            "media_id": u.media_id,
                            "status": u.status,
                            "at": u.at,
                        }
                        if u.error_code:
                            event["error_code"] = u.error_code
                        store.record(event)
                        outcomes.append((name, "recorded"))
                if store.pending_events:
                    store.snapshot()
            finally:
                store.close()
        return outcomes


def _owner(projects: dict[str, dict[str, Any]], media_id: str | None) -> str | None:
    """The project whose last render produces ``media_id``."""
    for name, entry in sorted(projects.items()):
        if media_id and (entry.get("last_render") or {}).get("media_id") == media_id:
            return name
    return None


# --------------------------------------------------------------------------- signature


def signature(url: str, timestamp: str, private_key: str) -> str:
    """X-VOD-SIGNATURE: lowercase hex MD5 of ``<callback URL>|<timestamp>|<PrivateKey>``."""
    return hashlib.md5(f"{url}|{timestamp}|{private_key}".encode()).hexdigest()


def verify(
    urls: Sequence[str],
    timestamp: str | None,
    sig: str | None,
    keys: Sequence[str],
    *,
    now: float,
    freshness: float,
) -> str | None:
    """None when the request is authentic; otherwise why not (for the log, never a secret)."""
    if not timestamp or not sig:
        return "missing X-VOD-TIMESTAMP / X-VOD-SIGNATURE"
    if not (timestamp.isascii() and timestamp.isdigit()):
        return "X-VOD-TIMESTAMP is not a Unix time"
    if abs(now - int(timestamp)) > freshness:
        return f"X-VOD-TIMESTAMP is more than {freshness:.0f}s away from now"
    given = sig.lower().encode()  # bytes: compare_digest refuses non-ASCII str
    for key in keys:  # several keys: accept old and new during a rotation
        for url in urls:
            if hmac.compare_digest(signature(url, timestamp, key).encode(), given):
                return None
    return "X-VOD-SIGNATURE does not match"


# --------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class CallbackResult:
    """What became of one received event (for the log and the ``on_result`` hook)."""

    media_id: str | None
    status: str
    outcome: str  # recorded | unchanged | unknown | error
    name: str | None = None
    detail: str = ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200, {"ok": True})  # a health check for load balancers and tests

    def do_POST(self) -> None:
        raw = self.headers.get("Content-Length") or "0"
        length = int(raw) if raw.isascii() and raw.isdigit() else MAX_BODY + 1
        if length > MAX_BODY:
            self.close_connection = True
            self._answer(413, {"error": "body too large or without a valid length"})
            return
        body = self.rfile.read(length) if length > 0 else b""
        status, doc = self.server.receiver.receive(self.path, dict(self.headers.items()), body)
        self._answer(status, doc)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("callback %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: CallbackReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class CallbackReceiver:
    """``CallbackReceiver(state_dir).start()`` serves until ``.stop()``; ``.url`` is the
    address to put in ``UserData.MessageCallback.CallbackURL``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        private_keys: Sequence[str] = (),
        freshness: float = 300.0,
        public_url: str | None = None,
        history: int = 10,
        lock_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        on_result: Callable[[CallbackResult], None] | None = None,
        retry_interval: float = 0.5,
    ) -> None:
        self.recorder = ProducedRecorder(state_dir, history=history, lock_timeout=lock_timeout)
        self.host, self._port = host, port
        self._keys = tuple(k for k in private_keys if k)
        self._freshness, self._public_url = freshness, public_url
        self._clock, self._on_result, self._retry = clock, on_result, retry_interval
        self._queue: queue.Queue[Produced | None] = queue.Queue()
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise ReconcilerError("the callback receiver is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> CallbackReceiver:
        try:
            self._httpd = _Server((self.host, self._port), self)
        except OSError as exc:
            raise ReconcilerError(
                f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}"
            ) from None
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever, args=(0.1,), name="callbacks-http", daemon=True
            ),
            threading.Thread(target=self._work, name="callbacks-record", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self.drain(timeout)
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until every accepted event was recorded (or given up); False on timeout."""
        done = self._queue.all_tasks_done  # the condition Queue.join() waits on
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks, timeout)

    def __enter__(self) -> CallbackReceiver:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ requests

    def _urls(self, path: str, headers: dict[str, str]) -> list[str]:
        if self._public_url:
            return [self._public_url]
        host = next((v for k, v in headers.items() if k.lower() == "host"), "")
        urls = [f"{scheme}://{host}{path}" for scheme in ("http", "https")]
        if path == "/":  # "http://h:p" and "http://h:p/" are posted to the same place
            urls += [u[:-1] for u in urls]
        return urls

    def receive(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Check and queue one POST; returns the HTTP status and answer document."""
        lower = {k.lower(): v for k, v in headers.items()}
        if self._keys:
            why = verify(
                self._urls(path, headers),
                lower.get("x-vod-timestamp"),
                lower.get("x-vod-signature"),
                self._keys,
                now=self._clock(),
                freshness=self._freshness,
            )
            if why is not None:
                log.warning("callback rejected: %s", why)
                return 401, {"error": "authentication failed"}
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return 400, {"error": "the body is not a JSON object"}
        if event.get("EventType") != "ProduceMediaComplete":
            log.info("callback ignored: event type %r", event.get("EventType"))
            return 200, {"ok": True, "ignored": True}
        ok = str(event.get("Status", "")).lower() == "success"
        at = event.get("EventTime")
        if not isinstance(at, str) or not at:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        code, media = event.get("ErrorCode"), event.get("MediaId")
        if not media:
            return 400, {"error": "the event has no MediaId"}
        status = "Produced" if ok else "ProduceFailed"
        self._queue.put(Produced(str(media), status, at, str(code) if code else None))
        return 200, {"ok": True}

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._record(item)
            finally:
                self._queue.task_done()

    def _record(self, item: Produced) -> None:
        while True:
            try:
                [(name, outcome)] = self.recorder.record([item])
                result = CallbackResult(item.media_id, item.status, outcome, name)
                break
            except LockHeldError:
                if self._stop.wait(self._retry):  # shutting down: wait/status recover it
                    result = CallbackResult(item.media_id, item.status, "error", None, "lock held")
                    break
            except ReconcilerError as exc:
                result = CallbackResult(item.media_id, item.status, "error", None, exc.message)
                break
        if result.outcome == "unknown":
            log.info("callback for unknown media %s ignored", item.media_id)
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # a broken hook must not stop the recording of later events
                log.exception("callback result hook failed")
