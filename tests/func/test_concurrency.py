"""One reconcile at a time per state directory, proven with real processes (issue 6.3).

Two ``apply`` processes on one state: the second waits up to ``--lock-timeout`` and then fails
naming the holder. A holder killed with ``kill -9`` leaves its record in ``state/.lock`` but
not the lock (the kernel drops a dead process's flock), so the next run takes over at once.
``state unlock`` clears such a record, and removes a lock still held only with ``--force``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from reconciler.adapters.emulator import EmulatorServer
from reconciler.adapters.state import LOCK_FILE, StateStore, read_holder
from reconciler.cli.main import main
from tests.func.conftest import ACCESS, REPO, Project, start_server

DEADLINE = 30.0
EXAMPLES = 5


def _wait_for(what: str, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def slow(project: Project) -> Iterator[Project]:
    """The example catalogue against a server slow enough (0.3 s a call) to overlap runs."""
    server = start_server(project.root / "vod", latency=0.3)
    try:
        yield Project(project.root, "v3", server)
    finally:
        server.stop()
        server.emulator.close()


def _apply(p: Project, *more: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS[0],
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS[1],
        PYTHONPATH=str(REPO),
    )
    server: EmulatorServer = p.server
    command = [sys.executable, "-m", "reconciler", "apply", "--manifests", str(p.manifests)]
    command += ["--state", str(p.state), "--endpoint", server.url, "--signature", "v3"]
    return subprocess.Popen(
        [*command, "--parallelism", "1", *more],
        cwd=p.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holds_lock(p: Project, proc: subprocess.Popen[str]) -> Callable[[], bool]:
    return lambda: read_holder(p.state).get("pid") == proc.pid


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out, err


def test_a_second_apply_waits_then_fails_naming_the_holder(slow: Project) -> None:
    first = _apply(slow)
    try:
        _wait_for("the first apply to take the lock", _holds_lock(slow, first))
        started = time.monotonic()
        second = _apply(slow, "--lock-timeout", "1")
        code, out, err = _finish(second)
        waited = time.monotonic() - started
        assert code == 1, (out, err)
        assert waited >= 1.0  # it waited for the lock before giving up
        assert f"is locked by pid {first.pid} on {socket.gethostname()} running" in err, err
        assert "reconciler apply" in err and " since 20" in err, err  # command, start time
        assert "Traceback" not in err
        assert first.poll() is None  # the holder was never disturbed
    finally:
        code, out, err = _finish(first)
    assert code == 0, err
    assert len(slow.calls("AddEditingProject")) == EXAMPLES  # the loser made no call
    assert len(slow.calls("ProduceEditingProjectVideo")) == EXAMPLES


def test_a_second_apply_with_time_to_wait_runs_after_the_first(slow: Project) -> None:
    first = _apply(slow)
    _wait_for("the first apply to take the lock", _holds_lock(slow, first))
    second = _apply(slow, "--lock-timeout", "30")
    code1, _, err1 = _finish(first)
    code2, out2, err2 = _finish(second)
    assert (code1, code2) == (0, 0), (err1, err2)
    assert f"{EXAMPLES} unchanged" in out2  # it found everything done: no call, no cost
    assert len(slow.calls()) == 2 * EXAMPLES


def _kill_while_holding(p: Project) -> int:
    """Start an apply, kill -9 it once it holds the lock and has called VOD; its pid."""
    victim = _apply(p)
    _wait_for("the apply to take the lock", _holds_lock(p, victim))
    _wait_for("a first API call", lambda: len(p.calls()) > 0)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=DEADLINE)
    assert victim.returncode == -signal.SIGKILL
    return victim.pid


def test_a_lock_left_by_a_killed_apply_is_taken_over(slow: Project) -> None:
    dead = _kill_while_holding(slow)
    assert read_holder(slow.state)["pid"] == dead  # its record is still there...
    fd = os.open(slow.state / LOCK_FILE, os.O_RDWR)
    try:  # ...but the kernel released its flock with the process
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    code, _, err = _finish(_apply(slow, "--lock-timeout", "0"))
    assert code == 0, err
    assert len(slow.calls("AddEditingProject")) == EXAMPLES  # no project created twice
    produced = [c.params["ProjectId"] for c in slow.calls("ProduceEditingProjectVideo")]
    assert sorted(set(produced)) == sorted(produced) and len(produced) == EXAMPLES
    state = StateStore(slow.state).load()
    assert all(e.get("spec") and "pending" not in e for e in state.projects.values())


def test_state_unlock_clears_the_record_of_a_dead_holder(
    slow: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["state", "--state", str(slow.state), "unlock"]) == 0
    assert "is not locked" in capsys.readouterr().out
    dead = _kill_while_holding(slow)
    assert main(["state", "--state", str(slow.state), "unlock"]) == 0
    assert f"no process holds the lock; cleared the record of pid {dead}" in (
        capsys.readouterr().out
    )
    assert read_holder(slow.state) == {}


def test_state_unlock_refuses_a_live_holder_unless_forced(
    slow: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    hung = _apply(slow)
    try:
        _wait_for("the apply to take the lock", _holds_lock(slow, hung))
        os.kill(hung.pid, signal.SIGSTOP)  # a holder that hangs
        assert main(["state", "--state", str(slow.state), "unlock"]) == 1
        err = capsys.readouterr().err
        assert f"locked by pid {hung.pid}" in err and "still running" in err, err
        assert read_holder(slow.state)["pid"] == hung.pid  # untouched
        assert main(["state", "--state", str(slow.state), "unlock", "--force"]) == 0
        assert f"removed the lock held by pid {hung.pid}" in capsys.readouterr().err
        assert not (slow.state / LOCK_FILE).exists()
        code, _, err = _finish(_apply(slow, "--lock-timeout", "0"))
        assert code == 0, err  # the next run is no longer excluded
    finally:
        os.kill(hung.pid, signal.SIGKILL)
        hung.communicate(timeout=DEADLINE)
