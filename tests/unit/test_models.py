"""The manifest models and checks, on literal data (no files): exact problems, exact messages."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from reconciler.core.models import (
    Manifest,
    Problem,
    check_document,
    check_timeline,
    format_loc,
    manifest_json_schema,
)

CLIP = ("spec", "timeline", "VideoTracks", 0, "VideoTrackClips", 0)


def doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "Promo",
        "timeline": {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "In": 0, "Out": 5}]}]},
    }
    base.update(spec)
    return {
        "apiVersion": "reconciler/v1",
        "kind": "EditingProject",
        "metadata": {"name": "promo"},
        "spec": {k: v for k, v in base.items() if v is not ...},
    }


def clip(**fields: Any) -> dict[str, Any]:
    return doc(timeline={"VideoTracks": [{"VideoTrackClips": [fields]}]})


def messages(data: object) -> list[tuple[str, str]]:
    return [(format_loc(p.loc), p.message) for p in check_document(data)]


def test_a_valid_document_has_no_problems_and_is_not_modified() -> None:
    data = doc(
        projectId="fb2101bf",
        description="Launch cut",
        coverURL="https://example.com/c.png",
        produceConfig={"TemplateGroupId": "6d11e25ea", "Future": {"x": 1}},
        mediaMetadata={"Title": "Spring promo", "CateId": 7},
        userData={"Extend": {"campaign": "spring"}},
    )
    data["metadata"] |= {"labels": {"team": "growth"}, "annotations": {"reconciler/prune": "no"}}
    before = copy.deepcopy(data)
    assert check_document(data) == []
    assert data == before


def test_unknown_timeline_keys_pass_through_at_every_level() -> None:
    timeline = {
        "Duration": 9.42,
        "NewTopLevelThing": {"a": [1, 2]},
        "VideoTracks": [
            {
                "Type": "Effect",
                "MainTrack": True,
                "VideoTrackClips": [
                    {"MediaId": "m", "Effects": [{"Type": "Text", "X": "0.5"}], "Speed": 2}
                ],
            }
        ],
        "SubtitleTracks": [{"SubtitleTrackClips": [{"Type": "Text", "Content": "hi"}]}],
        "EffectTracks": [{"EffectTrackItems": [{"Type": "VFX", "SubType": "heartsweet"}]}],
    }
    assert check_timeline(timeline) == []


def test_every_problem_is_reported_with_its_location() -> None:
    data = {
        "apiVersion": "reconciler/v2",
        "metadata": {"name": "Promo", "nam": "x"},
        "spec": {
            "tittle": "x",
            "timeline": {
                "VideoTracks": [
                    {"VideoTrackClips": [{"MediaId": "", "In": 5, "Out": 3}, {"In": "a"}]}
                ]
            },
        },
    }
    assert sorted(messages(data)) == [  # in no promised order: the CLI sorts by position
        ("apiVersion", "'apiVersion' must be 'reconciler/v1', not a string ('reconciler/v2')"),
        ("kind", "'kind' is required: add `kind: EditingProject`"),
        ("metadata.nam", "unknown field 'nam': did you mean 'name'?"),
        (
            "metadata.name",
            "name 'Promo' is not valid: use lowercase letters, digits, '-', '.' and '_', "
            "starting and ending with a letter or digit: try 'promo'",
        ),
        (
            "spec.timeline.VideoTracks[0].VideoTrackClips[0].MediaId",
            "'MediaId' is empty: set it to the VOD media ID of the source",
        ),
        (
            "spec.timeline.VideoTracks[0].VideoTrackClips[0].Out",
            "Out (3) must be greater than In (5): swap them or fix the trim",
        ),
        (
            "spec.timeline.VideoTracks[0].VideoTrackClips[1].In",
            "'In' must be a number of seconds, not a string ('a')",
        ),
        (
            "spec.timeline.VideoTracks[0].VideoTrackClips[1].MediaId",
            "'MediaId' is required: every video clip needs the VOD media ID of its source",
        ),
        ("spec.title", "'title' is required: add a title for the project"),
        ("spec.tittle", "unknown field 'tittle': did you mean 'title'?"),
    ]


def test_unknown_keys_point_at_the_key() -> None:
    problems = check_document(doc(tittle="x"))
    assert problems == [
        Problem(("spec", "tittle"), "unknown field 'tittle': did you mean 'title'?", on_key=True)
    ]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("Title", "unknown field 'Title': did you mean 'title'?"),
        ("timeline_file", "unknown field 'timeline_file': did you mean 'timelineFile'?"),
        ("labels", "unknown field 'labels' here: it belongs under metadata.labels"),
        (
            "zzz",
            "unknown field 'zzz': allowed are projectId, title, description, coverURL, timeline, "
            "timelineFile, produceConfig, mediaMetadata, userData",
        ),
    ],
)
def test_did_you_mean(key: str, message: str) -> None:
    assert messages(doc(**{key: "x"})) == [(f"spec.{key}", message)]


def test_top_level_key_that_belongs_in_spec() -> None:
    data = doc()
    data["title"] = "x"
    assert messages(data) == [("title", "unknown field 'title' here: it belongs under spec.title")]


def test_document_must_be_a_mapping() -> None:
    assert messages(["a"]) == [
        ("-", "a manifest must be a mapping with apiVersion, kind, metadata and spec, not a list")
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"MediaId": "m", "In": 5, "Out": 5}, ["Out (5) must be greater than In (5)"]),
        ({"MediaId": "m", "In": 1.5, "Out": 0.25}, ["Out (0.25) must be greater than In (1.5)"]),
        ({"MediaId": "m", "TimelineIn": 2, "TimelineOut": 1}, ["TimelineOut (1) must be greater"]),
        ({"MediaId": "m", "In": 5}, []),
        ({"MediaId": "m", "Out": 5}, []),
        ({"MediaId": "m", "In": 0, "Out": 5.0, "Duration": 5}, []),
        ({"MediaId": "m", "In": "5"}, ["'In' must be a number of seconds, not a string ('5')"]),
        ({"MediaId": "m", "In": True}, ["'In' must be a number of seconds, not a boolean"]),
        ({"MediaId": "m", "Duration": -0.5}, ["'Duration' must be 0 or more (seconds), not -0.5"]),
        ({"MediaId": "m", "Out": float("inf")}, ["'Out' must be a finite number"]),
        ({"MediaId": "m", "In": None}, ["'In' has no value: write one after 'In:' or delete"]),
        ({"MediaId": "  "}, ["'MediaId' is empty: set it to the VOD media ID of the source"]),
        ({"MediaId": 7}, ["'MediaId' must be a string, not a number (7): quote it"]),
        # the order is checked only between two valid times (a wrong one is reported alone)
        ({"MediaId": "m", "In": True, "Out": 0}, ["'In' must be a number of seconds, not a b"]),
        ({"MediaId": "m", "In": 5, "Out": float("nan")}, ["'Out' must be a finite number"]),
        ({"MediaId": "m", "In": float("inf"), "Out": 1}, ["'In' must be a finite number"]),
        ({"MediaId": "m", "In": -1, "Out": -2}, ["'In' must be 0 or more", "'Out' must be 0 or"]),
        ({"MediaId": "m", "In": "9", "Out": 1}, ["'In' must be a number of seconds, not a str"]),
        ({"MediaId": "m", "In": 10**400, "Out": 1}, ["'In' must be a number of seconds, not a"]),
        ({"MediaId": "m", "In": 2, "Out": 10**400}, ["'Out' must be a number of seconds, not"]),
        ({"MediaId": "m", "In": 3, "Out": 10**20}, []),
    ],
)
def test_clip_rules(fields: dict[str, Any], expected: list[str]) -> None:
    got = [p.message for p in check_document(clip(**fields))]
    assert len(got) == len(expected)
    for message, start in zip(got, expected, strict=True):
        assert message.startswith(start)


@pytest.mark.parametrize(
    ("tracks", "clips"),
    [
        ("VideoTracks", "VideoTrackClips"),
        ("AudioTracks", "AudioTrackClips"),
        ("SubtitleTracks", "SubtitleTrackClips"),
        ("ImageTracks", "ImageTrackClips"),
    ],
)
def test_time_order_in_every_kind_of_clip(tracks: str, clips: str) -> None:
    bad = [{"MediaId": "m", "In": 1, "Out": 2}, {"MediaId": "m", "TimelineIn": 4, "TimelineOut": 3}]
    timeline = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}], tracks: [{clips: bad}]}
    expected = [((tracks, 0, clips, 1, "TimelineOut"), "TimelineOut (3) must be greater than ")]
    got = [(p.loc[2:], p.message) for p in check_timeline(timeline)]
    assert [(loc, message[: len(expected[0][1])]) for loc, message in got] == expected
    both = doc(timeline=timeline, timelineFile="t.json")  # reported beside that problem too
    assert any(p.loc[-1] == "TimelineOut" for p in check_document(both))


def test_clip_problem_locations() -> None:
    problems = check_document(clip(MediaId="m", In=5, Out=3, TimelineIn=-1))
    assert sorted(p.loc for p in problems) == [(*CLIP, "Out"), (*CLIP, "TimelineIn")]


@pytest.mark.parametrize("kind", ["VideoTracks", "SubtitleTracks", "ImageTracks"])
def test_track_limits(kind: str) -> None:
    video = [{"VideoTrackClips": [{"MediaId": "m"}]}]
    track = {"VideoTracks": video[0], "SubtitleTracks": {}, "ImageTracks": {}}[kind]
    ok = {"VideoTracks": video, kind: [track] * 100}
    assert check_timeline(ok) == []
    over = {"VideoTracks": video, kind: [track] * 101}
    what = {"VideoTracks": "video", "SubtitleTracks": "subtitle", "ImageTracks": "image"}[kind]
    assert [(p.loc, p.message) for p in check_timeline(over)] == [
        (
            ("spec", "timeline", kind),
            f"101 {what} tracks; VOD allows at most 100: merge tracks or split the project",
        )
    ]


def test_track_limit_still_reports_the_errors_inside_the_tracks() -> None:
    tracks = [{"VideoTrackClips": [{"MediaId": "m"}]}] * 100 + [{"VideoTrackClips": [{}]}]
    locs = [format_loc(p.loc) for p in check_timeline({"VideoTracks": tracks})]
    assert locs == [
        "spec.timeline.VideoTracks[100].VideoTrackClips[0].MediaId",
        "spec.timeline.VideoTracks",
    ]


@pytest.mark.parametrize(
    ("timeline", "ok"),
    [
        ({"AudioTracks": [{"AudioTrackClips": [{"MediaId": "a"}]}]}, True),
        ({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "v"}]}], "AudioTracks": []}, True),
        ({}, False),
        ({"VideoTracks": [], "AudioTracks": []}, False),
        ({"SubtitleTracks": [{"SubtitleTrackClips": []}]}, False),
    ],
)
def test_at_least_one_video_or_audio_track(timeline: dict[str, Any], ok: bool) -> None:
    problems = [(p.loc, p.message) for p in check_timeline(timeline)]
    expected = (
        ("spec", "timeline"),
        "the timeline has no tracks: add VideoTracks or AudioTracks with a clip",
    )
    assert problems == ([] if ok else [expected])


def test_wrong_track_type_is_reported_once() -> None:
    assert [p.message for p in check_timeline({"VideoTracks": "all of them"})] == [
        "'VideoTracks' must be a list, not a string ('all of them')"
    ]


def test_timeline_itself_must_be_a_mapping() -> None:
    assert [(p.loc, p.message) for p in check_timeline([1], prefix=())] == [
        ((), "'timeline' must be a mapping (key: value), not a list")
    ]


def test_user_data_size_boundary() -> None:
    # '{"Extend":""}' is 13 characters of compact JSON
    assert check_document(doc(userData={"Extend": "x" * 242})) == []
    assert [p.message for p in check_document(doc(userData={"Extend": "é" * 243}))] == [
        "userData is 256 characters as compact JSON; VOD takes under 256: shorten Extend or "
        "drop keys"
    ]
    assert [p.message for p in check_document(doc(userData="x"))] == [
        "'userData' must be a mapping (key: value), not a string ('x')"
    ]


def test_media_metadata_byte_limits() -> None:
    assert check_document(doc(mediaMetadata={"Title": "é" * 64, "Description": "d" * 1024})) == []
    problems = check_document(
        doc(mediaMetadata={"Title": "é" * 65, "Description": "d" * 1025, "Tags": "a," * 16 + "b"})
    )
    assert [(format_loc(p.loc), p.message) for p in problems] == [
        (
            "spec.mediaMetadata.Title",
            "'Title' is 130 bytes in UTF-8; VOD allows at most 128: shorten it",
        ),
        (
            "spec.mediaMetadata.Description",
            "'Description' is 1025 bytes in UTF-8; VOD allows at most 1024: shorten it",
        ),
        ("spec.mediaMetadata.Tags", "'Tags' has 17 tags; VOD allows at most 16"),
    ]


def test_timeline_and_timeline_file() -> None:
    assert messages(doc(timelineFile="cut.json")) == [
        ("spec.timelineFile", "use either 'timeline' or 'timelineFile', not both: delete one")
    ]
    assert messages(doc(timeline=...)) == [
        (
            "spec",
            "'timeline' is required: add a timeline, or timelineFile: a path relative to this file",
        )
    ]
    assert messages(doc(timeline=..., timelineFile="cuts/a.yaml")) == []
    assert messages(doc(timeline=..., timelineFile="cut.txt")) == [
        ("spec.timelineFile", "timelineFile 'cut.txt' must name a .json, .yaml or .yml file")
    ]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("spring-promo.v2_final", True),
        ("9", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a b", False),
        ("", False),
    ],
)
def test_names(name: str, ok: bool) -> None:
    data = doc()
    data["metadata"]["name"] = name
    assert (check_document(data) == []) is ok


def test_labels_must_be_strings() -> None:
    data = doc()
    data["metadata"]["labels"] = {"tier": 1, "on": True}
    assert messages(data) == [
        ("metadata.labels.tier", "'tier' must be a string, not a number (1): quote it"),
        ("metadata.labels.on", "'on' must be a string, not a boolean: quote it"),
    ]


def test_format_loc_and_manifest_ref() -> None:
    assert format_loc(()) == "-"
    assert format_loc((*CLIP, "Out")) == "spec.timeline.VideoTracks[0].VideoTrackClips[0].Out"
    m = Manifest("promo", {}, {}, {"title": "t"}, "m.yaml", 1)
    assert (m.ref, m.deps) == ("EditingProject/promo", ())


def test_json_schema_for_editors() -> None:
    schema = manifest_json_schema()
    json.dumps(schema)  # serialisable
    defs = schema["$defs"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["apiVersion", "kind", "metadata", "spec"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["apiVersion"] == {"const": "reconciler/v1", "type": "string"}
    assert defs["Spec"]["additionalProperties"] is False
    assert defs["Metadata"]["additionalProperties"] is False
    assert defs["Metadata"]["properties"]["name"]["pattern"] == "^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
    assert defs["Spec"]["oneOf"] == [{"required": ["timeline"]}, {"required": ["timelineFile"]}]
    for passthrough in ("Timeline", "VideoTrack", "VideoTrackClip", "UserData", "ProduceConfig"):
        assert defs[passthrough]["additionalProperties"] is True
    tracks = defs["Timeline"]["properties"]["VideoTracks"]
    assert tracks["maxItems"] == 100 and tracks["items"] == {"$ref": "#/$defs/VideoTrack"}
    in_ = defs["Clip"]["properties"]["In"]
    assert (in_["type"], in_["minimum"]) == ("number", 0) and "anyOf" not in in_
    assert "MediaId" in defs["VideoTrackClip"]["required"]
