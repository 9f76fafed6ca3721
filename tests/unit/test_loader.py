"""The loader: discovery, exact positions, the data handed on, timelineFile, YAML corner cases."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters import yamlpos
from reconciler.adapters.loader import LoadResult, load_each, load_manifests

HEAD = """\
apiVersion: reconciler/v1
kind: EditingProject
metadata:
  name: {name}
spec:
  title: Promo
"""
TIMELINE = """\
  timeline:
    VideoTracks:
      - VideoTrackClips:
          - {MediaId: m1, In: 0, Out: 5}
"""


def manifest(name: str = "promo", extra: str = "", timeline: str = TIMELINE) -> str:
    return HEAD.format(name=name) + extra + timeline


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "manifests").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(*paths: str) -> LoadResult:
    return load_manifests(Path("manifests"), [Path(p) for p in paths] or None)


def issues(result: LoadResult) -> list[str]:
    return [str(i) for i in result.issues]


def test_nested_clip_error_position_is_exact(repo: Path) -> None:
    text = dedent("""\
        apiVersion: reconciler/v1
        kind: EditingProject
        metadata:
          name: promo
        spec:
          title: Promo
          timeline:
            VideoTracks:
              - VideoTrackClips:
                  - MediaId: m1
                    In: 0
                    Out: 5
                  - MediaId: m2
                    In: 7.5
                    Out:   2
        """)
    write(repo / "manifests" / "promo.yaml", text)
    (issue,) = load().issues
    assert (issue.path, issue.line, issue.col) == ("manifests/promo.yaml", 15, 20)
    assert issue.field == "spec.timeline.VideoTracks[0].VideoTrackClips[1].Out"
    assert text.splitlines()[issue.line - 1][issue.col - 1 :] == "2"
    assert str(issue) == (
        "manifests/promo.yaml:15:20: EditingProject/promo: "
        "spec.timeline.VideoTracks[0].VideoTrackClips[1].Out: "
        "Out (2) must be greater than In (7.5): swap them or fix the trim"
    )


def test_positions_survive_crlf_bom_and_wide_characters(repo: Path) -> None:
    text = "\ufeff" + manifest(extra="  description: 春の販促\n").replace("In: 0", 'In: "0"')
    (repo / "manifests" / "p.yaml").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    assert issues(load()) == [
        "manifests/p.yaml:11:31: EditingProject/promo: "
        "spec.timeline.VideoTracks[0].VideoTrackClips[0].In: "
        "'In' must be a number of seconds, not a string ('0')"
    ]


def test_manifest_carries_the_original_data(repo: Path) -> None:
    extra = (
        "  description: 2024-05-01\n"
        "  userData: {Extend: {on: yes, when: 2024-05-01 10:00:00, n: 010}}\n"
        "  produceConfig: {Width: 1280, Ratio: 1.0}\n"
    )
    text = "---\n# leading empty document above\n" + manifest(extra=extra)
    text = text.replace("metadata:\n", "metadata:\n  labels: {team: growth}\n")
    write(repo / "manifests" / "p.yaml", text)
    result = load()
    assert issues(result) == []
    (m,) = result.manifests
    assert (m.name, m.labels, m.annotations, m.path, m.line, m.deps) == (
        "promo",
        {"team": "growth"},
        {},
        "manifests/p.yaml",
        3,
        (),
    )
    assert m.spec == {
        "title": "Promo",
        "description": "2024-05-01",  # timestamps stay the text written
        "userData": {"Extend": {"on": True, "when": "2024-05-01 10:00:00", "n": 8}},
        "produceConfig": {"Width": 1280, "Ratio": 1.0},
        "timeline": {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 0, "Out": 5}]}]},
    }
    ratio = m.spec["produceConfig"]["Ratio"]
    out = m.spec["timeline"]["VideoTracks"][0]["VideoTrackClips"][0]["Out"]
    assert (type(ratio), type(out)) == (float, int)  # 1.0 and 5 kept as written
    json.dumps(m.spec, allow_nan=False)  # plain JSON data


def test_discovery_is_recursive_sorted_and_skips_hidden(repo: Path) -> None:
    root = repo / "manifests"
    write(root / "b.yml", manifest("b"))
    write(root / "a" / "z.yaml", manifest("az"))
    write(root / "a.yaml", manifest("a"))
    write(root / ".hidden.yaml", "not: [valid")
    write(root / ".cache" / "x.yaml", "not: [valid")
    write(root / "notes.txt", "not: [valid")
    write(root / "README.md", "# hi")
    result = load()
    assert issues(result) == []
    assert [str(f) for f in result.files] == [
        "manifests/a.yaml",
        "manifests/a/z.yaml",
        "manifests/b.yml",
    ]
    assert [m.name for m in result.manifests] == ["a", "az", "b"]


def test_paths_limit_the_files(repo: Path) -> None:
    root = repo / "manifests"
    write(root / "one.yaml", manifest("one"))
    write(root / "sub" / "two.yaml", manifest("two"))
    write(root / "broken.yaml", "a: [")
    write(repo / "elsewhere" / "three.txt", manifest("three"))
    result = load(
        "manifests/one.yaml",
        "manifests/sub",
        "elsewhere/three.txt",
        "manifests/one.yaml",
        "missing.yaml",
    )
    assert [m.name for m in result.manifests] == ["one", "two", "three"]
    assert issues(result) == ["missing.yaml:1:1: -: -: no such file or directory"]


def test_paths_outside_the_cwd_are_absolute(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    path = write(other / "p.yaml", manifest(extra="  tittle: x\n"))
    (issue,) = load(str(path)).issues
    assert issue.path == str(path) and (issue.line, issue.col) == (7, 3)


def test_every_file_is_checked_in_one_pass(repo: Path) -> None:
    write(repo / "manifests" / "a.yaml", "a: [\n")
    write(repo / "manifests" / "b.yaml", manifest(extra="  colour: red\n"))
    write(repo / "manifests" / "c.yaml", manifest("c"))
    result = load()
    assert issues(result) == [
        "manifests/a.yaml:2:1: -: -: invalid YAML: did not find expected node content "
        "(while parsing a flow node at 2:1)",
        "manifests/b.yaml:7:3: EditingProject/promo: spec.colour: unknown field 'colour': "
        "allowed are projectId, title, description, coverURL, timeline, timelineFile, "
        "produceConfig, mediaMetadata, userData",
    ]
    assert [m.name for m in result.manifests] == ["c"]


def test_timeline_file_is_inlined_and_recorded(repo: Path) -> None:
    root = repo / "manifests"
    head = HEAD.format(name="{}")
    write(root / "json.yaml", head.format("j") + "  timelineFile: ../timelines/cut.json\n")
    write(root / "yaml.yaml", head.format("y") + "  description: d\n  timelineFile: cut.yml\n")
    write(
        repo / "timelines" / "cut.json",
        '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", "Out": 2.0, "X": null}]}]}',
    )
    write(root / "cut.yml", "AudioTracks:\n  - AudioTrackClips: [{MediaId: a, TimelineOut: 3}]\n")
    result = load()
    assert issues(result) == []
    j, y = result.manifests
    assert j.spec == {
        "title": "Promo",
        "timeline": {
            "VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", "Out": 2.0, "X": None}]}]
        },
    }
    assert j.deps == ("timelines/cut.json",)
    assert y.spec == {
        "title": "Promo",
        "description": "d",
        "timeline": {"AudioTracks": [{"AudioTrackClips": [{"MediaId": "a", "TimelineOut": 3}]}]},
    }
    assert y.deps == ("manifests/cut.yml",)
    # the YAML timeline among the manifests is not itself loaded as a manifest
    assert [str(f) for f in result.files] == ["manifests/json.yaml", "manifests/yaml.yaml"]


def test_a_tree_without_git_names_its_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export of a commit (no .git) bounds timelineFiles by the manifests directory
    unless told where the repository's top is: by flag, environment or pyproject.toml."""
    from reconciler.cli.main import main

    tree = tmp_path / "export"
    text = manifest(timeline="  timelineFile: ../timelines/cut.json\n")
    write(tree / "manifests" / "promo.yaml", text)
    write(
        tree / "timelines" / "cut.json",
        '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]}',
    )
    monkeypatch.chdir(tree)
    monkeypatch.delenv("RECONCILER_REPOSITORY", raising=False)
    assert issues(load()) == [
        "manifests/promo.yaml:7:17: EditingProject/promo: spec.timelineFile: timelineFile "
        "'../timelines/cut.json' points outside the repository: keep it inside (no .git above "
        "the manifests, so the repository is taken to be the manifests directory: pass "
        "--repository DIR to name its top)"
    ]
    result = load_manifests(Path("manifests"), repository=tree)
    assert issues(result) == [] and result.manifests[0].deps == ("timelines/cut.json",)
    assert main(["validate"]) == 1
    assert main(["validate", "--repository", "."]) == 0
    capsys.readouterr()
    assert main(["validate", "--repository", "nowhere"]) == 1
    assert "repository nowhere is not a directory" in capsys.readouterr().err
    monkeypatch.setenv("RECONCILER_REPOSITORY", str(tree))
    assert main(["validate"]) == 0
    monkeypatch.delenv("RECONCILER_REPOSITORY")
    write(tree / "pyproject.toml", '[tool.reconciler]\nrepository = "."\n')
    assert main(["validate"]) == 0
    # still a boundary: a file above the named top stays out of reach
    write(tree / "manifests" / "promo.yaml", manifest(timeline="  timelineFile: ../../x.json\n"))
    write(tmp_path / "x.json", '{"VideoTracks": []}')
    capsys.readouterr()
    assert main(["validate"]) == 1
    assert "points outside the repository: keep it inside\n" in capsys.readouterr().err


def test_load_each_is_each_file_loaded_on_its_own(repo: Path) -> None:
    """What the watch loads at start, in one pass (and through the plan cache): each result
    equals that file's own load, whatever the file holds."""
    root = repo / "manifests"
    head = HEAD.format(name="{}")
    write(root / "a.yaml", manifest("a"))
    write(root / "pair.yaml", manifest("b") + "---\n" + manifest("c"))
    write(root / "twice.yaml", manifest("d") + "---\n" + manifest("d"))  # collides in itself
    write(root / "again.yaml", manifest("a"))  # collides only with a.yaml: not on its own
    write(root / "j.yaml", head.format("j") + "  timelineFile: t/cut.json\n")
    write(root / "t" / "cut.json", '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]}')
    write(root / "y.yaml", head.format("y") + "  timelineFile: cut.yml\n")
    write(root / "cut.yml", "VideoTracks: [{VideoTrackClips: [{MediaId: m2}]}]\n")
    write(root / "self.yaml", head.format("s") + "  timelineFile: self.yaml\n")
    write(root / "broken.yaml", "apiVersion: [\n")
    write(root / "bad.yaml", manifest("bad", extra="  titel: typo\n"))
    write(root / "sub" / "x.yaml", manifest("x"))
    files = sorted(root.rglob("*.y*ml"))
    paths = [Path(os.path.relpath(f)) for f in files] + [Path("manifests/gone.yaml")]
    paths.append(Path("manifests/sub"))  # a directory: loaded as its own load loads it
    alone = [load_manifests(Path("manifests"), [p]) for p in paths]
    assert any(r.issues for r in alone) and any(len(r.manifests) == 2 for r in alone)
    cache = repo / "state" / "cache"
    (repo / "state").mkdir()
    for kwargs in ({}, {"cache_dir": cache}, {"cache_dir": cache}):  # no cache, cold, warm
        each = load_each(Path("manifests"), paths, **kwargs)  # type: ignore[arg-type]
        for one, mine in zip(alone, each, strict=True):
            assert (mine.manifests, mine.issues, mine.paths) == (
                one.manifests,
                one.issues,
                one.paths,
            )
    assert list(cache.glob("manifests-*.pickle"))  # saved, though some files are invalid


def test_timeline_file_problems(repo: Path) -> None:
    root = repo / "manifests"
    head = HEAD.format(name="{}")
    write(root / "a.yaml", head.format("a") + "  timelineFile: t/nan.json\n")
    write(
        root / "t" / "nan.json",
        '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m",\n  "In": NaN}]}]}',
    )
    write(root / "b.yaml", head.format("b") + "  timelineFile: t/dup.json\n")
    write(root / "t" / "dup.json", '{"VideoTracks": [],\n "VideoTracks": []}')
    write(root / "c.yaml", head.format("c") + "  timelineFile: t/\n")
    write(root / "d.yaml", head.format("d") + "  timelineFile: t/empty.yaml\n")
    write(root / "t" / "empty.yaml", "# nothing\n")
    write(root / "e.yaml", head.format("e") + "  timelineFile: t/two.yaml\n")
    write(root / "t" / "two.yaml", "VideoTracks: []\n---\nVideoTracks: []\n")
    assert issues(load()) == [
        "manifests/c.yaml:7:17: EditingProject/c: spec.timelineFile: timelineFile 't/' must name "
        "a .json, .yaml or .yml file",
        "manifests/t/dup.json:2:2: EditingProject/b: spec.timeline.VideoTracks: duplicate key "
        "'VideoTracks' (first at 1:2): delete one of them",
        "manifests/t/empty.yaml:1:1: EditingProject/d: spec.timeline: timeline file is empty: "
        "write the Timeline in it",
        "manifests/t/nan.json:2:9: EditingProject/a: spec.timeline: NaN is not a JSON number: "
        "use a number",
        "manifests/t/two.yaml:2:1: EditingProject/e: spec.timeline: invalid YAML: expected a "
        "single document in the stream, but found another document",
    ]


def test_yaml_merge_keys_and_aliases_give_independent_copies(repo: Path) -> None:
    timeline = (
        "  timeline:\n"
        "    VideoTracks:\n"
        "      - VideoTrackClips:\n"
        "          - &base {MediaId: m1, In: 0, Out: 5}\n"
        "          - <<: *base\n"
        "            Out: 9\n"
        "          - *base\n"
    )
    write(repo / "manifests" / "p.yaml", manifest(timeline=timeline))
    (m,) = load().manifests
    clips = m.spec["timeline"]["VideoTracks"][0]["VideoTrackClips"]
    assert clips == [
        {"MediaId": "m1", "In": 0, "Out": 5},
        {"MediaId": "m1", "In": 0, "Out": 9},
        {"MediaId": "m1", "In": 0, "Out": 5},
    ]
    clips[0]["Out"] = 1
    assert clips[2]["Out"] == 5


def test_yaml_values_without_json_meaning(repo: Path) -> None:
    extra = "  userData: {Extend: !!binary aGk=, ? [a]: b, inf: -.inf}\n"
    write(repo / "manifests" / "p.yaml", manifest(extra=extra))
    assert issues(load()) == [
        "manifests/p.yaml:7:22: EditingProject/promo: spec.userData.Extend: YAML tag '!!binary' "
        "is not supported here: manifests hold plain JSON-like data; remove the tag",
        "manifests/p.yaml:7:39: EditingProject/promo: spec.userData: a mapping key must be a "
        "plain string, not a sequence: quote it or restructure",
        "manifests/p.yaml:7:52: EditingProject/promo: spec.userData.inf: '-.inf' is not a "
        "finite number; JSON (and VOD) has none",
    ]


def test_alias_expansion_is_bounded(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlpos, "MAX_VALUES", 1000)
    bomb = "".join(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 5))
    write(repo / "manifests" / "p.yaml", "l0: &l0 [x]\nbomb:\n" + bomb)
    assert issues(load()) == [
        "manifests/p.yaml:1:1: -: -: document expands to more than 1000 values (YAML aliases?): "
        "simplify it"
    ]


def test_recursive_alias_does_not_hang(repo: Path) -> None:
    write(repo / "manifests" / "p.yaml", "a: &x [1, *x]\n")
    assert issues(load()) == [
        "manifests/p.yaml:1:1: -: -: document is nested too deeply or has a recursive alias: "
        "simplify it"
    ]


def test_a_thousand_manifests_load_fast(repo: Path) -> None:
    for i in range(1000):
        write(repo / "manifests" / f"g{i % 10}" / f"p{i}.yaml", manifest(f"p{i}"))
    start = time.perf_counter()
    result = load()
    elapsed = time.perf_counter() - start
    assert len(result.manifests) == 1000 and not result.issues
    assert elapsed < 5.0, f"loading 1000 manifests took {elapsed:.2f}s"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_round_trips_through_yaml(value: object) -> None:
    node = yamlpos.compose(yaml.safe_dump({"v": value}))
    assert node is not None
    data, problems, _ = yamlpos.to_data(node)
    assert problems == []
    assert data == {"v": value}


def test_json_timeline_data_comes_from_the_json_parser(repo: Path) -> None:
    # "\ud83c\udfac" is valid JSON (a surrogate pair) but not valid YAML: data must still load
    write(
        repo / "manifests" / "t.json",
        '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": '
        '"m", "Title": "\\ud83c\\udfac", "Out": 1e3}]}]}',
    )
    write(repo / "manifests" / "p.yaml", manifest(timeline="  timelineFile: t.json\n"))
    (m,) = load().manifests
    assert m.spec["timeline"]["VideoTracks"][0]["VideoTrackClips"] == [
        {"MediaId": "m", "Title": "\U0001f3ac", "Out": 1000.0}
    ]
