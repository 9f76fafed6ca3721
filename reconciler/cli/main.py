"""Entry point: builds the parser from the command modules, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from reconciler.errors import ManifestError, ReconcilerError

# One module per verb; each exposes ``register(subparsers)`` which sets ``func`` on its parser.
# Only the verb being run is imported (start-up time is most of a no-op plan); the others get
# a placeholder carrying their one-line help, so `reconciler --help` still lists them all.
VERBS = {
    "validate": ("validate_cmd", "check manifests offline"),
    "plan": ("plan_cmd", "show what apply would do"),
    "apply": ("apply_cmd", "make VOD match the manifests"),
    "status": ("status_cmd", "show the recorded state per project"),
    "wait": ("wait_cmd", "wait for queued renders to finish"),
    "drift": ("drift_cmd", "compare remote projects with the last apply (exit 3 on drift)"),
    "import": ("import_cmd", "bring an existing project under git"),
    "state": ("state_cmd", "inspect or edit the state"),
    "watch": ("watch_cmd", "watch the manifests and apply on change"),
    "hooks": ("hooks_cmd", "install or remove the git hooks"),
    "callbacks": ("callbacks_cmd", "receive VOD production callbacks"),
    "emulator": ("emulator_cmd", "run the local VOD emulator"),
    "schema": ("schema_cmd", "print the manifest JSON Schema"),
}
COMMAND_MODULES = tuple(module for module, _ in VERBS.values())

# The one exit-code map (product.md §4).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_DRIFT = 3
EXIT_INTERRUPTED = 130


def _verb_of(argv: Sequence[str] | None) -> str | None:
    for token in argv if argv is not None else sys.argv[1:]:
        if not token.startswith("-"):
            return token if token in VERBS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Reconcile VOD online-editing projects with the manifests in git.",
    )
    from reconciler import __version__

    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    verb = _verb_of(argv)
    tokens = list(argv if argv is not None else sys.argv[1:])
    everything = verb is None and (not tokens or "-h" in tokens or "--help" in tokens)
    for name, (module_name, summary) in VERBS.items():
        if everything or name == verb:
            import_module(f"reconciler.cli.{module_name}").register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def render_error(exc: ReconcilerError) -> None:
    if isinstance(exc, ManifestError):
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
    print(f"error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
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
        import tempfile  # only now: every run would pay ~5 ms for these imports
        import traceback

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
