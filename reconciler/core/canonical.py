"""Canonical form of a project spec and the hashes that decide what a change costs.

The canonical form is versioned (``CANONICAL_VERSION``) and recorded in the state. The
state also keeps the last-applied spec itself, so a future version that canonicalises
differently re-hashes the stored spec instead of re-rendering every project.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

CANONICAL_VERSION = 1

# product.md §3: which spec keys cost a render, which only a metadata update.
RENDER_KEYS = ("timeline", "produceConfig", "mediaMetadata")
METADATA_KEYS = ("title", "description", "coverURL")
USERDATA_KEYS = ("userData",)


def canonicalize(value: Any) -> Any:
    """Sorted keys, integral floats as ints (5 == 5.0), -0.0 as 0; everything else as is."""
    kind = type(value)  # exact-type fast paths first: this runs once per value of every spec
    if kind is dict:
        try:
            keys = sorted(value)  # str keys (always, from JSON or YAML): sorted as they are
        except TypeError:  # mixed key types
            keys = None
        if keys is not None and (not keys or type(keys[0]) is str):
            return {k: canonicalize(value[k]) for k in keys}
        return {str(k): canonicalize(value[k]) for k in sorted(value, key=str)}
    if kind is list:
        return [canonicalize(v) for v in value]
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if math.isfinite(value) and value == int(value) else value
    return _canonicalize_other(value)


def _canonicalize_other(value: Any) -> Any:
    """Subclasses of the JSON types and tuples: the same rules, by ``isinstance``."""
    if isinstance(value, dict):
        return {str(k): canonicalize(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonicalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        return value
    raise TypeError(f"not JSON data: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON of the canonical form: what the hashes are computed over."""
    return json.dumps(
        canonicalize(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()


# json.dumps with these options builds an encoder per call; 30,000 calls per cold plan. No
# check for cycles (a fifth of the encoding's time): what is hashed is a loader's data,
# which has none (yamlpos reports a recursive alias; JSON cannot express one).
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def _digest_canonical(value: Any) -> str:
    """``_digest`` of a value already in canonical form (skips canonicalising it again)."""
    if not value:  # {}: a spec without userData, the usual case
        return _EMPTY_DIGEST
    text = _CANONICAL_ENCODER.encode(value)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


_EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()


def _subset(spec: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: spec[k] for k in keys if spec.get(k) is not None}


@dataclass(frozen=True)
class SpecHashes:
    """Hashes of the three parts of a spec that are acted on differently."""

    render: str
    metadata: str
    userdata: str

    def as_dict(self) -> dict[str, str]:
        return {"render": self.render, "metadata": self.metadata, "userdata": self.userdata}


def spec_hashes(spec: dict[str, Any]) -> SpecHashes:
    return SpecHashes(
        render=_digest(_subset(spec, RENDER_KEYS)),
        metadata=_digest(_subset(spec, METADATA_KEYS)),
        userdata=_digest(_subset(spec, USERDATA_KEYS)),
    )


def applied_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of a spec: the canonical form of the parts sent to VOD."""
    keys = ("projectId", *RENDER_KEYS, *METADATA_KEYS, *USERDATA_KEYS)
    result: dict[str, Any] = canonicalize(_subset(spec, keys))
    return result


@dataclass(frozen=True)
class SpecDigest:
    """What the planner needs to recognise an unchanged spec without reading it again:
    the hashes of its applied form and its ``projectId`` (which decides adoption)."""

    hashes: SpecHashes
    project_id: str | None


def _integral_to_int(value: Any) -> Any:
    """``canonicalize`` of plain JSON data (str keys) as the hashes see it: integral floats
    as ints; keys are left in their order (the JSON dump sorts them) and containers with no
    such float below are shared, not copied. Anything else: ``canonicalize`` itself."""
    kind = type(value)
    if kind is dict or kind is list:
        copy: Any = None
        for key, item in value.items() if kind is dict else enumerate(value):
            t = type(item)
            if t is str or t is int or t is bool or item is None:
                continue
            new = _integral_to_int(item)
            if new is not item:
                if copy is None:
                    copy = kind(value)
                copy[key] = new
        return value if copy is None else copy
    if kind is float:
        return int(value) if value.is_integer() else value  # inf and nan are not integer
    if kind is str or kind is int or kind is bool or value is None:
        return value
    return canonicalize(value)


def spec_digest(spec: dict[str, Any], *, canonical: bool = False) -> SpecDigest:
    """``spec_hashes(applied_spec(spec))`` and the projectId, canonicalising only once.

    ``spec`` is plain JSON data as a loader builds it (str keys; str, int, float, bool,
    None, list, dict values). ``canonical``: the caller also knows it holds no integral float
    (``5.0``, ``-0.0``), so that ``canonicalize`` would change nothing the hashes see (key
    order aside, which the JSON dump sorts) and is skipped; otherwise only those floats are
    replaced (``_integral_to_int``).
    """
    keys = ("projectId", *RENDER_KEYS, *METADATA_KEYS, *USERDATA_KEYS)
    applied = _subset(spec, keys)
    if not canonical:
        applied = _integral_to_int(applied)
    hashes = SpecHashes(
        render=_digest_canonical(_subset(applied, RENDER_KEYS)),
        metadata=_digest_canonical(_subset(applied, METADATA_KEYS)),
        userdata=_digest_canonical(_subset(applied, USERDATA_KEYS)),
    )
    project_id = applied.get("projectId")
    return SpecDigest(hashes, project_id if isinstance(project_id, str) else None)
