"""`reconciler drift`: read-only; compare each remote project with the last apply.

Exit 0 in sync, 3 drift found, 1 a project could not be checked. Never writes the state.
``refresh_drift`` is the same check for ``plan --refresh`` and ``apply --heal``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from reconciler.adapters.config import Settings
from reconciler.adapters.state import StateStore
from reconciler.cli import common
from reconciler.cli.main import EXIT_DRIFT, EXIT_ERROR, EXIT_OK
from reconciler.core.drift import ProjectDrift
from reconciler.core.planner import DesiredProject, PlanOptions
from reconciler.core.state import State
from reconciler.engine.drift import DriftReport, detect


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "drift",
        help="compare remote projects with the last apply (read-only; exit 3 on drift)",
        description=__doc__,
    )
    common.add_common(p)
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def selected(name: str, labels: Mapping[str, str], options: PlanOptions) -> bool:
    if options.only and name not in options.only:
        return False
    return all(labels.get(k) == v for k, v in options.selector.items())


def render_text(report: DriftReport, stream: IO[str]) -> None:
    for d in report.projects:
        if not d.drifted:
            continue
        print(f"{'-' if d.deleted else '~'} {d.name} ({d.project_id}): {d.summary}", file=stream)
        for entry in d.entries[:50]:
            print(f"      {entry}", file=stream)
        if len(d.entries) > 50:
            print(f"      ... and {len(d.entries) - 50} more differences", file=stream)
    for name, err in sorted(report.errors.items()):
        print(f"! {name}: could not be checked: {str(err).splitlines()[0]}", file=stream)
    for name, why in sorted(report.skipped.items()):
        print(f"  {name}: skipped: {why}", file=stream)
    n, m = len(report.drifted), len(report.projects)
    print(
        f"Drift: {n} of {m} checked project{'s' if m != 1 else ''} "
        f"drifted, {len(report.errors)} could not be checked, {len(report.skipped)} skipped.",
        file=stream,
    )


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    common.print_endpoint(settings)
    options = common.plan_options(args)
    state = StateStore(settings.state, history=settings.history).peek()
    names = [n for n, e in state.projects.items() if selected(n, e.get("labels", {}), options)]
    holder = common.ClientHolder(settings)
    try:
        report = (
            detect(holder.get(), state, names, parallelism=settings.parallelism)
            if names
            else DriftReport()
        )
    finally:
        holder.close()
    if args.output == "json":
        json.dump(report.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        render_text(report, sys.stdout)
    if report.errors:
        return EXIT_ERROR
    return EXIT_DRIFT if report.drifted else EXIT_OK


def refresh_drift(
    settings: Settings,
    holder: common.ClientHolder,
    state: State,
    desired: Sequence[DesiredProject],
    options: PlanOptions,
) -> dict[str, ProjectDrift]:
    """Drift of the selected desired projects already in the state (for plan and apply).

    A project that cannot be read is reported on stderr and planned without drift.
    """
    names = [
        m.name for m in desired if m.name in state.projects and selected(m.name, m.labels, options)
    ]
    if not names:
        return {}
    report = detect(holder.get(), state, names, parallelism=settings.parallelism)
    for name, err in sorted(report.errors.items()):
        print(f"warning: drift of {name} not checked: {str(err).splitlines()[0]}", file=sys.stderr)
    return report.by_name()
