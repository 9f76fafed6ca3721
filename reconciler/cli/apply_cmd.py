"""`reconciler apply`: make VOD match the manifests; non-interactive."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from reconciler.adapters.state import StateStore, state_lock
from reconciler.cli import common, wait_cmd
from reconciler.cli.drift_cmd import refresh_drift
from reconciler.cli.main import EXIT_ERROR, EXIT_OK
from reconciler.core.planner import Plan, PlanOptions, plan
from reconciler.engine.apply import ApplyResult, Executor, Outcome


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "apply", help="make VOD match the manifests", description=__doc__
    )
    common.add_common(p)
    p.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="NAME",
        help="render this project even if unchanged (repeatable)",
    )
    p.add_argument(
        "--prune", action="store_true", help="delete remote projects whose manifest was removed"
    )
    p.add_argument(
        "--max-deletes",
        type=int,
        default=10,
        metavar="N",
        help="never delete more than N projects in one run (default 10)",
    )
    p.add_argument(
        "--allow-empty", action="store_true", help="allow --prune when the manifest set is empty"
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="resubmit renders that failed permanently for an unchanged spec",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="apply the valid manifests, report the invalid ones (no pruning)",
    )
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument(
        "--heal",
        action="store_true",
        help="revert drift: render a timeline changed outside git, update changed metadata",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for the renders to finish (Produced/Failed)"
    )
    wait_cmd.add_wait_options(p)
    p.set_defaults(func=run)


def _line(outcome: Outcome) -> str:
    parts = [f"{outcome.action:<9} {outcome.name}"]
    if outcome.project_id:
        parts.append(f"project={outcome.project_id}")
    if outcome.media_id:
        parts.append(f"media={outcome.media_id}")
    if outcome.error is not None:
        parts.append(str(outcome.error).replace("\n", " "))
    elif outcome.detail:
        parts.append(f"({outcome.detail})")
    return "  ".join(parts)


def summary_line(result: ApplyResult, seconds: float) -> str:
    c = result.counts
    return (
        f"Apply complete in {seconds:.1f}s: {c['created']} created, {c['rendered']} rendered, "
        f"{c['updated']} updated, {c['adopted']} adopted, {c['deleted']} deleted, "
        f"{c['unchanged'] + c['recorded']} unchanged, {c['orphaned']} orphaned, "
        f"{c['failed']} failed."
    )


def result_document(result: ApplyResult, seconds: float) -> dict[str, Any]:
    """``apply --output json``: one document, per-project outcomes and the counts."""
    outcomes = []
    for o in result.outcomes:
        item: dict[str, Any] = {
            "name": o.name,
            "action": o.action,
            "project_id": o.project_id,
            "media_id": o.media_id,
            "request_id": o.request_id,
            "detail": o.detail or None,
        }
        if o.error is not None:
            item["error"] = {
                "code": o.error.code,
                "message": o.error.message,
                "request_id": o.error.request_id,
                "retryable": o.error.retryable,
                "ambiguous": o.error.ambiguous,
            }
        outcomes.append(item)
    return {
        "format_version": 1,
        "outcomes": outcomes,
        "summary": dict(result.counts),
        "seconds": round(seconds, 3),
    }


def execute(
    settings: Any,
    the_plan: Plan,
    store: StateStore,
    *,
    quiet: bool = False,
    holder: common.ClientHolder | None = None,
) -> ApplyResult:
    """Run a plan (shared with watch and hooks). Makes no API call when nothing changes."""
    tty = sys.stdout.isatty()
    total = sum(1 for c in the_plan.changes if c.action not in ("noop", "orphan"))
    done = 0

    def report(outcome: Outcome) -> None:
        nonlocal done
        if quiet or (outcome.action == "unchanged" and not outcome.detail):
            return
        if tty and outcome.action not in ("orphaned", "recorded", "unchanged"):
            done += 1
            print(f"\r[{done}/{total}] ", end="", file=sys.stderr)
        print(_line(outcome), flush=True)

    client_holder = holder or common.ClientHolder(settings)
    try:
        needs_client = any(c.action not in ("noop", "orphan") for c in the_plan.changes)
        client: Any = client_holder.get() if needs_client else None
        projects = store.state.projects.values() if store.state else ()
        known = frozenset(str(e["project_id"]) for e in projects if e.get("project_id"))
        executor = Executor(
            store,
            client,
            parallelism=settings.parallelism,
            on_outcome=report,
            known_project_ids=known,
        )
        return executor.run(the_plan)
    finally:
        store.snapshot()
        if holder is None:
            client_holder.close()


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    settings = common.settings_from(args)
    common.print_endpoint(settings)
    loaded = common.load_valid(settings, skip_invalid=args.skip_invalid)
    options: PlanOptions = common.plan_options(args)
    if args.skip_invalid and loaded.issues:
        options = dataclasses.replace(options, prune=False)
    options = dataclasses.replace(options, heal=args.heal)
    holder = common.ClientHolder(settings)
    try:
        with state_lock(settings.state, timeout=settings.lock_timeout):
            store = StateStore(settings.state, history=settings.history)
            try:
                state = store.load()
                drift = (
                    refresh_drift(settings, holder, state, loaded.manifests, options)
                    if args.heal
                    else None
                )
                the_plan = plan(loaded.manifests, state, options, drift=drift)
                for refusal in the_plan.refusals:
                    print(f"refused: {refusal}", file=sys.stderr)
                for change in the_plan.changes:  # a deletion is announced before it happens
                    if change.action == "delete":
                        print(f"deleting {change.name} ({change.project_id}): {change.reasons[0]}")
                as_json = args.output == "json"
                result = execute(settings, the_plan, store, holder=holder, quiet=as_json)
            finally:
                store.close()
    finally:
        holder.close()
    seconds = time.monotonic() - started
    if args.output == "json":
        json.dump(result_document(result, seconds), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    print(summary_line(result, seconds), file=sys.stderr if args.output == "json" else sys.stdout)
    for failure in result.failures:
        err = failure.error
        assert err is not None
        print(
            f"failed: {failure.name}: {err.code}: {err.message} "
            f"(RequestId {err.request_id or '-'})",
            file=sys.stderr,
        )
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr)
        if err.ambiguous:
            print(
                "  the next apply asks VOD what happened (GetEditingProject / "
                "SearchEditingProject) before it submits anything again: nothing is paid twice",
                file=sys.stderr,
            )
    held = [c for c in the_plan.changes if c.held]
    for change in held:  # the catalogue is not where it should be: say so and exit 1
        print(f"held back: {change.name}: {change.reasons[0]}", file=sys.stderr)
    waited = wait_cmd.after_apply(settings, the_plan, args) if args.wait else EXIT_OK
    failed = result.failures or held or the_plan.refusals or waited
    return EXIT_ERROR if failed else EXIT_OK
