"""The watch loop: file events in, one debounced reconcile out, never two at once.

``WatchLoop`` owns an event queue and a single worker (the thread calling ``run``). The
observer thread only ``notify``s; the loop waits for a first event, keeps collecting until
the files have been quiet for ``debounce`` seconds (an editor's burst of saves is one
change), then calls the injected ``reconcile`` with the batch. Events arriving during a
reconcile wait in the queue and form the next batch, so reconciles are strictly serial.
``FileObserver`` wires watchdog to ``notify`` and ignores editor noise.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from reconciler.triggers.cache import is_manifest_name

_STOP = object()
# What an editor save looks like; opened/closed_no_write/attrib come from mere reads and
# would make every reconcile (which reads the files) trigger the next one.
_RELEVANT = frozenset({"created", "modified", "moved", "deleted", "closed"})


@dataclass(frozen=True)
class Batch:
    number: int  # 0 for the initial reconcile, then 1, 2, ...
    paths: frozenset[Path]  # what the observer reported (empty for the initial run / a retry)
    retry: bool = False


ReconcileFn = Callable[[Batch], Any]
Listener = Callable[[Batch, Any, BaseException | None], None]


class WatchLoop:
    """Debounces events into batches and runs ``reconcile`` on them, one at a time."""

    def __init__(
        self,
        reconcile: ReconcileFn,
        *,
        debounce: float = 0.5,
        max_delay: float | None = None,
        retry_delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reconcile = reconcile
        self.debounce = debounce
        self.max_delay = max_delay if max_delay is not None else max(5.0, 20 * debounce)
        self.retry_delay = retry_delay
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self._listeners: list[Listener] = []
        self._retry_at: float | None = None
        self._failures = 0
        self.idle = threading.Event()  # set while waiting with nothing pending
        self.reconciles = 0
        self._numbers = 0

    # ----------------------------------------------------------------- observer side

    def notify(self, path: Path) -> None:
        self._queue.put(path)

    def stop(self) -> None:
        """Ask the loop to end; a reconcile in progress finishes first."""
        self._stopping.set()
        self._queue.put(_STOP)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def add_listener(self, listener: Listener) -> None:
        """Called after every reconcile with (batch, result, error) on the loop's thread."""
        self._listeners.append(listener)

    # ----------------------------------------------------------------- loop side

    def run(self, *, initial: bool = True) -> None:
        """Reconcile once (unless ``initial`` is False), then on every batch until stopped."""
        if initial and not self.stopping:
            self._run_one(Batch(0, frozenset()))
        while not self.stopping:
            batch = self._collect()
            if batch is None:
                break
            self._run_one(batch)
        self.idle.set()

    def _get(self, timeout: float | None) -> object:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _collect(self) -> Batch | None:
        """Block for the first event (or a due retry), then debounce; None means stop."""
        if self._queue.empty():
            self.idle.set()
        wait = None if self._retry_at is None else max(0.0, self._retry_at - self._clock())
        first = self._get(wait)
        self.idle.clear()
        if first is _STOP:
            return None
        if first is None:  # the retry is due
            self._retry_at = None
            return self._batch(frozenset(), retry=True)
        paths = {first} if isinstance(first, Path) else set()
        start = last = self._clock()
        while True:
            timeout = min(last + self.debounce, start + self.max_delay) - self._clock()
            if timeout <= 0:
                break
            item = self._get(timeout)
            if item is _STOP:
                return None
            if item is None:
                break
            if isinstance(item, Path):
                paths.add(item)
                last = self._clock()
        self._retry_at = None  # this batch reconciles everything anyway
        return self._batch(frozenset(paths))

    def _batch(self, paths: frozenset[Path], *, retry: bool = False) -> Batch:
        self._numbers += 1
        return Batch(self._numbers, paths, retry)

    def _run_one(self, batch: Batch) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._reconcile(batch)
            self._failures = 0
        except Exception as exc:  # keep watching; retry with backoff
            error = exc
            self._failures += 1
            delay = min(60.0, self.retry_delay * 2 ** (self._failures - 1))
            self._retry_at = self._clock() + delay
        self.reconciles += 1
        for listener in self._listeners:
            try:
                listener(batch, result, error)
            except Exception:
                traceback.print_exc(file=sys.stderr)


class _Handler(FileSystemEventHandler):
    def __init__(self, accept: Callable[[Path, bool], bool], notify: Callable[[Path], None]):
        self._accept = accept
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _RELEVANT:
            return
        if event.is_directory and event.event_type == "modified":
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = Path(os.fsdecode(raw))
            if self._accept(path, event.is_directory):
                self._notify(path)


class FileObserver:
    """Watches the manifests tree (recursively) and the directories of the timeline files."""

    def __init__(
        self,
        root: Path,
        notify: Callable[[Path], None],
        *,
        poll: bool = False,
        poll_interval: float = 0.5,
    ) -> None:
        self.root = root.absolute()
        self._observer: Any = PollingObserver(timeout=poll_interval) if poll else Observer()
        self._deps: frozenset[Path] = frozenset()
        self._dep_watches: dict[Path, Any] = {}
        self._handler = _Handler(self._accept, notify)
        self._observer.schedule(self._handler, str(self.root), recursive=True)

    def _accept(self, path: Path, is_dir: bool) -> bool:
        if path in self._deps:
            return True
        if path.name.startswith(".") or path.name.endswith("~"):
            return False  # editor swap/backup files
        if not path.is_relative_to(self.root):
            return False
        return is_dir or is_manifest_name(path)

    def watch_deps(self, deps: Iterable[Path]) -> None:
        """Also watch the directory of every timeline file outside the manifests tree."""
        self._deps = frozenset(deps)
        wanted = {d.parent for d in self._deps if not d.is_relative_to(self.root)}
        for gone in set(self._dep_watches) - wanted:
            self._observer.unschedule(self._dep_watches.pop(gone))
        for directory in sorted(wanted - set(self._dep_watches)):
            if directory.is_dir():
                self._dep_watches[directory] = self._observer.schedule(
                    self._handler, str(directory), recursive=False
                )

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=10)
