"""Field-level diff between two canonical specs.

Paths look like ``VideoTracks[0].VideoTrackClips[1].Out: 5 -> 7``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.core.canonical import canonicalize

_ABSENT: Any = object()


@dataclass(frozen=True)
class DiffEntry:
    path: str
    old: Any = _ABSENT
    new: Any = _ABSENT

    @property
    def kind(self) -> str:
        if self.old is _ABSENT:
            return "added"
        if self.new is _ABSENT:
            return "removed"
        return "changed"

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.old is not _ABSENT:
            out["old"] = self.old
        if self.new is not _ABSENT:
            out["new"] = self.new
        return out


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk(old: Any, new: Any, path: str, out: list[DiffEntry]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            _walk(old.get(key, _ABSENT), new.get(key, _ABSENT), _join(path, key), out)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            _walk(
                old[i] if i < len(old) else _ABSENT,
                new[i] if i < len(new) else _ABSENT,
                f"{path}[{i}]",
                out,
            )
    elif old is _ABSENT and new is _ABSENT:
        return
    elif old is _ABSENT or new is _ABSENT or old != new or type(old) is not type(new):
        out.append(DiffEntry(path, old, new))


def diff_specs(old: dict[str, Any] | None, new: dict[str, Any]) -> list[DiffEntry]:
    """Leaf-level differences; Timeline paths are shown without the ``timeline.`` prefix."""
    entries: list[DiffEntry] = []
    old_c = canonicalize(old or {})
    new_c = canonicalize(new)
    for key in sorted(old_c.keys() | new_c.keys()):
        old_v, new_v = old_c.get(key, _ABSENT), new_c.get(key, _ABSENT)
        both_dicts = isinstance(old_v, dict) and isinstance(new_v, dict)
        prefix = "" if key == "timeline" and both_dicts else key
        _walk(old_v, new_v, prefix, entries)
    return entries
