"""Crashes (issue 6.1): a short run of ``bench/crash.py`` and every kill point of a state write.

The harness kills real ``reconciler apply`` processes (``kill -9``) at random and at the worst
moments and checks the emulator's call log for duplicate, lost and orphaned work; the full run
is ``python bench/crash.py --trials 50``. The state-write kill points are narrow (about half a
millisecond on a fast disk), so each one is also hit deterministically here: a process that
SIGKILLs itself before or after each rename of ``StateStore.snapshot``.
"""

from __future__ import annotations

import importlib.util
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from reconciler.adapters.emulator import Emulator, EmulatorServer
from reconciler.adapters.state import StateStore
from tests.func.conftest import ACCESS, REPO


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_crash", REPO / "bench" / "crash.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


crash = _load_harness()


@pytest.mark.timeout(90)
def test_kill_9_at_random_and_at_the_worst_moments(tmp_path: Path) -> None:
    harness = crash.Harness(tmp_path, seed=11, projects=6, max_projects=10, latency=0.02)
    try:
        report = harness.run(8)  # every mode once, two more
    finally:
        harness.close()
    print(crash.summary(report))
    assert report.duplicates == [] and report.lost == [] and report.orphans == []
    assert report.failures == []
    assert report.loaded == report.recovered == report.trials == 8
    for mode in ("after-add", "after-created", "produce-inflight", "produce-lost"):
        assert report.kills[mode] >= 1, mode  # these traps always fire
    assert sum(report.kills.values()) >= 6
    assert report.settled_creates >= 1  # an Add whose answer was lost was found, not redone
    assert report.calls["GetEditingProject"] >= 1  # interrupted renders were asked about


SELF_KILL = r"""
import os, signal, sys
from pathlib import Path

from reconciler.adapters.state import StateStore

directory, when, nth = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = StateStore(directory)
store.load()
for name in ("a", "b", "c"):
    store.record({"type": "created", "name": name, "project_id": "p-" + name,
                  "at": "2026-01-01T00:00:00Z"})
real, seen = os.replace, [0]

def replace(src, dst):
    seen[0] += 1
    if when == "before" and seen[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    if when == "after" and seen[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
store.snapshot()  # renames: 1 state.json.bak, 2 state.json, 3 journal.jsonl (truncated)
"""


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_9_at_every_step_of_a_state_write(tmp_path: Path, when: str, nth: int) -> None:
    store = StateStore(tmp_path)
    store.load()
    store.record(
        {"type": "created", "name": "x", "project_id": "p-x", "at": "2026-01-01T00:00:00Z"}
    )
    store.snapshot()
    store.close()
    proc = subprocess.run(
        [sys.executable, "-c", SELF_KILL, str(tmp_path), when, str(nth)],
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr  # it died at that step
    if when == "before":
        assert list(tmp_path.glob(".*.tmp")), "the kill came mid atomic write"
    ids = {name: e["project_id"] for name, e in StateStore(tmp_path).load().projects.items()}
    assert ids == {"x": "p-x", "a": "p-a", "b": "p-b", "c": "p-c"}  # each event exactly once
    store = StateStore(tmp_path)  # and the next run carries on from there
    store.load()
    store.record({"type": "forgotten", "name": "a"})
    store.snapshot()
    store.close()
    assert set(StateStore(tmp_path).load().projects) == {"x", "b", "c"}


def test_a_client_killed_mid_connection_leaves_no_traceback_in_the_server(
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = EmulatorServer(Emulator(None, dict([ACCESS]))).start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset, as when the client process is killed
        deadline = time.monotonic() + 10
        while server._httpd is not None and server._httpd.open_sockets:
            assert time.monotonic() < deadline, "the server never noticed"
            time.sleep(0.01)
    finally:
        server.stop()
        server.emulator.close()
    assert "Traceback" not in capfd.readouterr().err
