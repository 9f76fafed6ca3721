"""Request authentication exactly as the VOD gateway does it: v2 (HMAC-SHA1) and v3 (ACS3).

The signer itself lives in ``reconciler.adapters.vod.signing`` (verified against the official
vectors); this module recomputes signatures from what arrived, checks timestamps and nonces, and
turns every failure into the VOD error the gateway would answer.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from reconciler.adapters.emulator.apierrors import ApiFault, missing_parameter
from reconciler.adapters.vod import signing

V2_REQUIRED = ("AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp")
V3_REQUIRED = ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
FORM = "application/x-www-form-urlencoded"
Headers = Mapping[str, str] | Iterable[tuple[str, str]]
MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"


@dataclass(frozen=True)
class Request:
    """An API request as received: decoded query, lower-cased headers, merged parameters."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]  # query + form body; for v2 this is exactly the signed set

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Headers,
        body: bytes,
    ) -> Request:
        """Lower-case (and join repeated) headers; merge a form-encoded body into the params."""
        merged: dict[str, str] = {}
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            key = name.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
        params = dict(query)
        if body and merged.get("content-type", "").startswith(FORM):
            with contextlib.suppress(UnicodeDecodeError):
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return cls(method.upper(), path, list(query), merged, body, params)

    @property
    def version(self) -> str:
        return "v3" if "authorization" in self.headers else "v2"

    @property
    def action(self) -> str | None:
        if self.version == "v3":
            return self.headers.get("x-acs-action") or self.params.get("Action")
        return self.params.get("Action")

    @property
    def api_version(self) -> str | None:
        if self.version == "v3":
            return self.headers.get("x-acs-version") or self.params.get("Version")
        return self.params.get("Version")


@dataclass(frozen=True)
class Identity:
    access_key_id: str
    security_token: str | None


class KeyRing:
    """Access keys the emulator accepts; an STS key also requires its security token."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def add(self, access_key_id: str, secret: str, security_token: str | None = None) -> None:
        with self._lock:
            self._keys[access_key_id] = (secret, security_token)

    def get(self, access_key_id: str) -> tuple[str, str | None] | None:
        with self._lock:
            return self._keys.get(access_key_id)


class NonceCache:
    """Nonces seen per access key within the window; older ones are forgotten."""

    def __init__(self, window: float, max_entries: int = 2_000_000) -> None:
        self._window = window
        self._max = max_entries
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[float, tuple[str, str]]] = deque()
        self._lock = threading.Lock()

    def use(self, access_key_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False if it was already used in the window."""
        key = (access_key_id, nonce)
        with self._lock:
            while self._order and (
                self._order[0][0] < now - self._window or len(self._order) > self._max
            ):
                self._seen.discard(self._order.popleft()[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            self._order.append((now, key))
            return True


def parse_timestamp(value: str) -> float | None:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return float(calendar.timegm(time.strptime(value, fmt)))
        except ValueError:
            continue
    return None


class Authenticator:
    def __init__(self, keys: KeyRing, clock: Callable[[], float], tolerance: float) -> None:
        self.keys = keys
        self._clock = clock
        self._tolerance = tolerance
        self.nonces = NonceCache(window=tolerance)

    def verify(self, req: Request) -> Identity:
        return self._v3(req) if req.version == "v3" else self._v2(req)

    def _v2(self, req: Request) -> Identity:
        p = req.params
        for name in V2_REQUIRED:
            if not p.get(name):
                raise missing_parameter(name)
        if p["SignatureMethod"] != "HMAC-SHA1":
            raise ApiFault(
                "InvalidParameter",
                'The specified parameter "SignatureMethod" is '
                "not valid: only HMAC-SHA1 is supported.",
            )
        self._check_time(p["Timestamp"])
        secret = self._secret(p["AccessKeyId"], p.get("SecurityToken"))
        signed = {k: v for k, v in p.items() if k != "Signature"}
        expected = signing.rpc_signature(req.method, signed, secret)
        if not hmac.compare_digest(expected.encode(), p["Signature"].encode()):
            raise ApiFault(
                "SignatureDoesNotMatch", MISMATCH + signing.rpc_string_to_sign(req.method, signed)
            )
        return self._nonce(p["AccessKeyId"], p["SignatureNonce"], p.get("SecurityToken"))

    def _v3(self, req: Request) -> Identity:
        auth = signing.parse_v3_authorization(req.headers["authorization"])
        if auth is None:
            raise ApiFault(
                "IncompleteSignature",
                "The request signature does not conform to "
                "Aliyun standards: expected ACS3-HMAC-SHA256 Credential=..,"
                "SignedHeaders=..,Signature=...",
            )
        h = req.headers
        for name in V3_REQUIRED:
            if not h.get(name):
                raise missing_parameter(name)
        signed_names = [n for n in auth["SignedHeaders"].lower().split(";") if n]
        needed = {"host"} | {n for n in h if n.startswith("x-acs-")}
        if not needed <= set(signed_names):
            absent = ", ".join(sorted(needed - set(signed_names)))
            raise ApiFault(
                "IncompleteSignature",
                "The request signature does not conform to "
                f"Aliyun standards: SignedHeaders must include {absent}.",
            )
        self._check_time(h["x-acs-date"])
        access_key_id = auth["Credential"]
        token = h.get("x-acs-security-token")
        secret = self._secret(access_key_id, token)
        parts = signing.v3_sign(
            method=req.method,
            path=req.path or "/",
            query=req.query,
            headers={n: h.get(n, "") for n in signed_names},
            secret=secret,
            payload_hash=hashlib.sha256(req.body).hexdigest(),
        )
        if not hmac.compare_digest(parts.signature.encode(), auth["Signature"].encode()):
            raise ApiFault("SignatureDoesNotMatch", MISMATCH + parts.string_to_sign)
        return self._nonce(access_key_id, h["x-acs-signature-nonce"], token)

    def _check_time(self, value: str) -> None:
        ts = parse_timestamp(value)
        if ts is None:
            raise ApiFault(
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        if abs(self._clock() - ts) > self._tolerance:
            raise ApiFault(
                "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )

    def _secret(self, access_key_id: str, token: str | None) -> str:
        found = self.keys.get(access_key_id)
        if found is None:
            raise ApiFault("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        secret, required_token = found
        if required_token is not None and token != required_token:
            raise ApiFault(
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The security token does not match the access key.",
            )
        return secret

    def _nonce(self, access_key_id: str, nonce: str, token: str | None) -> Identity:
        if not self.nonces.use(access_key_id, nonce, self._clock()):
            raise ApiFault("SignatureNonceUsed", "Specified signature nonce was used already.")
        return Identity(access_key_id, token)
