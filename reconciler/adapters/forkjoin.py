"""Spread CPU-bound work over the machine's cores: ``fork_map`` runs a function over batches of
items in this process and in forked children, and returns the results in item order.

Used for a cold load of a large catalogue (parsing and validating is pure Python, so threads
would not help). Forking is cheap where it is safe -- Linux, a process with no other thread
(``fork`` copies only the calling thread, so a lock another thread holds would stay held in
the child) -- and ``workers()`` says 1 everywhere else, where the work simply runs here.

Work is handed out as it is done, not split up front: the batch numbers are tickets in a
pipe, and every process (this one included, once its ``meanwhile`` work is done) takes the
next ticket when it is free, so a slow batch or other work here does not leave a core idle.
A child sends its results back as one pickle through a pipe and leaves with ``os._exit``, so
it never flushes the parent's buffered output, runs ``atexit`` handlers or releases the
state lock the parent holds. A child that fails in any way (an exception, a signal, an
unpicklable result) costs only time: the batches it did not deliver are run here. The
parent's own exception (Ctrl-C) kills and reaps the children before it propagates.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["ENV", "MAX_WORKERS", "cpu_quota", "fork_map", "workers"]

MAX_WORKERS = 8
ENV = "RECONCILER_JOBS"  # cap on the processes used (1 turns forking off)
_TICKET = 4  # bytes per batch number in the ticket pipe
_MAX_BATCHES = 8192  # 32 KiB of tickets: written whole before forking, within a pipe's buffer

T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    """How many processes a ``fork_map`` may use now (1: run everything here)."""
    if sys.platform != "linux" or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - always there on Linux
        cpus = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        cpus = min(cpus, quota)
    limit = os.environ.get(ENV, "")
    if limit.strip().isdigit():
        cpus = min(cpus, max(int(limit), 1))
    return max(1, min(cpus, MAX_WORKERS))


def cpu_quota(proc: str = "/proc/self/cgroup", fs: str = "/sys/fs/cgroup") -> int | None:
    """The CPUs a cgroup CPU quota allows this process (rounded up), None without a quota.

    A container limited with ``--cpus 2`` on a 64-core host still sees 64 CPUs in its
    affinity mask; forking for all of them would only add processes (and memory) competing
    for two CPUs' worth of time. cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us``) are
    read for this process's cgroup and each ancestor (the tightest wins); a path that does
    not exist under ``fs`` (a container sees its own cgroup as the root) falls back to ``fs``.
    """
    try:
        with open(proc, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except (OSError, ValueError):
        return None
    best: int | None = None
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        candidates: list[tuple[str, str, str | None]]
        if controllers == "":  # v2: "0::/path"
            candidates = [(fs, "cpu.max", None)]
        elif "cpu" in controllers.split(","):  # v1: "4:cpu,cpuacct:/path"
            candidates = [
                (os.path.join(fs, mount), "cpu.cfs_quota_us", "cpu.cfs_period_us")
                for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
            ]
        else:
            continue
        for root, quota_file, period_file in candidates:
            for directory in _ancestors(root, path):
                allowed = _allowed(directory, quota_file, period_file)
                if allowed is not None:
                    best = allowed if best is None else min(best, allowed)
    return best


def _ancestors(root: str, path: str) -> list[str]:
    parts = [p for p in path.split("/") if p and p != ".."]
    dirs = [os.path.join(root, *parts[:n]) for n in range(len(parts), 0, -1)]
    return [d for d in dirs if os.path.isdir(d)] + [root]


def _allowed(directory: str, quota_file: str, period_file: str | None) -> int | None:
    try:
        with open(os.path.join(directory, quota_file), encoding="ascii") as fh:
            fields = fh.read().split()
        if period_file is not None:
            with open(os.path.join(directory, period_file), encoding="ascii") as fh:
                fields = [fields[0], fh.read().strip()]
        quota, period = int(fields[0]), int(fields[1])  # "max" (no quota) fails here
    except (OSError, ValueError, IndexError):
        return None
    if quota <= 0 or period <= 0:  # v1 says -1 for no quota
        return None
    return max(1, -(-quota // period))


def _take(
    tickets: int, fn: Callable[[list[T]], list[R]], batches: list[list[T]]
) -> dict[int, list[R]]:
    """Run batches until the tickets run out: {batch number: results}."""
    done: dict[int, list[R]] = {}
    while ticket := os.read(tickets, _TICKET):  # one read per ticket: atomic on a pipe
        number = int.from_bytes(ticket, "big")
        done[number] = fn(batches[number])
    return done


def _child(
    tickets: int, fn: Callable[[list[T]], list[R]], batches: list[list[T]], out: int
) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once
        data = pickle.dumps(_take(tickets, fn, batches), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        code = 0
    except BaseException:  # the parent redoes what is missing
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, fd: int) -> dict[int, Any]:
    """The child's results ({} if it did not deliver them)."""
    pieces = []
    with os.fdopen(fd, "rb") as pipe:
        while piece := pipe.read(1 << 20):
            pieces.append(piece)
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return {}
    try:
        results = pickle.loads(b"".join(pieces))
    except Exception:  # a torn or foreign pickle: redo its batches here
        return {}
    return results if isinstance(results, dict) else {}


def fork_map(
    fn: Callable[[list[T]], list[R]],
    items: Sequence[T],
    processes: int,
    *,
    batch: int = 16,
    meanwhile: Callable[[], None] | None = None,
) -> list[R]:
    """``fn`` over ``items`` in batches (``fn`` maps a batch to one result per item), in this
    process and ``processes - 1`` forked children; the results in item order.

    ``meanwhile`` runs here right after forking, before this process takes batches too.
    ``fn`` must not depend on side effects in this process (a child's are lost) and its
    results must pickle. Call it only when ``workers() > 1``.
    """
    batch = max(batch, -(-len(items) // _MAX_BATCHES))
    batches = [list(items[i : i + batch]) for i in range(0, len(items), batch)]
    tickets, feed = os.pipe()
    children: list[tuple[int, int]] = []
    try:
        view = memoryview(b"".join(n.to_bytes(_TICKET, "big") for n in range(len(batches))))
        while view:
            view = view[os.write(feed, view) :]
        os.close(feed)  # every reader sees the end once the tickets are gone
        feed = -1
        for _ in range(max(processes - 1, 0)):
            read_fd, write_fd = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # out of processes or memory: the ones running (or this) will do
                os.close(read_fd)
                os.close(write_fd)
                break
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                os.close(read_fd)
                _child(tickets, fn, batches, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        if meanwhile is not None:
            meanwhile()
        done = _take(tickets, fn, batches)
        for i, (pid, fd) in enumerate(children):
            children[i] = (pid, -1)  # the pipe is _collect's to close from here on
            done.update(_collect(pid, fd))
            children[i] = (0, -1)
        results: list[R] = []
        for number, chunk in enumerate(batches):
            part = done.get(number)
            results += part if part is not None else fn(chunk)  # a failed child's batch
        return results
    finally:
        os.close(tickets)
        if feed >= 0:
            os.close(feed)
        for pid, fd in children:
            if pid:
                _reap(pid, fd)


def _reap(pid: int, fd: int) -> None:
    try:
        if fd >= 0:
            os.close(fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:  # pragma: no cover - already gone
        pass
