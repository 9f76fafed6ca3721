"""`reconciler plan`: what apply would do, per project, with reasons and a field-level diff."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from reconciler.adapters.state import StateStore
from reconciler.cli import common
from reconciler.cli.main import EXIT_CHANGES, EXIT_OK
from reconciler.core.planner import plan


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "plan", help="show what apply would do", description=__doc__
    )
    common.add_common(p)
    p.add_argument("--output", choices=("text", "json", "markdown"), default="text")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when there are none",
    )
    p.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="NAME",
        help="plan a render even if unchanged (repeatable)",
    )
    p.add_argument("--prune", action="store_true", help="plan deletion of orphaned projects")
    p.add_argument("--max-deletes", type=int, default=10, metavar="N")
    p.add_argument("--allow-empty", action="store_true")
    p.add_argument("--retry-failed", action="store_true")
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="plan the valid manifests and report the invalid ones",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also list unchanged projects")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="fetch the remote projects and show drift (changes made outside git)",
    )
    p.add_argument("--heal", action="store_true", help="plan reverting drift (implies --refresh)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    common.print_endpoint(settings)
    store = StateStore(settings.state)
    # a cold load parses on every core; the state (and its read cache) meanwhile
    try:
        loaded = common.load_valid(
            settings, skip_invalid=args.skip_invalid, alongside=store.prefetch
        )
    except BaseException:
        store.discard_prefetch()  # invalid manifests (or Ctrl-C): state/ stays as it was
        raise
    state = store.peek()
    options = common.plan_options(args)
    if args.skip_invalid and loaded.issues:
        options = dataclasses.replace(options, prune=False)
    drift = None
    if args.refresh or args.heal:
        options = dataclasses.replace(options, heal=args.heal)
        holder = common.ClientHolder(settings)
        try:
            from reconciler.cli.drift_cmd import refresh_drift  # only --refresh pays for it

            drift = refresh_drift(settings, holder, state, loaded.manifests, options)
        finally:
            holder.close()
    result = plan(loaded.manifests, state, options, drift=drift)
    if args.output == "json":
        common.render_plan_json(result, stream=sys.stdout)
    elif args.output == "markdown":
        common.render_plan_markdown(result, stream=sys.stdout)
    else:
        common.render_plan_text(result, stream=sys.stdout, verbose=args.verbose)
    if args.detailed_exitcode and result.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
