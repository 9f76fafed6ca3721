"""Finds manifest files, loads every document and reports every problem as ``path:line:col``.

Decisions (product.md §2 leaves them open):

- Discovery: ``*.yaml``/``*.yml`` under the root, recursively, sorted; names starting with "."
  are skipped; directory symlinks are followed, a link back to an ancestor is reported as a
  loop and not followed. Files given explicitly (``paths``) are read whatever their name.
- A file with no document at all (empty, or only comments / ``---``) is an error ("no
  manifest"); empty documents inside a file with manifests are ignored.
- A file-level problem (too big, binary, not UTF-8, merge-conflict markers, YAML syntax) makes
  none of that file's manifests usable, even documents before the syntax error.
- ``timelineFile`` is relative to the manifest, must stay inside the repository (the
  ``repository`` setting; by default the nearest ancestor of the manifests root holding
  ``.git``, else the root itself; after symlinks are resolved) and is read as JSON (strict:
  no NaN, no duplicate keys) or YAML by its extension.
  A YAML timeline file that a manifest references is not itself loaded as a manifest.
- Only fully valid manifests are returned; a name used twice is an error at every use (also
  among invalid documents, so one run shows everything). YAML details: see ``yamlpos``.
- With ``cache_dir`` an unchanged file is not parsed again (``manifest_cache``); YAML and the
  pydantic models are imported on the first parse, so a fully cached run needs neither.
- The files left to parse are spread over the cores when there are at least ``PER_WORKER``
  per process (``forkjoin``); the result is the same as a serial load's, in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler.adapters.discover import (
    MAX_FILE_BYTES,
    START,
    Context,
    SourceError,
    discover,
    read_source,
)
from reconciler.adapters.timeline_file import load_timeline, report_all
from reconciler.errors import ConfigError, ManifestIssue

if TYPE_CHECKING:
    from yaml.nodes import Node

    from reconciler.adapters.manifest_cache import ManifestCache
    from reconciler.core.models import Manifest

PER_WORKER = 250  # files: fewer per process than this are not worth a fork

__all__ = ["MAX_FILE_BYTES", "LoadResult", "Manifest", "load_each", "load_manifests"]


@dataclass
class LoadResult:
    manifests: list[Manifest]  # the valid ones, in file order
    issues: list[ManifestIssue]  # sorted; empty when the whole set is valid
    paths: list[str] = field(default_factory=list)  # every manifest file looked at, as found

    @property
    def files(self) -> list[Path]:  # built on demand: 10,000 Paths cost a cached plan 25 ms
        return [Path(p) for p in self.paths]

    @property
    def valid(self) -> bool:
        return not self.issues


def __getattr__(name: str) -> object:
    if name == "Manifest":  # re-exported lazily: core.models imports pydantic
        from reconciler.core.models import Manifest

        return Manifest
    raise AttributeError(name)


class _Doc(NamedTuple):
    """A document with a string name (collisions are checked even among invalid ones).

    A tuple: the plan cache hands back plain ``(name, at, ref, manifest)`` tuples.
    """

    name: str
    at: str  # "path:line:col" of the name
    ref: str
    manifest: Manifest | None  # None when the document is invalid
    canonical: bool = False  # its spec is already in canonical form (see spec_digest)


def _document(node: Node, path: str, ctx: Context) -> _Doc | None:
    from reconciler.adapters.yamlpos import locate, position, to_data
    from reconciler.core.models import check_document

    data, converted, integral_floats = to_data(node)
    problems = check_document(data) if data is not None else []
    ref = _ref(data)
    before = len(ctx.issues)
    if converted or problems:
        taken = report_all(path, node, converted, ref, ctx)
        report_all(path, node, problems, ref, ctx, taken=taken)
    return _finish(
        data,
        path,
        ctx,
        ref,
        before,
        canonical=not integral_floats,
        timeline_ok=not any(p.loc[:2] == ("spec", "timelineFile") for p in problems),
        at=lambda loc: position(locate(node, loc)),
        line=lambda: position(node)[0],
    )


def _ref(data: Any) -> str:
    from reconciler.core.models import KIND

    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{KIND}/{name}" if isinstance(name, str) and name else "-"


def _finish(
    data: Any,
    path: str,
    ctx: Context,
    ref: str,
    before: int,
    *,
    canonical: bool,
    timeline_ok: bool,
    at: Callable[[tuple[str, str]], tuple[int, int]],
    line: Callable[[], int],
) -> _Doc | None:
    """A converted document (its problems reported since ``before``) as a ``_Doc``: its
    ``timelineFile`` read, and its manifest if it has no problem. ``at`` gives the position of
    a value, ``line`` the document's first line."""
    from reconciler.core.models import Manifest

    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    spec = data.get("spec") if isinstance(data, dict) else None
    deps: tuple[str, ...] = ()
    if (
        isinstance(spec, dict)
        and "timeline" not in spec
        and isinstance(spec_file := spec.get("timelineFile"), str)
        and timeline_ok
    ):
        timeline, shown = load_timeline(spec_file, path, at(TIMELINE_FILE), ref, ctx)
        deps = (shown,) if shown else ()
        spec = {k: v for k, v in spec.items() if k != "timelineFile"} | {"timeline": timeline}
        canonical = False  # the timeline's own floats were not looked at
    if not isinstance(name, str) or not isinstance(meta, dict):
        return None
    shown, (name_line, col) = ctx.display(path), at(NAME)
    manifest = None
    if len(ctx.issues) == before and isinstance(spec, dict):
        manifest = Manifest(
            name=name,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=spec,
            path=shown,
            line=line(),
            deps=deps,
        )
    return _Doc(name, f"{shown}:{name_line}:{col}", ref, manifest, canonical)


NAME, TIMELINE_FILE = ("metadata", "name"), ("spec", "timelineFile")


def _fast_file(text: str, path: str, ctx: Context) -> list[_Doc] | None:
    """``_file``'s documents through ``fastyaml``: for a file whose every document is a valid
    manifest that reads the same there, in a layout whose positions it finds; else ``None``
    (and nothing reported)."""
    from reconciler.adapters import fastyaml
    from reconciler.core.models import KIND, Manifest, check_document

    docs = fastyaml.read(text)
    if docs is None:
        return None
    found = []
    for doc in docs:
        data = doc.data
        if check_document(data):
            return None
        name, spec = data["metadata"]["name"], data["spec"]
        at = doc.position("metadata", "name", name)
        where = None if "timeline" in spec else doc.position(*TIMELINE_FILE, spec["timelineFile"])
        if at is None or (where is None and "timeline" not in spec):
            return None
        found.append((doc, name, at, where))
    out = []
    shown = ctx.display(path)
    for doc, name, at, where in found:
        data, ref = doc.data, f"{KIND}/{name}"
        if where is not None:  # a timelineFile to read: what the composed way does
            positions = {NAME: at, TIMELINE_FILE: where}
            kept = _finish(
                data,
                path,
                ctx,
                ref,
                len(ctx.issues),
                canonical=False,
                timeline_ok=True,
                at=positions.__getitem__,
                line=lambda doc=doc: doc.line,  # type: ignore[misc]
            )
            if kept is not None:
                out.append(kept)
            continue
        meta = data["metadata"]
        manifest = Manifest(  # _finish, for a valid document with its timeline inline
            name=name,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=data["spec"],
            path=shown,
            line=doc.line,
        )
        out.append(_Doc(name, f"{shown}:{at[0]}:{at[1]}", ref, manifest, not doc.integral_floats))
    return out


def _file(path: str, ctx: Context) -> list[_Doc]:
    """Parse one manifest file (the work the cache saves)."""
    text = read_source(path, ctx)
    if isinstance(text, SourceError):
        ctx.source(path, text)
        return []
    fast = _fast_file(text, path, ctx)
    if fast is not None:
        return fast
    import yaml  # the composer only now: most files take the fastyaml way

    from reconciler.adapters.yamlpos import compose_all, is_empty, yaml_error

    docs: list[_Doc | None] = []
    try:
        for node in compose_all(text):
            if not is_empty(node):
                docs.append(_document(node, path, ctx))
    except yaml.YAMLError as exc:
        ctx.source(path, yaml_error(exc, text))
        return []
    if not docs:
        msg = "file has no manifest (it is empty or only comments): write one or delete the file"
        ctx.report(path, START, msg)
    return [d for d in docs if d is not None]


def _collisions(docs: list[_Doc], ctx: Context) -> list[Manifest]:
    if len({d[0] for d in docs}) == len(docs):  # no name used twice (the usual case)
        return [d[3] for d in docs if d[3] is not None]
    by_name: dict[str, list[_Doc]] = {}
    for doc in docs:
        by_name.setdefault(doc[0], []).append(doc)
    for name, same in by_name.items():
        for doc in same if len(same) > 1 else ():
            others = ", ".join(o[1] for o in same if o is not doc)
            msg = f"name {name!r} is also used at {others}: names must be unique; rename one"
            path, line, col = doc[1].rsplit(":", 2)
            ctx.issues.append(
                ManifestIssue(path, int(line), int(col), doc[2], "metadata.name", msg)
            )
    return [d[3] for d in docs if d[3] is not None and len(by_name[d[0]]) == 1]


class _Parsed(NamedTuple):
    """One file's load as a (possibly forked) parser hands it back."""

    docs: list[Any]  # _Doc, or with a cache plain (name, at, ref, CachedManifest) tuples
    issues: list[ManifestIssue]
    timelines: tuple[str, ...]  # real paths of the timeline files it references
    entry: tuple[Any, ...] | None  # what the cache keeps for it (ManifestCache.entry)


def _parse(key: str, ctx: Context, cache: ManifestCache | None) -> _Parsed:
    """``_file`` of the file at the absolute path ``key``, plus what the caller needs to
    merge it: its issues and timelines apart, and with a cache the manifests digested
    (``CachedManifest``) and the entry to keep."""
    from reconciler.adapters.manifest_cache import CachedManifest, Reads

    start, ctx.reads = len(ctx.issues), Reads()
    try:
        parsed: list[Any] = _file(key, ctx)
        reads = ctx.reads
    finally:
        ctx.reads = None
    issues = ctx.issues[start:]
    del ctx.issues[start:]
    if cache is None:
        return _Parsed(parsed, issues, tuple(reads.timelines), None)
    of = CachedManifest.of
    kept = [
        (d.name, d.at, d.ref, of(d.manifest, canonical=d.canonical) if d.manifest else None)
        for d in parsed
    ]
    return _Parsed(kept, issues, tuple(reads.timelines), cache.entry(key, reads, kept, issues))


def _parse_chunk(
    items: list[tuple[str, str]], ctx: Context, cache: ManifestCache | None
) -> list[_Parsed]:
    return [_parse(key, ctx, cache) for key, _ in items]


def _parse_all(
    items: list[tuple[str, str]],
    ctx: Context,
    cache: ManifestCache | None,
    alongside: Callable[[], None] | None,
) -> list[_Parsed]:
    """``_parse`` of every file, spread over the cores when there are enough of them
    (``alongside`` then runs here meanwhile)."""
    from reconciler.adapters.forkjoin import fork_map, workers

    n = len(items) // PER_WORKER
    if n > 1:  # only then is it worth asking (workers() reads the cgroup CPU quota)
        n = min(workers(), n)
    if n <= 1:
        return _parse_chunk(items, ctx, cache)
    work = partial(_parse_chunk, ctx=ctx, cache=cache)
    return fork_map(work, items, n, meanwhile=alongside)


def _load_files(
    files: list[tuple[str, str]],
    ctx: Context,
    cache: ManifestCache | None,
    alongside: Callable[[], None] | None = None,
) -> list[tuple[str, list[Any], list[ManifestIssue], tuple[str, ...]]]:
    """(path, documents, issues, timeline files) of every file; through the cache an
    unchanged file is not parsed again."""
    loaded: list[Any] = []
    misses: list[int] = []
    get = cache.get if cache is not None else None
    for key, path in files:
        hit = get(key) if get is not None else None
        if hit is None:
            misses.append(len(loaded))
            loaded.append((key, path))
        else:
            docs, found, timelines = hit
            if timelines:
                ctx.timelines.update(timelines)
            loaded.append((path, docs, found, timelines))
    if misses:
        parsed = _parse_all([loaded[i] for i in misses], ctx, cache, alongside)
        for i, result in zip(misses, parsed, strict=True):
            key, path = loaded[i]
            if result.timelines:
                ctx.timelines.update(result.timelines)
            if cache is not None:
                cache.adopt(key, result.entry)
            loaded[i] = (path, result.docs, result.issues, result.timelines)
    return loaded


def load_manifests(
    root: Path,
    paths: Sequence[Path] | None = None,
    *,
    cache_dir: Path | None = None,
    alongside: Callable[[], None] | None = None,
    repository: Path | None = None,
) -> LoadResult:
    """Load every manifest under ``root`` (or only ``paths``); report every problem at once.

    With ``cache_dir`` (the plan cache, ``state/cache``) unchanged files are not parsed again;
    the manifests returned then carry their canonical hashes for the planner. When the
    parsing is spread over several processes, ``alongside`` (if given) is run in this one
    meanwhile -- other I/O-and-CPU work the caller needs next, such as reading the state;
    otherwise it is not run at all. ``repository``: the directory every ``timelineFile`` must
    stay inside (default: the git work tree holding ``root``, else ``root`` itself).
    """
    ctx = _context(root, repository)
    files = discover(os.fspath(root), paths, ctx)
    cache = _plan_cache(cache_dir, ctx, root)
    if cache is None:
        loaded = _load_files(files, ctx, None, alongside)
    else:
        with cache.bulk():
            loaded = _load_files(files, ctx, cache, alongside)
    if ctx.timelines:  # a YAML timeline file among the manifests is not itself a manifest
        names = {os.path.basename(t) for t in ctx.timelines}
        sep = os.sep
        loaded = [
            f
            for f in loaded
            # basename(f[0]) not in names, without a Python call per file where it can
            if (f[0].rpartition(sep)[2] if not os.altsep else os.path.basename(f[0])) not in names
            or os.path.realpath(f[0]) not in ctx.timelines
        ]
    ctx.issues += [issue for f in loaded if f[2] for issue in f[2]]
    manifests = _collisions([doc for f in loaded for doc in f[1]], ctx)
    if cache is not None and not ctx.issues:  # a rejected catalogue leaves state/ untouched
        cache.save()
    return LoadResult(manifests, sorted(ctx.issues), [f[0] for f in loaded])


def load_each(
    root: Path,
    paths: Sequence[Path],
    *,
    cache_dir: Path | None = None,
    repository: Path | None = None,
) -> list[LoadResult]:
    """``[load_manifests(root, [p], repository=repository) for p in paths]``, in one pass:
    one context, the plan cache (``cache_dir``) for the files it knows unchanged, and the
    others parsed on every core when there are enough of them -- what ``watch`` loads when it
    starts. Each result is that file's own load (tested against ``load_manifests``). The
    cache keeps what this run saw, so with ``cache_dir`` give every manifest file under
    ``root``; it is saved even when some file is invalid (the watch applies the valid ones)."""
    ctx = _context(root, repository)
    found: list[tuple[list[tuple[str, str]], list[ManifestIssue]]] = []
    for path in paths:
        files = discover(os.fspath(root), [path], ctx)
        found.append((files, ctx.issues))
        ctx.issues = []
    cache = _plan_cache(cache_dir, ctx, root)
    files = [f for fs, _ in found for f in fs]
    if cache is None:
        loaded = iter(_load_files(files, ctx, None))
    else:
        with cache.bulk():
            loaded = iter(_load_files(files, ctx, cache))
        cache.save()
    results: list[LoadResult] = []
    for path, (fs, issues) in zip(paths, found, strict=True):
        if len(fs) > 1:  # a directory: loaded here too, but merged as its own load merges it
            for _ in fs:
                next(loaded)
            results.append(load_manifests(root, [path], repository=repository))
            continue
        f = next(loaded) if fs else None
        if f is None or (f[3] and os.path.realpath(f[0]) in f[3]):  # none, or its own timeline
            results.append(LoadResult([], sorted(issues), []))
            continue
        ctx.issues = [*issues, *f[2]]
        manifests = _collisions(list(f[1]), ctx)
        results.append(LoadResult(manifests, sorted(ctx.issues), [f[0]]))
    return results


def _context(root: Path, repository: Path | None) -> Context:
    if repository is not None and not os.path.isdir(repository):
        raise ConfigError(
            f"repository {repository} is not a directory",
            hint="pass --repository (or RECONCILER_REPOSITORY) the top of your repository",
        )
    return Context(os.fspath(root), os.fspath(repository) if repository else None)


def _plan_cache(cache_dir: Path | None, ctx: Context, root: Path) -> ManifestCache | None:
    if cache_dir is None:
        return None
    from reconciler.adapters.manifest_cache import ManifestCache

    return ManifestCache(cache_dir, (ctx.prefix, ctx.repo, os.path.abspath(root)))
