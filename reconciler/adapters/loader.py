"""Finds manifest files, loads every document and reports every problem as ``path:line:col``.

Decisions (product.md §2 leaves them open):

- Discovery: ``*.yaml``/``*.yml`` under the root, recursively, sorted; names starting with "."
  are skipped; directory symlinks are followed, a link back to an ancestor is reported as a
  loop and not followed. Files given explicitly (``paths``) are read whatever their name.
- A file with no document at all (empty, or only comments / ``---``) is an error ("no
  manifest"); empty documents inside a file with manifests are ignored.
- A file-level problem (too big, binary, not UTF-8, merge-conflict markers, YAML syntax) makes
  none of that file's manifests usable, even documents before the syntax error.
- ``timelineFile`` is relative to the manifest, must stay inside the repository (the nearest
  ancestor of the manifests root holding ``.git``, else the root itself; after symlinks are
  resolved) and is read as JSON (strict: no NaN, no duplicate keys) or YAML by its extension.
  A YAML timeline file that a manifest references is not itself loaded as a manifest.
- Only fully valid manifests are returned; a name used twice is an error at every use (also
  among invalid documents, so one run shows everything). YAML details: see ``yamlpos``.
- With ``cache_dir`` an unchanged file is not parsed again (``manifest_cache``); YAML and the
  pydantic models are imported on the first parse, so a fully cached run needs neither.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler.errors import ManifestIssue

if TYPE_CHECKING:
    from yaml.nodes import Node

    from reconciler.adapters.manifest_cache import ManifestCache, Reads
    from reconciler.adapters.yamlpos import NodeProblem, SourceError
    from reconciler.core.models import Manifest, Problem

__all__ = ["MAX_FILE_BYTES", "LoadResult", "Manifest", "load_manifests"]

MAX_FILE_BYTES = 5 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml")
_TIMELINE_AT = ("spec", "timeline")
_START = (1, 1)  # for problems with a whole file or directory

Pos = tuple[int, int]


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


class _Context:
    def __init__(self, root: str) -> None:
        cwd = os.getcwd()
        self.prefix = cwd if cwd.endswith(os.sep) else cwd + os.sep
        self.issues: list[ManifestIssue] = []
        self.timelines: set[str] = set()  # real paths of the timeline files referenced
        self.reads: Reads | None = None  # what the current file's load reads, for the cache
        base = root if os.path.isdir(root) else os.path.dirname(root)
        self.repo = os.path.realpath(_git_top(base) or base)

    def display(self, path: str) -> str:
        full = os.path.abspath(path)
        return full[len(self.prefix) :] if full.startswith(self.prefix) else full

    def report(self, path: str, at: Pos, message: str, ref: str = "-", loc: str = "-") -> None:
        self.issues.append(ManifestIssue(self.display(path), *at, ref, loc, message))

    def source(self, path: str, err: SourceError, ref: str = "-", loc: str = "-") -> None:
        self.report(path, (err.line, err.col), err.message, ref, loc)

    def repo_for(self, manifest: str) -> str:
        real = os.path.realpath(os.path.dirname(os.path.abspath(manifest)))
        if real == self.repo or real.startswith(self.repo + os.sep):
            return self.repo
        return _git_top(real) or real  # a file given outside the manifests' repository


def _git_top(start: str) -> str | None:
    directory = os.path.abspath(start)
    while not os.path.exists(os.path.join(directory, ".git")):
        if os.path.dirname(directory) == directory:
            return None
        directory = os.path.dirname(directory)
    return directory


_NAME = attrgetter("name")


def _walk(top: str, ancestors: dict[tuple[int, int], str], out: list[str], ctx: _Context) -> None:
    try:
        with os.scandir(top) as it:
            entries = sorted(it, key=_NAME)
    except OSError as exc:
        return ctx.report(top, _START, f"cannot read directory: {exc.strerror}")
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            st = entry.stat() if entry.is_dir() else None
        except OSError:  # a symlink loop or a vanished entry: reading it reports why
            st = None
        if st is not None:
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                back = ctx.display(ancestors[key])
                ctx.report(entry.path, _START, f"symlink loop back to {back!r}: remove the link")
                continue
            ancestors[key] = entry.path
            _walk(entry.path, ancestors, out, ctx)
            del ancestors[key]
        elif entry.name.lower().endswith(_SUFFIXES) and not entry.is_dir(follow_symlinks=False):
            out.append(entry.path)
    return None


def _discover(root: str, paths: Sequence[Path] | None, ctx: _Context) -> list[tuple[str, str]]:
    """(absolute path, path as found) of every manifest file, without duplicates."""
    files: list[tuple[str, str]] = []
    for target in [root] if paths is None else [os.fspath(p) for p in paths]:
        if os.path.isdir(target):
            found: list[str] = []
            st = os.stat(target)
            _walk(target, {(st.st_dev, st.st_ino): target}, found, ctx)
            # os.path.abspath of each, cheaply: scandir paths are target + clean names
            cut = len(target if target.endswith(os.sep) else target + os.sep)
            base = os.path.join(os.path.abspath(target), "")
            files += [(base + f[cut:], f) for f in sorted(found)]
        elif os.path.lexists(target):
            files.append((os.path.abspath(target), target))
        elif paths is None:
            ctx.report(
                target, _START, "manifests directory not found: create it or pass --manifests DIR"
            )
        else:
            ctx.report(target, _START, "no such file or directory")
    if paths is None:  # one walk never finds a path twice
        return files
    unique: dict[str, str] = {}
    for absolute, f in files:
        unique.setdefault(absolute, f)
    return list(unique.items())


def _read(path: str, ctx: _Context) -> str | SourceError:
    from reconciler.adapters.yamlpos import SourceError, decode_source

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SourceError(1, 1, "symlink loop: the link never reaches a file: fix it")
        if not os.path.exists(path):
            return SourceError(1, 1, "cannot read: file not found (a broken symlink?)")
        return SourceError(1, 1, f"cannot read file: {exc.strerror}")
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SourceError(1, 1, "not a regular file: remove it from the manifests")
        raw = b""
        if st.st_size <= MAX_FILE_BYTES:
            # read(MAX + 1) would allocate 5 MiB per file; a file that grew meanwhile is
            # still read up to one byte over the limit
            raw = fh.read(st.st_size + 1)
            if len(raw) > st.st_size:
                raw += fh.read(MAX_FILE_BYTES + 1 - len(raw))
    if ctx.reads is not None:
        ctx.reads.read(path, st, raw)
    if st.st_size > MAX_FILE_BYTES or len(raw) > MAX_FILE_BYTES:
        mib = max(st.st_size, len(raw)) / 1024 / 1024
        return SourceError(
            1,
            1,
            f"file is {mib:.1f} MiB, over the 5 MiB limit for manifest "
            "files: split it or move it out of the manifests directory",
        )
    return decode_source(raw)


class _Doc(NamedTuple):
    """A document with a string name (collisions are checked even among invalid ones).

    A tuple: the plan cache hands back plain ``(name, at, ref, manifest)`` tuples.
    """

    name: str
    at: str  # "path:line:col" of the name
    ref: str
    manifest: Manifest | None  # None when the document is invalid


def _report_all(
    path: str,
    root: Node | None,
    found: list[Problem] | list[NodeProblem],
    ref: str,
    ctx: _Context,
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
            at = position(locate(root, p.loc[len(inside) :], p.on_key)) if root else _START
            loc = format_loc(p.loc)
            if not p.on_key and at in taken:
                continue
        ctx.report(path, at, p.message, ref, loc)
    return frozenset(used)


def _json_timeline(text: str, path: str, ref: str, ctx: _Context) -> tuple[Any, Node | None]:
    import yaml

    from reconciler.adapters.yamlpos import compose, to_data

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
        return None, None
    except ValueError as exc:
        at = text.find(str(exc))
        pos = (text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at))
        ctx.report(path, pos, f"{exc} is not a JSON number: use a number", ref, "spec.timeline")
        return None, None
    try:  # positions come from the YAML view of the same text (JSON is YAML)
        node = compose(text)
    except yaml.YAMLError:
        node = None
    if dup and node is not None:
        _report_all(path, node, to_data(node)[1], ref, ctx, inside=_TIMELINE_AT)
    return data, node


def _timeline(
    spec_file: str, manifest: str, at: Pos, ref: str, ctx: _Context
) -> tuple[Any, str | None]:
    import yaml

    from reconciler.adapters.yamlpos import SourceError, compose, to_data, yaml_error
    from reconciler.core.models import check_timeline

    target = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(manifest)), spec_file))
    repo, real = ctx.repo_for(manifest), os.path.realpath(target)
    if real != repo and not real.startswith(repo + os.sep):
        if ctx.reads is not None:
            ctx.reads.looked_for(target)
        msg = f"timelineFile {spec_file!r} points outside the repository: keep it inside"
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
    text = _read(target, ctx)
    if isinstance(text, SourceError):
        ctx.source(target, text, ref, "spec.timeline")
        return None, shown
    before = len(ctx.issues)
    if spec_file.lower().endswith(".json"):
        data, node = _json_timeline(text, target, ref, ctx)
    else:
        try:
            node = compose(text)
        except yaml.YAMLError as exc:
            ctx.source(target, yaml_error(exc, text), ref, "spec.timeline")
            return None, shown
        if node is None:
            msg = "timeline file is empty: write the Timeline in it"
            ctx.report(target, _START, msg, ref, "spec.timeline")
            return None, shown
        data, converted = to_data(node)
        _report_all(target, node, converted, ref, ctx, inside=_TIMELINE_AT)
    if len(ctx.issues) > before:
        return None, shown
    problems = check_timeline(data)
    _report_all(target, node, problems, ref, ctx, inside=_TIMELINE_AT)
    return (None if problems else data), shown


def _document(node: Node, path: str, ctx: _Context) -> _Doc | None:
    from reconciler.adapters.yamlpos import locate, position, to_data
    from reconciler.core.models import KIND, Manifest, check_document

    data, converted = to_data(node)
    problems = check_document(data) if data is not None else []
    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    ref = f"{KIND}/{name}" if isinstance(name, str) and name else "-"
    before = len(ctx.issues)
    taken = _report_all(path, node, converted, ref, ctx)
    _report_all(path, node, problems, ref, ctx, taken=taken)
    spec = data.get("spec") if isinstance(data, dict) else None
    deps: tuple[str, ...] = ()
    if (
        isinstance(spec, dict)
        and "timeline" not in spec
        and isinstance(spec_file := spec.get("timelineFile"), str)
        and not any(p.loc[:2] == ("spec", "timelineFile") for p in problems)
    ):
        at = position(locate(node, ("spec", "timelineFile")))
        timeline, shown = _timeline(spec_file, path, at, ref, ctx)
        deps = (shown,) if shown else ()
        spec = {k: v for k, v in spec.items() if k != "timelineFile"} | {"timeline": timeline}
    if not isinstance(name, str) or not isinstance(meta, dict):
        return None
    shown, (line, col) = ctx.display(path), position(locate(node, ("metadata", "name")))
    manifest = None
    if len(ctx.issues) == before and isinstance(spec, dict):
        manifest = Manifest(
            name=name,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=spec,
            path=shown,
            line=position(node)[0],
            deps=deps,
        )
    return _Doc(name, f"{shown}:{line}:{col}", ref, manifest)


def _file(path: str, ctx: _Context) -> list[_Doc]:
    """Parse one manifest file (the work the cache saves)."""
    import yaml
    from yaml.nodes import ScalarNode

    from reconciler.adapters.yamlpos import NULL, SourceError, compose_all, yaml_error

    text = _read(path, ctx)
    if isinstance(text, SourceError):
        ctx.source(path, text)
        return []
    docs: list[_Doc | None] = []
    try:
        for node in compose_all(text):
            if not (isinstance(node, ScalarNode) and node.tag == NULL):  # empty document
                docs.append(_document(node, path, ctx))
    except yaml.YAMLError as exc:
        ctx.source(path, yaml_error(exc, text))
        return []
    if not docs:
        msg = "file has no manifest (it is empty or only comments): write one or delete the file"
        ctx.report(path, _START, msg)
    return [d for d in docs if d is not None]


def _collisions(docs: list[_Doc], ctx: _Context) -> list[Manifest]:
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


def _parse_and_keep(key: str, path: str, ctx: _Context, cache: ManifestCache) -> list[_Doc]:
    """``_file`` of a file the cache has no valid entry for; its result is kept for next time.

    Documents come back as plain ``(name, at, ref, manifest)`` tuples, as cache hits do
    (see ``_Doc``).
    """
    from reconciler.adapters.manifest_cache import CachedManifest, Reads

    start, ctx.reads = len(ctx.issues), Reads()
    try:
        parsed = _file(path, ctx)
        reads = ctx.reads
    finally:
        ctx.reads = None
    kept = [
        (d.name, d.at, d.ref, CachedManifest.of(d.manifest) if d.manifest else None) for d in parsed
    ]
    cache.put(key, reads, kept, ctx.issues[start:])
    return kept  # type: ignore[return-value]


def _cached(files: list[tuple[str, str]], ctx: _Context, cache: ManifestCache) -> list[Any]:
    """``_file`` of every file through the cache: an unchanged file is not parsed again.

    Returns, per file, (path, documents, first and end index of its issues in ctx.issues).
    """
    loaded, get, issues = [], cache.get, ctx.issues
    for key, path in files:
        start = len(issues)
        docs: list[Any]
        hit = get(key)
        if hit is None:
            docs = _parse_and_keep(key, path, ctx, cache)
            issues = ctx.issues
        else:
            docs, found, timelines = hit
            if found:
                issues += found
            if timelines:
                ctx.timelines.update(timelines)
        loaded.append((path, docs, start, len(issues)))
    return loaded


def load_manifests(
    root: Path, paths: Sequence[Path] | None = None, *, cache_dir: Path | None = None
) -> LoadResult:
    """Load every manifest under ``root`` (or only ``paths``); report every problem at once.

    With ``cache_dir`` (the plan cache, ``state/cache``) unchanged files are not parsed again;
    the manifests returned then carry their canonical hashes for the planner.
    """
    ctx = _Context(os.fspath(root))
    files = _discover(os.fspath(root), paths, ctx)
    cache = None
    if cache_dir is not None:
        from reconciler.adapters.manifest_cache import ManifestCache

        scope = (ctx.prefix, ctx.repo, os.path.abspath(root))
        cache = ManifestCache(cache_dir, scope)
    loaded, found_before = [], len(ctx.issues)
    if cache is None:
        for _, path in files:
            start = len(ctx.issues)
            docs = _file(path, ctx)
            loaded.append((path, docs, start, len(ctx.issues)))
    else:
        with cache.bulk():
            loaded = _cached(files, ctx, cache)
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
        if len(ctx.issues) > found_before:  # drop the issues of the files left out
            own = [i for f in loaded if f[3] > f[2] for i in ctx.issues[f[2] : f[3]]]
            ctx.issues = ctx.issues[:found_before] + own
    manifests = _collisions([doc for f in loaded for doc in f[1]], ctx)
    if cache is not None and not ctx.issues:  # a rejected catalogue leaves state/ untouched
        cache.save()
    return LoadResult(manifests, sorted(ctx.issues), [f[0] for f in loaded])
