"""``reconciler emulator serve`` as a user runs it: a process, printed URL and keys, signals."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.adapters.emulator.testing import SignedClient
from reconciler.cli import emulator_cmd

ROOT = Path(__file__).resolve().parents[2]
TIMELINE = json.dumps({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "bad"}]}]})


class Served:
    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines
        found = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", lines[-1])
        assert found, lines
        self.url, self.port = found.group(1), int(found.group(2))
        exports = [ln for ln in lines if "ALIBABA_CLOUD_ACCESS_KEY_ID=" in ln]
        self.creds = dict(re.findall(r"(ALIBABA_CLOUD_ACCESS_KEY_\w+)=(\S+)", "".join(exports)))

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


def start(*args: str, env: dict[str, str] | None = None) -> Served:
    """Start the server (pid kept by the caller's fixture) and read up to its listening line."""
    cmd = [sys.executable, "-m", "reconciler.cli.emulator_cmd", "serve", "--port", "0", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if "listening on" in line:
            return Served(proc, lines)
    proc.wait(10)
    raise AssertionError(
        f"emulator did not start: {lines} {proc.stderr.read() if proc.stderr else ''}"
    )


@pytest.fixture
def servers() -> Iterator[list[Served]]:
    started: list[Served] = []
    try:
        yield started
    finally:
        for served in started:
            if served.proc.poll() is None:
                served.proc.kill()
                served.proc.wait(10)


def test_serve_prints_keys_and_url_persists_and_stops_on_sigterm(
    tmp_path: Path, servers: list[Served]
) -> None:
    servers.append(first := start("--data", str(tmp_path / "emu")))
    assert first.lines[-1].startswith("VOD emulator listening on http://127.0.0.1:")
    assert f"export RECONCILER_ENDPOINT={first.url}" in first.lines
    key_id = first.creds["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    secret = first.creds["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    with httpx.Client(base_url=first.url) as http:
        client = SignedClient(http, key_id, secret)
        pid = client.call("AddEditingProject", Title="kept")["Project"]["ProjectId"]  # type: ignore[index]
    code, err = first.stop()
    assert code == 0 and "Traceback" not in err

    servers.append(second := start("--data", str(tmp_path / "emu")))
    assert second.creds == first.creds  # the demo key was stored, not regenerated
    with httpx.Client(base_url=second.url) as http:
        got = SignedClient(http, key_id, secret, signature="v2").call(
            "GetEditingProject", ProjectId=str(pid)
        )
        assert got["Project"]["Title"] == "kept"  # type: ignore[index]
    assert second.stop()[0] == 0


def test_serve_with_access_keys_and_fault_flags(servers: list[Served]) -> None:
    servers.append(
        served := start(
            "--access-key",
            "team:s3cr3t/+=",
            "--access-key",
            "ci:x",
            "--produce-delay",
            "0",
            "--fail-media",
            "bad",
        )
    )
    assert served.creds == {}  # no demo key when keys are given
    with httpx.Client(base_url=served.url) as http:
        client = SignedClient(http, "team", "s3cr3t/+=")
        doc = client.call("ProduceEditingProjectVideo", Timeline=TIMELINE)
        project = client.call("GetEditingProject", ProjectId=str(doc["ProjectId"]))["Project"]
        assert project["Status"] == "ProduceFailed"  # type: ignore[index]
        assert SignedClient(http, "ci", "x").request("SearchEditingProject").status_code == 200
        denied = SignedClient(http, "other", "x").request("SearchEditingProject")
        assert denied.json()["Code"] == "InvalidAccessKeyId.NotFound"
    assert served.stop()[0] == 0


def test_sigint_also_stops_cleanly(servers: list[Served]) -> None:
    servers.append(served := start())
    served.proc.send_signal(signal.SIGINT)
    code, err = served.stop()
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--access-key", "nosecret"], "--access-key expects ID:SECRET"),
        (["--media", "/nonexistent/media.json"], "cannot read the media file"),
        (["--error-rate", "3"], "error_rate must be between 0 and 1"),
    ],
)
def test_user_errors_exit_1_without_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert emulator_cmd.main(["serve", "--port", "0", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_port_in_use_is_a_user_error(
    servers: list[Served], capsys: pytest.CaptureFixture[str]
) -> None:
    servers.append(served := start("--access-key", "a:b"))
    assert emulator_cmd.main(["serve", "--port", str(served.port), "--access-key", "a:b"]) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    assert served.stop()[0] == 0


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_EMULATOR_QPS_LIMIT", "5")
    monkeypatch.setenv("RECONCILER_EMULATOR_LATENCY", "0.5")
    parser = argparse.ArgumentParser()
    emulator_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "emulator",
            "serve",
            "--qps-limit",
            "9",
            "--strict-media",
            "--drop-action",
            "AddEditingProject",
        ]
    )
    config = emulator_cmd.config_from_args(args)
    assert (config.qps_limit, config.latency, config.permissive_media) == (9.0, 0.5, False)
    assert config.drop_actions == {"AddEditingProject"}
