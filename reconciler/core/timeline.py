"""VOD's own objects in a manifest: the Timeline, ProduceConfig, MediaMetadata and UserData.

Pure. They check only what vod-api.md confirms: times are seconds (numbers >= 0), ``In < Out``
and ``TimelineIn < TimelineOut`` when both are given, every video clip names a ``MediaId``, the
track-count limits of §1.4 and the size limits of §3.4/§3.5. Every other key passes through.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated, Any, Required

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

MAX_TRACKS = 100  # per kind, vod-api.md §1.4: video, image and subtitle tracks
USER_DATA_LIMIT = 256  # characters of compact JSON; stay under it (vod-api.md §3.5)

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem; ``loc`` is the path into the data, ``on_key`` points at the key."""

    loc: Loc
    message: str
    on_key: bool = False


# The models are TypedDicts, not BaseModels: validating one builds no object per clip and
# track (model instances were most of a manifest's validation time), and the data handed on
# is always the original mapping anyway. Every field may be left out, except where
# ``Required``; an explicit null (``In:`` with nothing after it) is a type error, which
# ``models._message`` words as "has no value" rather than sending it to VOD.
_PASS_THROUGH = ConfigDict(extra="allow", strict=True)  # VOD's own keys: unknown ones pass


# A time in seconds. ``strict`` keeps "5" (a string) and booleans out; ints are fine.
Seconds = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


@with_config(_PASS_THROUGH)
class Clip(TypedDict, total=False):
    """Any track clip: the times it may carry, in seconds."""

    In: Annotated[Seconds, Field(description="start inside the source, seconds")]
    Out: Annotated[Seconds, Field(description="end inside the source, seconds")]
    TimelineIn: Annotated[Seconds, Field(description="start on the output, seconds")]
    TimelineOut: Annotated[Seconds, Field(description="end on the output, seconds")]
    Duration: Annotated[Seconds, Field(description="duration, seconds")]


def _media_id(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError(
            "empty_media_id", "'MediaId' is empty: set it to the VOD media ID of the source"
        )
    return value


@with_config(_PASS_THROUGH)
class VideoTrackClip(Clip, total=False):
    """A video clip: VOD rejects a clip without a valid MediaId (vod-api.md §1.2)."""

    MediaId: Required[
        Annotated[
            str, AfterValidator(_media_id), Field(description="the VOD media ID of the source")
        ]
    ]


@with_config(_PASS_THROUGH)
class VideoTrack(TypedDict, total=False):
    VideoTrackClips: list[VideoTrackClip]


@with_config(_PASS_THROUGH)
class AudioTrack(TypedDict, total=False):
    AudioTrackClips: list[Clip]


@with_config(_PASS_THROUGH)
class ImageTrack(TypedDict, total=False):
    ImageTrackClips: list[Clip]


@with_config(_PASS_THROUGH)
class SubtitleTrack(TypedDict, total=False):
    SubtitleTrackClips: list[Clip]


@with_config(_PASS_THROUGH)
class EffectTrack(TypedDict, total=False):
    # Effect tracks are an IMS feature whose VOD shape is unconfirmed: only "objects in a list".
    EffectTrackItems: list[dict[str, Any]]


def _tracks(what: str, *, limited: bool = True) -> Any:
    if limited:
        return Field(json_schema_extra={"maxItems": MAX_TRACKS}, description=what)
    return Field(description=what)


@with_config(
    ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["VideoTracks"], "properties": {"VideoTracks": {"minItems": 1}}},
                {"required": ["AudioTracks"], "properties": {"AudioTracks": {"minItems": 1}}},
            ]
        },
    )
)
class Timeline(TypedDict, total=False):
    """The Timeline handed to ProduceEditingProjectVideo; keys are VOD's own."""

    VideoTracks: Annotated[list[VideoTrack], _tracks("video tracks (at most 100)")]
    AudioTracks: Annotated[list[AudioTrack], _tracks("audio tracks", limited=False)]
    SubtitleTracks: Annotated[list[SubtitleTrack], _tracks("subtitle tracks (at most 100)")]
    ImageTracks: Annotated[list[ImageTrack], _tracks("legacy image tracks (at most 100)")]
    EffectTracks: Annotated[list[EffectTrack], _tracks("effect tracks", limited=False)]


def _utf8_at_most(field: str, limit: int, value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise PydanticCustomError(
            "too_many_bytes",
            "'{field}' is {size} bytes in UTF-8; VOD allows at most {limit}: shorten it",
            {"field": field, "size": size, "limit": limit},
        )
    return value


def _title_bytes(value: str) -> str:
    return _utf8_at_most("Title", 128, value)


def _description_bytes(value: str) -> str:
    return _utf8_at_most("Description", 1024, value)


def _tags(value: str) -> str:
    tags = value.split(",")
    if len(tags) > 16:
        raise PydanticCustomError(
            "too_many_tags", "'Tags' has {n} tags; VOD allows at most 16", {"n": len(tags)}
        )
    for tag in tags:
        _utf8_at_most(f"tag {tag!r}", 32, tag)
    return value


@with_config(_PASS_THROUGH)
class MediaMetadata(TypedDict, total=False):
    """Metadata of the produced video (vod-api.md §3.4); other keys pass through."""

    Title: Annotated[
        str,
        AfterValidator(_title_bytes),
        Field(description="at most 128 bytes of UTF-8"),
    ]
    Description: Annotated[
        str,
        AfterValidator(_description_bytes),
        Field(description="at most 1024 bytes of UTF-8"),
    ]
    Tags: Annotated[
        str,
        AfterValidator(_tags),
        Field(description="comma-separated, at most 16 tags of 32 bytes"),
    ]


@with_config(_PASS_THROUGH)
class ProduceConfig(TypedDict, total=False):
    """Production settings (vod-api.md §3.3): VOD's own keys, passed through."""


@with_config(_PASS_THROUGH)
class UserData(TypedDict, total=False):
    """Callback and pass-back data (vod-api.md §3.5): VOD's own keys, size-limited."""


def _user_data_size(data: Any) -> Any:
    if isinstance(data, dict):
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str))
        if size >= USER_DATA_LIMIT:
            raise PydanticCustomError(
                "user_data_too_long",
                "userData is {size} characters as compact JSON; VOD takes under {limit}: "
                "shorten Extend or drop keys",
                {"size": size, "limit": USER_DATA_LIMIT},
            )
    return data


SizedUserData = Annotated[UserData, BeforeValidator(_user_data_size)]  # as a spec holds it


_LIMITED = (
    ("VideoTracks", "video tracks"),
    ("SubtitleTracks", "subtitle tracks"),
    ("ImageTracks", "image tracks"),
)


def timeline_checks(data: object) -> list[Problem]:
    """Whole-Timeline checks a field type cannot express; ``loc`` is relative to the Timeline.

    Kept out of pydantic so they run even when some field is wrong (every error is reported).
    """
    if not isinstance(data, dict):
        return []
    problems = [
        Problem(
            (key,),
            f"{len(tracks)} {what}; VOD allows at most {MAX_TRACKS}: "
            "merge tracks or split the project",
        )
        for key, what in _LIMITED
        if isinstance(tracks := data.get(key), list) and len(tracks) > MAX_TRACKS
    ]
    main = [data.get("VideoTracks", []), data.get("AudioTracks", [])]
    # Only when both are absent or empty lists; a wrong type is already reported by the model.
    if all(isinstance(t, list) and not t for t in main):
        problems.append(
            Problem((), "the timeline has no tracks: add VideoTracks or AudioTracks with a clip")
        )
    return problems


_CLIPS = (
    ("VideoTracks", "VideoTrackClips"),
    ("AudioTracks", "AudioTrackClips"),
    ("SubtitleTracks", "SubtitleTrackClips"),
    ("ImageTracks", "ImageTrackClips"),
)
_ORDER = (
    ("In", "Out", "Out ({out}) must be greater than In ({start}): swap them or fix the trim"),
    (
        "TimelineIn",
        "TimelineOut",
        "TimelineOut ({out}) must be greater than TimelineIn ({start}): "
        "swap them or fix the placement",
    ),
)


_NUMBER = (int, float)


def _seconds(value: object) -> float | None:
    """``value`` as the model's ``Seconds`` reads it, or None where it reports a problem."""
    if type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            return None
    if type(value) is not float or not math.isfinite(value) or value < 0:
        return None
    return value


def time_order(data: object) -> list[Problem]:
    """``Out`` after ``In``, ``TimelineOut`` after ``TimelineIn``, in every clip where both
    are valid times (a wrong one is the model's to report); ``loc`` relative to the Timeline.

    Part of the model's checks, wherever a Timeline is validated, but kept out of pydantic:
    a validator there would cost a Python call per clip and build each clip's dict."""
    if not isinstance(data, dict):
        return []
    problems = []
    for tracks_key, clips_key in _CLIPS:
        tracks = data.get(tracks_key)
        for i, track in enumerate(tracks if type(tracks) is list else ()):
            clips = track.get(clips_key) if type(track) is dict else None
            for j, clip in enumerate(clips if type(clips) is list else ()):
                if type(clip) is not dict:
                    continue
                for start_key, end_key, message in _ORDER:
                    start, end = clip.get(start_key), clip.get(end_key)
                    if start is None or end is None:
                        continue
                    if type(start) in _NUMBER and type(end) in _NUMBER and end > start:
                        continue  # in order (the usual case), whatever else is wrong
                    start, end = _seconds(start), _seconds(end)
                    if start is not None and end is not None and end <= start:
                        text = message.format(out=_num(end), start=_num(start))
                        problems.append(Problem((tracks_key, i, clips_key, j, end_key), text))
    return problems
