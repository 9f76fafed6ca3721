"""``reconciler validate [PATH...]``: check manifests offline; never reads state or calls VOD."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.adapters.config import REPOSITORY_HELP, resolve_settings
from reconciler.adapters.loader import LoadResult, load_manifests


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests offline (exit 0 valid, 1 invalid)",
        description="Check manifests offline: YAML, schema, Timeline rules, unique names and "
        "timelineFile references. Reads no state and calls no API. Exit 0 when valid, 1 when not.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or directories to check (default: the manifests directory)",
    )
    parser.add_argument(
        "--manifests", metavar="DIR", help="manifests directory (default: manifests)"
    )
    parser.add_argument("--repository", metavar="DIR", help=REPOSITORY_HELP)
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: one line per issue on stderr; json: one document on stdout",
    )
    parser.set_defaults(func=run)


def _as_json(result: LoadResult) -> dict[str, Any]:
    return {
        "valid": result.valid,
        "manifests": len(result.manifests),
        "issues": [
            {
                "path": i.path,
                "line": i.line,
                "col": i.col,
                "ref": i.ref,
                "field": i.field,
                "message": i.message,
            }
            for i in result.issues
        ],
    }


def _summary(result: LoadResult) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    checked = f"{count(len(result.files), 'file')} checked"
    if result.valid:
        return f"ok: {count(len(result.manifests), 'manifest')} valid ({checked})"
    bad = len({i.path for i in result.issues})
    return (
        f"invalid: {count(len(result.issues), 'issue')} in {count(bad, 'file')}; "
        f"{count(len(result.manifests), 'manifest')} valid ({checked})"
    )


def run(args: argparse.Namespace) -> int:
    flags = {"manifests": args.manifests, "repository": args.repository}
    settings = resolve_settings(flags, os.environ, Path.cwd())
    paths = [Path(p) for p in args.paths] or None
    result = load_manifests(settings.manifests, paths, repository=settings.repository)
    if args.output == "json":
        json.dump(_as_json(result), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for issue in result.issues:
            print(str(issue), file=sys.stderr)
        print(_summary(result), file=sys.stdout if result.valid else sys.stderr)
    return 0 if result.valid else 1
