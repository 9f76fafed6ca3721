"""Pure request signing for Alibaba Cloud RPC APIs: ACS3-HMAC-SHA256 ("v3") and HMAC-SHA1 ("v2").

No clock, no randomness, no I/O: timestamps and nonces are arguments, so the same
functions serve the client (which signs) and the emulator (which verifies), and the
official vectors in ``tests/fixtures/vectors`` pin them down byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
API_VERSION = "2017-03-21"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba signs it: unreserved stay, space is %20, ``~`` literal."""
    return quote(value, safe="~")


# --------------------------------------------------------------------------- v2 (HMAC-SHA1)


def rpc_canonical_query(params: Mapping[str, str]) -> str:
    """Sorted (byte order), percent-encoded ``name=value`` pairs joined with ``&``."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items(), key=lambda kv: kv[0].encode())
        if k != "Signature"
    )


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&%2F&{percent_encode(rpc_canonical_query(params))}"


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64 HMAC-SHA1 of the string-to-sign, keyed with ``secret + '&'``."""
    digest = hmac.new(
        (secret + "&").encode(), rpc_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def rpc_common_params(
    *,
    action: str,
    access_key_id: str,
    timestamp: str,
    nonce: str,
    security_token: str | None = None,
    version: str = API_VERSION,
    fmt: str = "JSON",
) -> dict[str, str]:
    """The common parameters of a v2-signed RPC request (everything but ``Signature``)."""
    params = {
        "Action": action,
        "Version": version,
        "Format": fmt,
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": timestamp,
    }
    if security_token:
        params["SecurityToken"] = security_token
    return params


# --------------------------------------------------------------------------- v3 (ACS3)


@dataclass(frozen=True)
class V3Parts:
    canonical_request: str
    hashed_canonical_request: str
    string_to_sign: str
    signed_headers: str
    signature: str

    def authorization(self, access_key_id: str) -> str:
        return (
            f"{V3_ALGORITHM} Credential={access_key_id},"
            f"SignedHeaders={self.signed_headers},Signature={self.signature}"
        )


def v3_canonical_query(query: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    items = list(query.items()) if isinstance(query, Mapping) else list(query)
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(items, key=lambda kv: kv[0])
    )


def v3_canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Lower-cased, trimmed, sorted ``name:value`` lines plus the signed-headers list."""
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower().strip(), []).append(value.strip())
    names = sorted(merged)
    canonical = "".join(f"{n}:{','.join(merged[n])}\n" for n in names)
    return canonical, ";".join(names)


def v3_sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]] | Mapping[str, str],
    headers: Mapping[str, str],
    secret: str,
    payload_hash: str = EMPTY_SHA256,
) -> V3Parts:
    """Sign exactly the headers given (the caller chooses which headers are signed)."""
    canonical_headers, signed = v3_canonical_headers(headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            v3_canonical_query(query),
            canonical_headers,
            signed,
            payload_hash,
        ]
    )
    hashed = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{V3_ALGORITHM}\n{hashed}"
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return V3Parts(canonical_request, hashed, string_to_sign, signed, signature)


def v3_headers_to_sign(
    *,
    host: str,
    action: str,
    timestamp: str,
    nonce: str,
    security_token: str | None = None,
    payload_hash: str = EMPTY_SHA256,
    version: str = API_VERSION,
) -> dict[str, str]:
    """The ``x-acs-*`` headers (plus host) that our client signs for a v3 request."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": timestamp,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": payload_hash,
    }
    if security_token:
        headers["x-acs-security-token"] = security_token
    return headers


def parse_v3_authorization(value: str) -> dict[str, str] | None:
    """Split ``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``; None if malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM or not rest:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields
