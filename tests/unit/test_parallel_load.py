"""A cold load spread over forked processes gives exactly what a serial one gives; a child
that fails costs only time; and the shortcuts of the fast path hash what the slow path does."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters import forkjoin, loader
from reconciler.adapters.loader import LoadResult, load_manifests
from reconciler.core.canonical import spec_digest

needs_fork = pytest.mark.skipif(
    not hasattr(os, "fork") or os.uname().sysname != "Linux", reason="forking is Linux-only"
)


# ---------------------------------------------------------------------------- fork_map


def _square_with_pid(batch: list[int]) -> list[tuple[int, int]]:
    return [(x * x, os.getpid()) for x in batch]


@needs_fork
def test_fork_map_spreads_batches_over_processes_and_keeps_item_order() -> None:
    def slow(batch: list[int]) -> list[tuple[int, int]]:
        time.sleep(0.01)  # long enough that every process gets batches
        return _square_with_pid(batch)

    results = forkjoin.fork_map(slow, range(40), 3, batch=2)
    assert [v for v, _ in results] == [x * x for x in range(40)]
    assert len({pid for _, pid in results}) == 3  # this process and two children
    assert os.getpid() in {pid for _, pid in results}


@needs_fork
def test_meanwhile_runs_here_while_the_children_work() -> None:
    ran: list[int] = []
    results = forkjoin.fork_map(
        _square_with_pid, range(10), 2, meanwhile=lambda: ran.append(os.getpid())
    )
    assert ran == [os.getpid()]
    assert [v for v, _ in results] == [x * x for x in range(10)]


@needs_fork
@pytest.mark.parametrize("failure", ["raise", "kill", "unpicklable"])
def test_a_failing_child_has_its_batches_redone_here(failure: str) -> None:
    parent = os.getpid()

    def work(batch: list[int]) -> Any:
        if os.getpid() != parent:
            if failure == "raise":
                raise RuntimeError("boom")
            if failure == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            return [lambda: None]  # cannot be pickled
        time.sleep(0.005)  # leave the children some batches
        return [x + 1 for x in batch]

    assert forkjoin.fork_map(work, range(30), 3, batch=1) == [x + 1 for x in range(30)]


@needs_fork
def test_a_child_that_fails_midway_keeps_what_it_delivered(tmp_path: Path) -> None:
    parent = os.getpid()

    def work(batch: list[int]) -> list[tuple[int, int]]:
        if os.getpid() != parent:
            done = len(list(tmp_path.iterdir()))
            if done == 3:
                os.kill(os.getpid(), signal.SIGKILL)  # after delivering three batches
            (tmp_path / str(batch[0])).write_text("")
        time.sleep(0.005)
        return [(x + 1, os.getpid()) for x in batch]

    results = forkjoin.fork_map(work, range(30), 2, batch=1)
    assert [r for r, _ in results] == [x + 1 for x in range(30)]
    assert sum(pid != parent for _, pid in results) == 3  # the child's three were kept


@needs_fork
def test_large_results_come_back_while_this_process_is_busy() -> None:
    def work(batch: list[int]) -> list[bytes]:
        return [bytes([x % 256]) * 1_000_000 for x in batch]  # far over a pipe's buffer

    def busy() -> None:
        time.sleep(0.3)  # the child delivers meanwhile, without waiting for a reader

    results = forkjoin.fork_map(work, range(12), 2, batch=1, meanwhile=busy)
    assert results == [bytes([x]) * 1_000_000 for x in range(12)]


@needs_fork
def test_an_exception_here_kills_and_reaps_the_children(tmp_path: Path) -> None:
    parent = os.getpid()

    def busy() -> None:  # once both children are busy: Ctrl-C
        deadline = time.monotonic() + 20
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        raise KeyboardInterrupt

    def work(batch: list[int]) -> list[int]:
        assert os.getpid() != parent
        (tmp_path / str(os.getpid())).write_text("")
        threading.Event().wait(60)  # would hold the test for a minute if not killed
        return batch

    with pytest.raises(KeyboardInterrupt):
        forkjoin.fork_map(work, range(4), 3, batch=1, meanwhile=busy)
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped


def test_workers_honours_the_cap_and_never_forks_beside_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(forkjoin.ENV, "1")
    assert forkjoin.workers() == 1
    monkeypatch.delenv(forkjoin.ENV)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert forkjoin.workers() == 1
    finally:
        stop.set()
        thread.join()


def _cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[str, str]:
    fs = tmp_path / "fs"
    for rel, text in files.items():
        (fs / rel).parent.mkdir(parents=True, exist_ok=True)
        (fs / rel).write_text(text)
    fs.mkdir(exist_ok=True)
    (tmp_path / "cgroup").write_text(proc)
    return str(tmp_path / "cgroup"), str(fs)


@pytest.mark.parametrize(
    ("proc", "files", "expected"),
    [
        # v2: own limit, rounded up; "max" is none; the tightest ancestor wins
        ("0::/job\n", {"job/cpu.max": "150000 100000\n"}, 2),
        ("0::/job\n", {"job/cpu.max": "max 100000\n", "cpu.max": "max 100000\n"}, None),
        ("0::/a/b\n", {"a/b/cpu.max": "max 100000\n", "a/cpu.max": "100000 100000\n"}, 1),
        # inside a container the host path does not exist: the namespace root is read
        ("0::/kubepods/pod1\n", {"cpu.max": "400000 100000\n"}, 4),
        # v1: -1 is no quota; the cpu controller may share a mount with cpuacct
        (
            "4:cpu,cpuacct:/job\n2:memory:/job\n",
            {
                "cpu,cpuacct/job/cpu.cfs_quota_us": "-1\n",
                "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
            },
            None,
        ),
        (
            "3:cpu:/\n",
            {"cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"},
            3,
        ),
        ("garbage\n", {}, None),
    ],
)
def test_cpu_quota_reads_cgroup_limits(
    tmp_path: Path, proc: str, files: dict[str, str], expected: int | None
) -> None:
    assert forkjoin.cpu_quota(*_cgroup(tmp_path, proc, files)) == expected


def test_cpu_quota_without_cgroups(tmp_path: Path) -> None:
    assert forkjoin.cpu_quota(str(tmp_path / "missing"), str(tmp_path)) is None


def test_workers_never_exceeds_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(forkjoin.ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # other tests may leave one
    monkeypatch.setattr(forkjoin, "cpu_quota", lambda: None)
    assert forkjoin.workers() == forkjoin.MAX_WORKERS
    monkeypatch.setattr(forkjoin, "cpu_quota", lambda: 3)
    assert forkjoin.workers() == 3


# ---------------------------------------------------------------------------- loading

CLIP = "          - {{MediaId: m{i}, In: {start}, Out: {end}}}\n"


def _manifest(i: int) -> str:
    clips = "".join(
        CLIP.format(i=i * 10 + k, start=k, end=f"{k + 2}.0" if (i + k) % 3 else k + 2.5)
        for k in range(1 + i % 4)
    )
    return (
        f"apiVersion: reconciler/v1\nkind: EditingProject\n"
        f"metadata:\n  name: p{i}\n  labels: {{team: t{i % 3}}}\n"
        f"spec:\n  title: Project {i}\n  timeline:\n    VideoTracks:\n"
        f"      - VideoTrackClips:\n{clips}"
    )


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """60 files: plain, multi-document, timelineFile (JSON and YAML), and broken ones."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "manifests"
    for i in range(60):
        directory = root / f"d{i % 4}"
        directory.mkdir(parents=True, exist_ok=True)
        text = _manifest(i)
        if i % 11 == 0:
            text += "---\n" + _manifest(1000 + i)
        if i % 13 == 0:
            name = f"t{i}.timeline.{'json' if i % 2 else 'yaml'}"
            text = text.split("  timeline:")[0] + f"  timelineFile: {name}\n"
            body = '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "x", "In": 0, "Out": 4.0}]}]}'
            (directory / name).write_text(body + "\n")
        if i == 17:
            text = text.replace("title:", "titel:")
        if i == 29:
            text += "  bad: [unclosed\n"
        (directory / f"m{i:02}.yaml").write_text(text)
    (tmp_path / "state").mkdir()
    return root


def _load(root: Path, jobs: str, monkeypatch: pytest.MonkeyPatch, cache: bool) -> LoadResult:
    monkeypatch.setenv(forkjoin.ENV, jobs)
    monkeypatch.setattr(loader, "PER_WORKER", 5)
    # an idle thread another test left behind must not quietly turn this into a serial load
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    forked: list[int] = []
    fork_map = forkjoin.fork_map

    def spy(*args: Any, **kwargs: Any) -> Any:
        forked.append(args[2])
        return fork_map(*args, **kwargs)

    monkeypatch.setattr(forkjoin, "fork_map", spy)
    result = load_manifests(root, cache_dir=root.parent / "state" / "cache" if cache else None)
    assert bool(forked) == (jobs != "1" and forkjoin.workers() > 1)  # it did fork
    return result


@needs_fork
@pytest.mark.parametrize("cache", [False, True])
def test_a_parallel_load_equals_a_serial_one(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    serial = _load(catalogue, "1", monkeypatch, cache=False)
    parallel = _load(catalogue, "3", monkeypatch, cache=cache)
    assert serial.issues and len(serial.issues) == len(parallel.issues)  # the broken files
    assert parallel.issues == serial.issues
    assert parallel.paths == serial.paths
    assert parallel.manifests == serial.manifests
    assert [m.deps for m in parallel.manifests] == [m.deps for m in serial.manifests]


@needs_fork
def test_what_a_parallel_load_caches_is_what_a_serial_one_caches(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in catalogue.rglob("*.yaml"):  # the invalid catalogue is not cached: fix it
        path.write_text(
            path.read_text().replace("titel:", "title:").replace("  bad: [unclosed\n", "")
        )
    parallel = _load(catalogue, "3", monkeypatch, cache=True)
    (cache_file,) = (catalogue.parent / "state" / "cache").glob("manifests-*.pickle")
    assert parallel.issues == []
    digests = {m.name: m.digest for m in parallel.manifests}  # type: ignore[attr-defined]
    cache_file.unlink()
    serial = _load(catalogue, "1", monkeypatch, cache=True)
    assert {m.name: m.digest for m in serial.manifests} == digests  # type: ignore[attr-defined]
    warm = _load(catalogue, "1", monkeypatch, cache=True)  # served from the cache
    assert warm.manifests == serial.manifests
    assert {m.name: m.digest for m in warm.manifests} == digests  # type: ignore[attr-defined]
    # and the digests are the slow path's: the full canonicalisation of each spec
    assert {m.name: spec_digest(m.spec) for m in warm.manifests} == digests


# ---------------------------------------------------------------------------- canonical

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
specs = st.fixed_dictionaries(
    {"title": st.text(max_size=5), "timeline": json_values},
    optional={
        "projectId": st.text(max_size=5),
        "userData": json_values,
        "produceConfig": json_values,
    },
)


any_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([5.0, -0.0, 1e300])
json_values_with_floats = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | any_floats,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"title": st.text(max_size=5), "timeline": json_values_with_floats},
        optional={"userData": json_values_with_floats, "mediaMetadata": json_values_with_floats},
    )
)
def test_the_digest_of_data_with_integral_floats_is_that_of_its_canonical_form(
    spec: dict[str, Any],
) -> None:
    from reconciler.core.canonical import applied_spec, spec_hashes

    before = copy.deepcopy(spec)
    digest = spec_digest(spec)
    assert digest.hashes == spec_hashes(applied_spec(spec))
    assert spec == before and repr(spec) == repr(before)  # the spec itself is not changed


@settings(max_examples=200, deadline=None)
@given(specs)
def test_skipping_canonicalisation_changes_no_hash_for_data_without_integral_floats(
    spec: dict[str, Any],
) -> None:
    assert spec_digest(spec, canonical=True) == spec_digest(spec)


@pytest.mark.parametrize(
    ("written", "integer"),
    [("Out: 5.0", "Out: 5"), ("Out: 1.5e+3", "Out: 1500"), ("In: 0,", "In: -0.0,")],
)
def test_an_integral_float_in_yaml_is_hashed_like_its_integer(
    tmp_path: Path, written: str, integer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = []
    for i, text in enumerate((written, integer)):
        root = tmp_path / f"v{i}"
        (root / "manifests").mkdir(parents=True)
        (root / "state").mkdir()
        manifest = _manifest(1)
        old = "Out: 3.0" if text.startswith("Out") else "In: 0,"
        assert old in manifest
        (root / "manifests" / "m.yaml").write_text(manifest.replace(old, text))
        monkeypatch.chdir(root)
        result = load_manifests(root / "manifests", cache_dir=root / "state" / "cache")
        (m,) = result.manifests
        hashes.append(m.digest)  # type: ignore[attr-defined]
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize(
    "text",
    ["1.5", "-0.0", "+2.5", "1_000.5", "1__0.5", "1.5e+3", "1:30.5", "-.inf", ".NaN", "--1.5"],
)
def test_floats_are_read_as_pyyaml_reads_them(text: str) -> None:
    import math

    import yaml

    from reconciler.adapters import yamlpos

    node = yamlpos.compose(f"v: !!float {text}\nw: {text}\n")
    assert node is not None
    data, _, _ = yamlpos.to_data(node)
    want = yaml.safe_load(f"v: !!float {text}\nw: {text}\n")
    for key in ("v", "w"):
        got, expected = data[key], want[key]
        assert type(got) is type(expected)
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == expected
            if isinstance(expected, float):
                assert math.copysign(1, got) == math.copysign(1, expected)


@needs_fork
def test_a_refused_fork_leaves_the_work_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    results = forkjoin.fork_map(_square_with_pid, range(10), 4)
    assert results == [(x * x, os.getpid()) for x in range(10)]


@settings(max_examples=2000, deadline=None)
@given(
    st.text(alphabet="yYnNtTfFoO-+0123456789.~<=!&*_:eExXbBaZz \n#", max_size=12)
    | st.sampled_from(["3f158685d4b55fd6d986669a0e464c5b", "2024-05-01T10:00:00Z", "0x1F", "1:30"])
)
def test_plain_scalars_resolve_as_pyyaml_resolves_them(text: str) -> None:
    from yaml.nodes import ScalarNode

    from reconciler.adapters import yamlpos

    yamlpos._TAGS.clear()  # the tag itself, not a cached one
    want = yamlpos._RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    assert yamlpos._plain_tag(text) == want
