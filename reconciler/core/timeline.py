"""VOD's own objects in a manifest: the Timeline, ProduceConfig, MediaMetadata and UserData.

Pure. They check only what vod-api.md confirms: times are seconds (numbers >= 0), ``In < Out``
and ``TimelineIn < TimelineOut`` when both are given, every video clip names a ``MediaId``, the
track-count limits of §1.4 and the size limits of §3.4/§3.5. Every other key passes through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_TRACKS = 100  # per kind, vod-api.md §1.4: video, image and subtitle tracks
USER_DATA_LIMIT = 256  # characters of compact JSON; stay under it (vod-api.md §3.5)

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem; ``loc`` is the path into the data, ``on_key`` points at the key."""

    loc: Loc
    message: str
    on_key: bool = False


_T = TypeVar("_T")


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null_value", "no value")
    return value


# An optional field: it may be left out, but an explicit null (``In:`` with nothing after it)
# is reported rather than sent to VOD.
Unset = Annotated[_T | None, BeforeValidator(_not_null)]

# A time in seconds. ``strict`` keeps "5" (a string) and booleans out; ints are fine.
Seconds = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


class _PassThrough(BaseModel):
    # The models only validate; the data handed on is always the original mapping, never a dump.
    model_config = ConfigDict(extra="allow", strict=True)


class Clip(_PassThrough):
    """Any track clip: the times it may carry, in seconds."""

    In: Unset[Seconds] = Field(default=None, description="start inside the source, seconds")
    Out: Unset[Seconds] = Field(default=None, description="end inside the source, seconds")
    TimelineIn: Unset[Seconds] = Field(default=None, description="start on the output, seconds")
    TimelineOut: Unset[Seconds] = Field(default=None, description="end on the output, seconds")
    Duration: Unset[Seconds] = Field(default=None, description="duration, seconds")

    @field_validator("Out")
    @classmethod
    def _out_after_in(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("In")
        if start is not None and value <= start:
            raise PydanticCustomError(
                "time_order",
                "Out ({out}) must be greater than In ({start}): swap them or fix the trim",
                {"out": _num(value), "start": _num(start)},
            )
        return value

    @field_validator("TimelineOut")
    @classmethod
    def _timeline_out_after_in(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("TimelineIn")
        if start is not None and value <= start:
            raise PydanticCustomError(
                "time_order",
                "TimelineOut ({out}) must be greater than TimelineIn ({start}): "
                "swap them or fix the placement",
                {"out": _num(value), "start": _num(start)},
            )
        return value


class VideoTrackClip(Clip):
    """A video clip: VOD rejects a clip without a valid MediaId (vod-api.md §1.2)."""

    MediaId: str = Field(description="the VOD media ID of the source")

    @field_validator("MediaId")
    @classmethod
    def _media_id(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError(
                "empty_media_id", "'MediaId' is empty: set it to the VOD media ID of the source"
            )
        return value


class VideoTrack(_PassThrough):
    VideoTrackClips: Unset[list[VideoTrackClip]] = Field(default=None)


class AudioTrack(_PassThrough):
    AudioTrackClips: Unset[list[Clip]] = Field(default=None)


class ImageTrack(_PassThrough):
    ImageTrackClips: Unset[list[Clip]] = Field(default=None)


class SubtitleTrack(_PassThrough):
    SubtitleTrackClips: Unset[list[Clip]] = Field(default=None)


class EffectTrack(_PassThrough):
    # Effect tracks are an IMS feature whose VOD shape is unconfirmed: only "objects in a list".
    EffectTrackItems: Unset[list[dict[str, Any]]] = Field(default=None)


def _max_tracks(what: str) -> Any:
    return Field(default=None, json_schema_extra={"maxItems": MAX_TRACKS}, description=what)


class Timeline(_PassThrough):
    """The Timeline handed to ProduceEditingProjectVideo; keys are VOD's own."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["VideoTracks"], "properties": {"VideoTracks": {"minItems": 1}}},
                {"required": ["AudioTracks"], "properties": {"AudioTracks": {"minItems": 1}}},
            ]
        },
    )

    VideoTracks: Unset[list[VideoTrack]] = _max_tracks("video tracks (at most 100)")
    AudioTracks: Unset[list[AudioTrack]] = Field(default=None, description="audio tracks")
    SubtitleTracks: Unset[list[SubtitleTrack]] = _max_tracks("subtitle tracks (at most 100)")
    ImageTracks: Unset[list[ImageTrack]] = _max_tracks("legacy image tracks (at most 100)")
    EffectTracks: Unset[list[EffectTrack]] = Field(default=None, description="effect tracks")


def _utf8_at_most(field: str, limit: int, value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise PydanticCustomError(
            "too_many_bytes",
            "'{field}' is {size} bytes in UTF-8; VOD allows at most {limit}: shorten it",
            {"field": field, "size": size, "limit": limit},
        )
    return value


class MediaMetadata(_PassThrough):
    """Metadata of the produced video (vod-api.md §3.4); other keys pass through."""

    Title: Unset[str] = Field(default=None, description="at most 128 bytes of UTF-8")
    Description: Unset[str] = Field(default=None, description="at most 1024 bytes of UTF-8")
    Tags: Unset[str] = Field(
        default=None, description="comma-separated, at most 16 tags of 32 bytes"
    )

    @field_validator("Title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _utf8_at_most("Title", 128, value)

    @field_validator("Description")
    @classmethod
    def _description(cls, value: str) -> str:
        return _utf8_at_most("Description", 1024, value)

    @field_validator("Tags")
    @classmethod
    def _tags(cls, value: str) -> str:
        tags = value.split(",")
        if len(tags) > 16:
            raise PydanticCustomError(
                "too_many_tags", "'Tags' has {n} tags; VOD allows at most 16", {"n": len(tags)}
            )
        for tag in tags:
            _utf8_at_most(f"tag {tag!r}", 32, tag)
        return value


class ProduceConfig(_PassThrough):
    """Production settings (vod-api.md §3.3): VOD's own keys, passed through."""


class UserData(_PassThrough):
    """Callback and pass-back data (vod-api.md §3.5): VOD's own keys, size-limited."""

    @model_validator(mode="before")
    @classmethod
    def _size(cls, data: Any) -> Any:
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
