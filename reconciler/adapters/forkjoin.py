"""Spread CPU-bound work over the machine's cores: ``fork_map`` runs a function over batches of
items in this process and in forked children, and returns the results in item order.

Used for a cold load of a large catalogue (parsing and validating is pure Python, so threads
would not help). Forking is cheap where it is safe -- Linux, a process with no other thread
(``fork`` copies only the calling thread, so a lock another thread holds would stay held in
the child) -- and ``workers()`` says 1 everywhere else, where the work simply runs here.

Work is handed out as it is done, not split up front: the batch numbers are tickets in a
pipe, and every process (this one included, once its ``meanwhile`` work is done) takes the
next ticket when it is free, so a slow batch or other work here does not leave a core idle.
A child delivers each batch as it is done: the results, pickled, appended to a memory file
(``memfd``), and a note through a pipe of where that record ends. This process reads what
has been delivered between its own batches, so that unpickling is part of the shared work
rather than a wait at the end. A child leaves with ``os._exit``, so it never flushes the
parent's buffered output, runs ``atexit`` handlers or releases the state lock the parent
holds. A child that fails in any way (an exception, a signal, an unpicklable result) costs
only time: the batches it did not deliver are run here. The parent's own exception
(Ctrl-C) kills and reaps the children before it propagates.
"""

from __future__ import annotations

import contextlib
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
_NOTE = 8  # bytes per note of where a delivered record ends
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


class _Child:
    """A forked child as this process sees it: its pid, the memory file its records are
    appended to, and the pipe of notes saying where each delivered record ends."""

    def __init__(self, pid: int, data: int, notes: int) -> None:
        self.pid, self.data, self.notes = pid, data, notes
        self.read = 0  # where the next record starts
        self.partial = b""  # a note read in part
        self.trusted = True  # False once a record failed to load: the rest is redone here

    def drain(self, done: dict[int, Any], *, wait: bool) -> None:
        """Load every record delivered so far into ``done`` ({batch number: results});
        with ``wait``, every record the child will deliver (until it exits)."""
        os.set_blocking(self.notes, wait)
        while True:
            try:
                chunk = os.read(self.notes, _NOTE * 512)
            except BlockingIOError:
                return
            if not chunk:  # the child has exited
                return
            chunk = self.partial + chunk
            whole = len(chunk) - len(chunk) % _NOTE
            self.partial = chunk[whole:]
            for at in range(0, whole, _NOTE):
                self._load(int.from_bytes(chunk[at : at + _NOTE], "big"), done)

    def _load(self, end: int, done: dict[int, Any]) -> None:
        if not self.trusted:
            return
        pieces, at = [], self.read
        while at < end:
            piece = os.pread(self.data, end - at, at)
            if not piece:
                break
            pieces.append(piece)
            at += len(piece)
        self.read = end
        try:
            number, results = pickle.loads(b"".join(pieces))
        except Exception:  # a torn or foreign record: redo what this child did not deliver
            self.trusted = False
            return
        done[number] = results

    def close(self, *, kill: bool) -> None:
        for fd in (self.data, self.notes):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            if kill:
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def _take(
    tickets: int,
    fn: Callable[[list[T]], list[R]],
    batches: list[list[T]],
    between: Callable[[], None] | None = None,
) -> dict[int, list[R]]:
    """Run batches until the tickets run out: {batch number: results}. ``between`` runs
    after each batch."""
    done: dict[int, list[R]] = {}
    while ticket := os.read(tickets, _TICKET):  # one read per ticket: atomic on a pipe
        number = int.from_bytes(ticket, "big")
        done[number] = fn(batches[number])
        if between is not None:
            between()
    return done


def _child(
    tickets: int, fn: Callable[[list[T]], list[R]], batches: list[list[T]], data: int, notes: int
) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once
        end = 0
        while ticket := os.read(tickets, _TICKET):
            number = int.from_bytes(ticket, "big")
            record = pickle.dumps((number, fn(batches[number])), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(record)
            while view:
                written = os.pwrite(data, view, end)
                view, end = view[written:], end + written
            os.write(notes, end.to_bytes(_NOTE, "big"))  # atomic: under PIPE_BUF
        code = 0
    except BaseException:  # the parent redoes what is missing
        code = 1
    finally:
        os._exit(code)


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
    children: list[_Child] = []
    done: dict[int, Any] = {}
    try:
        view = memoryview(b"".join(n.to_bytes(_TICKET, "big") for n in range(len(batches))))
        while view:
            view = view[os.write(feed, view) :]
        os.close(feed)  # every reader sees the end once the tickets are gone
        feed = -1
        for _ in range(max(processes - 1, 0)):
            try:
                data = os.memfd_create("reconciler-forkjoin", os.MFD_CLOEXEC)
            except (AttributeError, OSError):  # pragma: no cover - Linux has it
                break
            notes, note_end = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # out of processes or memory: the ones running (or this) will do
                for fd in (data, notes, note_end):
                    os.close(fd)
                break
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                os.close(notes)
                _child(tickets, fn, batches, data, note_end)
            os.close(note_end)
            children.append(_Child(pid, data, notes))
        if meanwhile is not None:
            meanwhile()

        def collect() -> None:
            for child in children:
                child.drain(done, wait=False)

        done.update(_take(tickets, fn, batches, collect if children else None))
        for child in list(children):
            child.drain(done, wait=True)  # until it exits
            children.remove(child)
            child.close(kill=False)
        results: list[R] = []
        for number, chunk in enumerate(batches):
            part = done.get(number)
            results += part if part is not None else fn(chunk)  # a failed child's batch
        return results
    finally:
        os.close(tickets)
        if feed >= 0:
            os.close(feed)
        for child in children:
            child.close(kill=True)
