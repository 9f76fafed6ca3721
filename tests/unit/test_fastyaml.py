"""``fastyaml`` reads a file only when it reads exactly as ``yamlpos`` does.

The property under test: for any text, ``fastyaml.read`` either declines (``None``: the file
goes the ``yamlpos`` way) or gives every document's data -- types included -- its
integral-float flag, its first line and the positions ``locate`` finds, exactly as
``yamlpos`` converts it, with no problem to report. Texts come from tables of the scalars
YAML 1.1 and 1.2 read differently and from generated YAML-like lines; the bench's catalogue
documents must all take the fast way. The loader gives the same result either way.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters import fastyaml
from reconciler.adapters.loader import load_manifests
from reconciler.adapters.yamlpos import compose_all, is_empty, locate, position, to_data

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(
    max_examples=int(os.environ.get("FASTYAML_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

pytestmark = pytest.mark.skipif(not fastyaml.available(), reason="yaml_rs not installed")


def typed(value: Any) -> Any:
    """``value`` with every scalar's type made part of it (1, 1.0, True and -0.0 differ)."""
    if isinstance(value, dict):
        return ("map", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", math.copysign(1, value), repr(value))
    return (type(value).__name__, value)


PLACES = (("metadata", "name"), ("spec", "timelineFile"), ("spec", "title"), ("a", "b"))


def agrees(text: str) -> bool:
    """Whether the fast way took ``text``; fails the test if it took it and read it otherwise
    than ``yamlpos``."""
    docs = fastyaml.read(text)
    if docs is None:
        return False
    try:
        nodes = [n for n in compose_all(text) if not is_empty(n)]
    except yaml.YAMLError as exc:
        raise AssertionError(f"fastyaml read what yamlpos refuses ({exc}):\n{text}") from exc
    assert len(docs) == len(nodes), text
    for doc, node in zip(docs, nodes, strict=True):
        converted = to_data(node)
        assert not converted.problems, (text, [p.message for p in converted.problems])
        assert typed(doc.data) == typed(converted.data), text
        assert doc.integral_floats == converted.integral_floats, text
        assert doc.line == position(node)[0], text
        for top, key in PLACES:
            inner = doc.data.get(top)
            value = inner.get(key) if isinstance(inner, dict) else None
            if isinstance(value, str):
                at = doc.position(top, key, value)
                if at is not None:
                    assert at == position(locate(node, (top, key))), (text, top, key)
    return True


# Plain scalars that YAML 1.1 (yamlpos) and YAML 1.2 (yaml_rs) may read differently, and
# some that they read alike.
TOKENS = [
    *"""
    yes Yes YES no No NO on On ON off Off OFF y n Y N true True TRUE false False
    null Null NULL ~ = << - + . .. ... tRue nil None NaN Infinity
    0 00 012 08 09.5 0777 0o17 0O17 0x1F 0X1F 0x_1F +0x1F -0x1F 0b101 0B11 +0b1
    1_000 1__0 0.1_5 1_0.5 _1 1_ 1:30 01:30 -1:30 1:30.5 190:20:30 12:05 1:3 1:60
    1e3 1E3 1e+3 1e-3 1.5e3 1.5e+3 1.5E-3 1.e+3 .5e+3 1e400 -1e400 1e 1e+ e3
    .5 -.5 +.5 . 1. -1. 0. -0.0 +0.0 5.0 -5.0 1.50 0.1 -0.1 12 -12 +12 -0
    .inf -.inf +.inf .Inf .INF .nan .NaN .NAN inf nan 0x1p3 0x1.8p1
    12345678901234567890123 -99999999999999999999 1234567890.5
    2024-01-15 2024-1-5 2024-01-15T12:00:00Z
    3e45ab 03e5f 0b8c0d 0x 0o 0b 1e3x 1.0.0 v1 1a 1-2 -1- 1,5
    .iNf +.nan -.NaN _ __1 1_e3 ._5 0x1_F 0o1_7 0b1_0 +_1 -_.5
    """.split(),  # noqa: SIM905 - a table
    "2024-01-15 12:00:00",
]


def _quoted(token: str) -> list[str]:
    return [f'"{token}"', f"'{token}'"]


@pytest.mark.parametrize("token", TOKENS)
def test_every_divergent_scalar_is_read_alike_or_declined(token: str) -> None:
    for value in (token, *_quoted(token)):
        for text in (
            f"a: {value}\n",
            f"a:\n  b: {value}\n  c: x\n",
            f"a:\n  - {value}\n  - x\n",
            f"a: [{value}, x]\n",
            f"a: [x,{value}]\n",
            f"a: {{b: {value}, c: x}}\n",
            f'a: {{"b":{value}}}\n',
            f"a:\n  {value}\n",
            f"{value}: x\n",
            f"a:\n  {value}: x\n",
            f"a: {{{value}: x}}\n",
            f"title: Episode {value}\n",
            f"a: # c\n  {value}\n",  # the value a line after a comment
            f"a: [x, # c\n  {value}]\n",
        ):
            agrees(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 12\nb: -3\nc: 0.5\nd: 1.5e+3\ne: text\nf: true\ng: ~\nh:\n",
        "a: Episode 007 at 12:30 on the beach\n",
        "a: [1, 2.0, x]\nb: {c: 0}\n",
        "# comment\n\n---\na: 1\n",
        "a: 1\n---\nb: 2\n---\n",
        "a: 1\r\nb: x\r\n",
        "a: |\n  x\n  y\nb: >-\n  x\n\n  y\n",
        "a: 'it''s'\nb: \"x\\u00e9\\/\"\n",
        "a: 你好 🎬\n",
    ],
)
def test_common_yaml_takes_the_fast_way(text: str) -> None:
    assert agrees(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\n",  # a YAML 1.1 boolean
        "a: 012\n",  # octal in 1.1, decimal in 1.2
        "a: 1e3\n",  # text in 1.1, a number in 1.2
        "a: [1:30]\n",  # sexagesimal in 1.1
        "a: &x 1\nb: *x\n",  # aliases
        "a: !!str 1\n",  # tags
        "base: &b {x: 1}\nc:\n  <<: *b\n",  # merge keys
        "%YAML 1.1\n---\na: 1\n",  # directives
        "a: 1\n...\n",  # document end marker
        "--- a: 1\n",  # content on the marker line
        "a:\tb\n",  # tabs
        "a: x\x85y\n",  # NEL: a line break to YAML 1.1
        "a: x\u2028y\n",
        "a: 1\rb: 2\r",  # lone CRs
        "? [a]\n: b\n",  # a complex key
        "1: x\n",  # a key that is not a string to yaml_rs
        "a: 1\na: 2\n",  # a duplicate key
        "a: .inf\n",
        "- a\n",  # not a mapping
        "# only a comment\n",
        "",
        "- " * 100_000 + "a\n",  # nested compact sequences: yaml_rs would overflow its stack
        # found by mutating manifests (test_mutated_manifests_are_read_alike_or_declined):
        'a: {"b":! 50}\n',  # a tag right after a flow value's ":" -- the string "50" to 1.1
        "a: {b: 1, ?c: 2}\n",  # "?" before a non-space: a complex key in a flow, to libyaml
        "!x\na: 1\n",  # a tag on the root
        "a: |\n",  # an empty block scalar at the end: "" to libyaml, "\n" to yaml_rs
        "a: >+\n\n\n",
        "a: |\n---\nb: 1\n",
        "---# c: d\na: 1\n",  # no space after "---": a key ("---# c"), not a marker
        "a: {b: c, d\n  e: f}\n",  # an implicit key over two lines: libyaml refuses it
        "a: [b, , c]\n",  # an empty flow entry: libyaml refuses it
        "a: `b\n",  # a character that cannot start a token
    ],
)
def test_what_reads_differently_or_needs_positions_is_declined(text: str) -> None:
    assert fastyaml.read(text) is None


def test_a_value_on_a_later_line_has_no_fast_position() -> None:
    text = "spec:\n  title:\n    ''\n  other: x\n"
    assert fastyaml.value_position(text, "spec", "title", "") is None
    assert fastyaml.value_position(text, "spec", "other", "x") == (4, 10)


def test_deep_nesting_does_not_crash() -> None:
    for depth in (90, 400, 1_300):  # libyaml refuses 1,000 levels, to_data ~480
        agrees("".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "b\n")
    agrees("a:\n" + " " * 99 + "b: " + "[" * 250 + "]" * 250 + "\n")
    agrees("a: " + "[" * 5_000 + "]" * 5_000 + "\n")  # yaml_rs refuses deep flow nesting
    agrees("a: " + "{b: " * 5_000 + "}" * 5_000 + "\n")


# ------------------------------------------------------------------------- generated lines

VALUE = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS).map(lambda t: f'"{t}"'),
    st.from_regex(r"[a-z0-9 ._:-]{1,12}", fullmatch=True),
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map(lambda v: f"[{', '.join(v)}]"),
    st.tuples(st.sampled_from(["k", "yes", "1", '"q"']), st.sampled_from(TOKENS)).map(
        lambda kv: f"{{{kv[0]}: {kv[1]}}}"
    ),
    st.just(""),
)
LINE = st.one_of(
    st.tuples(
        st.sampled_from(["", "  ", "    ", " "]),
        st.sampled_from(["", "- "]),
        st.sampled_from(["a", "b", "name", "metadata", "spec", "yes", "1", '"k"', "k k"]),
        st.sampled_from([": ", ":", ":  "]),
        VALUE,
        st.sampled_from(["", " # c", "#c"]),
    ).map(lambda p: "".join(p)),
    st.sampled_from(["---", "# comment", "", "  - x", "...", "- - a"]),
)


@SETTINGS
@given(st.lists(LINE, min_size=1, max_size=8))
def test_generated_yaml_is_read_alike_or_declined(lines: list[str]) -> None:
    agrees("\n".join(lines) + "\n")


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), VALUE),
        min_size=1,
        max_size=6,
        unique_by=lambda kv: kv[0],
    ),
    st.sampled_from(["  ", "    "]),
)
def test_generated_manifests_are_read_alike_or_declined(
    fields: list[tuple[str, str]], indent: str
) -> None:
    body = "".join(f"{indent}{k}: {v}\n" for k, v in fields)
    agrees(f"metadata:\n{indent}name: demo-1\nspec:\n{indent}title: T\n{body}")
    agrees(f"spec:\n{body}metadata:\n{indent}name: 'demo-1'  # quoted\n")


SAFE = ["x", "clip one", "0.5", "12", "-3", "1.5e+3", "5.0", "-0.0", "true", "~", "a-b", "é 你"]
SCALAR = st.one_of(  # mostly what the fast way takes, so that it is exercised
    st.sampled_from(SAFE),
    st.sampled_from(SAFE),
    st.sampled_from(SAFE),
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS).map(lambda t: f'"{t}"'),
    st.sampled_from(TOKENS).map(lambda t: f"'{t}'"),
)
KEYS = st.sampled_from(["a", "b", "MediaId", "In", "Out", "yes", "1", "null", '"q"', "k k", "x_1"])
TREE = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(KEYS, inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


def emit(value: Any, indent: int, flow: bool) -> list[str]:
    """YAML lines of a generated tree (its scalars are source text already)."""
    pad = " " * indent
    if isinstance(value, str):
        return [pad + value]
    if flow:
        if isinstance(value, list):
            return [pad + "[" + ", ".join(emit(v, 0, True)[0] for v in value) + "]"]
        return [
            pad + "{" + ", ".join(f"{k}: {emit(v, 0, True)[0]}" for k, v in value.items()) + "}"
        ]
    lines: list[str] = []
    for k, v in value.items() if isinstance(value, dict) else enumerate(value):
        head = pad + (f"{k}:" if isinstance(value, dict) else "-")
        if isinstance(v, str) or (flow := len(lines) % 2 == 1):
            lines.append(f"{head} {emit(v, 0, True)[0]}")
        else:
            lines += [head, *emit(v, indent + 2, False)]
    return lines


@SETTINGS
@given(st.dictionaries(KEYS, TREE, min_size=1, max_size=4), st.booleans())
def test_generated_trees_are_read_alike_or_declined(tree: dict[str, Any], crlf: bool) -> None:
    text = "\n".join(emit(tree, 0, False)) + "\n"
    agrees(text.replace("\n", "\r\n") if crlf else text)
    agrees("a: 1\n---\n" + text)


# ------------------------------------------------------------------------ the bench catalogue


def _bench_gen() -> Any:
    spec = importlib.util.spec_from_file_location("bench_gen", ROOT / "bench" / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gen"] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_catalogue_takes_the_fast_way_and_reads_alike(tmp_path: Path) -> None:
    gen = _bench_gen()
    catalogue = gen.Catalogue(tmp_path / "manifests", 300)
    catalogue.write()
    files = sorted(p for p in (tmp_path / "manifests").rglob("*") if p.is_file())
    assert len(files) > 250
    for path in files:
        assert agrees(path.read_text(encoding="utf-8")), path


# Insertions that reach the corners of both parsers: indicators, line breaks, block scalar
# headers, markers, escapes, the divergent scalars.
MUTATIONS = [
    *" \n:-#'\"[]{},|>&*!?%@`\\.0123456789eE+_xoyYnNtT~",
    *["\r\n", "\r", "\t", "  ", "\n  ", "\n    ", "\n- ", "\n  - ", ": ", "- ", "? ", "<<: "],
    *["---", "...", "\n---\n", "\n...\n", "%YAML 1.1\n", "\n#", " #", "|-", ">+", "|2"],
    *["\x85", "\u2028", "\ufeff", "é", "🎬", "\\x41", "\\u00e9", "\\\n", "''", "=", "null"],
]


@functools.cache
def _sources() -> list[str]:
    """The example manifests, the golden fixtures and a small bench catalogue."""
    with tempfile.TemporaryDirectory() as tmp:
        _bench_gen().Catalogue(Path(tmp), 40).write()
        paths = sorted(Path(tmp).rglob("*.yaml"))
        paths += sorted([*(ROOT / "manifests").rglob("*.yaml"), *(ROOT / "tests").rglob("*.yaml")])
        texts = []
        for path in paths:
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, OSError):  # the fixtures that are not UTF-8 on purpose
                continue
    return texts


def test_mutated_manifests_are_read_alike_or_declined() -> None:
    """Real manifests with one to three random edits (a seeded loop rather than hypothesis:
    a mismatch is rare, ~1 in 250 edits for the commonest kind found this way, so it takes
    many cheap examples; FASTYAML_SEED and FASTYAML_EXAMPLES, x40, vary and scale it)."""
    rng = random.Random(int(os.environ.get("FASTYAML_SEED", "7")))
    sources, pieces = _sources(), [*MUTATIONS, *TOKENS]
    for _ in range(40 * SETTINGS.max_examples):
        text = rng.choice(sources)
        for _ in range(rng.randint(1, 3)):
            at, piece, how = rng.randrange(len(text) + 1), rng.choice(pieces), rng.random()
            if how < 0.5:
                text = text[:at] + piece + text[at:]
            elif how < 0.75:
                text = text[:at] + text[at + rng.randint(1, 3) :]
            else:
                text = text[:at] + piece + text[at + len(piece) :]
        agrees(text)


def test_the_loader_gives_the_same_result_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = _bench_gen()
    root = tmp_path / "manifests"
    gen.Catalogue(root, 120).write()
    rng = random.Random(5)
    files = sorted(p for p in root.rglob("*.yaml"))
    for path in rng.sample(files, 6):  # some files that go the yamlpos way, some invalid
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("kind: EditingProject", "kind: EditingProject\nx: yes"))
    (root / "odd.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: EditingProject\nmetadata: {name: odd-1}\n"
        "spec:\n  title: Odd\n  timeline: {VideoTracks: [{VideoTrackClips: "
        "[{MediaId: m1, In: 012, Out: 1e3}]}]}\n"
    )
    # timeline files, which fastyaml reads too: valid, with a problem, and one it declines
    cuts = {
        "ok.yaml": "VideoTracks:\n  - VideoTrackClips:\n      - {MediaId: m1, In: 1, Out: 2.0}\n",
        "bad.yaml": "VideoTracks:\n  - VideoTrackClips:\n      - {MediaId: m1, In: 5, Out: 3}\n",
        "odd.yaml": "VideoTracks:\n  - VideoTrackClips:\n      - {MediaId: m1, In: 012}\n",
        "bad.json": '{"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 5, "Out": 3}]}]}'
        "\n",
    }
    for i, (name, text) in enumerate(cuts.items()):
        (root / name).write_text(text)
        (root / f"cut-{i}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: EditingProject\nmetadata:\n  name: cut-{i}\n"
            f"spec:\n  title: Cut\n  timelineFile: {name}\n"
        )
    fast = load_manifests(root)
    monkeypatch.setattr(fastyaml, "_loads", None)
    assert not fastyaml.available()
    slow = load_manifests(root)
    assert fast.paths == slow.paths
    assert fast.issues == slow.issues and fast.issues
    assert {"bad.yaml", "bad.json"} <= {Path(i.path).name for i in fast.issues}
    assert {"cut-0", "cut-2"} <= {m.name for m in fast.manifests}
    assert [(m.name, m.path, m.line, m.deps) for m in fast.manifests] == [
        (m.name, m.path, m.line, m.deps) for m in slow.manifests
    ]
    assert [typed(m.spec) for m in fast.manifests] == [typed(m.spec) for m in slow.manifests]
