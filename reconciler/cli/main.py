"""Entry point: builds the parser from the command modules, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from importlib import import_module

from reconciler.errors import ManifestError, ReconcilerError

# One module per verb; each exposes ``register(subparsers)`` which sets ``func`` on its parser.
COMMAND_MODULES = (
    "validate_cmd",
    "plan_cmd",
    "apply_cmd",
    "status_cmd",
    "schema_cmd",
    "emulator_cmd",
    "state_cmd",
    "watch_cmd",
    "hooks_cmd",
    "wait_cmd",
    "drift_cmd",
    "import_cmd",
    "callbacks_cmd",
)

# The one exit-code map (product.md §4).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_DRIFT = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Reconcile VOD online-editing projects with the manifests in git.",
    )
    from reconciler import __version__

    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = import_module(f"reconciler.cli.{name}")
        except ModuleNotFoundError as exc:  # a verb still being built is simply absent
            if exc.name != f"reconciler.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def render_error(exc: ReconcilerError) -> None:
    if isinstance(exc, ManifestError):
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
    print(f"error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `reconciler plan | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except ReconcilerError as exc:
        render_error(exc)
        return exc.exit_code
    except Exception:  # a bug: keep the traceback out of the user's face, but keep it
        fd, path = tempfile.mkstemp(prefix="reconciler-crash-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        print(
            f"internal error: this is a bug in reconciler; the traceback is in {path}",
            file=sys.stderr,
        )
        return EXIT_ERROR


def entrypoint() -> None:
    sys.exit(main())
