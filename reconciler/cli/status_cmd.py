"""`reconciler status [NAME...]`: the state per project; with --refresh, the remote status too.

Per project: the applied render hash, the last render's status, MediaId and age, and the last
N MediaIds (N = settings.history). ``--refresh`` asks GetEditingProject and records a final
status it learns for a render still in progress, exactly as ``reconciler wait`` would.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from reconciler.adapters.callbacks import FINAL_STATUSES, Produced, ProducedRecorder
from reconciler.adapters.config import Settings
from reconciler.adapters.state import StateStore
from reconciler.cli import common
from reconciler.cli.main import EXIT_ERROR, EXIT_OK
from reconciler.engine.apply import utc_now
from reconciler.engine.lifecycle import NOT_FOUND, WAITING_STATUSES
from reconciler.errors import LockHeldError, VodError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="show the recorded state per project", description=__doc__
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    common.add_common(p)
    p.add_argument(
        "--refresh", action="store_true", help="also fetch each project's status from VOD"
    )
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "-"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "-"
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def rows(
    projects: dict[str, dict[str, Any]], wanted: list[str], history: int = 10
) -> list[dict[str, Any]]:
    out = []
    for name in sorted(projects):
        if wanted and name not in wanted:
            continue
        entry = projects[name]
        render = entry.get("last_render") or {}
        status = render.get("status") or ("Pending" if entry.get("pending") else "-")
        out.append(
            {
                "name": name,
                "project_id": entry.get("project_id"),
                "render_hash": (entry.get("hashes") or {}).get("render"),
                "status": status,
                "media_id": render.get("media_id"),
                "submitted_at": render.get("submitted_at"),
                "finished_at": render.get("finished_at"),
                "error_code": render.get("error_code"),
                "applied_at": entry.get("applied_at"),
                "pending": entry.get("pending"),
                "failed": entry.get("failed"),
                "history": [
                    {"media_id": h.get("media_id"), "status": h.get("status")}
                    for h in reversed(entry.get("history", [])[-max(history, 0) :])
                ],
            }
        )
    return out


def _refresh(settings: Settings, table: list[dict[str, Any]]) -> None:
    """Add each project's remote status; record final statuses of renders in progress."""
    holder = common.ClientHolder(settings)
    learned: list[Produced] = []
    try:
        client = holder.get()
        for row in table:
            if not row["project_id"]:
                row["remote"] = "-"
                continue
            try:
                row["remote"] = client.get_editing_project(row["project_id"]).status or "Unknown"
            except VodError as exc:
                row["remote"] = "Deleted" if exc.code == NOT_FOUND else f"error: {exc.code}"
                continue
            if row["status"] in WAITING_STATUSES and row["remote"] in FINAL_STATUSES:
                learned.append(
                    Produced(row["media_id"], row["remote"], utc_now(), name=row["name"])
                )
    finally:
        holder.close()
    if not learned:
        return
    recorder = ProducedRecorder(
        settings.state, history=settings.history, lock_timeout=settings.lock_timeout
    )
    try:
        outcomes = recorder.record(learned)
    except LockHeldError as exc:
        print(f"warning: final statuses not recorded now: {exc.message}", file=sys.stderr)
        return
    recorded = {name for name, what in outcomes if what == "recorded"}
    for row in table:
        if row["name"] in recorded:
            row["status"] = row["remote"]
            for item in row["history"]:
                if item["media_id"] == row["media_id"]:
                    item["status"] = row["remote"]


def _print_text(table: list[dict[str, Any]], refresh: bool) -> None:
    now = datetime.now(UTC)
    head = f"{'NAME':<28} {'PROJECT':<34} {'HASH':<12}  {'STATUS':<14} {'MEDIA':<34} {'AGE':>5}"
    print(head + ("  REMOTE" if refresh else ""))
    for r in table:
        status = "Failed" if r["failed"] else r["status"]
        age = _age(r["finished_at"] or r["submitted_at"] or r["applied_at"], now)
        line = (
            f"{r['name']:<28} {r['project_id'] or '-':<34} {(r['render_hash'] or '-')[7:19]:<12}  "
            f"{status:<14} {r['media_id'] or '-':<34} {age:>5}"
        )
        print(line + (f"  {r.get('remote', '-')}" if refresh else ""))
        if r["error_code"]:
            print(f"    render failed: {r['error_code']}")
        if r["failed"]:
            f = r["failed"]
            print(
                f"    last failure: {f.get('code')}: {f.get('message')} "
                f"(RequestId {f.get('request_id') or '-'})"
            )
        if len(r["history"]) > 1:
            items = ", ".join(f"{h['media_id'] or '?'} {h['status'] or '?'}" for h in r["history"])
            print(f"    history: {items}")


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    state = StateStore(settings.state, history=settings.history).peek()
    wanted = [*args.names, *args.only]
    selector = common.plan_options(args).selector
    table = [
        r
        for r in rows(state.projects, wanted, settings.history)
        if all(state.projects[r["name"]].get("labels", {}).get(k) == v for k, v in selector.items())
    ]
    missing = [n for n in wanted if n not in state.projects]
    if args.refresh and table:
        common.print_endpoint(settings)
        _refresh(settings, table)
    if args.output == "json":
        json.dump({"serial": state.serial, "projects": table}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(table, args.refresh)
    for name in missing:
        print(f"error: no project named {name!r} in the state", file=sys.stderr)
    return EXIT_ERROR if missing else EXIT_OK
