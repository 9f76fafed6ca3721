"""`reconciler watch`: watch the manifests (and their timeline files) and apply on change.

One line per reconcile on stdout: what changed, what was called, how long. An invalid
manifest is reported as ``path:line:col`` and skipped while the valid projects are still
reconciled; while anything is invalid nothing is pruned or reported as orphaned. Ctrl-C
(or SIGTERM) lets the reconcile in progress finish, saves the state and exits 0; a second
Ctrl-C interrupts at once (exit 130).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.adapters.config import Settings
from reconciler.adapters.state import StateStore, state_lock
from reconciler.cli import apply_cmd, common
from reconciler.cli.main import EXIT_OK
from reconciler.core.planner import Plan, PlanOptions, plan
from reconciler.engine.apply import ApplyResult
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.triggers.cache import ManifestCache, Snapshot
from reconciler.triggers.watch import Batch, FileObserver, WatchLoop


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "watch",
        help="watch the manifests directory and apply on change",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.add_common(p)
    p.add_argument(
        "--debounce",
        type=float,
        default=0.5,
        metavar="SEC",
        help="wait until the files were quiet this long (default 0.5)",
    )
    p.add_argument(
        "--poll",
        action="store_true",
        help="poll the files instead of OS events (network/virtual filesystems)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete remote projects whose manifest was removed (never while any "
        "manifest is invalid)",
    )
    p.add_argument("--max-deletes", type=int, default=10, metavar="N")
    p.add_argument(
        "--callbacks-port",
        type=int,
        metavar="PORT",
        help="also receive VOD ProduceMediaComplete callbacks on 127.0.0.1:PORT and record "
        "the final render status (as `reconciler callbacks serve`)",
    )
    p.add_argument(
        "--callback-key",
        action="append",
        default=[],
        metavar="KEY",
        help="private key for the X-VOD-SIGNATURE check of callbacks (repeatable)",
    )
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Report:
    """What one reconcile did (handed to listeners and tests)."""

    batch: Batch
    snapshot: Snapshot
    plan: Plan
    result: ApplyResult
    seconds: float

    def line(self) -> str:
        c = self.result.counts
        if self.batch.number == 0:
            what = "initial"
        elif self.batch.retry:
            what = "retry"
        else:
            shown = sorted({_display(p) for p in self.batch.paths})
            what = (
                "changed "
                + ", ".join(shown[:3])
                + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
            )
        calls = (
            f"{c['created']} created, {c['rendered']} rendered, {c['updated']} updated"
            f"{_extra(c)}, {c['failed']} failed"
        )
        if self.snapshot.issues:
            n = self.snapshot.invalid_files
            calls += f"; {n} invalid file{'s' if n != 1 else ''} skipped"
        return f"watch #{self.batch.number}: {what}: {calls} ({self.seconds:.2f}s)"


def _extra(counts: Any) -> str:
    return "".join(f", {counts[k]} {k}" for k in ("adopted", "deleted", "orphaned") if counts[k])


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def without_orphans(the_plan: Plan) -> Plan:
    """While a manifest is invalid its projects are absent, not removed: no orphans."""
    kept = tuple(c for c in the_plan.changes if c.action not in ("orphan", "delete"))
    return Plan(kept, the_plan.refusals)


class WatchSession:
    """The real reconcile of `reconciler watch`: cached load → plan → apply, under the lock."""

    def __init__(self, settings: Settings, options: PlanOptions) -> None:
        self.settings = settings
        self.options = options
        self.cache = ManifestCache(
            settings.manifests,
            repository=settings.repository,
            cache_dir=settings.state / "cache",  # the plan's: a restart parses what changed
        )
        self.holder = common.ClientHolder(settings)
        self.observer: FileObserver | None = None

    def reconcile(self, batch: Batch) -> Report:
        started = time.monotonic()
        snap = self.cache.refresh(batch.paths)
        if self.observer is not None:
            self.observer.watch_deps(snap.deps)
        for issue in snap.issues:
            print(f"invalid: {issue}", file=sys.stderr)
        options = self.options
        if snap.issues:
            options = dataclasses.replace(options, prune=False)
        settings = self.settings
        with state_lock(settings.state, timeout=settings.lock_timeout):
            store = StateStore(settings.state, history=settings.history)
            try:
                the_plan = plan(snap.manifests, store.load(), options)
                if snap.issues:
                    the_plan = without_orphans(the_plan)
                result = apply_cmd.execute(
                    settings, the_plan, store, quiet=True, holder=self.holder
                )
            finally:
                store.close()
        report = Report(batch, snap, the_plan, result, time.monotonic() - started)
        print(report.line(), flush=True)
        for failure in result.failures:
            print(f"failed: {failure.name}: {failure.error}", file=sys.stderr)
        return report

    def close(self) -> None:
        self.holder.close()


class Watcher:
    """Session + loop + observer, wired; ``run`` blocks until ``stop``."""

    def __init__(
        self, settings: Settings, options: PlanOptions, *, debounce: float = 0.5, poll: bool = False
    ) -> None:
        if not settings.manifests.is_dir():
            raise ConfigError(
                f"manifests directory {settings.manifests} does not exist",
                hint="pass --manifests DIR or create it",
            )
        self.session = WatchSession(settings, options)
        self.loop = WatchLoop(self.session.reconcile, debounce=debounce)
        self.loop.add_listener(self._on_error)
        self.observer = FileObserver(settings.manifests, self.loop.notify, poll=poll)
        self.session.observer = self.observer

    @staticmethod
    def _on_error(batch: Batch, result: object, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, ReconcilerError):
            # A bug: keep the traceback out of the user's face, but keep it (as main does).
            fd, path = tempfile.mkstemp(prefix="reconciler-crash-", suffix=".log")
            with os.fdopen(fd, "w") as fh:
                fh.write("".join(traceback.format_exception(error)))
            print(
                f"watch #{batch.number}: internal error (a bug in reconciler; the traceback "
                f"is in {path}); still watching",
                file=sys.stderr,
                flush=True,
            )
        elif error is not None:
            print(
                f"watch #{batch.number}: error: {error} (will retry; still watching)",
                file=sys.stderr,
                flush=True,
            )

    def run(self) -> None:
        self.observer.start()  # before the first reconcile, so no save is missed
        try:
            self.loop.run()
        finally:
            self.observer.stop()
            self.session.close()

    def stop(self) -> None:
        self.loop.stop()


def _install_signals(watcher: Watcher) -> dict[signal.Signals, Any]:
    """Graceful stop on SIGINT/SIGTERM; returns the previous handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[signal.Signals, Any] = {
        s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)
    }

    def graceful(signum: int, frame: FrameType | None) -> None:
        # The next Ctrl-C interrupts at once (KeyboardInterrupt → exit 130).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nstopping: letting the current reconcile finish (Ctrl-C again to interrupt)",
            file=sys.stderr,
            flush=True,
        )
        watcher.stop()

    signal.signal(signal.SIGINT, graceful)
    signal.signal(signal.SIGTERM, graceful)
    return previous


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    common.print_endpoint(settings)
    watcher = Watcher(settings, common.plan_options(args), debounce=args.debounce, poll=args.poll)
    previous = _install_signals(watcher)
    print(
        f"watching {settings.manifests} (debounce {args.debounce:g}s"
        f"{', polling' if args.poll else ''}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    receiver = None
    if args.callbacks_port is not None:
        from reconciler.adapters.callbacks import CallbackReceiver

        receiver = CallbackReceiver(
            settings.state,
            port=args.callbacks_port,
            private_keys=args.callback_key,
            history=settings.history,
            lock_timeout=settings.lock_timeout,
        ).start()
        print(f"receiving callbacks on {receiver.url}", file=sys.stderr, flush=True)
    try:
        watcher.run()
    finally:
        if receiver is not None:
            receiver.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("watch stopped; state saved", file=sys.stderr)
    return EXIT_OK
