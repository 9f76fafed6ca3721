"""Credential lookup: env vars, our own profile readers, the alibabacloud-credentials chain."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.vod import credentials as cred
from reconciler.adapters.vod.credentials import (
    Credentials,
    SdkChainProvider,
    StaticCredentialsProvider,
    resolve_credentials,
)
from reconciler.errors import CredentialsError

SECRET = "S3cretValue-never-shown"
TOKEN = "STS.TokenValue+/="
QUIET = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}  # never touch 100.100.100.200


@pytest.fixture(autouse=True)
def _clean_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads some settings from os.environ at import time; make sure nothing from the
    # developer's shell can leak in, and that ECS metadata is never contacted.
    for name in (
        cred.ENV_ID,
        cred.ENV_SECRET,
        cred.ENV_TOKEN,
        cred.ENV_PROFILE,
        cred.ENV_INI_FILE,
        cred.ENV_CLI_DISABLED,
        cred.ENV_URI,
        *cred.ENV_OIDC,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def write_cli_config(home: Path, profiles: list[dict[str, Any]], current: str = "default") -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"current": current, "profiles": profiles}), encoding="utf-8")
    return path


def write_ini(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


BOTH = pytest.mark.parametrize("use_sdk", [False, True], ids=["own-readers", "sdk-chain"])


def test_repr_never_shows_secret_or_token() -> None:
    creds = Credentials("LTAIkeyid", SECRET, TOKEN)
    for text in (
        repr(creds),
        str(creds),
        f"{creds}",
        repr([creds]),
        repr(StaticCredentialsProvider(creds)),
    ):
        assert SECRET not in text and TOKEN not in text
        assert "LTAIkeyid" in repr(creds)
    assert "sts" in repr(creds)
    assert creds.secrets() == (SECRET, TOKEN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.access_key_secret = "x"  # type: ignore[misc]


def test_environment_wins(tmp_path: Path) -> None:
    write_cli_config(
        tmp_path,
        [
            {
                "name": "default",
                "mode": "AK",
                "access_key_id": "file",
                "access_key_secret": "file-secret",
            }
        ],
    )
    env = {cred.ENV_ID: "envid", cred.ENV_SECRET: SECRET, cred.ENV_TOKEN: TOKEN}
    provider = resolve_credentials(env, tmp_path)
    assert provider.get_credentials() == Credentials("envid", SECRET, TOKEN)
    assert provider.source == "environment variables"


def test_only_the_given_env_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cred.ENV_ID, "process-id")
    monkeypatch.setenv(cred.ENV_SECRET, "process-secret")
    for use_sdk in (False, True):
        with pytest.raises(CredentialsError):
            resolve_credentials(dict(QUIET), tmp_path, use_sdk_chain=use_sdk)


@BOTH
def test_cli_config_ak_profile(tmp_path: Path, use_sdk: bool) -> None:
    write_cli_config(
        tmp_path,
        [
            {"name": "default", "mode": "AK", "access_key_id": "akid", "access_key_secret": SECRET},
        ],
    )
    provider = resolve_credentials(dict(QUIET), tmp_path, use_sdk_chain=use_sdk)
    assert provider.get_credentials() == Credentials("akid", SECRET)
    assert "config.json" in provider.source


@BOTH
def test_cli_config_sts_profile_selected_by_env(tmp_path: Path, use_sdk: bool) -> None:
    write_cli_config(
        tmp_path,
        [
            {"name": "default", "mode": "AK", "access_key_id": "wrong", "access_key_secret": "x"},
            {
                "name": "ci",
                "mode": "StsToken",
                "access_key_id": "stsid",
                "access_key_secret": SECRET,
                "sts_token": TOKEN,
            },
        ],
    )
    env = {**QUIET, cred.ENV_PROFILE: "ci"}
    provider = resolve_credentials(env, tmp_path, use_sdk_chain=use_sdk)
    assert provider.get_credentials() == Credentials("stsid", SECRET, TOKEN)


@BOTH
def test_cli_config_can_be_disabled(tmp_path: Path, use_sdk: bool) -> None:
    write_cli_config(
        tmp_path,
        [
            {"name": "default", "mode": "AK", "access_key_id": "akid", "access_key_secret": SECRET},
        ],
    )
    env = {**QUIET, cred.ENV_CLI_DISABLED: "TRUE"}
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env, tmp_path, use_sdk_chain=use_sdk)
    assert "skipped (ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true)" in str(info.value)


@BOTH
def test_ini_default_section(tmp_path: Path, use_sdk: bool) -> None:
    write_ini(
        tmp_path / ".alibabacloud" / "credentials.ini",
        f"[default]\ntype = access_key\naccess_key_id = iniid\naccess_key_secret = {SECRET}\n",
    )
    provider = resolve_credentials(dict(QUIET), tmp_path, use_sdk_chain=use_sdk)
    assert provider.get_credentials() == Credentials("iniid", SECRET)


@BOTH
def test_ini_file_and_section_from_env(tmp_path: Path, use_sdk: bool) -> None:
    path = write_ini(
        tmp_path / "elsewhere.ini",
        "[default]\ntype = access_key\naccess_key_id = no\naccess_key_secret = no\n"
        f"[prod]\ntype = access_key\naccess_key_id = prodid\n"
        f"access_key_secret = {SECRET} # the prod key\n",
    )
    env = {
        **QUIET,
        cred.ENV_INI_FILE: str(path),
        cred.ENV_PROFILE: "prod",
        cred.ENV_CLI_DISABLED: "true",
    }
    provider = resolve_credentials(env, tmp_path, use_sdk_chain=use_sdk)
    assert provider.get_credentials() == Credentials("prodid", SECRET)


@BOTH
def test_nothing_found_names_every_place(tmp_path: Path, use_sdk: bool) -> None:
    env = {**QUIET, cred.ENV_ID: "half-set"}
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(env, tmp_path, use_sdk_chain=use_sdk)
    text = str(info.value)
    assert "ALIBABA_CLOUD_ACCESS_KEY_SECRET is empty or unset" in text
    assert f"{tmp_path / '.aliyun' / 'config.json'}: not found" in text
    assert f"{tmp_path / '.alibabacloud' / 'credentials.ini'}: not found" in text
    assert "hint:" in text
    if use_sdk:  # in the order the chain looks
        places = ["environment", "OIDC", "config.json", "credentials.ini", "ECS instance"]
        positions = [text.index(place) for place in places]
        assert positions == sorted(positions)


def test_own_reader_explains_unsupported_modes(tmp_path: Path) -> None:
    write_cli_config(
        tmp_path,
        [
            {
                "name": "default",
                "mode": "RamRoleArn",
                "access_key_id": "a",
                "access_key_secret": SECRET,
            }
        ],
    )
    write_ini(
        tmp_path / ".alibabacloud" / "credentials.ini",
        "[default]\ntype = ecs_ram_role\nrole_name = r\n",
    )
    with pytest.raises(CredentialsError) as info:
        resolve_credentials({}, tmp_path, use_sdk_chain=False)
    text = str(info.value)
    assert "mode 'RamRoleArn', which needs the alibabacloud-credentials package" in text
    assert "type 'ecs_ram_role', which needs the alibabacloud-credentials package" in text
    assert SECRET not in text


def test_own_reader_reports_broken_files(tmp_path: Path) -> None:
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text("{not json", encoding="utf-8")
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", "no section header\n")
    with pytest.raises(CredentialsError) as info:
        resolve_credentials({}, tmp_path, use_sdk_chain=False)
    assert "config.json: unreadable (JSONDecodeError)" in str(info.value)
    assert "credentials.ini: unreadable (MissingSectionHeaderError)" in str(info.value)


def test_sts_profile_without_token_is_not_used(tmp_path: Path) -> None:
    write_cli_config(
        tmp_path,
        [
            {
                "name": "default",
                "mode": "StsToken",
                "access_key_id": "a",
                "access_key_secret": SECRET,
            }
        ],
    )
    with pytest.raises(CredentialsError) as info:
        resolve_credentials({}, tmp_path, use_sdk_chain=False)
    assert "lacks a key, secret or token" in str(info.value)
    assert SECRET not in str(info.value)


def test_auto_mode_uses_the_sdk_chain_when_installed(tmp_path: Path) -> None:
    assert cred.sdk_available()
    write_cli_config(
        tmp_path,
        [
            {"name": "default", "mode": "AK", "access_key_id": "akid", "access_key_secret": SECRET},
        ],
    )
    provider = resolve_credentials(dict(QUIET), tmp_path)
    assert isinstance(provider, SdkChainProvider)
    assert provider.source.endswith("config.json")
    assert SECRET not in repr(provider)


def test_sdk_chain_order_follows_the_sdk(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("jwt", encoding="utf-8")
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/ci",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/gh",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:1/creds",
        **QUIET,
    }
    chain, skipped = cred._sdk_chain(env, tmp_path)
    names = [name for name, _ in chain]
    assert names[0].startswith("OIDC")
    assert names[1:3] == [
        str(tmp_path / ".aliyun" / "config.json"),
        str(tmp_path / ".alibabacloud" / "credentials.ini"),
    ]
    assert names[3] == cred.ENV_URI
    assert skipped == {
        cred.ECS_SOURCE: "ECS instance metadata: skipped (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)"
    }


class _Rotating:
    """Stands in for an SDK provider whose STS token rotates."""

    def __init__(self) -> None:
        self.n = 0
        self.fail = False

    def get_credentials(self) -> Any:
        if self.fail:
            raise RuntimeError(f"STS said no ({SECRET} must not leak from here either)")
        self.n += 1
        outer = self

        class _C:
            def get_access_key_id(self) -> str:
                return "STS.id"

            def get_access_key_secret(self) -> str:
                return SECRET

            def get_security_token(self) -> str:
                return f"token-{outer.n}"

        return _C()


def test_sdk_provider_is_asked_on_every_call() -> None:
    rotating = _Rotating()
    provider = SdkChainProvider([("broken", object()), ("rotating", rotating)])
    assert provider.resolve() == {}
    assert provider.source == "rotating"
    tokens = [provider.get_credentials().security_token for _ in range(3)]
    assert tokens == ["token-2", "token-3", "token-4"]


def test_sdk_refresh_failure_is_a_credentials_error_without_chained_sdk_error() -> None:
    rotating = _Rotating()
    provider = SdkChainProvider([("rotating", rotating)])
    provider.get_credentials()
    rotating.fail = True
    with pytest.raises(CredentialsError) as info:
        provider.get_credentials()
    assert "refreshing credentials from rotating failed" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
