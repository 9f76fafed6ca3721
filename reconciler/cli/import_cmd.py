"""`reconciler import PROJECT_ID --name NAME`: bring an existing VOD project under git.

Fetches the project (GetEditingProject), writes ``<manifests>/NAME.yaml`` (the Timeline in
block-style YAML, keys as VOD returns them), validates it with the loader and records it in
the state as applied, so the next ``plan`` shows no change and nothing is rendered or paid.
ProduceConfig, MediaMetadata and UserData are not readable from VOD, so they are not written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from reconciler.adapters.config import Settings
from reconciler.adapters.loader import Manifest, load_manifests
from reconciler.adapters.state import StateStore, atomic_write, state_lock
from reconciler.cli import common
from reconciler.cli.main import EXIT_OK
from reconciler.core.canonical import applied_spec, canonicalize, spec_hashes
from reconciler.core.models import API_VERSION, KIND, NAME_PATTERN
from reconciler.engine.apply import utc_now
from reconciler.engine.protocol import ProjectLike
from reconciler.errors import ConfigError, ManifestError, ReconcilerError, StateError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "import", help="bring an existing VOD project under git (no render)", description=__doc__
    )
    p.add_argument("project_id", metavar="PROJECT_ID")
    p.add_argument("--name", required=True, help="the manifest name to give the project")
    p.add_argument(
        "--force-overwrite",
        action="store_true",
        help="replace an existing <manifests>/NAME.yaml that defines NAME",
    )
    common.add_common(p)
    p.set_defaults(func=run)


def manifest_document(name: str, project: ProjectLike) -> dict[str, Any]:
    """The manifest for a fetched project; spec keys in manifest order, Timeline as VOD has it."""
    if not project.title:
        raise ReconcilerError(f"project {project.project_id} has no title; VOD requires one")
    if not project.timeline:
        raise ReconcilerError(
            f"project {project.project_id} has no Timeline to import",
            hint="a manifest needs a timeline; write one by hand and adopt the project "
            "with spec.projectId",
        )
    spec: dict[str, Any] = {"projectId": project.project_id, "title": project.title}
    if project.description:
        spec["description"] = project.description
    if project.cover_url:
        spec["coverURL"] = project.cover_url
    spec["timeline"] = project.timeline
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, like hand-written manifests."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render_yaml(doc: dict[str, Any], project_id: str) -> str:
    body = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    head = f"# Imported from VOD project {project_id}\n# by `reconciler import` on {utc_now()}.\n"
    return head + body


def _check_free(name: str, path: Path, force: bool, settings: Settings) -> None:
    manifests, state_dir = settings.manifests, settings.state
    state = StateStore(state_dir).peek()
    if name in state.projects:
        raise StateError(
            f"{name!r} is already in the state",
            hint=f"choose another --name, or `reconciler state rm {name}` first",
        )
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force-overwrite to replace it")
    if manifests.is_dir():
        # through the plan cache: a catalogue of 10,000 is not parsed again for one name
        loaded = load_manifests(
            manifests, cache_dir=state_dir / "cache", repository=settings.repository
        )
        for m in loaded.manifests:
            if m.name == name and Path(m.path).resolve() != path.resolve():
                raise ConfigError(f"a manifest named {name!r} already exists in {m.path}")


def _validated(path: Path, name: str, previous: bytes | None) -> Manifest:
    result = load_manifests(path.parent, [path])
    found = [m for m in result.manifests if m.name == name]
    if result.issues or not found:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)
        if result.issues:
            raise ManifestError(result.issues)
        raise ReconcilerError(f"{path} did not load as manifest {name!r}")
    return found[0]


def _record(settings: Any, name: str, project_id: str, spec: dict[str, Any]) -> None:
    with state_lock(settings.state, timeout=settings.lock_timeout):
        store = StateStore(settings.state, history=settings.history)
        try:
            state = store.load()
            if name in state.projects:
                raise StateError(f"{name!r} was added to the state meanwhile; nothing recorded")
            store.record(
                {
                    "type": "recorded",
                    "name": name,
                    "at": utc_now(),
                    "project_id": project_id,
                    "spec": spec,
                    "hashes": spec_hashes(spec).as_dict(),
                    "labels": {},
                    "annotations": {},
                }
            )
            store.snapshot()
        finally:
            store.close()


def run(args: argparse.Namespace) -> int:
    settings = common.settings_from(args)
    name: str = args.name
    if len(name) > 128 or not re.match(NAME_PATTERN, name):
        raise ConfigError(
            f"--name {name!r} is not a valid manifest name",
            hint="lower-case letters, digits, '.', '_' and '-', starting and ending with a "
            "letter or digit, at most 128 characters",
        )
    path = settings.manifests / f"{name}.yaml"
    _check_free(name, path, args.force_overwrite, settings)
    state = StateStore(settings.state).peek()
    owner = next(
        (n for n, e in state.projects.items() if e.get("project_id") == args.project_id), None
    )
    if owner is not None:
        raise StateError(f"project {args.project_id} is already managed as {owner!r}")
    common.print_endpoint(settings)
    holder = common.ClientHolder(settings)
    try:
        project = holder.get().get_editing_project(args.project_id)
    finally:
        holder.close()
    doc = manifest_document(name, project)
    previous = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, render_yaml(doc, project.project_id).encode())
    manifest = _validated(path, name, previous)
    spec = applied_spec(manifest.spec)
    if canonicalize(spec["timeline"]) != canonicalize(project.timeline):
        raise ReconcilerError(f"{path} does not reproduce the remote Timeline (a bug)")
    _record(settings, name, project.project_id, spec)
    print(f"imported {project.project_id} as {name}: wrote {path}")
    print("recorded in the state as applied (no render); `reconciler plan` shows no change")
    print(
        "note: produceConfig, mediaMetadata and userData cannot be read from VOD; add them "
        "to the manifest if the project needs them (that is a change: the next apply renders)",
        file=sys.stderr,
    )
    return EXIT_OK
