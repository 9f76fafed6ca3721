"""The emulator core: one thread-safe ``handle()`` that both the transport and the server call.

Pipeline per request: latency -> protocol checks (method, Action, Version) -> authentication
(signature, timestamp, access key, nonce) -> QPS limit and random 5xx -> due productions are
settled -> the Action runs -> the call is logged -> maybe the answer is dropped. Business state
lives in the store, so an emulator over a data directory is shared by processes.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.emulator.actions import Actions
from reconciler.adapters.emulator.apierrors import (
    JSON_CONTENT_TYPE,
    ApiFault,
    error_body,
    missing_parameter,
)
from reconciler.adapters.emulator.auth import Authenticator, Headers, KeyRing, Request
from reconciler.adapters.emulator.callbacks import CallbackDispatcher, is_loopback
from reconciler.adapters.emulator.config import EmulatorConfig
from reconciler.adapters.emulator.faults import Faults
from reconciler.adapters.emulator.inspection import InspectionMixin
from reconciler.adapters.emulator.media import MediaLibrary, load_media_file
from reconciler.adapters.emulator.models import CallRecord, EventRecord
from reconciler.adapters.emulator.store import Store
from reconciler.adapters.vod.credentials import Credentials
from reconciler.adapters.vod.signing import API_VERSION
from reconciler.errors import EmulatorError

HIDDEN_PARAMS = frozenset({"Signature", "SecurityToken"})
DB_NAME = "emulator.sqlite3"


@dataclass
class EmulatorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    drop: bool = False  # lose the answer: the server closes the socket, the transport raises
    request_id: str = field(default="")

    def json(self) -> object:
        return json.loads(self.body)


class Emulator(InspectionMixin):
    """A local ApsaraVideo VOD (online editing) that speaks the real wire protocol."""

    def __init__(
        self,
        data_dir: Path | None = None,
        access_keys: Mapping[str, str] | None = None,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.data_dir = data_dir
        self._clock = clock
        self._lock = threading.RLock()
        if data_dir is not None:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EmulatorError(
                    f"cannot create the emulator data directory {data_dir}: {exc.strerror}"
                ) from exc
        self._store = Store(None if data_dir is None else data_dir / DB_NAME)
        self._keys = KeyRing()
        if access_keys:
            for key_id, secret in access_keys.items():
                self._keys.add(key_id, secret)
            first = next(iter(access_keys.items()))
            self._demo = Credentials(first[0], first[1])
        else:
            self._demo = self._load_demo_key()
            self._keys.add(self._demo.access_key_id, self._demo.access_key_secret)
        self._auth = Authenticator(self._keys, clock, self.config.timestamp_tolerance)
        self._faults = Faults(self.config, clock, sleep)
        self._media = MediaLibrary(self._store, self.config)
        self._actions = Actions(self._store, self._media, self.config, clock)
        self._callbacks = CallbackDispatcher(self.config, self._record_delivery, clock)
        if self.config.media_file is not None:
            media = load_media_file(self.config.media_file)
            with self._lock, self._store.transaction():
                self._media.seed(media)

    @classmethod
    def embedded(
        cls,
        state_dir: Path,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Emulator:
        """The in-process emulator of ``--endpoint emulator``: data in ``state_dir/emulator``.

        Without an explicit config the ``RECONCILER_EMULATOR_*`` environment applies.
        """
        return cls(state_dir / "emulator", None, config or EmulatorConfig.from_env(), clock=clock)

    @property
    def demo_credentials(self) -> Credentials:
        return self._demo

    def add_access_key(
        self, access_key_id: str, secret: str, security_token: str | None = None
    ) -> None:
        """Accept another key; with ``security_token`` it is an STS key requiring that token."""
        self._keys.add(access_key_id, secret, security_token)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver pending callbacks (bounded by ``timeout``) and close the store."""
        self._callbacks.close(timeout)
        with self._lock:
            self._store.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Headers,
        body: bytes = b"",
    ) -> EmulatorResponse:
        """Answer one HTTP request exactly as VOD would (thread-safe)."""
        if path.startswith("/_emulator"):
            return self.inspect(method, path, query, body)
        self._faults.delay()
        req = Request.build(method, path, query, headers, body)
        request_id = str(uuid.uuid4()).upper()
        identity = None
        try:
            action = self._check_protocol(req)
            identity = self._auth.verify(req)
            self._faults.admit()
            with self._lock, self._store.transaction():
                outbox = self._settle_locked()
                doc, ids = self._actions.handlers[action](req.params)
                dropped = self._faults.drop(action)
                self._log(req, request_id, 200, "OK", ids, identity.access_key_id, dropped)
            status, out = (
                200,
                json.dumps({"RequestId": request_id, **doc}, ensure_ascii=False).encode(),
            )
        except ApiFault as fault:
            outbox = []  # a failed Action rolled its settling back; the next request redoes it
            status, out = fault.status, error_body(fault, request_id, self.config.host_id)
            dropped = self._faults.drop(req.action)
            key_id = identity.access_key_id if identity else None
            with self._lock, self._store.transaction():
                ids = _requested_ids(req.params)
                self._log(req, request_id, status, fault.code, ids, key_id, dropped)
        self._send_callbacks(outbox)  # only once the settling is committed
        headers_out = [("Content-Type", JSON_CONTENT_TYPE), ("x-acs-request-id", request_id)]
        return EmulatorResponse(status, headers_out, out, dropped, request_id)

    def _check_protocol(self, req: Request) -> str:
        if req.method not in ("GET", "POST"):
            raise ApiFault(
                "UnsupportedHTTPMethod",
                f"The HTTP method {req.method} is not supported; use GET or POST.",
                400,
            )
        if req.path not in ("", "/"):
            raise ApiFault(
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
                404,
            )
        action, version = req.action, req.api_version
        if not action:
            raise missing_parameter("Action")
        if not version:
            raise missing_parameter("Version")
        if version != API_VERSION:
            raise ApiFault("InvalidVersion", "Specified parameter Version is not valid.", 400)
        if action not in self._actions.handlers:
            raise ApiFault(
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
                404,
            )
        return action

    def _log(
        self,
        req: Request,
        request_id: str,
        status: int,
        code: str,
        project_ids: tuple[str, ...],
        access_key_id: str | None,
        dropped: bool,
    ) -> None:
        params = {k: v for k, v in req.params.items() if k not in HIDDEN_PARAMS}
        signed = "authorization" in req.headers or "Signature" in req.params
        call = CallRecord(
            self._clock(), req.action or "-", params, req.version if signed else "-",
            project_ids, status, code, request_id, access_key_id, dropped,
        )  # fmt: skip
        self._store.insert_call(call, self.config.call_log_cap)

    # ------------------------------------------------------------------ production
    def settle(self) -> int:
        """Finish the productions that are due now; returns how many finished."""
        with self._lock, self._store.transaction():
            outbox = self._settle_locked()
        self._send_callbacks(outbox)
        return len(outbox)

    def _settle_locked(self) -> list[EventRecord]:
        events = []
        for job in self._actions.settle(self._clock()):
            url = job.callback_url
            delivery = "none" if not url else "pending" if is_loopback(url) else "skipped"
            rec = EventRecord(0, self._clock(), job.media_id, job.event(), url, delivery)
            rec.seq = self._store.insert_event(rec)
            events.append(rec)
        return events

    def _send_callbacks(self, events: list[EventRecord]) -> None:
        for rec in events:
            if rec.delivery == "pending" and rec.callback_url:
                self._callbacks.submit(rec.seq, rec.callback_url, rec.event)

    def _record_delivery(self, seq: int, delivery: str, attempts: int, error: str | None) -> None:
        with self._lock:
            try:
                with self._store.transaction():
                    self._store.update_event(seq, delivery, attempts, error)
            except Exception:  # the store may be closed at shutdown; delivery is best effort
                return

    def flush_callbacks(self, timeout: float = 10.0) -> bool:
        """Wait for queued callbacks to be delivered (or to fail); False on timeout."""
        return self._callbacks.flush(timeout)

    # ------------------------------------------------------------------ demo key
    def _load_demo_key(self) -> Credentials:
        with self._lock, self._store.transaction():
            key_id, secret = (
                self._store.get_meta("demo_key_id"),
                self._store.get_meta("demo_key_secret"),
            )
            if key_id is None or secret is None:
                alphabet = string.ascii_letters + string.digits
                key_id = "LTAI5t" + "".join(secrets.choice(alphabet) for _ in range(18))
                secret = "".join(secrets.choice(alphabet) for _ in range(30))
                self._store.set_meta("demo_key_id", key_id)
                self._store.set_meta("demo_key_secret", secret)
        return Credentials(key_id, secret)


def _requested_ids(params: Mapping[str, str]) -> tuple[str, ...]:
    """The project ids a failed call named, so the log still tells which project it was for."""
    raw = params.get("ProjectId") or params.get("ProjectIds") or ""
    return tuple(i.strip() for i in raw.split(",") if i.strip())
