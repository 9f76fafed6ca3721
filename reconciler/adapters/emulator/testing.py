"""Test helpers: a fake clock and a minimal signed RPC client for the emulator.

``SignedClient`` is not the product's ``VodClient``: it does no retries or parsing, and it lets a
test forge any part of a request (nonce, timestamp, secret, placement of parameters) to provoke
each VOD error.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import httpx

from reconciler.adapters.emulator.models import iso
from reconciler.adapters.emulator.service import Emulator
from reconciler.adapters.emulator.transport import EmulatorTransport
from reconciler.adapters.vod import signing

FORM = "application/x-www-form-urlencoded"


class FakeClock:
    """A settable clock for time-based behaviour (timestamps, production delay, QPS window)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SignedClient:
    def __init__(
        self,
        http: httpx.Client,
        access_key_id: str,
        access_key_secret: str,
        *,
        signature: str = "v3",
        security_token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.signature = signature
        self.security_token = security_token
        self.clock = clock

    def request(
        self,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        form: bool = False,
        nonce: str | None = None,
        timestamp: str | None = None,
        secret: str | None = None,
        version: str = signing.API_VERSION,
    ) -> httpx.Response:
        """Sign and send one request; ``form`` puts the parameters in a form-encoded body."""
        business = dict(params or {})
        nonce = nonce or uuid.uuid4().hex
        timestamp = timestamp or iso(self.clock())
        secret = self.access_key_secret if secret is None else secret
        if self.signature == "v2":
            all_params = {
                **business,
                **signing.rpc_common_params(
                    action=action,
                    access_key_id=self.access_key_id,
                    timestamp=timestamp,
                    nonce=nonce,
                    security_token=self.security_token,
                    version=version,
                    fmt="json",
                ),
            }
            all_params["Signature"] = signing.rpc_signature(method, all_params, secret)
            if form:
                return self.http.request(
                    method,
                    "/",
                    content=urlencode(all_params).encode(),
                    headers={"content-type": FORM},
                )
            return self.http.request(method, "/", params=all_params)
        body = urlencode(business).encode() if form else b""
        query = {} if form else business
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = signing.v3_headers_to_sign(
            host=self.http.base_url.netloc.decode("ascii"),
            action=action,
            timestamp=timestamp,
            nonce=nonce,
            security_token=self.security_token,
            payload_hash=payload_hash,
            version=version,
        )
        parts = signing.v3_sign(
            method=method,
            path="/",
            query=query,
            headers=headers,
            secret=secret,
            payload_hash=payload_hash,
        )
        sent = {**headers, "Authorization": parts.authorization(self.access_key_id)}
        if form:
            sent["content-type"] = FORM
        return self.http.request(method, "/", params=query, content=body or None, headers=sent)

    def call(self, action: str, **params: str) -> dict[str, object]:
        """Send and return the decoded JSON answer, whatever its status."""
        doc = self.request(action, params).json()
        assert isinstance(doc, dict)
        return doc


def in_process_client(
    emulator: Emulator,
    *,
    signature: str = "v3",
    clock: Callable[[], float] = time.time,
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
) -> SignedClient:
    """A ``SignedClient`` wired to ``emulator`` through ``EmulatorTransport`` (demo key default)."""
    creds = emulator.demo_credentials
    http = httpx.Client(transport=EmulatorTransport(emulator), base_url="http://vod.emulator.test")
    return SignedClient(
        http,
        access_key_id or creds.access_key_id,
        creds.access_key_secret if access_key_secret is None else access_key_secret,
        signature=signature,
        security_token=security_token,
        clock=clock,
    )
