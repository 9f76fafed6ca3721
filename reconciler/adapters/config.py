"""Settings: flag > environment > ``[tool.reconciler]`` in pyproject.toml > default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reconciler.errors import ConfigError

DEFAULT_REGION = "cn-shanghai"
REPOSITORY_HELP = (
    "top of the repository, which timelineFile paths must stay inside (default: the git "
    "work tree holding the manifests, else the manifests directory)"
)


@dataclass(frozen=True)
class Settings:
    manifests: Path = Path("manifests")
    state: Path = Path("state")
    endpoint: str | None = None  # None: the region's public endpoint; "emulator": embedded
    region: str = DEFAULT_REGION
    signature: str = "v3"
    parallelism: int = 8
    qps: float = 40.0
    lock_timeout: float = 5.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    history: int = 10
    # where timelineFile paths must stay; None: the git work tree holding the manifests
    repository: Path | None = None
    sources: tuple[tuple[str, str], ...] = ()  # (setting, where it came from), for --verbose

    @property
    def is_emulator(self) -> bool:
        return self.endpoint == "emulator"


# setting -> (environment variable, converter)
_ENV = {
    "manifests": "RECONCILER_MANIFESTS",
    "state": "RECONCILER_STATE",
    "endpoint": "RECONCILER_ENDPOINT",
    "region": "ALIBABA_CLOUD_REGION_ID",
    "signature": "RECONCILER_SIGNATURE",
    "parallelism": "RECONCILER_PARALLELISM",
    "qps": "RECONCILER_QPS",
    "lock_timeout": "RECONCILER_LOCK_TIMEOUT",
    "connect_timeout": "RECONCILER_CONNECT_TIMEOUT",
    "read_timeout": "RECONCILER_READ_TIMEOUT",
    "history": "RECONCILER_HISTORY",
    "repository": "RECONCILER_REPOSITORY",
}
_PYPROJECT_KEYS = {
    f.name.replace("_", "-"): f.name for f in fields(Settings) if f.name != "sources"
}


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``, not looking past the repository
    ``start`` is in: the search stops at a directory holding ``.git`` or at a bare repository
    (where the post-receive hook's work tree lives), so an unrelated project above the
    repository is never read."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists() or _is_bare_repository(directory):
            return None
    return None


def _is_bare_repository(directory: Path) -> bool:
    return (directory / "HEAD").is_file() and (directory / "objects").is_dir()


def _pyproject_table(path: Path) -> dict[str, Any]:
    import tomllib  # lazily: most runs have no pyproject.toml above them

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [tool.reconciler]: {exc}") from None
    table = data.get("tool", {}).get("reconciler", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.reconciler] must be a table")
    return table


def _convert(name: str, value: Any, where: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind in ("Path", "Path | None"):
            return Path(str(value))
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be a {kind}, got {value!r}") from None


def _validate(values: dict[str, Any]) -> None:
    if values["signature"] not in ("v3", "v2"):
        raise ConfigError(f"signature must be v3 or v2, got {values['signature']!r}")
    if values["parallelism"] < 1:
        raise ConfigError("parallelism must be at least 1")
    if values["qps"] <= 0:
        raise ConfigError("qps must be positive")


def resolve_settings(flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Settings:
    """Merge the four sources. ``flags`` holds only what was given (None = not given)."""
    values: dict[str, Any] = {}
    sources: list[tuple[str, str]] = []
    pyproject = find_pyproject(cwd)
    table = _pyproject_table(pyproject) if pyproject else {}
    unknown = set(table) - set(_PYPROJECT_KEYS)
    if unknown and pyproject:
        raise ConfigError(
            f"{pyproject}: unknown keys in [tool.reconciler]: {', '.join(sorted(unknown))}"
        )
    for f in fields(Settings):
        name = f.name
        if name == "sources":
            continue
        if flags.get(name) is not None:
            values[name] = _convert(name, flags[name], f"--{name.replace('_', '-')}")
            sources.append((name, "flag"))
        elif env.get(_ENV[name]):
            values[name] = _convert(name, env[_ENV[name]], _ENV[name])
            sources.append((name, _ENV[name]))
        elif name.replace("_", "-") in table and pyproject:
            value = _convert(name, table[name.replace("_", "-")], str(pyproject))
            if isinstance(value, Path) and not value.is_absolute():
                value = pyproject.parent / value
            values[name] = value
            sources.append((name, str(pyproject)))
        else:
            values[name] = f.default
    _validate(values)
    return Settings(**values, sources=tuple(sources))
