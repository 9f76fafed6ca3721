"""`reconciler state list|show|rm|mv|unlock`: state surgery (never touches VOD)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from reconciler.adapters.config import resolve_settings
from reconciler.adapters.state import (
    StateStore,
    clear_lock,
    describe_holder,
    state_lock,
)
from reconciler.cli.main import EXIT_OK
from reconciler.core.models import NAME_PATTERN
from reconciler.errors import StateError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "state", help="inspect or edit the state", description=__doc__
    )
    p.add_argument("--state", metavar="DIR", help="state directory (default: state)")
    p.add_argument("--lock-timeout", type=float, metavar="SEC")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    verbs.add_parser("list", help="list the projects in the state")
    show = verbs.add_parser("show", help="print one project's entry as JSON")
    show.add_argument("name")
    rm = verbs.add_parser("rm", help="forget a project (the remote project is NOT deleted)")
    rm.add_argument("names", nargs="+", metavar="NAME")
    mv = verbs.add_parser("mv", help="rename a project in the state (no render)")
    mv.add_argument("old")
    mv.add_argument("new")
    unlock = verbs.add_parser(
        "unlock", help="clear a lock whose holder is gone (--force: one still held)"
    )
    unlock.add_argument(
        "--force",
        action="store_true",
        help="remove the lock even though a process holds it (one that hangs, or runs on "
        "another machine): it then excludes nobody",
    )
    p.set_defaults(func=run)


def _entry(store: StateStore, name: str) -> dict[str, Any]:
    assert store.state is not None
    if name not in store.state.projects:
        raise StateError(
            f"no project named {name!r} in the state",
            hint="`reconciler state list` shows the names",
        )
    return store.state.projects[name]


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(
        {"state": args.state, "lock_timeout": args.lock_timeout}, os.environ, Path.cwd()
    )
    directory = settings.state
    if args.verb == "unlock":
        done, holder = clear_lock(directory, force=args.force)
        if done == "free":
            print(f"the state in {directory} is not locked")
        elif done == "stale":
            print(f"no process holds the lock; cleared the record of {describe_holder(holder)}")
        else:
            print(
                f"removed the lock held by {describe_holder(holder)}; if that process still "
                "runs, stop it: it no longer excludes other runs",
                file=sys.stderr,
            )
        return EXIT_OK
    if args.verb in ("list", "show"):
        store = StateStore(directory)
        state = store.peek()
        if args.verb == "list":
            for name in sorted(state.projects):
                print(f"{name}\t{state.projects[name].get('project_id') or '-'}")
        else:
            json.dump(_entry(store, args.name), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        return EXIT_OK
    with state_lock(directory, timeout=settings.lock_timeout):
        store = StateStore(directory, history=settings.history)
        try:
            store.load()
            if args.verb == "rm":
                for name in args.names:
                    _entry(store, name)
                for name in args.names:
                    store.record({"type": "forgotten", "name": name})
                    print(f"forgot {name} (the remote project still exists)")
            else:
                _entry(store, args.old)
                assert store.state is not None
                if len(args.new) > 128 or not re.match(NAME_PATTERN, args.new):
                    raise StateError(
                        f"{args.new!r} is not a valid manifest name",
                        hint="lower-case letters, digits, '.', '_' and '-', at most 128",
                    )
                if args.new in store.state.projects:
                    raise StateError(f"{args.new!r} is already in the state")
                store.record({"type": "moved", "name": args.old, "new_name": args.new})
                print(f"moved {args.old} -> {args.new}")
            store.snapshot()
        finally:
            store.close()
    return EXIT_OK
