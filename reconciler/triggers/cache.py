"""Per-file cache of manifest load results, so a watch re-reads only the files that changed.

Each manifest file is loaded on its own (``load_manifests(root, paths=[file])``; several at
once, as the first refresh loads them, in one pass through the plan cache: ``load_each``) and
cached with its stat signature and the timeline files it read. A refresh re-reads a file when an
event named it, its signature changed, or one of its timeline files changed; it drops files
that are gone. Names used in two files are re-checked by loading just the files involved
together, so the loader words the error as it always does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from reconciler.adapters.loader import LoadResult, Manifest, load_each, load_manifests
from reconciler.errors import ManifestIssue

_SUFFIXES = (".yaml", ".yml")
Signature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)

Loader = Callable[[Path, list[Path]], LoadResult]


def _default_loader(root: Path, paths: list[Path], repository: Path | None = None) -> LoadResult:
    return load_manifests(root, paths, repository=repository)


def signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def discover(root: Path) -> list[Path]:
    """The manifest files under ``root``, by the loader's rules (hidden skipped, links
    followed, a link back to an ancestor not followed); absolute paths."""
    found: list[Path] = []

    def walk(top: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    st = entry.stat()
                    key = (st.st_dev, st.st_ino)
                    if key not in ancestors:
                        walk(entry.path, ancestors | {key})
                elif entry.name.lower().endswith(_SUFFIXES):
                    found.append(Path(entry.path))
            except OSError:
                continue

    top = os.path.abspath(root)
    try:
        st = os.stat(top)
    except OSError:
        return []
    walk(top, frozenset({(st.st_dev, st.st_ino)}))
    return found


def is_manifest_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.name.lower().endswith(_SUFFIXES)


@dataclass
class Entry:
    sig: Signature | None
    manifests: list[Manifest]
    issues: list[ManifestIssue]
    deps: dict[Path, Signature | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    manifests: list[Manifest]
    issues: list[ManifestIssue]
    reread: list[Path]  # the files actually read by this refresh
    deps: frozenset[Path]  # every timeline file the manifests depend on

    @property
    def invalid_files(self) -> int:
        return len({i.path for i in self.issues})


class ManifestCache:
    """Holds the last load of every manifest file under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        loader: Loader | None = None,
        repository: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """``repository``: see ``load_manifests``; ``cache_dir``: the plan cache, through
        which the first refresh loads every file (both for the default ``loader`` only)."""
        self.root = root.absolute()
        self._loader = loader or partial(_default_loader, repository=repository)
        self._load_each = None if loader else partial(load_each, repository=repository)
        self._cache_dir = cache_dir
        self._files: dict[Path, Entry] = {}
        self.reads = 0  # how many files were (re)loaded in total

    def _load(self, paths: list[Path]) -> None:
        """(Re)load ``paths``: one by one, or all in one pass (``load_each``) when there are
        several -- the same results; the signatures are taken first, so that a file written
        meanwhile is loaded again next time."""
        sigs = [signature(path) for path in paths]
        if self._load_each is not None and len(paths) > 1:
            # Only the first load covers every file: the plan cache keeps what one run saw,
            # so a later load of a few files through it would drop the others' entries.
            cache_dir = self._cache_dir if not self._files else None
            results = self._load_each(self.root, paths, cache_dir=cache_dir)
        else:
            results = [self._loader(self.root, [path]) for path in paths]
        self.reads += len(paths)
        for path, sig, result in zip(paths, sigs, results, strict=True):
            deps = {Path(os.path.abspath(d)): None for m in result.manifests for d in m.deps}
            for issue in result.issues:  # a broken timeline file is a dependency as well
                target = Path(os.path.abspath(issue.path))
                if target != path:
                    deps[target] = None
            self._files[path] = Entry(
                sig, result.manifests, result.issues, {d: signature(d) for d in deps}
            )

    def refresh(self, changed: Iterable[Path] = ()) -> Snapshot:
        """Bring the cache up to date; ``changed`` are paths the observer reported."""
        events = {Path(os.path.abspath(p)) for p in changed}
        present = discover(self.root)
        reread: list[Path] = []
        for gone in set(self._files) - set(present):
            del self._files[gone]
        for path in present:
            entry = self._files.get(path)
            if (
                entry is None
                or path in events
                or entry.sig != signature(path)
                or any(d in events or signature(d) != s for d, s in entry.deps.items())
            ):
                reread.append(path)
        self._load(reread)
        return self._merge(reread)

    def _merge(self, reread: list[Path]) -> Snapshot:
        manifests: list[Manifest] = []
        issues: list[ManifestIssue] = []
        owners: dict[str, set[Path]] = {}
        # A YAML timeline file referenced by a manifest is not itself a manifest (as in a
        # full load), though loading it on its own would report it as one.
        timelines = {os.path.realpath(d) for e in self._files.values() for d in e.deps}
        files = [p for p in sorted(self._files) if os.path.realpath(p) not in timelines]
        for path in files:
            entry = self._files[path]
            for m in entry.manifests:
                owners.setdefault(m.name, set()).add(path)
        clashing = sorted({p for files in owners.values() if len(files) > 1 for p in files})
        clash_result = self._loader(self.root, clashing) if clashing else None
        for path in files:
            entry = self._files[path]
            issues += entry.issues
            if path not in clashing:
                manifests += entry.manifests
        if clash_result is not None:
            manifests += clash_result.manifests
            known = set(issues)
            issues += [i for i in clash_result.issues if i not in known]
        deps = frozenset(d for e in self._files.values() for d in e.deps)
        return Snapshot(manifests, sorted(issues), reread, deps)
