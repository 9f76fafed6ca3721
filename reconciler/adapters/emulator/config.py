"""Emulator settings: behaviour knobs and fault injection, from code, flags or environment.

Every field has a ``RECONCILER_EMULATOR_<FIELD>`` environment variable (see ``ENV_FIELDS``) so a
fault can be switched on for the embedded emulator of a CLI run without touching code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ConfigError

ENV_PREFIX = "RECONCILER_EMULATOR_"


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves. Defaults model a healthy VOD in cn-shanghai."""

    region: str = "cn-shanghai"
    # Production: seconds from submit to Produced/ProduceFailed (evaluated lazily on the clock).
    produce_delay: float = 2.0
    # Media library: a JSON file {MediaId: seconds} or [{"MediaId":..,"Duration":..}].
    media_file: Path | None = None
    # Permissive: unknown MediaIds are auto-registered with ``default_media_duration`` seconds.
    # Strict (False): a clip on an unknown MediaId fails production (asynchronously).
    permissive_media: bool = True
    default_media_duration: float = 60.0
    # MediaIds whose use in a timeline makes production fail (asynchronously).
    fail_media_ids: frozenset[str] = frozenset()
    # MediaIds whose use in a timeline makes ProduceEditingProjectVideo fail at once with a
    # permanent InvalidParameter (nothing is changed or produced).
    reject_media_ids: frozenset[str] = frozenset()
    # Faults: latency (fixed + uniform jitter, seconds), global QPS limit (None = unlimited),
    # random Throttling.User rate, random 5xx rate, and the rate of dropping the connection
    # after a request was processed.
    latency: float = 0.0
    latency_jitter: float = 0.0
    qps_limit: float | None = None
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    drop_actions: frozenset[str] = frozenset()  # empty: any action may be dropped
    seed: int | None = None
    # Protocol: allowed clock skew and nonce memory (VOD: 15 minutes for both).
    timestamp_tolerance: float = 900.0
    # Call log: rows kept in the store (oldest trimmed first; counts are never trimmed).
    call_log_cap: int = 100_000
    # Callbacks: per-attempt timeout, attempts and spacing (VOD: 5 s, 3 attempts, 1 s apart).
    callback_timeout: float = 5.0
    callback_attempts: int = 3
    callback_retry_interval: float = 1.0
    callback_private_key: str | None = None
    host_id: str = field(default="")

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"emulator {name} must be between 0 and 1, got {rate}")
        for name in ("produce_delay", "latency", "latency_jitter", "default_media_duration"):
            if getattr(self, name) < 0:
                raise ConfigError(f"emulator {name} must not be negative")
        if self.qps_limit is not None and self.qps_limit <= 0:
            raise ConfigError("emulator qps_limit must be positive")
        if not self.host_id:
            object.__setattr__(self, "host_id", f"vod.{self.region}.aliyuncs.com")

    def replace(self, **changes: object) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: EmulatorConfig | None = None
    ) -> EmulatorConfig:
        """``base`` (or the defaults) overridden by every ``RECONCILER_EMULATOR_*`` variable set."""
        env = os.environ if environ is None else environ
        changes: dict[str, object] = {}
        for name, kind in ENV_FIELDS.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None or raw.strip() == "":
                continue
            changes[name] = _parse(name, kind, raw.strip())
        return (base or cls()).replace(**changes)


# field -> parser kind, for the environment and the CLI
ENV_FIELDS: dict[str, str] = {
    "region": "str",
    "produce_delay": "float",
    "media_file": "path",
    "permissive_media": "bool",
    "default_media_duration": "float",
    "fail_media_ids": "set",
    "reject_media_ids": "set",
    "latency": "float",
    "latency_jitter": "float",
    "qps_limit": "float",
    "throttle_rate": "float",
    "error_rate": "float",
    "drop_rate": "float",
    "drop_actions": "set",
    "seed": "int",
    "callback_private_key": "str",
}


def _parse(name: str, kind: str, raw: str) -> object:
    var = ENV_PREFIX + name.upper()
    try:
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
        if kind == "path":
            return Path(raw)
        if kind == "set":
            return frozenset(p.strip() for p in raw.split(",") if p.strip())
        if kind == "bool":
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a valid {kind}") from None
    return raw
