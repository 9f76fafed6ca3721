"""`reconciler status [NAME...]`: the state per project (offline)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from reconciler.adapters.config import resolve_settings
from reconciler.adapters.state import StateStore
from reconciler.cli.main import EXIT_ERROR, EXIT_OK


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="show the recorded state per project", description=__doc__
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--state", metavar="DIR", help="state directory (default: state)")
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


def rows(projects: dict[str, dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in sorted(projects):
        if wanted and name not in wanted:
            continue
        entry = projects[name]
        render = entry.get("last_render") or {}
        out.append(
            {
                "name": name,
                "project_id": entry.get("project_id"),
                "render_hash": (entry.get("hashes") or {}).get("render"),
                "status": render.get("status") or ("Pending" if entry.get("pending") else "-"),
                "media_id": render.get("media_id"),
                "submitted_at": render.get("submitted_at"),
                "applied_at": entry.get("applied_at"),
                "pending": entry.get("pending"),
                "failed": entry.get("failed"),
                "history": [h.get("media_id") for h in entry.get("history", [])],
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    settings = resolve_settings({"state": args.state}, os.environ, Path.cwd())
    state = StateStore(settings.state).peek()
    table = rows(state.projects, args.names)
    missing = [n for n in args.names if n not in state.projects]
    if args.output == "json":
        json.dump({"serial": state.serial, "projects": table}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        now = datetime.now(UTC)
        print(f"{'NAME':<28} {'PROJECT':<34} {'STATUS':<13} {'MEDIA':<34} {'AGE':>5}  HASH")
        for r in table:
            status = r["status"]
            if r["failed"]:
                status = "Failed"
            print(
                f"{r['name']:<28} {r['project_id'] or '-':<34} {status:<13} "
                f"{r['media_id'] or '-':<34} {_age(r['submitted_at'], now):>5}  "
                f"{(r['render_hash'] or '-')[7:19]}"
            )
            if r["failed"]:
                f = r["failed"]
                print(
                    f"    last failure: {f.get('code')}: {f.get('message')} "
                    f"(RequestId {f.get('request_id') or '-'})"
                )
    for name in missing:
        print(f"error: no project named {name!r} in the state", file=sys.stderr)
    return EXIT_ERROR if missing else EXIT_OK
