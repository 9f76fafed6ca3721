"""Properties of the canonical hashes over generated specs, loaded from real YAML files.

For any valid spec, written as YAML in any style (block or flow, plain or quoted strings, 5 or
5.0, shuffled keys, comments, indentation), the real loader yields the same three hashes. A
change to any render-relevant value (a Timeline leaf, produceConfig, mediaMetadata) changes the
render hash only; title/description/coverURL only the metadata hash; userData only the userdata
hash (product.md §3).
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters.loader import load_manifests
from reconciler.core.canonical import SpecHashes, applied_spec, canonicalize, spec_hashes

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------------------- generation

TEXT = st.text(alphabet="abcXYZ019 -_.,:#'\"/é你🎬", min_size=1, max_size=16).filter(
    lambda s: s.strip() != ""
)
KEY = st.from_regex(r"X[A-Za-z]{1,6}", fullmatch=True)  # an unknown VOD key: passed through
HUNDREDTHS = st.integers(0, 20_000).map(lambda k: k if k % 3 else round(k / 100, 2))
SCALAR = st.one_of(TEXT, HUNDREDTHS, st.integers(-50, 50), st.booleans())


@st.composite
def times(draw: st.DrawFn, first: str, second: str) -> dict[str, Any]:
    """Optional In/Out (or TimelineIn/TimelineOut), the second greater than the first."""
    out: dict[str, Any] = {}
    start = draw(st.integers(0, 3_000))
    if draw(st.booleans()):
        out[first] = start / 100 if start % 2 else start // 100
    if draw(st.booleans()):
        end = start + draw(st.integers(1, 2_000))
        out[second] = end / 100 if end % 3 else end // 100
        if first in out and out[second] <= out[first]:
            out[second] = out[first] + 1
    return out


@st.composite
def clips(draw: st.DrawFn) -> dict[str, Any]:
    clip: dict[str, Any] = {"MediaId": draw(st.from_regex(r"[0-9a-f]{6,32}", fullmatch=True))}
    clip |= draw(times("In", "Out")) | draw(times("TimelineIn", "TimelineOut"))
    if draw(st.booleans()):
        effect = {"Type": "Text", "Content": draw(TEXT), "FontSize": draw(st.integers(8, 72))}
        clip["Effects"] = [effect]
    clip |= draw(st.dictionaries(KEY, SCALAR, max_size=2))
    return clip


@st.composite
def timelines(draw: st.DrawFn) -> dict[str, Any]:
    tracks = st.builds(lambda c: {"VideoTrackClips": c}, st.lists(clips(), min_size=1, max_size=3))
    timeline: dict[str, Any] = {"VideoTracks": draw(st.lists(tracks, min_size=1, max_size=2))}
    if draw(st.booleans()):
        audio = draw(st.lists(clips(), min_size=1, max_size=2))
        timeline["AudioTracks"] = [{"AudioTrackClips": audio}]
    timeline |= draw(st.dictionaries(KEY, SCALAR, max_size=2))
    return timeline


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"title": draw(TEXT), "timeline": draw(timelines())}
    if draw(st.booleans()):
        spec["description"] = draw(TEXT)
    if draw(st.booleans()):
        spec["coverURL"] = "https://example.com/" + draw(
            st.from_regex(r"[a-z0-9]{1,9}", fullmatch=True)
        )
    if draw(st.booleans()):
        spec["produceConfig"] = draw(
            st.fixed_dictionaries(
                {"TemplateGroupId": st.from_regex(r"[0-9a-f]{8}", fullmatch=True)},
                optional={"Width": st.integers(16, 4096), "Height": st.integers(16, 4096)},
            )
        )
    if draw(st.booleans()):
        spec["mediaMetadata"] = {"Title": draw(TEXT)} | draw(st.dictionaries(KEY, TEXT, max_size=1))
    if draw(st.booleans()):
        spec["userData"] = {"Extend": draw(st.dictionaries(KEY, TEXT, min_size=1, max_size=3))}
    return spec


# ------------------------------------------------------------------------------- YAML styles

_RESERVED = {"yes", "no", "on", "off", "y", "n", "true", "false", "null", "~"}


def _plain_ok(s: str) -> bool:
    return (
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9 _.-]*", s) is not None
        and s == s.strip()
        and s.lower() not in _RESERVED
        and yaml.safe_load(f"k: {s}") == {"k": s}
    )


class Writer:
    """Writes one spec as a manifest, every stylistic choice drawn from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.step = rng.choice((2, 4))

    def scalar(self, v: Any) -> str:
        r = self.rng
        if isinstance(v, bool):
            return r.choice(("true", "True")) if v else r.choice(("false", "False"))
        if isinstance(v, int):
            return r.choice((str(v), f"{v}.0")) if v >= 0 else str(v)
        if isinstance(v, float):
            if v.is_integer():
                return r.choice((f"{int(v)}", f"{v!r}", f"{v:.2f}"))
            return r.choice((repr(v), f"{v}0"))
        assert isinstance(v, str)
        style = r.choice(("plain", "single", "double"))
        if style == "plain" and _plain_ok(v):
            return v
        if style == "single":
            return "'" + v.replace("'", "''") + "'"
        # \uXXXX escapes where YAML allows them (not as surrogate pairs, outside the BMP)
        escape = r.random() < 0.3 and all(ord(c) < 0x10000 for c in v)
        return json.dumps(v, ensure_ascii=escape)

    def flow(self, v: Any) -> str:
        if isinstance(v, dict):
            items = list(v.items())
            self.rng.shuffle(items)
            return "{" + ", ".join(f"{k}: {self.flow(x)}" for k, x in items) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(self.flow(x) for x in v) + "]"
        return self.scalar(v)

    def comment(self) -> str:
        return (
            "  # " + self.rng.choice(("note", "TODO: check", "5.0 or 5?", "é"))
            if (self.rng.random() < 0.2)
            else ""
        )

    def block(self, mapping: dict[str, Any], indent: int) -> list[str]:
        pad, lines = " " * indent, []
        items = list(mapping.items())
        self.rng.shuffle(items)
        for key, v in items:
            if self.rng.random() < 0.1:
                lines.append(f"{pad}# a comment about {key}")
            if not isinstance(v, dict | list) or not v or self.rng.random() < 0.3:
                lines.append(f"{pad}{key}: {self.flow(v)}{self.comment()}")
            elif isinstance(v, dict):
                lines += [f"{pad}{key}:{self.comment()}", *self.block(v, indent + self.step)]
            else:
                lines.append(f"{pad}{key}:")
                lines += self.sequence(v, indent + self.step)
        return lines

    def sequence(self, items: list[Any], indent: int) -> list[str]:
        pad, lines = " " * indent, []
        for item in items:
            if isinstance(item, dict) and item and self.rng.random() < 0.7:
                inner = self.block(item, indent + 2)
                first = next(i for i, line in enumerate(inner) if not line.lstrip().startswith("#"))
                inner[first] = f"{pad}- {inner[first][indent + 2 :]}"
                lines += inner
            else:
                lines.append(f"{pad}- {self.flow(item)}")
        return lines

    def manifest(self, spec: dict[str, Any]) -> str:
        doc = {
            "apiVersion": "reconciler/v1",
            "kind": "EditingProject",
            "metadata": {"name": "prop", "labels": {"team": "qa"}},
            "spec": spec,
        }
        head = self.rng.choice(("", "---\n", "# generated\n", "%YAML 1.1\n---\n"))
        return head + "\n".join(self.block(doc, 0)) + "\n"


def load(spec: dict[str, Any], rng: random.Random) -> SpecHashes:
    """Write ``spec`` in a style drawn from ``rng``, load it with the real loader, hash it."""
    text = Writer(rng).manifest(spec)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prop.yaml").write_text(text, encoding="utf-8")
        result = load_manifests(Path(tmp))
    assert not result.issues, (text, [str(i) for i in result.issues])
    (manifest,) = result.manifests
    assert canonicalize(manifest.spec) == canonicalize(spec), text
    return spec_hashes(applied_spec(manifest.spec))


def direct(spec: dict[str, Any]) -> SpecHashes:
    return spec_hashes(applied_spec(spec))


# ------------------------------------------------------------------------------- properties


@SETTINGS
@given(specs(), st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_hashes_do_not_depend_on_formatting(
    spec: dict[str, Any], style_a: random.Random, style_b: random.Random
) -> None:
    assert load(spec, style_a) == load(spec, style_b) == direct(spec)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _changed(value: Any, key: Any) -> Any | None:
    """A different value valid in the same place (None: leave this leaf alone)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        if key in ("In", "TimelineIn"):  # keep In < Out
            return value / 2 if value > 0 else None
        return value + 1
    return f"{value}z"


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


@SETTINGS
@given(specs(), st.data(), st.randoms(use_true_random=False))
def test_a_render_relevant_change_changes_the_render_hash_only(
    spec: dict[str, Any], data: st.DataObject, style: random.Random
) -> None:
    before = direct(spec)
    changed = json.loads(json.dumps(spec))
    where = data.draw(st.sampled_from(("timeline", "produceConfig", "mediaMetadata")))
    if where == "timeline":
        candidates = [
            p for p in _leaves(changed["timeline"]) if _changed(_get(spec["timeline"], p), p[-1])
        ]
        path = data.draw(st.sampled_from(candidates))
        new = _changed(_get(spec["timeline"], path), path[-1])
        _set(changed["timeline"], path, new)
    else:
        section = changed.setdefault(where, {"Title": "x"} if where == "mediaMetadata" else {})
        key = data.draw(st.sampled_from(["Xmutated", *section]))
        section[key] = f"{section.get(key, '')}!"
    after = load(changed, style)
    assert after.render != before.render
    assert (after.metadata, after.userdata) == (before.metadata, before.userdata)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@SETTINGS
@given(specs(), st.sampled_from(("title", "description", "coverURL")), TEXT, st.randoms())
def test_title_description_cover_change_the_metadata_hash_only(
    spec: dict[str, Any], field: str, text: str, style: random.Random
) -> None:
    before = direct(spec)
    changed = {**spec, field: f"{spec.get(field, '')}{text}"}
    after = load(changed, style)
    assert after.metadata != before.metadata
    assert (after.render, after.userdata) == (before.render, before.userdata)


@SETTINGS
@given(specs(), TEXT, st.randoms())
def test_user_data_changes_the_userdata_hash_only(
    spec: dict[str, Any], text: str, style: random.Random
) -> None:
    before = direct(spec)
    user = json.loads(json.dumps(spec.get("userData") or {"Extend": {}}))
    user["Extend"]["Xchanged"] = text
    after = load({**spec, "userData": user}, style)
    assert after.userdata != before.userdata
    assert (after.render, after.metadata) == (before.render, before.metadata)
