"""Shared CLI plumbing: common options, settings, loading, the client, plan rendering."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from reconciler.adapters.config import REPOSITORY_HELP, Settings, resolve_settings
from reconciler.adapters.loader import LoadResult, load_manifests
from reconciler.core.planner import Change, Plan, PlanOptions
from reconciler.engine.protocol import VodLike
from reconciler.errors import ConfigError, ManifestError


def add_common(parser: argparse.ArgumentParser, *, remote: bool = True) -> None:
    """Options every reconcile-type command takes; defaults None so settings can layer."""
    g = parser.add_argument_group("common options")
    g.add_argument("--manifests", metavar="DIR", help="manifests directory (default: manifests)")
    g.add_argument("--state", metavar="DIR", help="state directory (default: state)")
    g.add_argument("--repository", metavar="DIR", help=REPOSITORY_HELP)
    if remote:
        g.add_argument(
            "--endpoint",
            metavar="URL|emulator",
            help="VOD endpoint URL, or 'emulator' for the embedded emulator "
            "(default: https://vod.<region>.aliyuncs.com)",
        )
        g.add_argument("--region", metavar="ID", help="region id (default: cn-shanghai)")
        g.add_argument(
            "--signature",
            choices=("v3", "v2"),
            help="v3 = ACS3-HMAC-SHA256 (default), v2 = HMAC-SHA1 RPC signature",
        )
        g.add_argument(
            "--parallelism", type=int, metavar="N", help="concurrent API calls (default 8)"
        )
        g.add_argument(
            "--qps", type=float, metavar="Q", help="client-side request rate (default 40)"
        )
        g.add_argument(
            "--lock-timeout",
            type=float,
            metavar="SEC",
            help="how long to wait for another reconcile's lock (default 5)",
        )
    g.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="act on this project only (repeatable)",
    )
    g.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="K=V",
        help="act on projects whose labels match (repeatable, all must match)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    flags = {
        k: getattr(args, k, None)
        for k in (
            "manifests",
            "state",
            "endpoint",
            "region",
            "signature",
            "parallelism",
            "qps",
            "lock_timeout",
            "repository",
        )
    }
    return resolve_settings(flags, os.environ, Path.cwd())


def plan_options(args: argparse.Namespace) -> PlanOptions:
    selector: dict[str, str] = {}
    for item in args.selector:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--selector {item!r}: expected KEY=VALUE")
        selector[key] = value
    return PlanOptions(
        only=frozenset(args.only),
        selector=selector,
        force=frozenset(getattr(args, "force", None) or ()),
        prune=bool(getattr(args, "prune", False)),
        max_deletes=int(getattr(args, "max_deletes", 10)),
        allow_empty=bool(getattr(args, "allow_empty", False)),
        retry_failed=bool(getattr(args, "retry_failed", False)),
    )


def load_valid(
    settings: Settings, *, skip_invalid: bool = False, alongside: Callable[[], None] | None = None
) -> LoadResult:
    """Load manifests; any issue aborts (unless skip_invalid), before state or API are touched.

    ``alongside``: read-only work to overlap with a parallel parse (see ``load_manifests``).
    """
    if not settings.manifests.is_dir():
        raise ConfigError(
            f"manifests directory {settings.manifests} does not exist",
            hint="pass --manifests DIR or create it",
        )
    result = load_manifests(
        settings.manifests,
        cache_dir=settings.state / "cache",
        alongside=alongside,
        repository=settings.repository,
    )
    if result.issues:
        if not skip_invalid:
            raise ManifestError(result.issues)
        for issue in result.issues:
            print(f"warning: skipped: {issue}", file=sys.stderr)
    return result


def describe_endpoint(settings: Settings) -> str:
    if settings.is_emulator:
        return f"emulator (embedded; data in {settings.state / 'emulator'})"
    from reconciler.adapters.vod.endpoints import resolve_endpoint

    return str(resolve_endpoint(settings.region, settings.endpoint))


def print_endpoint(settings: Settings) -> None:
    print(
        f"endpoint: {describe_endpoint(settings)} [signature {settings.signature}]", file=sys.stderr
    )


class ClientHolder:
    """Builds the VOD client on first use, so runs with nothing to do need no credentials."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self.emulator: Any = None

    def get(self) -> VodLike:
        if self._client is None:
            self._client = build_client(self.settings, holder=self)
        client: VodLike = self._client
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.emulator is not None and hasattr(self.emulator, "close"):
            self.emulator.close()


def build_client(settings: Settings, *, holder: ClientHolder | None = None) -> Any:
    from reconciler.adapters.vod.client import VodClient

    common: dict[str, Any] = {
        "signature": settings.signature,
        "qps": settings.qps,
        "parallelism": settings.parallelism,
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
    }
    if settings.is_emulator:
        from reconciler.adapters.emulator import Emulator, EmulatorTransport

        emulator = Emulator.embedded(settings.state)
        if holder is not None:
            holder.emulator = emulator
        return VodClient(
            endpoint="http://127.0.0.1",
            credentials=emulator.demo_credentials,
            transport=EmulatorTransport(emulator),
            **common,
        )
    from reconciler.adapters.vod.credentials import resolve_credentials
    from reconciler.adapters.vod.endpoints import resolve_endpoint

    credentials = resolve_credentials(os.environ, Path.home())
    return VodClient(
        endpoint=resolve_endpoint(settings.region, settings.endpoint),
        credentials=credentials,
        **common,
    )


# --------------------------------------------------------------------------- rendering

_SYMBOL = {
    "create": "+",
    "render": "~",
    "update": "~",
    "adopt": "<",
    "noop": " ",
    "orphan": "?",
    "delete": "-",
}
_COLOUR = {
    "create": "32",
    "render": "33",
    "update": "36",
    "adopt": "35",
    "orphan": "90",
    "delete": "31",
    "noop": "0",
}


def use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour and code != "0" else text


def render_plan_text(plan: Plan, *, stream: IO[str], verbose: bool = False) -> None:
    colour = use_colour(stream)
    shown: list[Change] = [
        c for c in plan.changes if verbose or c.action != "noop" or c.record or c.drift or c.held
    ]
    for change in shown:
        sym = _SYMBOL[change.action]
        head = f"{sym} {change.action:<7} {change.name}"
        if change.project_id:
            head += f" ({change.project_id})"
        print(_paint(head, _COLOUR[change.action], colour), file=stream)
        for reason in change.reasons:
            print(f"      {reason}", file=stream)
        for entry in change.diff[:50]:
            print(f"        {entry}", file=stream)
        if len(change.diff) > 50:
            print(f"        ... and {len(change.diff) - 50} more differences", file=stream)
    for refusal in plan.refusals:
        print(_paint(f"! {refusal}", "31", colour), file=stream)
    s = plan.summary
    print(
        f"Plan: {s['create']} to create, {s['render']} to render, {s['update']} to update, "
        f"{s['adopt']} to adopt, {s['delete']} to delete, {s['noop']} unchanged, "
        f"{s['orphan']} orphaned.",
        file=stream,
    )


def render_plan_json(plan: Plan, *, stream: IO[str]) -> None:
    data = plan.as_dict()
    if plan.refusals:
        data["refusals"] = list(plan.refusals)
    json.dump(data, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def render_plan_markdown(plan: Plan, *, stream: IO[str]) -> None:
    s = plan.summary
    print("### reconciler plan\n", file=stream)
    print("| action | count |\n|---|---|", file=stream)
    for action in ("create", "render", "update", "adopt", "delete", "noop", "orphan"):
        print(f"| {action} | {s[action]} |", file=stream)
    changed = [c for c in plan.changes if c.action != "noop"]
    if changed:
        print("\n| project | action | reasons |\n|---|---|---|", file=stream)
        for c in changed:
            print(f"| `{c.name}` | {c.action} | {'; '.join(c.reasons)} |", file=stream)
        for c in changed:
            if c.diff:
                print(f"\n<details><summary>{c.name}</summary>\n\n```", file=stream)
                for entry in c.diff[:200]:
                    print(str(entry), file=stream)
                print("```\n</details>", file=stream)
    for refusal in plan.refusals:
        print(f"\n> **refused:** {refusal}", file=stream)


def names(manifests: Sequence[Any]) -> list[str]:
    return [m.name for m in manifests]
