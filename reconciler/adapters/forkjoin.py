"""Spread CPU-bound work over the machine's cores: ``fork_map`` runs one function over several
chunks, the first here and the others in forked children, and returns the results in order.

Used for a cold load of a large catalogue (parsing and validating is pure Python, so threads
would not help). Forking is cheap where it is safe -- Linux, a process with no other thread
(``fork`` copies only the calling thread, so a lock another thread holds would stay held in
the child) -- and ``workers()`` says 1 everywhere else, where the work simply runs here.

A child sends its result back as one pickle through a pipe and leaves with ``os._exit``, so
it never flushes the parent's buffered output, runs ``atexit`` handlers or releases the
state lock the parent holds. A child that fails in any way (an exception, a signal, an
unpicklable result) costs only time: its chunk is run here instead. The parent's own
exception (Ctrl-C) kills and reaps the children before it propagates.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["MAX_WORKERS", "fork_map", "workers"]

MAX_WORKERS = 8
ENV = "RECONCILER_JOBS"  # cap on the processes used (1 turns forking off)

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
    limit = os.environ.get(ENV, "")
    if limit.strip().isdigit():
        cpus = min(cpus, max(int(limit), 1))
    return max(1, min(cpus, MAX_WORKERS))


def _child(fn: Callable[[T], R], chunk: T, fd: int) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once
        data = pickle.dumps(fn(chunk), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, fd: int) -> tuple[bool, object]:
    """The child's result, or (False, None) if it did not deliver one."""
    pieces = []
    with os.fdopen(fd, "rb") as pipe:
        while piece := pipe.read(1 << 20):
            pieces.append(piece)
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return False, None
    try:
        return True, pickle.loads(b"".join(pieces))
    except Exception:
        return False, None


def fork_map(fn: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
    """``[fn(c) for c in chunks]``, with ``chunks[1:]`` run in forked children.

    ``fn`` must not depend on side effects in this process (a child's are lost) and its
    results must pickle. Call it only when ``workers() > 1``.
    """
    if len(chunks) <= 1:
        return [fn(c) for c in chunks]
    children: list[tuple[int, int]] = []
    try:
        for chunk in chunks[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                os.close(read_fd)
                _child(fn, chunk, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        results: list[R] = [fn(chunks[0])]
        for i, (pid, fd) in enumerate(children):
            children[i] = (pid, -1)  # the pipe is _collect's to close from here on
            ok, value = _collect(pid, fd)
            children[i] = (0, -1)
            results.append(value if ok else fn(chunks[i + 1]))  # type: ignore[arg-type]
        return results
    finally:
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
