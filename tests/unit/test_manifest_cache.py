"""The plan cache: a cached load equals a fresh one, and every change invalidates it."""

from __future__ import annotations

import copy
import gc
import os
import pickle
import shutil
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters import cachefile, manifest_cache, state_cache
from reconciler.adapters.loader import LoadResult, load_manifests
from reconciler.adapters.manifest_cache import KEEP
from reconciler.core.canonical import CANONICAL_VERSION, applied_spec, spec_hashes
from reconciler.core.planner import PlanOptions, plan
from reconciler.core.state import State

MANIFEST = """\
apiVersion: reconciler/v1
kind: EditingProject
metadata:
  name: {name}
  labels: {{team: growth}}
spec:
  title: {title}
{timeline}  produceConfig: {{TemplateGroupId: tg}}
"""
INLINE = """\
  timeline:
    VideoTracks:
      - VideoTrackClips:
          - {MediaId: m1, In: 0, Out: 5.0}
"""
TIMELINE_JSON = '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m2", "In": 1, "Out": 7}]}]}\n'


def doc(name: str, title: str = "T", timeline: str = INLINE) -> str:
    return MANIFEST.format(name=name, title=title, timeline=timeline)


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """manifests/ with an inline timeline, a multi-document file and two timelineFiles."""
    monkeypatch.chdir(tmp_path)
    m = tmp_path / "manifests"
    (m / "sub").mkdir(parents=True)
    (m / "a.yaml").write_text(doc("a"))
    (m / "sub" / "pair.yaml").write_text(doc("b", "B") + "---\n" + doc("c", "C"))
    (m / "sub" / "d.yaml").write_text(doc("d", timeline="  timelineFile: d.timeline.json\n"))
    (m / "sub" / "d.timeline.json").write_text(TIMELINE_JSON)
    (m / "e.yaml").write_text(doc("e", timeline="  timelineFile: e.timeline.yaml\n"))
    (m / "e.timeline.yaml").write_text("VideoTracks: [{VideoTrackClips: [{MediaId: m3}]}]\n")
    (tmp_path / "state").mkdir()
    return m


def cached(root: Path) -> LoadResult:
    return load_manifests(root, cache_dir=root.parent / "state" / "cache")


def same(a: LoadResult, b: LoadResult) -> None:
    assert [m.name for m in a.manifests] == [m.name for m in b.manifests]
    assert a.manifests == b.manifests  # every field, the spec included
    assert [m.deps for m in a.manifests] == [m.deps for m in b.manifests]
    assert (a.issues, a.paths) == (b.issues, b.paths)


def rewrite_same_size(path: Path, old: str, new: str) -> None:
    assert len(old) == len(new)
    st = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the mtime restored
    assert path.stat().st_size == st.st_size


def test_cached_load_equals_fresh_load_and_parses_nothing(
    catalogue: Path, parses: list[str]
) -> None:
    fresh = load_manifests(catalogue)
    parses.clear()
    first = cached(catalogue)
    assert cache_file(catalogue).is_file()
    parses.clear()
    second = cached(catalogue)
    assert parses == []
    same(first, fresh)
    same(second, fresh)
    assert all(type(m).__name__ == "CachedManifest" for m in second.manifests)


def test_two_trees_sharing_a_state_directory_keep_their_caches(
    catalogue: Path, parses: list[str]
) -> None:
    """The clone's own plan and the pre-push hook's plan of another tree (same state
    directory) used to evict each other's single cache file: each has its own now, and only
    the ``KEEP`` most recently written stay."""
    cache = catalogue.parent / "state" / "cache"
    other = catalogue.parent / "other" / "manifests"
    shutil.copytree(catalogue, other)

    def load(root: Path) -> LoadResult:
        return load_manifests(root, cache_dir=cache)

    load(catalogue), load(other)
    parses.clear()
    warm = load(catalogue), load(other)
    assert parses == []
    same(warm[0], load_manifests(catalogue))
    same(warm[1], load_manifests(other))
    (cache / "manifests.pickle").write_bytes(b"the single file of earlier versions")
    extra = []
    for i in range(KEEP):
        extra.append(catalogue.parent / f"x{i}" / "manifests")
        shutil.copytree(catalogue, extra[-1])
        time.sleep(0.01)  # distinct mtimes
        load(extra[-1])
    assert len(list(cache.glob("manifests*.pickle"))) == KEEP
    assert not (cache / "manifests.pickle").exists()
    parses.clear()
    load(extra[-1])  # the newest is kept
    assert parses == []
    load(catalogue)  # the oldest was dropped
    assert "a.yaml" in parses


def test_cached_plan_equals_uncached_plan(catalogue: Path) -> None:
    fresh = load_manifests(catalogue).manifests
    cached(catalogue)
    warm = cached(catalogue).manifests
    state = State(lineage="L")
    assert plan(warm, state) == plan(fresh, state)


def test_editing_a_manifest_reparses_exactly_that_file(catalogue: Path, parses: list[str]) -> None:
    cached(catalogue)
    rewrite_same_size(catalogue / "sub" / "pair.yaml", "title: C", "title: X")
    parses.clear()
    result = cached(catalogue)
    assert parses == ["pair.yaml"]
    assert next(m for m in result.manifests if m.name == "c").spec["title"] == "X"
    same(result, load_manifests(catalogue))


def test_editing_a_timeline_file_reparses_its_manifest(catalogue: Path, parses: list[str]) -> None:
    cached(catalogue)
    rewrite_same_size(catalogue / "sub" / "d.timeline.json", '"Out": 7', '"Out": 8')
    parses.clear()
    result = cached(catalogue)
    assert parses == ["d.yaml"]
    d = next(m for m in result.manifests if m.name == "d")
    assert d.spec["timeline"]["VideoTracks"][0]["VideoTrackClips"][0]["Out"] == 8


def test_a_missing_timeline_file_that_appears_invalidates(catalogue: Path) -> None:
    (catalogue / "f.yaml").write_text(doc("f", timeline="  timelineFile: f.json\n"))
    assert cached(catalogue).issues  # not found (and an invalid set is not cached) ...
    (catalogue / "f.yaml").unlink()
    cached(catalogue)  # ... so cache a valid set, then break and mend it again
    (catalogue / "f.yaml").write_text(doc("f", timeline="  timelineFile: f.json\n"))
    assert cached(catalogue).issues
    (catalogue / "f.json").write_text(TIMELINE_JSON)
    assert not cached(catalogue).issues


def test_same_size_rewrite_within_one_timestamp_tick_is_caught(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a file system with 1-second timestamps: two writes within a second look alike.
    def coarse(st: os.stat_result) -> tuple[int, ...]:
        mtime, ctime = (t // 10**9 * 10**9 for t in (st.st_mtime_ns, st.st_ctime_ns))
        return (st.st_mode, st.st_size, mtime, ctime, st.st_ino, st.st_dev)

    monkeypatch.setattr(cachefile, "signature", coarse)  # through stat_signature
    monkeypatch.setattr(manifest_cache, "signature", coarse)
    cached(catalogue)  # the files were just written: racy, so their digests are kept
    path = catalogue / "a.yaml"
    with open(path, "r+") as fh:  # in place: same inode, same size
        text = fh.read()
        fh.seek(0)
        fh.write(text.replace("title: T", "title: Z"))
    parses.clear()
    result = cached(catalogue)
    assert parses == ["a.yaml"]
    assert next(m for m in result.manifests if m.name == "a").spec["title"] == "Z"


def test_settled_files_are_trusted_on_their_signature(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(catalogue)
    entries = read_entries(catalogue)
    # just written: racy, so their bytes are compared on every use; a digest is always kept
    assert all(racy for row in entries.values() for _, _, _, racy in files(row))
    assert all(digest for row in entries.values() for _, _, digest, _ in files(row))
    monkeypatch.setattr(manifest_cache, "RACY_NS", -(10**18))  # everything is old now
    parses.clear()
    cached(catalogue)
    assert parses == []
    entries = read_entries(catalogue)
    assert not any(racy for row in entries.values() for _, _, _, racy in files(row))
    assert all(digest for row in entries.values() for _, _, digest, _ in files(row))
    # a settled file read alone, with one manifest, is kept as one flat tuple
    assert len(entries[os.path.abspath(catalogue / "a.yaml")]) == manifest_cache._FLAT
    assert len(entries[os.path.abspath(catalogue / "sub" / "pair.yaml")]) == 4


def _recreate(root: Path) -> None:
    """Every file written again with the same bytes: new inodes and ctimes, as a checkout."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)


def test_a_fresh_copy_of_the_same_files_is_not_parsed_again(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cached(catalogue)
    _recreate(catalogue)
    parses.clear()
    again = cached(catalogue)
    assert parses == []  # one read per file instead of a parse
    assert again.manifests == first.manifests and again.issues == first.issues
    # the entries took the new signatures: once those are old enough, a stat is all it takes
    monkeypatch.setattr(manifest_cache, "RACY_NS", -(10**18))
    cached(catalogue)
    entries = read_entries(catalogue)
    for row in entries.values():
        for file, sig, _, _ in files(row):
            assert not file or sig == cachefile.stat_signature(file)
    assert len(entries[os.path.abspath(catalogue / "a.yaml")]) == manifest_cache._FLAT
    monkeypatch.setattr(manifest_cache.ManifestCache, "_same_bytes", None)  # not called again
    parses.clear()
    assert cached(catalogue).manifests == first.manifests and parses == []


def test_a_fresh_copy_with_other_bytes_of_the_same_size_is_parsed(
    catalogue: Path, parses: list[str]
) -> None:
    cached(catalogue)
    _recreate(catalogue)
    path = catalogue / "a.yaml"
    path.write_text(path.read_text().replace("title: T", "title: Z"))
    timeline = catalogue / "sub" / "d.timeline.json"
    timeline.write_text(timeline.read_text().replace('"In": 1', '"In": 2'))
    parses.clear()
    result = cached(catalogue)
    assert sorted(parses) == ["a.yaml", "d.yaml"]
    assert next(m for m in result.manifests if m.name == "a").spec["title"] == "Z"
    clip = next(m for m in result.manifests if m.name == "d").spec["timeline"]["VideoTracks"][0]
    assert clip["VideoTrackClips"][0]["In"] == 2


def test_each_push_to_the_hook_parses_only_what_the_push_changed(
    tmp_path: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-receive hook brings its work tree to each pushed commit (real git)."""
    from reconciler.triggers import gitutil
    from tests.unit.test_gitutil import Repo

    src = Repo(tmp_path / "src")
    work, state = tmp_path / "hook" / "work", tmp_path / "hook" / "state"
    state.mkdir(parents=True)

    def push(sha: str) -> LoadResult:
        gitutil.replace_work_tree(src.root / ".git", sha, work)
        monkeypatch.chdir(work)
        parses.clear()
        return load_manifests(work / "manifests", cache_dir=state / "cache")

    first = src.commit({f"manifests/{name}.yaml": doc(name) for name in ("a", "b", "c")})
    assert len(push(first).manifests) == 3 and len(parses) == 3
    result = push(src.commit({"manifests/b.yaml": doc("b", "B2")}))
    assert parses == ["b.yaml"]
    assert next(m for m in result.manifests if m.name == "b").spec["title"] == "B2"


def cache_file(catalogue: Path) -> Path:
    """The cache file of ``catalogue`` (its scope's: the only one in these tests)."""
    (path,) = (catalogue.parent / "state" / "cache").glob("manifests-*.pickle")
    return path


def read_entries(catalogue: Path) -> dict[str, Any]:
    with open(cache_file(catalogue), "rb") as fh:
        pickle.load(fh)
        entries: dict[str, Any]
        entries, _ = pickle.load(fh)  # then the cold section: the specs
    return entries


def files(row: tuple[Any, ...]) -> list[tuple[str, Any, bytes | None, bool]]:
    """(path, signature, digest, racy) of every file an entry depends on."""
    if len(row) == manifest_cache._FLAT:  # the manifest file alone, settled
        return [("", row[:6], row[-1], False)]
    return list(row[0])


class Boom:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"\x00garbage" + b[8:],
        lambda b: b"",
        lambda b: pickle.dumps(Boom()),  # a planted pickle naming a callable
    ],
    ids=["truncated", "garbage", "empty", "planted"],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(
    catalogue: Path, parses: list[str], damage: Callable[[bytes], bytes]
) -> None:
    cached(catalogue)
    path = cache_file(catalogue)
    path.write_bytes(damage(path.read_bytes()))
    parses.clear()
    result = cached(catalogue)
    assert sorted(parses) == ["a.yaml", "d.yaml", "e.timeline.yaml", "e.yaml", "pair.yaml"]
    same(result, load_manifests(catalogue))
    assert not (catalogue.parent / "PWNED").exists()
    parses.clear()
    cached(catalogue)
    assert parses == []  # rebuilt


def test_another_version_does_not_trust_the_cache(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(catalogue)
    monkeypatch.setattr(manifest_cache, "__version__", "99.0")
    parses.clear()
    cached(catalogue)
    assert len(parses) == 5
    monkeypatch.setattr(manifest_cache, "CANONICAL_VERSION", 99)
    parses.clear()
    cached(catalogue)
    assert len(parses) == 5


def test_another_working_directory_does_not_trust_the_cache(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(catalogue)  # paths are shown relative to the working directory
    monkeypatch.chdir(catalogue)
    parses.clear()
    result = cached(catalogue)
    assert len(parses) == 5
    assert result.manifests[0].path == "a.yaml"


def test_no_state_directory_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text(doc("a"))
    assert not load_manifests(tmp_path / "manifests", cache_dir=tmp_path / "state" / "cache").issues
    assert not (tmp_path / "state").exists()


def test_an_invalid_catalogue_is_not_cached(catalogue: Path) -> None:
    (catalogue / "bad.yaml").write_text(doc("bad").replace("title: T", "tittle: T"))
    assert cached(catalogue).issues
    assert not (catalogue.parent / "state" / "cache").exists()


def test_removed_and_added_files_are_seen(catalogue: Path, parses: list[str]) -> None:
    cached(catalogue)
    (catalogue / "a.yaml").unlink()
    (catalogue / "g.yaml").write_text(doc("g"))
    parses.clear()
    result = cached(catalogue)
    assert parses == ["g.yaml"]
    assert sorted(m.name for m in result.manifests) == ["b", "c", "d", "e", "g"]
    assert result.paths == load_manifests(catalogue).paths


def test_specs_are_read_from_the_cache_file_that_was_loaded(catalogue: Path) -> None:
    cached(catalogue)
    warm = cached(catalogue).manifests  # specs not decoded yet: they stay in the file
    (catalogue / "a.yaml").write_text(doc("a", "Other"))
    cached(catalogue)  # another run replaces the cache file meanwhile
    (cache_file(catalogue)).unlink()
    fresh = {m.name: m for m in load_manifests(catalogue).manifests}
    for m in warm:
        if m.name != "a":
            assert m == fresh[m.name]
    assert next(m for m in warm if m.name == "a").spec["title"] == "T"  # as loaded then


def test_the_cold_section_is_compacted(catalogue: Path, parses: list[str]) -> None:
    cached(catalogue)
    path = cache_file(catalogue)
    sizes = []
    for i in range(12):  # every edit leaves the old spec behind, until it is compacted
        (catalogue / "sub" / "pair.yaml").write_text(doc("b", f"B{i}") + "---\n" + doc("c"))
        same(cached(catalogue), load_manifests(catalogue))
        sizes.append(path.stat().st_size)
    assert max(sizes) < 2.5 * sizes[0]
    parses.clear()
    result = cached(catalogue)
    assert parses == []
    same(result, load_manifests(catalogue))
    assert next(m for m in result.manifests if m.name == "b").spec["title"] == "B11"


def test_gc_paused_freezes_the_heap_then_thaws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class Node:
        me: Any

    try:
        with manifest_cache.gc_paused():
            node = Node()
            node.me = node  # a cycle
            ref = weakref.ref(node)
        del node
        gc.collect()
        assert ref() is not None  # frozen: the collector does not look at it
        monkeypatch.setattr(cachefile, "THAW_AFTER_S", -1.0)
        with manifest_cache.gc_paused():  # long after the last freeze: thawed and collected
            pass
        assert ref() is None
    finally:
        gc.unfreeze()
        cachefile._FROZEN_AT.clear()


def test_a_cached_plan_against_a_cached_state_equals_the_uncached_one(
    catalogue: Path, tmp_path: Path
) -> None:
    fresh = load_manifests(catalogue).manifests
    projects: dict[str, dict[str, Any]] = {}
    for m in fresh:
        spec = applied_spec(m.spec)
        projects[m.name] = {
            "project_id": f"p-{m.name}",
            "labels": dict(m.labels),
            "annotations": dict(m.annotations),
            "spec": spec,
            "hashes": spec_hashes(spec).as_dict(),
            "history": [],
        }
    projects["a"]["labels"] = {"team": "other"}  # labels changed: recorded
    projects["b"]["hashes"]["render"] = "sha256:0"  # to render
    projects["c"]["pending"] = {"op": "render", "project_id": "p-c"}  # interrupted
    projects["gone"] = {**projects["d"], "project_id": "p-gone"}  # an orphan
    state = State("L", 1, CANONICAL_VERSION, projects)
    key = ("test",)
    state_cache._write(tmp_path / "state.pickle", key, state_cache._layout(state, 0))
    read = state_cache._read(tmp_path / "state.pickle", key)
    assert read is not None
    warm_state = read[0]
    cached(catalogue)
    warm = cached(catalogue).manifests
    got, expected = plan(warm, warm_state), plan(fresh, state)
    assert got == expected
    assert [c.action for c in got.changes] == ["noop", "render", "render", "noop", "noop", "orphan"]
    e = warm_state.projects["e"]
    assert isinstance(e, state_cache.LazyEntry) and e.hash_key is not None  # never decoded
    assert plan(warm, warm_state, PlanOptions(force=frozenset({"e"}))) == plan(
        fresh, state, PlanOptions(force=frozenset({"e"}))
    )


def test_a_cached_manifest_copies_and_pickles_with_its_spec(catalogue: Path) -> None:
    cached(catalogue)
    m = cached(catalogue).manifests[0]
    fresh = load_manifests(catalogue).manifests[0]
    for twin in (copy.deepcopy(m), copy.copy(m), pickle.loads(pickle.dumps(m))):
        assert type(twin).__name__ == "CachedManifest" and twin == fresh
        assert twin.digest == m.digest
