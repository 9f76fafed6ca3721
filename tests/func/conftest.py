"""Fixtures for driving ``main([...])`` in a temporary project against the emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer
from reconciler.cli.main import main

REPO = Path(__file__).resolve().parents[2]
ACCESS = ("LTAItestkey0000", "test-secret-value-0000")


@dataclass
class Project:
    """A temporary reconciler project (manifests + state) and the emulator behind it."""

    root: Path
    mode: str  # "embedded" | "v3" | "v2"
    server: Any = None
    extra: list[str] = field(default_factory=list)

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def args(self) -> list[str]:
        if self.mode == "embedded":
            endpoint = ["--endpoint", "emulator"]
        else:
            endpoint = ["--endpoint", self.server.url, "--signature", self.mode]
        return [
            "--manifests",
            str(self.manifests),
            "--state",
            str(self.state),
            *endpoint,
            *self.extra,
        ]

    def run(self, verb: str, *more: str) -> int:
        return main([verb, *self.args(), *more])

    def emulator(self) -> Emulator:
        if self.mode == "embedded":
            return Emulator.embedded(self.state)
        emulator: Emulator = self.server.emulator
        return emulator

    def calls(self, action: str | None = None) -> list[Any]:
        emu = self.emulator()
        try:
            return [c for c in emu.calls() if action is None or c.action == action]
        finally:
            if self.mode == "embedded":
                emu.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A copy of the repository's example manifests, reconciled against the embedded emulator."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in ("RECONCILER_ENDPOINT", "RECONCILER_STATE", "RECONCILER_MANIFESTS"):
        monkeypatch.delenv(var, raising=False)
    yield Project(tmp_path, "embedded")


class _OwningServer(EmulatorServer):
    """A test server that owns its emulator: ``stop`` also closes it (its callback thread),
    as ``reconciler emulator serve`` does, so no thread outlives the test (``forkjoin``
    will not fork beside one)."""

    def stop(self) -> None:
        super().stop()
        self.emulator.close(timeout=1.0)


def start_server(data: Path, **config: Any) -> EmulatorServer:
    emulator = Emulator(data_dir=data, access_keys=dict([ACCESS]), config=EmulatorConfig(**config))
    server = _OwningServer(emulator, host="127.0.0.1", port=0)
    server.start()
    return server


@pytest.fixture(params=["embedded", "v3", "v2"])
def any_project(
    request: pytest.FixtureRequest, project: Project, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """The same project against the embedded emulator and the HTTP server in v3 and v2."""
    if request.param == "embedded":
        yield project
        return
    server = start_server(project.root / "emulator-data")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS[0])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS[1])
    try:
        yield Project(project.root, request.param, server)
    finally:
        server.stop()


def spawn_watch(
    project: Project, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``reconciler watch --endpoint emulator --debounce 0.1`` as a real process in ``project``."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("RECONCILER_ENDPOINT", None)
    argv = [
        sys.executable,
        "-P",
        "-m",
        "reconciler",
        "watch",
        "--endpoint",
        "emulator",
        "--debounce",
        "0.1",
        *extra,
    ]
    return subprocess.Popen(
        argv, cwd=project.root, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
