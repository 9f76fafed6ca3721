"""Canonical form and hashes: what decides whether a change costs a render."""

from __future__ import annotations

import json

import pytest

from reconciler.core.canonical import canonical_json, canonicalize, spec_hashes
from reconciler.core.diff import diff_specs

SPEC = {
    "title": "Spring promo",
    "timeline": {
        "VideoTracks": [
            {
                "VideoTrackClips": [
                    {"MediaId": "m1", "In": 0, "Out": 5},
                    {"MediaId": "m2", "In": 1.5, "Out": 7.25},
                ]
            }
        ]
    },
    "produceConfig": {"TemplateGroupId": "tg"},
    "userData": {"Extend": {"campaign": "spring"}},
}


def test_key_order_and_integral_floats_do_not_matter() -> None:
    reordered = json.loads(json.dumps(SPEC))
    reordered["timeline"]["VideoTracks"][0]["VideoTrackClips"][0] = {
        "Out": 5.0,
        "In": 0.0,
        "MediaId": "m1",
    }
    reordered = dict(reversed(list(reordered.items())))
    assert canonical_json(reordered) == canonical_json(SPEC)
    assert spec_hashes(reordered) == spec_hashes(SPEC)


def test_bool_is_not_a_number() -> None:
    assert canonicalize({"a": True}) == {"a": True}
    assert canonical_json({"a": True}) != canonical_json({"a": 1})


def test_hash_parts_are_independent() -> None:
    base = spec_hashes(SPEC)
    retitled = spec_hashes({**SPEC, "title": "Other"})
    assert retitled.render == base.render and retitled.userdata == base.userdata
    assert retitled.metadata != base.metadata
    new_ud = spec_hashes({**SPEC, "userData": {"Extend": {"campaign": "x"}}})
    assert new_ud.render == base.render and new_ud.metadata == base.metadata
    assert new_ud.userdata != base.userdata
    pc = spec_hashes({**SPEC, "produceConfig": {"TemplateGroupId": "other"}})
    assert pc.render != base.render


def test_absent_and_null_optional_fields_hash_alike() -> None:
    assert spec_hashes({**SPEC, "description": None}) == spec_hashes(SPEC)


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        canonicalize({"a": object()})


def test_field_level_diff_names_the_clip() -> None:
    new = json.loads(json.dumps(SPEC))
    new["timeline"]["VideoTracks"][0]["VideoTrackClips"][1]["Out"] = 9
    new["title"] = "Spring promo v2"
    entries = [str(e) for e in diff_specs(SPEC, new)]
    assert entries == [
        "VideoTracks[0].VideoTrackClips[1].Out: 7.25 -> 9",
        'title: "Spring promo" -> "Spring promo v2"',
    ]


def test_diff_of_added_and_removed_items() -> None:
    new = json.loads(json.dumps(SPEC))
    new["timeline"]["VideoTracks"][0]["VideoTrackClips"].pop()
    new["description"] = "cut"
    entries = [str(e) for e in diff_specs(SPEC, new)]
    assert entries[0] == 'description: (absent) -> "cut"'
    assert entries[1].startswith("VideoTracks[0].VideoTrackClips[1]: {")
    assert entries[1].endswith("-> (absent)")


def test_diff_ignores_number_formatting() -> None:
    new = json.loads(json.dumps(SPEC))
    new["timeline"]["VideoTracks"][0]["VideoTrackClips"][0]["Out"] = 5.0
    assert diff_specs(SPEC, new) == []
