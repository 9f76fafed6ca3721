"""The VOD Timeline model: checks only what vod-api.md confirms, passes every other key through.

Pure: takes data, returns data. Times are seconds (numbers >= 0), ``In < Out`` and
``TimelineIn < TimelineOut`` when both are given, every video clip names a ``MediaId``, and the
track-count limits of vod-api.md §1.4 hold. Unknown keys are allowed at every level (VOD evolves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

MAX_TRACKS = 100  # per kind, vod-api.md §1.4: video, image and subtitle tracks

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem; ``loc`` is the path into the data, ``on_key`` points at the key."""

    loc: Loc
    message: str
    on_key: bool = False


# A time in seconds. ``strict`` keeps "5" (a string) and booleans out; ints are fine.
Seconds = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


class _PassThrough(BaseModel):
    # ``Field(default=None)`` with a non-Optional type: an absent key is fine, an explicit
    # null is reported ("has no value") instead of being sent to VOD. The models only validate;
    # the data handed on is always the original mapping, never a model dump.
    model_config = ConfigDict(extra="allow", strict=True)


class Clip(_PassThrough):
    """Any track clip: the times it may carry, in seconds."""

    In: Seconds = Field(default=None, description="start inside the source, seconds")
    Out: Seconds = Field(default=None, description="end inside the source, seconds")
    TimelineIn: Seconds = Field(default=None, description="start on the output, seconds")
    TimelineOut: Seconds = Field(default=None, description="end on the output, seconds")
    Duration: Seconds = Field(default=None, description="duration, seconds")

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
    VideoTrackClips: list[VideoTrackClip] = Field(default=None)


class AudioTrack(_PassThrough):
    AudioTrackClips: list[Clip] = Field(default=None)


class ImageTrack(_PassThrough):
    ImageTrackClips: list[Clip] = Field(default=None)


class SubtitleTrack(_PassThrough):
    SubtitleTrackClips: list[Clip] = Field(default=None)


class EffectTrack(_PassThrough):
    # Effect tracks are an IMS feature whose VOD shape is unconfirmed: only "objects in a list".
    EffectTrackItems: list[dict[str, Any]] = Field(default=None)


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

    VideoTracks: list[VideoTrack] = _max_tracks("video tracks (at most 100)")
    AudioTracks: list[AudioTrack] = Field(default=None, description="audio tracks")
    SubtitleTracks: list[SubtitleTrack] = _max_tracks("subtitle tracks (at most 100)")
    ImageTracks: list[ImageTrack] = _max_tracks("legacy image tracks (at most 100)")
    EffectTracks: list[EffectTrack] = Field(default=None, description="effect tracks")


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
