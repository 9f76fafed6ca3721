"""The media library and the Timeline checks: synchronous validation and the production verdict.

VOD rejects a malformed Timeline at once (InvalidParameter), but discovers bad media only while
producing: then the answer was already "accepted" and the failure arrives later as
``ProduceFailed`` / a ``fail`` event. ``evaluate`` decides that outcome at submit time; the job
reveals it when it is due.

Media durations come from a JSON file (``{"MediaId": seconds}`` or
``[{"MediaId": .., "Duration": ..}]``). In permissive mode (the default) an unknown MediaId is
registered on first use with ``default_media_duration`` (60 s); in strict mode it fails production
with ``InvalidParameter.ResourceNotFound``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.adapters.emulator.apierrors import invalid
from reconciler.adapters.emulator.config import EmulatorConfig
from reconciler.adapters.emulator.store import Store
from reconciler.errors import EmulatorError

TRACK_LIMIT = 100
LIMITED_TRACKS = ("VideoTracks", "ImageTracks", "SubtitleTracks")
CONTENT_BAD = "InvalidParameter.ResourceContentBad"
NOT_FOUND = "InvalidParameter.ResourceNotFound"
CONTENT_BAD_MESSAGE = "The resource operated InputFile is bad"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    duration: float
    error_code: str | None = None
    error_message: str | None = None


def load_media_file(path: Path) -> dict[str, float]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"cannot read the media file {path}: {exc}") from exc
    items: list[tuple[Any, Any]]
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list) and all(isinstance(d, dict) for d in doc):
        items = [(d.get("MediaId"), d.get("Duration")) for d in doc]
    else:
        raise EmulatorError(
            f"{path}: expected {{MediaId: seconds}} or a list of {{MediaId, Duration}} objects"
        )
    out: dict[str, float] = {}
    for media_id, duration in items:
        if not isinstance(media_id, str) or not media_id or not _number(duration) or duration < 0:
            raise EmulatorError(
                f"{path}: bad entry {media_id!r}: {duration!r} (need a MediaId "
                "and a duration in seconds >= 0)"
            )
        out[media_id] = float(duration)
    return out


def parse_timeline(text: str) -> dict[str, Any]:
    """Parse and validate a Timeline parameter; raise InvalidParameter like VOD."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise invalid("Timeline", "It is not a valid JSON string.") from None
    if not isinstance(doc, dict):
        raise invalid("Timeline", "It must be a JSON object.")
    for key in LIMITED_TRACKS:
        tracks = doc.get(key)
        if tracks is not None and not isinstance(tracks, list):
            raise invalid("Timeline", f"{key} must be an array.")
        if isinstance(tracks, list) and len(tracks) > TRACK_LIMIT:
            raise invalid("Timeline", f"At most {TRACK_LIMIT} {key} are allowed.")
    for t, track in enumerate(doc.get("VideoTracks") or []):
        clips = track.get("VideoTrackClips") if isinstance(track, dict) else None
        if not isinstance(track, dict) or not isinstance(clips, list | None):
            raise invalid(
                "Timeline", f"VideoTracks[{t}] must be an object with an array VideoTrackClips."
            )
        for c, clip in enumerate(clips or []):
            where = f"VideoTracks[{t}].VideoTrackClips[{c}]"
            if not isinstance(clip, dict):
                raise invalid("Timeline", f"{where} must be an object.")
            media_id = clip.get("MediaId")
            if not isinstance(media_id, str) or not media_id.strip():
                raise invalid("Timeline", f"{where}.MediaId is required.")
            _check_times(clip, where)
    return doc


def _check_times(clip: dict[str, Any], where: str) -> None:
    for key in ("In", "Out", "TimelineIn", "TimelineOut"):
        value = clip.get(key)
        if value is not None and (not _number(value) or value < 0):
            raise invalid("Timeline", f"{where}.{key} must be a number of seconds >= 0.")
    for a, b in (("In", "Out"), ("TimelineIn", "TimelineOut")):
        if _number(clip.get(a)) and _number(clip.get(b)) and clip[a] >= clip[b]:
            raise invalid("Timeline", f"{where}.{a} must be less than {b}.")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class MediaLibrary:
    """MediaId -> duration, persisted in the store; decides production outcomes."""

    def __init__(self, store: Store, config: EmulatorConfig) -> None:
        self._store = store
        self._config = config

    def seed(self, media: dict[str, float], source: str = "file") -> None:
        for media_id, duration in media.items():
            self._store.put_media(media_id, duration, source)

    def lookup(self, media_id: str) -> float | None:
        duration = self._store.media_duration(media_id)
        if duration is None and self._config.permissive_media:
            duration = self._config.default_media_duration
            self._store.put_media(media_id, duration, "auto")
        return duration

    def evaluate(self, timeline: dict[str, Any]) -> Verdict:
        """The outcome production will have, and the produced video's duration."""
        failure: tuple[str, str] | None = None
        longest = 0.0
        for kind, clip_key in (
            ("VideoTracks", "VideoTrackClips"),
            ("AudioTracks", "AudioTrackClips"),
        ):
            for track in _objects(timeline.get(kind)):
                length = 0.0
                for clip in _objects(track.get(clip_key)):
                    media_id = clip.get("MediaId")
                    if not isinstance(media_id, str) or not media_id:
                        continue
                    clip_len, problem = self._clip(clip, media_id)
                    failure = failure or problem
                    length += clip_len
                if kind == "VideoTracks":
                    longest = max(longest, length)
        if failure:
            return Verdict(False, 0.0, *failure)
        return Verdict(True, round(longest, 4))

    def _clip(self, clip: dict[str, Any], media_id: str) -> tuple[float, tuple[str, str] | None]:
        if media_id in self._config.fail_media_ids:
            return 0.0, (CONTENT_BAD, CONTENT_BAD_MESSAGE)
        duration = self.lookup(media_id)
        if duration is None:
            return 0.0, (NOT_FOUND, f"The resource operated MediaId {media_id} is not found")
        start = float(clip["In"]) if _number(clip.get("In")) else 0.0
        end = float(clip["Out"]) if _number(clip.get("Out")) else duration
        if start >= duration or end > duration:
            return 0.0, (
                CONTENT_BAD,
                f"{CONTENT_BAD_MESSAGE}: clip In/Out {start:g}-{end:g} is "
                f"outside the {duration:g} s of media {media_id}",
            )
        return max(end - start, 0.0), None


def _objects(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
