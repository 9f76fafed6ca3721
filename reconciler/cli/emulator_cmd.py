"""``reconciler emulator serve``: run the local VOD emulator as an HTTP server until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer
from reconciler.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator", help="run the local VOD emulator", description=__doc__
    )
    sub = parser.add_subparsers(dest="emulator_command", metavar="SUBCOMMAND")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="serve the emulator over HTTP until SIGINT/SIGTERM",
        description="Serve a local ApsaraVideo VOD (online editing) on HTTP. Fault flags "
        "override the RECONCILER_EMULATOR_* environment variables.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8780, help="port; 0 picks a free one")
    serve.add_argument("--data", type=Path, help="keep projects here (default: in memory)")
    serve.add_argument(
        "--access-key",
        action="append",
        default=[],
        metavar="ID:SECRET",
        help="accept this key pair (repeatable); without it a demo pair is generated/loaded",
    )
    serve.add_argument("--region", help="region the emulator pretends to be (cn-shanghai)")
    serve.add_argument("--media", type=Path, help="JSON media library {MediaId: seconds}")
    serve.add_argument(
        "--strict-media",
        action="store_true",
        default=None,
        help="unknown MediaIds fail production (default: auto-registered, 60 s)",
    )
    serve.add_argument("--produce-delay", type=float, help="seconds until a render finishes (2)")
    serve.add_argument(
        "--fail-media",
        action="append",
        metavar="MEDIA_ID",
        help="renders using this MediaId fail (repeatable)",
    )
    serve.add_argument(
        "--reject-media",
        action="append",
        metavar="MEDIA_ID",
        help="renders using this MediaId are refused at once, InvalidParameter (repeatable)",
    )
    serve.add_argument("--latency", type=float, help="added latency per request, seconds")
    serve.add_argument("--latency-jitter", type=float, help="extra random latency, seconds")
    serve.add_argument("--qps-limit", type=float, help="global QPS before Throttling.User")
    serve.add_argument(
        "--throttle-rate", type=float, help="share of requests answered Throttling.User"
    )
    serve.add_argument("--error-rate", type=float, help="share of requests answered 500/503")
    serve.add_argument(
        "--drop-rate", type=float, help="share of processed requests whose answer is dropped"
    )
    serve.add_argument(
        "--drop-action",
        action="append",
        metavar="ACTION",
        help="only drop answers to this Action (repeatable)",
    )
    serve.add_argument("--seed", type=int, help="seed of the fault randomness")
    serve.set_defaults(func=run_serve)


def parse_access_keys(values: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for value in values:
        key_id, sep, secret = value.partition(":")
        if not sep or not key_id or not secret:
            raise ConfigError(f"--access-key expects ID:SECRET, got {key_id or value!r}:...")
        keys[key_id] = secret
    return keys


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Flags over environment over defaults."""
    changes: dict[str, object] = {}
    simple = (
        "region",
        "produce_delay",
        "latency",
        "latency_jitter",
        "qps_limit",
        "throttle_rate",
        "error_rate",
        "drop_rate",
        "seed",
    )
    for name in simple:
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.media is not None:
        changes["media_file"] = args.media
    if args.strict_media:
        changes["permissive_media"] = False
    if args.fail_media:
        changes["fail_media_ids"] = frozenset(args.fail_media)
    if args.reject_media:
        changes["reject_media_ids"] = frozenset(args.reject_media)
    if args.drop_action:
        changes["drop_actions"] = frozenset(args.drop_action)
    return EmulatorConfig.from_env().replace(**changes)


def run_serve(args: argparse.Namespace) -> int:
    keys = parse_access_keys(args.access_key)
    emulator = Emulator(args.data, keys or None, config_from_args(args))
    stop = threading.Event()
    try:
        server = EmulatorServer(emulator, args.host, args.port).start()
    except BaseException:
        emulator.close(timeout=0)
        raise
    previous = _install_signal_handlers(stop)
    try:
        if not keys:
            where = f"stored in {args.data}" if args.data else "valid while this server runs"
            creds = emulator.demo_credentials
            print(f"demo access key ({where}):")
            print(
                f"export ALIBABA_CLOUD_ACCESS_KEY_ID={creds.access_key_id} "
                f"ALIBABA_CLOUD_ACCESS_KEY_SECRET={creds.access_key_secret}"
            )
        print(f"export RECONCILER_ENDPOINT={server.url}")
        print(f"VOD emulator listening on {server.url} (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        emulator.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("VOD emulator stopped", file=sys.stderr)
    return 0


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def main(argv: list[str] | None = None) -> int:
    """``python -m reconciler.cli.emulator_cmd serve ...``: this command alone, same exit codes."""
    from reconciler.cli.main import render_error
    from reconciler.errors import ReconcilerError

    parser = argparse.ArgumentParser(prog="reconciler")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["emulator", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except ReconcilerError as exc:
        render_error(exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
