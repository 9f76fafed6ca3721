"""httpx.Auth classes that sign VOD RPC requests with ``signing.py`` (v3 default, v2), and the
redaction that keeps signed material out of messages and logs.

Both re-sign on every ``auth_flow`` call with a fresh timestamp and nonce, so a retried
request never repeats a nonce. The query is written in RFC 3986 form (space as %20, ``*`` as
%2A, ``~`` literal): every server-side decoder reads back exactly the values we signed.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable
from urllib.parse import quote, quote_plus

import httpx

from reconciler.adapters.vod import signing
from reconciler.adapters.vod.credentials import Credentials, CredentialsProvider

Clock = Callable[[], float]
NonceFactory = Callable[[], str]
USER_AGENT = "reconciler/0.1 (+vod-editing-gitops)"


def new_nonce() -> str:
    return uuid.uuid4().hex


def acs_timestamp(epoch_seconds: float) -> str:
    """UTC ``yyyy-MM-ddTHH:mm:ssZ`` in whole seconds, as both signature versions want."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def encode_query(params: Iterable[tuple[str, str]]) -> bytes:
    return "&".join(
        f"{signing.percent_encode(k)}={signing.percent_encode(v)}" for k, v in params
    ).encode("ascii")


class _VodAuth(httpx.Auth, abc.ABC):
    """Shared plumbing: which action, whose credentials, which clock and nonces."""

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        credentials: Credentials | CredentialsProvider,
        action: str,
        *,
        clock: Clock = time.time,
        nonce: NonceFactory = new_nonce,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._credentials = credentials
        self.action = action
        self._clock = clock
        self._nonce = nonce
        self._user_agent = user_agent

    def _current(self) -> Credentials:
        if isinstance(self._credentials, Credentials):
            return self._credentials
        return self._credentials.get_credentials()

    def __repr__(self) -> str:  # never the credentials object, let alone its secret
        return f"{type(self).__name__}(action={self.action!r})"

    @abc.abstractmethod
    def sign(self, request: httpx.Request) -> None:
        """Add this scheme's signature to ``request`` (fresh nonce and timestamp)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


class AcsV3Auth(_VodAuth):
    """ACS3-HMAC-SHA256: business parameters stay in the query, identity goes in headers."""

    def sign(self, request: httpx.Request) -> None:
        creds = self._current()
        body = request.content
        payload_hash = hashlib.sha256(body).hexdigest() if body else signing.EMPTY_SHA256
        query = list(request.url.params.multi_items())
        request.url = request.url.copy_with(query=encode_query(query) or None)
        signed = signing.v3_headers_to_sign(
            host=request.headers["host"],
            action=self.action,
            timestamp=acs_timestamp(self._clock()),
            nonce=self._nonce(),
            security_token=creds.security_token,
            payload_hash=payload_hash,
        )
        parts = signing.v3_sign(
            method=request.method,
            path=request.url.path,
            query=query,
            headers=signed,
            secret=creds.access_key_secret,
            payload_hash=payload_hash,
        )
        for name, value in signed.items():
            if name != "host":
                request.headers[name] = value
        request.headers["accept"] = "application/json"
        request.headers["user-agent"] = self._user_agent
        request.headers["authorization"] = parts.authorization(creds.access_key_id)


class RpcV2Auth(_VodAuth):
    """HMAC-SHA1 (SignatureVersion 1.0): common and business parameters all in the query."""

    def sign(self, request: httpx.Request) -> None:
        creds = self._current()
        business = dict(request.url.params.multi_items())
        params = signing.rpc_common_params(
            action=self.action,
            access_key_id=creds.access_key_id,
            timestamp=acs_timestamp(self._clock()),
            nonce=self._nonce(),
            security_token=creds.security_token,
        )
        clash = business.keys() & params.keys() | ({"Signature"} & business.keys())
        if clash:
            raise ValueError(f"business parameters may not override {sorted(clash)}")
        params.update(business)
        # The signature covers the decoded values; encode_query lets the server decode them
        # back byte for byte, so the string it signs is the one we signed.
        signature = signing.rpc_signature(request.method, params, creds.access_key_secret)
        request.url = request.url.copy_with(
            query=encode_query([*sorted(params.items()), ("Signature", signature)])
        )
        request.headers["accept"] = "application/json"
        request.headers["user-agent"] = self._user_agent


def make_auth(
    signature: str,
    credentials: Credentials | CredentialsProvider,
    action: str,
    *,
    clock: Clock = time.time,
    nonce: NonceFactory = new_nonce,
    user_agent: str = USER_AGENT,
) -> _VodAuth:
    """The Auth for ``signature`` "v3" (ACS3-HMAC-SHA256) or "v2" (HMAC-SHA1)."""
    cls = AcsV3Auth if signature == "v3" else RpcV2Auth
    return cls(credentials, action, clock=clock, nonce=nonce, user_agent=user_agent)


# --------------------------------------------------------------------------- redaction

_SIGNED_PARAM = re.compile(r"(?i)\b(Signature|SecurityToken|AccessKeySecret)=[^&\s'\"]*")
_URL_QUERY = re.compile(r"(https?://[^\s?'\"]*)\?[^\s'\"]*")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secrets from text that may quote a request: VOD's SignatureDoesNotMatch echoes
    its string-to-sign (which holds the STS token), httpx errors may quote the URL."""
    head, marker, _ = text.partition("string to sign is:")
    text = head + (marker + " [redacted]" if marker else "")
    for secret in secrets:
        if secret:
            once = quote(secret, safe="")
            for form in {secret, once, quote(once, safe=""), quote_plus(secret, safe="")}:
                text = text.replace(form, "***")
    text = _SIGNED_PARAM.sub(lambda match: f"{match.group(1)}=***", text)
    return _URL_QUERY.sub(r"\1?***", text)


class _RedactHttpxUrls(logging.Filter):
    """httpx logs every request URL at INFO; a v2 URL carries the signature and STS token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) and arg.query else arg
                for arg in record.args
            )
        return True


_redaction_lock = threading.Lock()


def install_httpx_log_redaction() -> None:
    """Idempotently strip queries from URLs in the ``httpx`` logger's records."""
    logger = logging.getLogger("httpx")
    with _redaction_lock:
        if not any(isinstance(f, _RedactHttpxUrls) for f in logger.filters):
            logger.addFilter(_RedactHttpxUrls())
