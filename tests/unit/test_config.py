"""Settings precedence: flag > environment > [tool.reconciler] in pyproject.toml > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.config import Settings, resolve_settings
from reconciler.errors import ConfigError


def _pyproject(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.reconciler]\n{body}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    return sub


def test_defaults(tmp_path: Path) -> None:
    s = resolve_settings({}, {}, tmp_path)
    assert (s.endpoint, s.region, s.signature, s.parallelism, s.qps) == (
        None,
        "cn-shanghai",
        "v3",
        8,
        40.0,
    )
    assert s.manifests == Path("manifests") and s.state == Path("state")
    assert s == Settings()


def test_precedence_chain(tmp_path: Path) -> None:
    cwd = _pyproject(tmp_path, 'endpoint = "emulator"\nqps = 10\nstate = "var/state"')
    s = resolve_settings({}, {}, cwd)
    assert s.endpoint == "emulator" and s.qps == 10.0
    assert s.state == tmp_path / "var/state"  # relative to the pyproject, not the cwd
    s = resolve_settings(
        {}, {"RECONCILER_ENDPOINT": "http://127.0.0.1:1", "RECONCILER_QPS": "5"}, cwd
    )
    assert s.endpoint == "http://127.0.0.1:1" and s.qps == 5.0
    s = resolve_settings({"endpoint": "emulator", "qps": 2}, {"RECONCILER_ENDPOINT": "x"}, cwd)
    assert s.endpoint == "emulator" and s.qps == 2.0
    assert dict(s.sources)["endpoint"] == "flag"


def test_region_from_alibaba_env(tmp_path: Path) -> None:
    s = resolve_settings({}, {"ALIBABA_CLOUD_REGION_ID": "ap-southeast-1"}, tmp_path)
    assert s.region == "ap-southeast-1"


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"signature": "v1"}, {}, "signature must be v3 or v2"),
        ({}, {"RECONCILER_PARALLELISM": "many"}, r"RECONCILER_PARALLELISM: parallelism must be"),
        ({"qps": 0}, {}, "qps must be positive"),
    ],
)
def test_bad_values_are_config_errors(
    tmp_path: Path, flags: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_settings(flags, env, tmp_path)


def test_unknown_pyproject_key_is_an_error(tmp_path: Path) -> None:
    cwd = _pyproject(tmp_path, 'endpont = "emulator"')
    with pytest.raises(ConfigError, match=r"unknown keys in \[tool\.reconciler\]: endpont"):
        resolve_settings({}, {}, cwd)


def test_a_pyproject_above_the_repository_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.reconciler]\nendpoint = "emulator"\n')
    inner = tmp_path / "monorepo" / "videos"
    inner.mkdir(parents=True)
    assert resolve_settings({}, {}, inner).endpoint == "emulator"  # no repository: found
    (tmp_path / "monorepo" / ".git").mkdir()
    assert resolve_settings({}, {}, inner).endpoint is None  # the repository ends the search
    (tmp_path / "monorepo" / "pyproject.toml").write_text("[tool.reconciler]\nqps = 3\n")
    assert resolve_settings({}, {}, inner).qps == 3.0  # its own, at its root, still counts


def test_the_post_receive_work_tree_does_not_read_past_the_bare_repository(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.reconciler]\nendpoint = "emulator"\n')
    bare = tmp_path / "videos.git"
    (bare / "objects").mkdir(parents=True)
    (bare / "HEAD").write_text("ref: refs/heads/main\n")
    work = bare / "reconciler" / "work"
    work.mkdir(parents=True)
    assert resolve_settings({}, {}, work).endpoint is None
