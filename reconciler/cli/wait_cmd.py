"""`reconciler wait [NAME...]`: wait for queued renders to finish (Produced / ProduceFailed).

Polls GetEditingProject for every project whose last render is still Producing/Unknown and
records each final status, MediaId and finish time in the state. Exit 0 when every render
was produced, 1 when one failed, timed out or could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from reconciler.adapters.callbacks import ProducedRecorder
from reconciler.adapters.config import Settings
from reconciler.adapters.state import StateStore
from reconciler.cli import common
from reconciler.cli.main import EXIT_ERROR, EXIT_OK
from reconciler.core.planner import Plan
from reconciler.engine.lifecycle import Backoff, Waiter, WaitResult, waiting_targets
from reconciler.errors import LockHeldError, StateError

DEFAULT_TIMEOUT = 1800.0


def add_wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SEC",
        help=f"give up waiting after SEC seconds (default {DEFAULT_TIMEOUT:.0f})",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SEC",
        help="first poll interval; it doubles up to 10 s (default 1)",
    )


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "wait", help="wait for queued renders to finish", description=__doc__
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these projects")
    common.add_common(p)
    add_wait_options(p)
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def _summary(results: list[WaitResult]) -> tuple[str, bool]:
    failed = [r.target.name for r in results if r.status == "ProduceFailed"]
    late = [r.target.name for r in results if r.status == "Timeout"]
    broken = [r.target.name for r in results if r.status in ("Deleted", "Error")]
    produced = sum(1 for r in results if r.ok)
    text = f"Wait complete: {produced} produced"
    text += f", {len(failed)} failed ({', '.join(failed)})" if failed else ", 0 failed"
    if late:
        text += f", {len(late)} timed out ({', '.join(late)})"
    if broken:
        text += f", {len(broken)} not readable ({', '.join(broken)})"
    return text + ".", not (failed or late or broken)


def wait_for(
    settings: Settings,
    holder: common.ClientHolder,
    names: Iterable[str] | None,
    *,
    timeout: float | None,
    interval: float = 1.0,
    output: str = "text",
) -> int:
    """Wait for the renders of ``names`` (None: all); shared with ``apply --wait``."""
    state = StateStore(settings.state, history=settings.history).peek()
    targets = waiting_targets(state, names)
    text = output == "text"
    if not targets:
        if text:
            print("Nothing to wait for: no render is in progress.")
        else:
            json.dump({"results": [], "ok": True}, sys.stdout)
            sys.stdout.write("\n")
        return EXIT_OK
    recorder = ProducedRecorder(
        settings.state, history=settings.history, lock_timeout=settings.lock_timeout
    )
    unrecorded: list[WaitResult] = []

    def finished(results: list[WaitResult]) -> None:
        if text:
            for r in results:
                print(r.describe(), flush=True)
        try:
            recorder.record([r.produced() for r in [*unrecorded, *results]])
            unrecorded.clear()
        except LockHeldError:  # a reconcile is running: record with the next batch
            unrecorded.extend(results)

    if text:
        limit = "no timeout" if timeout is None else f"timeout {timeout:g}s"
        print(f"Waiting for {len(targets)} render(s) ({limit})...", flush=True)
    waiter = Waiter(
        holder.get(),
        backoff=Backoff(initial=max(interval, 0.01)),
        parallelism=settings.parallelism,
        on_finished=finished,
    )
    results = waiter.wait(targets, timeout)
    if unrecorded:
        recorder.record([r.produced() for r in unrecorded])
    line, ok = _summary(results)
    if text:
        for r in results:
            if not r.final:
                print(r.describe())
        print(line)
    else:
        doc = {
            "results": [
                {
                    "name": r.target.name,
                    "project_id": r.target.project_id,
                    "media_id": r.target.media_id,
                    "status": r.status,
                    "finished_at": r.at,
                    "last_seen": r.last_seen,
                    "error": None if r.error is None else r.error.code,
                }
                for r in results
            ],
            "ok": ok,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    if not ok:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def after_apply(settings: Settings, the_plan: Plan, args: argparse.Namespace) -> int:
    """``apply --wait``: wait for the renders of the projects the plan covered."""
    holder = common.ClientHolder(settings)
    try:
        names = [c.name for c in the_plan.changes]
        return wait_for(settings, holder, names, timeout=args.timeout, interval=args.interval)
    finally:
        holder.close()


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    common.print_endpoint(settings)
    options = common.plan_options(args)
    state = StateStore(settings.state, history=settings.history).peek()
    unknown = [n for n in [*args.names, *options.only] if n not in state.projects]
    if unknown:
        raise StateError(
            f"no project named {', '.join(map(repr, unknown))} in the state",
            hint="`reconciler status` lists the projects",
        )
    wanted = set(args.names) | set(options.only)
    names = [
        n
        for n, e in state.projects.items()
        if (not wanted or n in wanted)
        and all(e.get("labels", {}).get(k) == v for k, v in options.selector.items())
    ]
    holder = common.ClientHolder(settings)
    try:
        return wait_for(
            settings,
            holder,
            names,
            timeout=args.timeout,
            interval=args.interval,
            output=args.output,
        )
    finally:
        holder.close()
