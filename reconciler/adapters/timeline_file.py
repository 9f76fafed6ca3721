"""A manifest's ``timelineFile``: resolved next to the manifest, kept inside the repository, read
as JSON or YAML; and ``report_all``, which reports problems at their YAML positions (a file's
node graph is composed only when it has a problem to place, or ``fastyaml`` declines it)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from reconciler.adapters.discover import START, Context, Pos, SourceError, read_source

if TYPE_CHECKING:
    from yaml.nodes import Node

    from reconciler.adapters.yamlpos import NodeProblem
    from reconciler.core.models import Problem

__all__ = ["load_timeline", "report_all"]

_TIMELINE_AT = ("spec", "timeline")


def report_all(
    path: str,
    root: Node | None,
    found: list[Problem] | list[NodeProblem],
    ref: str,
    ctx: Context,
    inside: tuple[str, ...] = (),
    taken: frozenset[Pos] = frozenset(),
) -> frozenset[Pos]:
    """Report model problems (located via ``loc``) or converter problems (they carry a node).

    Returns the value positions converter problems took, so a model problem about the same
    value (a NaN that is also "not finite") is not reported twice.
    """
    from reconciler.adapters.yamlpos import NodeProblem, find_loc, locate, position
    from reconciler.core.models import format_loc

    used: set[Pos] = set()
    for p in found:
        if isinstance(p, NodeProblem):
            at = position(p.node)
            loc = format_loc((*inside, *find_loc(root, p.node))) if root else "-"
            used.update(() if p.on_key else (at,))
        else:
            at = position(locate(root, p.loc[len(inside) :], p.on_key)) if root else START
            loc = format_loc(p.loc)
            if not p.on_key and at in taken:
                continue
        ctx.report(path, at, p.message, ref, loc)
    return frozenset(used)


def _positions(text: str) -> Node | None:
    """The YAML node graph of a timeline file read without it, for the positions of its
    problems (JSON is YAML); ``None`` if it does not compose."""
    import yaml

    from reconciler.adapters.yamlpos import compose

    try:
        return compose(text)
    except yaml.YAMLError:
        return None


def _json_timeline(text: str, path: str, ref: str, ctx: Context) -> Any:
    dup: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        dup.extend([True] if len(out) != len(items) else [])
        return out

    def constant(name: str) -> Any:
        raise ValueError(name)

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        msg = f"timeline file is not valid JSON: {exc.msg}"
        ctx.report(path, (exc.lineno, exc.colno), msg, ref, "spec.timeline")
        return None
    except ValueError as exc:
        at = text.find(str(exc))
        pos = (text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at))
        ctx.report(path, pos, f"{exc} is not a JSON number: use a number", ref, "spec.timeline")
        return None
    if dup and (node := _positions(text)) is not None:
        from reconciler.adapters.yamlpos import to_data

        report_all(path, node, to_data(node)[1], ref, ctx, inside=_TIMELINE_AT)
    return data


def _fast_yaml(text: str) -> Any:
    """The data of a YAML timeline file that ``fastyaml`` reads as ``yamlpos`` would: one
    mapping, nothing to report about the YAML itself; else ``None``."""
    from reconciler.adapters import fastyaml

    # compose wants exactly one document, and fastyaml skips empty ones ("a: 1\n---\n" is two
    # to compose, one to fastyaml): any "---" line goes the composed way
    if text.startswith("---") or "\n---" in text:
        return None
    docs = fastyaml.read(text)
    return docs[0].data if docs is not None and len(docs) == 1 else None


def load_timeline(
    spec_file: str, manifest: str, at: Pos, ref: str, ctx: Context
) -> tuple[Any, str | None]:
    from reconciler.core.models import check_timeline

    target = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(manifest)), spec_file))
    repo, real = ctx.repo_for(manifest), os.path.realpath(target)
    if real != repo and not real.startswith(repo + os.sep):
        if ctx.reads is not None:
            ctx.reads.looked_for(target)
        msg = f"timelineFile {spec_file!r} points outside the repository: keep it inside"
        if ctx.repo_is_root and repo == ctx.repo:
            msg += (
                " (no .git above the manifests, so the repository is taken to be the "
                "manifests directory: pass --repository DIR to name its top)"
            )
        ctx.report(manifest, at, msg, ref, "spec.timelineFile")
        return None, None
    shown = ctx.display(target)
    ctx.timelines.add(real)
    if ctx.reads is not None:
        ctx.reads.timelines.append(real)
    if not os.path.isfile(target):
        if ctx.reads is not None:
            ctx.reads.looked_for(target)
        what = "is not a file" if os.path.exists(target) else "not found"
        msg = (
            f"timelineFile {spec_file!r} {what} (looked for {shown}): the path is relative "
            "to this manifest"
        )
        ctx.report(manifest, at, msg, ref, "spec.timelineFile")
        return None, shown
    text = read_source(target, ctx)
    if isinstance(text, SourceError):
        ctx.source(target, text, ref, "spec.timeline")
        return None, shown
    before = len(ctx.issues)
    node: Node | None = None  # composed only where a problem needs its position
    if spec_file.lower().endswith(".json"):
        data = _json_timeline(text, target, ref, ctx)
    elif (data := _fast_yaml(text)) is None:
        import yaml

        from reconciler.adapters.yamlpos import compose, to_data, yaml_error

        try:
            node = compose(text)
        except yaml.YAMLError as exc:
            ctx.source(target, yaml_error(exc, text), ref, "spec.timeline")
            return None, shown
        if node is None:
            msg = "timeline file is empty: write the Timeline in it"
            ctx.report(target, START, msg, ref, "spec.timeline")
            return None, shown
        data, converted, _ = to_data(node)
        report_all(target, node, converted, ref, ctx, inside=_TIMELINE_AT)
    if len(ctx.issues) > before:
        return None, shown
    problems = check_timeline(data)
    if problems:
        root = node if node is not None else _positions(text)
        report_all(target, root, problems, ref, ctx, inside=_TIMELINE_AT)
    return (None if problems else data), shown
