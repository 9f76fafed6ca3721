"""The ``reconciler/v1`` EditingProject manifest: its models, checks and the JSON Schema.

Pure: no files, clock or environment. The models (pydantic-validated TypedDicts) validate
plain JSON data and describe it for editors; the data handed on (``Manifest.spec``) is always
the original mapping, never what validation returns.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Required

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypedDict

from reconciler.core.timeline import (
    Loc,
    MediaMetadata,
    Problem,
    ProduceConfig,
    SizedUserData,
    Timeline,
    time_order,
    timeline_checks,
)

__all__ = [
    "API_VERSION",
    "KIND",
    "EditingProjectDocument",
    "Loc",
    "Manifest",
    "Problem",
    "Timeline",
    "check_document",
    "check_timeline",
    "format_loc",
    "manifest_json_schema",
]

API_VERSION = "reconciler/v1"
KIND = "EditingProject"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"


@dataclass(frozen=True)
class Manifest:
    """One valid manifest, as the planner sees it (docs/architecture.md)."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]  # original JSON data; timelineFile resolved and inlined as "timeline"
    path: str  # file it came from, relative to the cwd when under it
    line: int  # 1-based line where the document's mapping starts
    deps: tuple[str, ...] = ()  # other files read (timelineFile)

    @property
    def ref(self) -> str:
        return f"{KIND}/{self.name}"


# TypedDicts, as in ``timeline``: a field may be left out unless ``Required``; null is a
# type error ("has no value"); unknown keys are errors here (``extra="forbid"``).
_STRICT = ConfigDict(extra="forbid", strict=True)


@with_config(_STRICT)
class Metadata(TypedDict, total=False):
    name: Required[
        Annotated[
            str, Field(max_length=128, pattern=NAME_PATTERN, description="unique project name")
        ]
    ]
    labels: Annotated[dict[str, str], Field(description="for selection; never sent to VOD")]
    annotations: Annotated[dict[str, str], Field(description="free-form; never sent")]


def _title(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty_title", "'title' is empty: give the project a title")
    return value


def _timeline_file(value: str) -> str:
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
        raise PydanticCustomError(
            "absolute_timeline_file",
            "timelineFile {path} is absolute: write it relative to this manifest",
            {"path": repr(value)},
        )
    if not value.lower().endswith((".json", ".yaml", ".yml")):
        raise PydanticCustomError(
            "timeline_file_type",
            "timelineFile {path} must name a .json, .yaml or .yml file",
            {"path": repr(value)},
        )
    return value


@with_config(
    ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["timeline"]}, {"required": ["timelineFile"]}]},
    )
)
class Spec(TypedDict, total=False):
    projectId: Annotated[str, Field(min_length=1, description="adopt this VOD project")]
    title: Required[Annotated[str, AfterValidator(_title), Field(description="project title")]]
    description: str
    coverURL: str
    timeline: Annotated[Timeline, Field(description="the VOD Timeline (VOD's own keys)")]
    timelineFile: Annotated[
        str,
        Field(min_length=1, description=".json/.yaml Timeline, relative to this file"),
        AfterValidator(_timeline_file),
    ]
    produceConfig: ProduceConfig
    mediaMetadata: MediaMetadata
    userData: SizedUserData


@with_config(ConfigDict(extra="forbid", strict=True, title="reconciler EditingProject"))
class EditingProjectDocument(TypedDict):
    """A reconciler/v1 EditingProject manifest: one VOD online-editing project (product.md §2)."""

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["EditingProject"]
    metadata: Metadata
    spec: Spec


_DOCUMENT = TypeAdapter(EditingProjectDocument)
_TIMELINE = TypeAdapter(Timeline)

_SECTIONS: dict[Loc, tuple[str, ...]] = {
    (): tuple(EditingProjectDocument.__annotations__),
    ("metadata",): tuple(Metadata.__annotations__),
    ("spec",): tuple(Spec.__annotations__),
}
_MISSING_HINT = {
    "apiVersion": f"add `apiVersion: {API_VERSION}`",
    "kind": f"add `kind: {KIND}`",
    "metadata": "add `metadata:` with a `name:`",
    "spec": "add `spec:` with a title and a timeline",
    "name": "add `name:` (lowercase letters, digits, '-', '.', '_')",
    "title": "add a title for the project",
    "MediaId": "every video clip needs the VOD media ID of its source",
}


def format_loc(loc: Loc) -> str:
    """``("spec", "timeline", "VideoTracks", 0, "Out")`` -> ``spec.timeline.VideoTracks[0].Out``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "-"


def _label(loc: Loc, root: str) -> str:
    if not loc:
        return root
    if isinstance(loc[-1], int):
        return f"{_label(loc[:-1], root)}[{loc[-1]}]"
    return loc[-1]


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    return "a list" if isinstance(value, list) else "a mapping"


def _suggest_name(value: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", value.lower()).strip("._-")[:128].rstrip("._-")
    return f": try {slug!r}" if slug else ""


def _unknown_key(key: str, section: Loc) -> str:
    allowed = _SECTIONS.get(section, ())
    by_lower = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"unknown field {key!r}: did you mean {by_lower[close[0]]!r}?"
    for other, fields in _SECTIONS.items():
        if other != section and key in fields:
            return f"unknown field {key!r} here: it belongs under {format_loc((*other, key))}"
    return f"unknown field {key!r}: allowed are {', '.join(allowed)}"


def _message(err: ErrorDetails, loc: Loc, root: str) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    name = _label(loc, root)
    if kind == "missing":
        return f"{name!r} is required: {_MISSING_HINT.get(name, 'add it')}"
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), loc[:-1])
    if kind == "null_value" or (value is None and kind.endswith("_type")):
        return f"{name!r} has no value: write one after '{name}:' or delete the line"
    if kind == "literal_error":
        return f"{name!r} must be {ctx.get('expected')}, not {_kind_of(value)}"
    if kind == "string_type":
        quote = ": quote it" if isinstance(value, int | float) else ""
        return f"{name!r} must be a string, not {_kind_of(value)}{quote}"
    if kind in ("float_type", "int_type", "float_parsing", "int_parsing"):
        return f"{name!r} must be a number of seconds, not {_kind_of(value)}"
    if kind == "greater_than_equal":
        return f"{name!r} must be 0 or more (seconds), not {value}"
    if kind == "finite_number":
        return f"{name!r} must be a finite number"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{name!r} must be a mapping (key: value), not {_kind_of(value)}"
    if kind == "list_type":
        return f"{name!r} must be a list, not {_kind_of(value)}"
    if kind == "string_too_short":
        return f"{name!r} is empty: give it a value"
    if kind == "string_too_long":
        return (
            f"{name!r} is {len(str(value))} characters long; at most "
            f"{ctx.get('max_length')} are allowed: shorten it"
        )
    if kind == "string_pattern_mismatch" and name == "name":
        return (
            f"name {value!r} is not valid: use lowercase letters, digits, '-', '.' and '_', "
            f"starting and ending with a letter or digit{_suggest_name(str(value))}"
        )
    return err["msg"]


def _validate(model: TypeAdapter[Any], data: object, prefix: Loc, root: str) -> list[Problem]:
    try:
        model.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            full = (*prefix, *loc)
            on_key = err["type"] == "extra_forbidden"
            problems.append(Problem(full, _message(err, full, root), on_key))
        return problems
    return []


def check_timeline(data: object, prefix: Loc = ("spec", "timeline")) -> list[Problem]:
    """Every problem in one Timeline; ``loc`` starts with ``prefix``."""
    problems = _validate(_TIMELINE, data, prefix, "timeline")
    checked = [*time_order(data), *timeline_checks(data)]
    problems += [Problem((*prefix, *p.loc), p.message, p.on_key) for p in checked]
    return problems


def check_document(data: object) -> list[Problem]:
    """Every problem in one manifest document (``loc`` from the document root)."""
    if not isinstance(data, dict):
        return [
            Problem(
                (),
                f"a manifest must be a mapping with apiVersion, kind, metadata and "
                f"spec, not {_kind_of(data)}",
            )
        ]
    problems = _validate(_DOCUMENT, data, (), "document")
    spec = data.get("spec")
    if isinstance(spec, dict):
        problems += [
            Problem(("spec", "timeline", *p.loc), p.message, p.on_key)
            for p in time_order(spec.get("timeline"))
        ]
        if "timeline" in spec and "timelineFile" in spec:
            problems.append(
                Problem(
                    ("spec", "timelineFile"),
                    "use either 'timeline' or 'timelineFile', not both: delete one",
                    on_key=True,
                )
            )
        elif "timeline" not in spec and "timelineFile" not in spec:
            problems.append(
                Problem(
                    ("spec",),
                    "'timeline' is required: add a timeline, or "
                    "timelineFile: a path relative to this file",
                )
            )
        elif isinstance(spec.get("timeline"), dict):
            problems += [
                Problem(("spec", "timeline", *p.loc), p.message, p.on_key)
                for p in timeline_checks(spec["timeline"])
            ]
    return problems


def _tidy(node: Any) -> None:
    """Drop generated per-property titles and the nulls: an optional key may be absent, not null."""
    if isinstance(node, dict):
        for prop in (node.get("properties") or {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
                if prop.get("default", 0) is None:
                    del prop["default"]
                choices = prop.get("anyOf")
                if isinstance(choices, list) and len(choices) == 2 and {"type": "null"} in choices:
                    del prop["anyOf"]
                    prop.update(next(c for c in choices if c != {"type": "null"}))
        for child in node.values():
            _tidy(child)
    elif isinstance(node, list):
        for child in node:
            _tidy(child)


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one manifest document, for editors and CI."""
    schema = _DOCUMENT.json_schema()
    _tidy(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }
