"""A faster reader for the common manifest file, giving exactly what ``yamlpos`` would.

``yamlpos`` composes libyaml's node graph and converts it in Python: ~150 us a manifest, the
largest part of a cold plan's CPU. ``yaml_rs`` (a Rust parser) builds the data in ~35 us, but
it reads YAML 1.2, where ``yamlpos`` reads YAML 1.1 (SafeLoader's scalars, with the
differences that module lists). So a file takes this way only when nothing in it can read
differently, and the loader composes every other one:

- the text has none of what the two parsers treat differently or this module does not
  handle: tabs, characters libyaml refuses or reads as line breaks (NEL, U+2028, U+2029), a
  lone CR, directives, ``...`` markers, a ``---`` line with content after it, tags, anchors
  and aliases, ``<<`` merge keys, complex (``?``) keys, compactly nested sequences (``- -
  a``), a line indented 100 spaces or more (deep nesting), an empty block scalar at a
  document's end; and no plain value that either
  parser may read as a number unless both read it alike (``12``, ``-3``, ``0.5``,
  ``1.5e+3``; not ``012``, ``0x1F``, ``1_000``, ``1:30``, ``1e3``, ``.5``, ``.inf``), nor a
  YAML 1.1 boolean that YAML 1.2 leaves text (``yes``, ``off``);
- ``yaml_rs`` reads every document between the ``---`` lines without error (a duplicate key
  is one there) as a mapping whose keys are all strings (``yamlpos`` keeps a key's text:
  ``1:`` is "1") and whose floats are finite;
- libyaml parses the text (``_libyaml_parses``: its events, in C), so that what yamlpos
  refuses as YAML is never read here, however leniently yaml_rs would read it.

The loader also needs positions: a document's first line, and where ``metadata.name`` and
``spec.timelineFile`` are (``value_position``, for the usual block layout; any other layout
goes the ``yamlpos`` way). A document with a problem to report goes that way too, which
positions every problem. ``tests/unit/test_fastyaml.py`` checks the property on tables of
the scalars YAML 1.1 and 1.2 read differently, on generated YAML and on mutated manifests.
Without ``yaml_rs`` (a platform with no wheel) or libyaml every file goes the ``yamlpos`` way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

_loads: Callable[[str], Any] | None
try:
    from yaml._yaml import CParser  # libyaml's parser, which yamlpos composes with
    from yaml_rs import DuplicateKeyPolicy, loads
except ImportError:  # pragma: no cover - no wheel for this platform: yamlpos only
    _loads = None
else:  # every option spelled out: what this module relies on must not follow a default
    _loads = partial(loads, parse_datetime=False, duplicate_key_policy=DuplicateKeyPolicy.Error)

__all__ = ["FastDoc", "available", "read", "value_position"]

MAX_CHARS = 1_000_000  # larger files go the yamlpos way (its size budget and messages)
# Deep nesting: libyaml refuses 1,000 levels, and ``yamlpos.to_data`` reports a document it
# cannot convert within Python's recursion limit (~480 levels), both of which yaml_rs reads.
# A block nests one level per column of indentation at most (with "- - a" declined), and
# yaml_rs refuses flow collections nested ~256 deep: a line indented this much goes the
# yamlpos way.
_DEEP = " " * 100
_DEEP_LINE = "\n" + _DEEP

# Any character that needs a closer look (``_rare``): one search, which most files pass.
_RARE = re.compile("[\x00-\x09\x0b-\x1f!%&*<?\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# What libyaml refuses or reads as a line break, and tabs: any of these -> yamlpos (compiled
# on first use: 3 ms, and most files never need it).
_SPECIAL = "[^\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
# At the start of a token: a tag, anchor, alias or complex key (searched for only when one of
# these characters is there; after ":" too, where a flow value may follow a quoted key
# directly, and "?" before anything, which in a flow collection libyaml takes for a complex
# key even without a space after it), or a nested compact sequence. The text's first token is
# checked apart (a leading "^" alternative costs a search its speed: it can no longer skip
# to the characters that may start a match).
_INDICATOR = re.compile(r"[\s\[{,:][!&*?]")
_NESTED = re.compile(r"-[ ]+-(?:\s|$)")
# A plain value the two parsers read differently: a token either may read as a number,
# unless it is one both read alike, or a YAML 1.1 boolean that YAML 1.2 leaves text
# (``yes``, ``off``). As a whole value: after ":", "- ", a flow indicator or a line's
# indentation, not a word of a sentence ("title: Episode 007" is text to both). The text's
# first token is a key, which ``_same`` checks (a key is its text to ``yamlpos``).
_END = r"(?=[\s,\]}]|:(?:\s|$)|$)"
_SAME_NUMBER = r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*(?:[eE][-+][0-9]+)?)?" + _END
_DIFFERENT = (
    r"(?:[-+]?(?:(?=[._]*[0-9])[0-9_.:]*(?:[eE][-+]?[0-9_.]*)?"
    r"|0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][-+]?[0-9]*)?|0[oO][0-7_]*|0[bB][01_]*"
    r"|\.[iI][nN][fF]|\.[nN][aA][nN])"
    r"|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)" + _END
)
# (``[ ]*+`` is possessive: what follows is not a space, so giving spaces back never helps,
# and not trying it is a fifth of the scan)
_ODD_VALUE = re.compile(
    rf"[:\-\[{{,\n][ ]*+(?=[-+._0-9yYnNoO])(?<!-)(?!{_SAME_NUMBER}){_DIFFERENT}"
)
# Blank and comment lines (before a document's first key; a document of only these is empty).
_BLANK = r"(?:[ ]*(?:#[^\n]*)?\r?\n)*"
_LEAD = re.compile(_BLANK)
_EMPTY = re.compile(_BLANK + r"[ ]*(?:#[^\n]*)?\r?\Z")
_MARKER = re.compile(r"^---(.*)$", re.MULTILINE)  # a document start marker ...
# ... with nothing after it but a comment, after a space ("---#" starts a plain scalar)
_MARKER_REST = re.compile(r"(?:[ ]+(?:#.*)?)?\r?")
# A block scalar with no content, then only line breaks to the document's end ("a: |\n"):
# libyaml reads "", yaml_rs "\n".
_EMPTY_BLOCK_AT_END = re.compile(r"[|>][-+0-9]*[ ]*(?:#[^\n]*)?\r?\n(?:[ ]*\r?\n)*[ ]*\Z")


class FastDoc(NamedTuple):
    data: dict[str, Any]
    integral_floats: bool  # holds a float like 5.0 or -0.0 (see yamlpos.Converted)
    line: int  # the 1-based line of the root mapping's first key
    text: str  # the document's own text (the file's, or a part between "---" lines)
    offset: int  # the lines of the file before ``text``

    def position(self, top: str, key: str, value: str) -> tuple[int, int] | None:
        """``value_position`` in the file."""
        found = value_position(self.text, top, key, value)
        return None if found is None else (found[0] + self.offset, found[1])


def available() -> bool:
    return _loads is not None


def read(text: str) -> list[FastDoc] | None:
    """Every non-empty document of ``text`` as ``yamlpos`` would convert it, or ``None`` when
    the file must go the ``yamlpos`` way (see the module docstring)."""
    parse = _loads
    if (
        parse is None
        or len(text) > MAX_CHARS
        or _DEEP_LINE in text
        or text.startswith(("%", "...", _DEEP, "!", "&", "*", "?"))  # see _INDICATOR
        or "\n..." in text
        or (_RARE.search(text) and _rare(text))
        or _NESTED.search(text)
        or _ODD_VALUE.search(text)
    ):
        return None
    parts = [0]
    if text.startswith("---") or "\n---" in text:
        for marker in _MARKER.finditer(text):
            if not _MARKER_REST.fullmatch(marker.group(1)):  # "--- a: 1", "----"
                return None
            parts += (marker.start(), marker.end() + 1)
    parts.append(len(text) + 1)
    docs: list[FastDoc] = []
    for i in range(0, len(parts), 2):
        part = text[parts[i] : parts[i + 1]]
        if _EMPTY.match(part):  # an empty document: yamlpos skips it too
            continue
        doc = _document(parse, part, text.count("\n", 0, parts[i]))
        if doc is None:
            return None
        docs.append(doc)
    if not docs or not _libyaml_parses(text):  # none at all: yamlpos reports "no manifest"
        return None
    return docs


def _libyaml_parses(text: str) -> bool:
    """Whether libyaml parses ``text`` (its events only, in C: ~20 us a manifest). yaml_rs
    reads some texts that libyaml refuses -- an implicit key over two lines in a flow
    mapping, an empty flow entry, a character that cannot start a token -- and such a file
    must get yamlpos's positioned error, not a reading of it."""
    try:
        CParser(text).raw_parse()
    except Exception:
        return False
    return True


def _rare(text: str) -> bool:
    """Whether ``text``, which has one of the characters ``_RARE`` looks for, must go the
    yamlpos way."""
    return bool(
        "<<" in text
        or "\n%" in text
        or re.search(_SPECIAL, text)
        or ("\r" in text and text.count("\r") != text.count("\r\n"))
        or (("!" in text or "&" in text or "*" in text or "?" in text) and _INDICATOR.search(text))
    )


def _document(parse: Callable[[str], Any], text: str, offset: int) -> FastDoc | None:
    if ("|" in text or ">" in text) and _EMPTY_BLOCK_AT_END.search(text):  # (a regex is 6 us)
        return None
    try:
        data = parse(text)
    except Exception:  # any refusal: yamlpos reports it, positioned
        return None
    if data.__class__ is not dict:
        return None
    integral = _same(data)
    if integral is None:
        return None
    start = _LEAD.match(text).end()  # type: ignore[union-attr]
    return FastDoc(data, integral, offset + text.count("\n", 0, start) + 1, text, offset)


def _same(root: dict[str, Any]) -> bool | None:
    """Whether ``root`` holds a float like 5.0, or ``None`` when it is not what ``yamlpos``
    converts its source to: a key that is not a string, a float that is not finite, or a
    string that a YAML 1.1 resolver reads as something else when plain (see ``read``)."""
    integral = False
    stack: list[Any] = [root]
    push, pop = stack.append, stack.pop
    while stack:
        node = pop()
        if node.__class__ is dict:
            try:
                "".join(node)  # every key a string (in C; this is a hot loop)
            except TypeError:
                return None
            node = node.values()
        for item in node:
            kind = item.__class__
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if kind is dict or kind is list:
                push(item)
            elif kind is float:
                if item - item != 0:  # inf or nan: yamlpos reports it
                    return None
                if item.is_integer():
                    integral = True
            else:
                return None
    return integral


_TOPS: dict[str, re.Pattern[str]] = {}  # root key -> its block mapping's first line


def value_position(text: str, top: str, key: str, value: str) -> tuple[int, int] | None:
    """The 1-based line and column where the block mapping ``top:`` (a root key) holds
    ``key: value`` (plain or simply quoted, on the key's line) -- where ``yamlpos.locate``
    would point -- or ``None`` when the layout is any other (the caller then composes)."""
    pattern = _TOPS.get(top)
    if pattern is None:
        pattern = _TOPS[top] = re.compile(
            rf"^{re.escape(top)}[ ]*:[ ]*(?:#[^\n]*)?\r?$", re.MULTILINE
        )
    found = pattern.search(text)
    if found is None:
        return None
    at = found.end() + 1
    indent = -1
    line = text.count("\n", 0, at) + 1
    while at < len(text):
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        row = text[at:end].rstrip("\r")
        body = row.lstrip(" ")
        if body and not body.startswith("#"):
            depth = len(row) - len(body)
            if indent < 0:
                if depth == 0:
                    return None
                indent = depth
            if depth < indent:
                return None
            if depth == indent and body.startswith(key):
                rest = body[len(key) :].lstrip(" ")
                if rest.startswith(":"):
                    shown = rest[1:].lstrip(" ")
                    if not shown:  # the value is on a later line
                        return None
                    col = len(row) - len(shown) + 1
                    if shown[:1] in ("'", '"'):  # quoted: the name itself, no escapes
                        closing = 1 + len(value)
                        if (
                            not shown.startswith(value, 1)
                            or shown[closing : closing + 1] != shown[0]
                        ):
                            return None
                        after = shown[closing + 1 :]
                    elif shown.startswith(value):
                        after = shown[len(value) :]
                    else:
                        return None
                    if after and not (after[0] == " " and after.lstrip(" ")[:1] in ("", "#")):
                        return None  # more of the value, or on later lines
                    return line, col
        at = end + 1
        line += 1
    return None
