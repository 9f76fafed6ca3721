"""Where Alibaba Cloud credentials come from: environment, the SDK chain, profile files.

``resolve_credentials(env, home)`` finds a working source once and returns a provider;
the client asks the provider before every attempt, so refreshed STS tokens are used.
"""

from __future__ import annotations

import configparser
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reconciler.errors import CredentialsError

ENV_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
ENV_INI_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
ENV_CLI_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
ENV_OIDC = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)
ENV_ECS_DISABLED = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
ENV_URI = "ALIBABA_CLOUD_CREDENTIALS_URI"
_HINT = (
    f"set {ENV_ID} and {ENV_SECRET} (plus {ENV_TOKEN} for STS), "
    "or configure a profile with `aliyun configure`"
)


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally with an STS token. Never shows the secret or token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        kind = "sts" if self.security_token else "access_key"
        return f"Credentials(access_key_id={self.access_key_id!r}, type={kind!r})"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for scrubbing messages)."""
        return tuple(s for s in (self.access_key_secret, self.security_token) if s)


class AccessKeyLike(Protocol):
    """Anything shaped like Credentials (e.g. the emulator's demo key)."""

    @property
    def access_key_id(self) -> str: ...
    @property
    def access_key_secret(self) -> str: ...
    @property
    def security_token(self) -> str | None: ...


@runtime_checkable
class CredentialsProvider(Protocol):
    """Hands out current credentials; ``source`` says where they come from (no secrets)."""

    @property
    def source(self) -> str: ...

    def get_credentials(self) -> Credentials: ...


class StaticCredentialsProvider:
    """Fixed credentials (environment, profile files, tests, the emulator's demo key)."""

    def __init__(self, credentials: Credentials, source: str = "static") -> None:
        self._credentials = credentials
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self._credentials!r}, source={self._source!r})"


def as_provider(
    credentials: Credentials | CredentialsProvider | AccessKeyLike,
) -> CredentialsProvider:
    """Wrap fixed keys (ours or any object with the same three fields) as a provider."""
    if isinstance(credentials, CredentialsProvider):
        return credentials
    if isinstance(credentials, Credentials):
        return StaticCredentialsProvider(credentials)
    fixed = Credentials(
        credentials.access_key_id, credentials.access_key_secret, credentials.security_token
    )
    return StaticCredentialsProvider(fixed, type(credentials).__name__)


class SdkChainProvider:
    """Providers from ``alibabacloud_credentials`` tried in order; the first that works is kept.

    The SDK providers cache and refresh OIDC / ECS-role / RAM-role STS tokens themselves,
    so asking on every attempt is cheap and always returns a token that is still valid.
    """

    def __init__(self, chain: list[tuple[str, Any]]) -> None:
        self._chain = chain
        self._chosen: tuple[str, Any] | None = None
        self._last: Credentials | None = None  # to scrub its secrets from SDK messages
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        return self._chosen[0] if self._chosen else "alibabacloud-credentials chain"

    def resolve(self) -> dict[str, str]:
        """Pick the first provider that yields credentials; else return each one's failure."""
        failures: dict[str, str] = {}
        with self._lock:
            for name, provider in self._chain:
                try:
                    _convert(provider.get_credentials())
                except Exception as exc:  # the SDK raises many unrelated types
                    failures[name] = f"{name}: {_short(exc)}"
                    continue
                self._chosen = (name, provider)
                return {}
        return failures

    def get_credentials(self) -> Credentials:
        if self._chosen is None and self.resolve():
            raise CredentialsError(
                "no provider of the alibabacloud-credentials chain works", hint=_HINT
            )
        assert self._chosen is not None
        name, provider = self._chosen
        try:
            self._last = _convert(provider.get_credentials())
            return self._last
        except Exception as exc:
            secrets = self._last.secrets() if self._last else ()
            failure = f"refreshing credentials from {name} failed: {_short(exc, secrets)}"
        raise CredentialsError(failure, hint=_HINT)  # raised outside `except`: no chained SDK error

    def __repr__(self) -> str:
        return f"SdkChainProvider(source={self.source!r})"


def _short(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return text if len(text) <= 240 else text[:237] + "..."


def _convert(sdk_credentials: Any) -> Credentials:
    key_id = sdk_credentials.get_access_key_id()
    secret = sdk_credentials.get_access_key_secret()
    if not key_id or not secret:
        raise ValueError("the provider returned an empty AccessKey")
    token = sdk_credentials.get_security_token()
    return Credentials(str(key_id), str(secret), str(token) if token else None)


def _true(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() == "true"


# --------------------------------------------------------------------------- our own readers


def _from_env(env: Mapping[str, str], notes: list[str]) -> Credentials | None:
    key_id, secret = env.get(ENV_ID, ""), env.get(ENV_SECRET, "")
    if key_id and secret:
        return Credentials(key_id, secret, env.get(ENV_TOKEN) or None)
    if key_id or secret:
        missing = ENV_SECRET if key_id else ENV_ID
        notes.append(f"environment: {missing} is empty or unset")
    else:
        notes.append(f"environment: {ENV_ID} / {ENV_SECRET} not set")
    return None


def cli_config_path(home: Path) -> Path:
    return home / ".aliyun" / "config.json"


def ini_path(env: Mapping[str, str], home: Path) -> Path:
    override = env.get(ENV_INI_FILE)
    return Path(override) if override else home / ".alibabacloud" / "credentials.ini"


def _from_cli_config(env: Mapping[str, str], home: Path, notes: list[str]) -> Credentials | None:
    path = cli_config_path(home)
    if _true(env, ENV_CLI_DISABLED):
        notes.append(f"{path}: skipped ({ENV_CLI_DISABLED}=true)")
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"{path}: not found")
        return None
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: unreadable ({type(exc).__name__})")
        return None
    name = env.get(ENV_PROFILE) or (config.get("current") if isinstance(config, dict) else None)
    profiles = config.get("profiles") if isinstance(config, dict) else None
    match = [p for p in profiles or [] if isinstance(p, dict) and p.get("name") == name]
    if not name or not match:
        notes.append(f"{path}: no profile named {name!r}")
        return None
    profile, mode = match[0], match[0].get("mode")
    key_id, secret = profile.get("access_key_id"), profile.get("access_key_secret")
    token = profile.get("sts_token") if mode == "StsToken" else None
    if key_id and secret and (mode == "AK" or (mode == "StsToken" and token)):
        return Credentials(str(key_id), str(secret), str(token) if token else None)
    if mode in ("AK", "StsToken"):
        notes.append(f"{path}: profile {name!r} (mode {mode}) lacks a key, secret or token")
    else:
        notes.append(
            f"{path}: profile {name!r} has mode {mode!r}, which needs the "
            "alibabacloud-credentials package"
        )
    return None


def _from_ini(env: Mapping[str, str], home: Path, notes: list[str]) -> Credentials | None:
    path = ini_path(env, home)
    section = env.get(ENV_PROFILE) or "default"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        notes.append(f"{path}: not found")
        return None
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        notes.append(f"{path}: unreadable ({type(exc).__name__})")
        return None
    if not parser.has_section(section):
        notes.append(f"{path}: no section [{section}]")
        return None
    # Like the SDK, a `#` starts an inline comment, so both readers agree on the value.
    values = {k: v.split("#")[0].strip() for k, v in parser.items(section)}
    kind = values.get("type")
    if kind == "access_key" and values.get("access_key_id") and values.get("access_key_secret"):
        return Credentials(values["access_key_id"], values["access_key_secret"])
    if kind == "access_key":
        notes.append(f"{path}: [{section}] lacks access_key_id or access_key_secret")
    else:
        notes.append(
            f"{path}: [{section}] has type {kind!r}, which needs the "
            "alibabacloud-credentials package"
        )
    return None


# --------------------------------------------------------------------------- the SDK chain

OIDC_SOURCE = "OIDC role (ALIBABA_CLOUD_ROLE_ARN ...)"
ECS_SOURCE = "ECS instance RAM role"


def _sdk_chain(env: Mapping[str, str], home: Path) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """The SDK's default chain order, built with *our* env and home; plus what was skipped.

    ``alibabacloud_credentials.client.Client()`` reads ``os.environ`` and ``$HOME`` once, at
    import time, so it would ignore the mapping we were given; its providers accept every
    setting as an argument, so we build the same chain explicitly.
    """
    from alibabacloud_credentials import provider as sdk

    chain: list[tuple[str, Any]] = []
    skipped: dict[str, str] = {}
    cli, ini = str(cli_config_path(home)), str(ini_path(env, home))
    if all(env.get(n) for n in ENV_OIDC):
        oidc = sdk.OIDCRoleArnCredentialsProvider(
            role_arn=env[ENV_OIDC[0]],
            oidc_provider_arn=env[ENV_OIDC[1]],
            oidc_token_file_path=env[ENV_OIDC[2]],
            role_session_name=env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or None,
            sts_region_id=env.get("ALIBABA_CLOUD_STS_REGION") or None,
            enable_vpc=_true(env, "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"),
        )
        chain.append((OIDC_SOURCE, oidc))
    else:
        skipped[OIDC_SOURCE] = f"OIDC: {' / '.join(ENV_OIDC)} not all set"
    if _true(env, ENV_CLI_DISABLED):
        skipped[cli] = f"{cli}: skipped ({ENV_CLI_DISABLED}=true)"
    else:
        profile = env.get(ENV_PROFILE) or None
        chain.append(
            (cli, sdk.CLIProfileCredentialsProvider(profile_name=profile, profile_file=cli))
        )
    section = env.get(ENV_PROFILE) or "default"
    chain.append((ini, sdk.ProfileCredentialsProvider(profile_file=ini, profile_name=section)))
    if _true(env, ENV_ECS_DISABLED):
        skipped[ECS_SOURCE] = f"ECS instance metadata: skipped ({ENV_ECS_DISABLED}=true)"
    else:
        try:
            ecs = sdk.EcsRamRoleCredentialsProvider(
                role_name=env.get("ALIBABA_CLOUD_ECS_METADATA") or None,
                disable_imds_v1=_true(env, "ALIBABA_CLOUD_IMDSV1_DISABLED"),
            )
            chain.append((ECS_SOURCE, ecs))
        except ValueError as exc:  # disabled through the process environment
            skipped[ECS_SOURCE] = f"ECS instance metadata: {_short(exc)}"
    if env.get(ENV_URI):
        chain.append((ENV_URI, sdk.URLCredentialsProvider(uri=env[ENV_URI])))
    return chain, skipped


def sdk_available() -> bool:
    try:
        from alibabacloud_credentials import provider  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_credentials(
    env: Mapping[str, str], home: Path, *, use_sdk_chain: bool | None = None
) -> CredentialsProvider:
    """Find credentials: env vars, then the SDK chain (if installed) or our profile readers.

    ``use_sdk_chain`` None means "if alibabacloud-credentials is importable". Raises one
    CredentialsError that names every place that was looked at, in the order looked at.
    """
    report: list[str] = []
    found = _from_env(env, report)
    if found is not None:
        return StaticCredentialsProvider(found, "environment variables")
    use_sdk = sdk_available() if use_sdk_chain is None else use_sdk_chain
    sdk_notes: dict[str, str] = {}
    if use_sdk:
        chain, sdk_notes = _sdk_chain(env, home)
        provider = SdkChainProvider(chain)
        failures = provider.resolve()
        if not failures:
            return provider
        sdk_notes.update(failures)
    elif all(env.get(n) for n in ENV_OIDC):
        report.append("OIDC variables are set but need the alibabacloud-credentials package")
    # Our own readers also run after an SDK failure: they say precisely what is wrong with
    # a file ("not found", "no profile named ..."), where the SDK's messages are vaguer.
    own: dict[str, list[str]] = {}
    for path, reader in (
        (cli_config_path(home), _from_cli_config),
        (ini_path(env, home), _from_ini),
    ):
        found = reader(env, home, own.setdefault(str(path), []))
        if found is not None:
            return StaticCredentialsProvider(found, str(path))
    for source in (OIDC_SOURCE, *own, ECS_SOURCE, ENV_URI):
        own_notes = own.get(source, [])
        # With the SDK installed, "needs the package" is wrong: the SDK's own reason is better.
        if own_notes and not (use_sdk and source in sdk_notes and "needs the" in own_notes[0]):
            report += own_notes
        elif source in sdk_notes:
            report.append(sdk_notes[source])
    raise CredentialsError(
        "no Alibaba Cloud credentials found; looked at:\n" + "\n".join(f"  - {n}" for n in report),
        hint=_HINT,
    )
