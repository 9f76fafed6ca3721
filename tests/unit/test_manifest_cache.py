"""The plan cache: a cached load equals a fresh one, and every change invalidates it."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters import loader, manifest_cache
from reconciler.adapters.loader import LoadResult, load_manifests
from reconciler.adapters.manifest_cache import CACHE_FILE
from reconciler.core.planner import plan
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


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the loader actually parses (its per-file parse function, counted)."""
    seen: list[str] = []
    real = loader._file

    def counting(path: str, ctx: Any) -> Any:
        seen.append(os.path.basename(path))
        return real(path, ctx)

    monkeypatch.setattr(loader, "_file", counting)
    return seen


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
    assert (catalogue.parent / "state" / "cache" / CACHE_FILE).is_file()
    parses.clear()
    second = cached(catalogue)
    assert parses == []
    same(first, fresh)
    same(second, fresh)
    assert all(type(m).__name__ == "CachedManifest" for m in second.manifests)


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


def test_settled_files_drop_their_digests(
    catalogue: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(catalogue)
    entries = read_entries(catalogue)
    assert all(digest is not None for row in entries.values() for _, _, digest in row[0])
    monkeypatch.setattr(manifest_cache, "RACY_NS", -(10**18))  # everything is old now
    parses.clear()
    cached(catalogue)
    assert parses == []
    entries = read_entries(catalogue)
    assert all(digest is None for row in entries.values() for _, _, digest in row[0])


def read_entries(catalogue: Path) -> dict[str, Any]:
    with open(catalogue.parent / "state" / "cache" / CACHE_FILE, "rb") as fh:
        pickle.load(fh)
        entries: dict[str, Any] = pickle.load(fh)
    return entries


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
    path = catalogue.parent / "state" / "cache" / CACHE_FILE
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
