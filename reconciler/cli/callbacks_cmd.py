"""`reconciler callbacks serve`: receive VOD ProduceMediaComplete callbacks into the state.

Point ``userData.MessageCallback.CallbackURL`` (or the console's callback URL) at it. With a
private key (``--private-key`` or ``RECONCILER_CALLBACK_PRIVATE_KEY``, comma-separated for a
rotation) every request must carry a fresh, valid X-VOD-TIMESTAMP / X-VOD-SIGNATURE.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from reconciler.adapters.callbacks import CallbackReceiver, CallbackResult
from reconciler.adapters.config import resolve_settings
from reconciler.cli.main import EXIT_OK

KEY_ENV = "RECONCILER_CALLBACK_PRIVATE_KEY"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "callbacks", help="receive VOD production callbacks", description=__doc__
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    serve = verbs.add_parser("serve", help="serve until SIGINT/SIGTERM", description=__doc__)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8781, help="port; 0 picks a free one")
    serve.add_argument(
        "--private-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"check VOD's callback signature with this key (repeatable; or ${KEY_ENV})",
    )
    serve.add_argument(
        "--freshness",
        type=float,
        default=300.0,
        metavar="SEC",
        help="reject signed callbacks whose timestamp is further off (default 300)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the callback URL exactly as configured in VOD, when a proxy sits in front",
    )
    serve.add_argument("--state", metavar="DIR", help="state directory (default: state)")
    serve.add_argument("--lock-timeout", type=float, metavar="SEC")
    serve.set_defaults(func=run_serve)


def _print(result: CallbackResult) -> None:
    what = {
        "recorded": f"recorded {result.status} for {result.name}",
        "unchanged": f"already recorded for {result.name}",
        "unknown": "no project's last render has this MediaId; ignored",
        "error": f"not recorded: {result.detail}",
    }[result.outcome]
    print(f"ProduceMediaComplete {result.media_id}: {what}", flush=True)


def run_serve(args: argparse.Namespace) -> int:
    settings = resolve_settings(
        {"state": args.state, "lock_timeout": args.lock_timeout}, os.environ, Path.cwd()
    )
    keys = [*args.private_key, *(k for k in os.environ.get(KEY_ENV, "").split(",") if k)]
    receiver = CallbackReceiver(
        settings.state,
        host=args.host,
        port=args.port,
        private_keys=keys,
        freshness=args.freshness,
        public_url=args.public_url,
        history=settings.history,
        lock_timeout=settings.lock_timeout,
        on_result=_print,
    ).start()
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        check = f"signature check on ({len(keys)} key(s))" if keys else "no signature check"
        print(
            f"callback receiver listening on {receiver.url} ({check}); state in {settings.state}",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("callback receiver stopped", file=sys.stderr)
    return EXIT_OK
