"""YAML source -> plain JSON data, keeping the node graph so every error can name line:col.

We compose (libyaml's C parser when present) instead of ``yaml.safe_load`` and build the data
ourselves: the node graph carries ``start_mark`` positions, which are looked up lazily, only for
the values an error is about (cfn-lint ``decode/``, dvc ``utils/strictyaml.py``). YAML semantics
are SafeLoader's (YAML 1.1) with these deliberate differences, because the result must be JSON:

- a timestamp (``2024-05-01``) stays the string written, not a ``date``;
- a mapping key is the key's text (``on:`` is the key "on", ``1:`` the key "1"); complex keys,
  duplicate keys, ``!!binary``, NaN/infinity and unknown tags are reported;
- ``<<`` merge keys work as in PyYAML; aliases are expanded (with a size budget).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.adapters.discover import SourceError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
TIMESTAMP, MERGE, VALUE = _T + "timestamp", _T + "merge", _T + "value"
MAP, SEQ = _T + "map", _T + "seq"
_AS_TEXT = frozenset((STR, TIMESTAMP, MERGE, VALUE))
MAX_VALUES = 2_000_000  # per document, after alias expansion ("billion laughs" guard)

_CONSTRUCTOR = yaml.SafeLoader.yaml_constructors  # tag -> unbound SafeConstructor method
_SAFE = yaml.constructor.SafeConstructor()

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class NodeProblem:
    """A value that has no JSON meaning; ``node`` is where it is."""

    node: Node
    message: str
    on_key: bool = False


def yaml_error(exc: yaml.YAMLError, text: str) -> SourceError:
    """A PyYAML error as a positioned, readable message."""
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        at = max(text.find(chr(exc.character)), 0)  # the reader stops at the first one
        line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        return SourceError(
            line,
            col,
            f"character U+{exc.character:04X} is not allowed in YAML ({exc.reason}): remove it",
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context == "while scanning a simple key" and cmark is not None and mark is not None:
        # libyaml notices the missing ':' a line later; the key it was scanning is the culprit
        mark, cmark, context = cmark, mark, "noticed"
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.split("\n")
    here = lines[line - 1][col - 1 : col] if line <= len(lines) else ""
    if here == "\t" or "tab character" in problem:
        return SourceError(
            line,
            col,
            "tab character in indentation: YAML indents with spaces "
            "only; replace the tab with spaces",
        )
    if context and problem.startswith("but "):  # the composer's "expected one, but found two"
        problem = f"{context}, {problem}"
    elif context and cmark is not None and cmark is not mark:
        problem += f" ({context} at {cmark.line + 1}:{cmark.column + 1})"
    return SourceError(line, col, f"invalid YAML: {problem}")


_TAGS: dict[str, str] = {}  # short plain scalar text -> resolved tag (a function of the text)
_RESOLVER = yaml.resolver.Resolver()
# First characters some implicit resolver claims (bool, int, float, null, timestamp, merge,
# value, yaml); a plain scalar starting with any other is a string without asking.
_CLAIMED = frozenset("yYnNtTfFoO-+0123456789.~<=!&*")


def _any_implicit() -> re.Pattern[str]:
    """One regex that every text some implicit resolver claims matches: the resolver tries
    only those registered for the text's first character, so a text this does not match is
    a string for certain (one C-level match instead of the resolver's loop in Python)."""
    parts: dict[str, bool] = {}
    for resolvers in _RESOLVER.yaml_implicit_resolvers.values():
        for _, regexp in resolvers:
            parts[regexp.pattern] = bool(regexp.flags & re.VERBOSE)
    return re.compile(
        "|".join(f"(?:{p})" if verbose else f"(?-x:{p})" for p, verbose in parts.items()),
        re.VERBOSE,
    )


_IMPLICIT = _any_implicit()


def _plain_tag(text: str) -> str:
    """The tag PyYAML's resolver gives a plain (unquoted, untagged) scalar."""
    if text and text[0] not in _CLAIMED:
        return STR
    tag = _TAGS.get(text)
    if tag is None:
        if _IMPLICIT.match(text) is None:  # e.g. the long hex ids of VOD media: not cached
            tag = STR
        else:
            tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        if len(text) <= 24 and len(_TAGS) < 50_000:
            _TAGS[text] = tag
    return tag


def tag_of(node: Node) -> str:
    """A node's resolved tag. Untagged nodes come from ``compose`` with a provisional tag,
    ``slice(kind, value, implicit)`` (see ``_FastLoader``), resolved on first use."""
    tag: Any = node.tag
    if tag.__class__ is slice:
        kind, implicit = tag.start, tag.step
        if kind is ScalarNode:
            tag = _plain_tag(node.value) if implicit[0] else STR
        else:
            tag = MAP if kind is MappingNode else SEQ
        node.tag = tag
    return tag  # type: ignore[no-any-return]


class _FastLoader(_Loader):
    """The safe loader with the composer's per-node Python calls turned into C calls.

    For every node the composer calls ``descend_resolver``/``ascend_resolver`` (path
    resolvers, which we do not use) and, for every node without an explicit tag,
    ``resolve``: at a million nodes per 10,000 manifests those Python calls were a third of
    the parse. Builtins stand in: ``resolve`` is ``slice``, so the node's tag is a record of
    its (kind, value, implicit) arguments, which ``tag_of`` (and ``to_data``, inline)
    resolves the way PyYAML's resolver would.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.resolve = slice  # type: ignore[method-assign]
        self.descend_resolver = slice  # type: ignore[assignment,method-assign]
        self.ascend_resolver = tuple  # type: ignore[assignment,method-assign]


def compose_all(text: str) -> Iterator[Node]:
    """Every document's node graph (empty documents included as null scalars)."""
    return yaml.compose_all(text, Loader=_FastLoader)


def compose(text: str) -> Node | None:
    """The single document of ``text``; ``None`` when it is empty."""
    return yaml.compose(text, Loader=_FastLoader)


def is_empty(node: Node) -> bool:
    """An empty document (or one that is only ``null``)."""
    return node.__class__ is ScalarNode and tag_of(node) == NULL


def position(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


class _Converter:
    __slots__ = ("budget", "integral_floats", "problems", "seen")

    def __init__(self) -> None:
        self.integral_floats = False
        self.problems: list[NodeProblem] = []
        self.seen: set[tuple[int, str]] = set()
        self.budget = MAX_VALUES

    def problem(self, node: Node, message: str, on_key: bool = False) -> None:
        if (id(node), message) not in self.seen:  # an alias repeats its anchor's problems
            self.seen.add((id(node), message))
            self.problems.append(NodeProblem(node, message, on_key))

    def value(self, node: Node) -> Any:
        cls, tag = node.__class__, node.tag  # str, or a slice: see _FastLoader
        tag_kind: Any = tag.__class__
        if cls is MappingNode:
            if tag_kind is not slice and tag != MAP:
                self.unsupported(node)
            return self.mapping(node)  # type: ignore[arg-type]
        if cls is SequenceNode:
            if tag_kind is not slice and tag != SEQ:
                self.unsupported(node)
            self.budget -= len(node.value)
            if self.budget < 0:
                raise _TooBig
            return [self.value(child) for child in node.value]
        text = node.value
        if tag_kind is slice:  # tag_of(node), inline: this runs for most scalars
            if not tag.step[0] or (text and text[0] not in _CLAIMED):  # type: ignore[attr-defined]
                return text  # quoted, or plain text no resolver claims: a string
            tag = node.tag = _plain_tag(text)
        if tag in _AS_TEXT:
            return text
        if tag == INT and text.isdigit() and (text[0] != "0" or len(text) == 1):
            return int(text)
        if tag == NULL:
            return None
        try:
            if tag == INT:
                return _CONSTRUCTOR[INT](_SAFE, node)
            if tag == BOOL:
                return _SAFE.bool_values[text.lower()]
            if tag == FLOAT:
                try:  # what PyYAML's constructor computes whenever float() takes the text
                    number: float = float(text)
                except ValueError:  # sexagesimal, ".inf", "1__0.5": PyYAML's own rules
                    number = _CONSTRUCTOR[FLOAT](_SAFE, node)
                if number - number != 0:  # inf or nan
                    self.problem(node, f"{text!r} is not a finite number; JSON (and VOD) has none")
                elif number.is_integer():  # 5.0, -0.0: what canonicalising changes
                    self.integral_floats = True
                return number
        except (ValueError, KeyError, IndexError):  # an explicit tag on text not of that type
            self.problem(node, f"{text!r} is not a valid {tag.replace(_T, '!!')}: fix or untag it")
            return text
        self.unsupported(node)
        return text

    def unsupported(self, node: Node) -> None:
        shown = node.tag.replace(_T, "!!")
        self.problem(
            node,
            f"YAML tag {shown!r} is not supported here: manifests hold plain JSON-like data; "
            "remove the tag",
        )

    def mapping(self, node: MappingNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[Node] = []
        pairs = node.value
        self.budget -= len(pairs)
        if self.budget < 0:
            raise _TooBig
        for key_node, value_node in pairs:
            if key_node.__class__ is not ScalarNode:
                self.problem(
                    key_node,
                    "a mapping key must be a plain string, not a "
                    f"{key_node.id}: quote it or restructure",
                    True,
                )
                continue
            key, key_tag = key_node.value, key_node.tag
            # a merge key, if plain or tagged so
            if (key == "<<" or key_tag == MERGE) and tag_of(key_node) == MERGE:
                merges.append(value_node)
                continue
            if key in out:
                first = next(k for k, _ in pairs if k.value == key)
                line, col = position(first)
                self.problem(
                    key_node,
                    f"duplicate key {key!r} (first at {line}:{col}): delete one of them",
                    True,
                )
            if value_node.__class__ is ScalarNode:  # value(), inline for the common strings
                tag: Any = value_node.tag
                if tag.__class__ is slice:
                    text = value_node.value
                    if not tag.step[0] or (text and text[0] not in _CLAIMED):
                        out[key] = text
                        continue
            out[key] = self.value(value_node)
        if merges:
            merged: dict[str, Any] = {}
            for source in _merge_sources(merges):
                if source.__class__ is not MappingNode:
                    self.problem(source, "'<<' merges mappings only: point it at a mapping")
                    continue
                for key, value in self.mapping(source).items():
                    merged.setdefault(key, value)
            out = {**{k: v for k, v in merged.items() if k not in out}, **out}
        return out


class _TooBig(Exception):
    pass


def _merge_sources(merges: list[Node]) -> Iterator[Node]:
    for merge in merges:
        if merge.__class__ is SequenceNode:
            yield from merge.value
        else:
            yield merge


class Converted(NamedTuple):
    data: Any  # None when the document could not be converted at all
    problems: list[NodeProblem]
    integral_floats: bool  # holds a float like 5.0 or -0.0 (which canonical form changes)


def to_data(node: Node) -> Converted:
    """The JSON data of a document and every value in it that has no JSON meaning."""
    converter = _Converter()
    try:
        data = converter.value(node)
    except _TooBig:
        message = f"document expands to more than {MAX_VALUES} values (YAML aliases?): simplify it"
        return Converted(None, [NodeProblem(node, message)], True)
    except RecursionError:
        message = "document is nested too deeply or has a recursive alias: simplify it"
        return Converted(None, [NodeProblem(node, message)], True)
    return Converted(data, converter.problems, converter.integral_floats)


def _find_pair(node: MappingNode, key: str) -> tuple[Node, Node] | None:
    for key_node, value_node in reversed(node.value):  # the last duplicate is the one kept
        if key_node.__class__ is ScalarNode and tag_of(key_node) != MERGE and key_node.value == key:
            return key_node, value_node
    merges = [v for k, v in node.value if k.__class__ is ScalarNode and tag_of(k) == MERGE]
    for source in _merge_sources(merges):
        if isinstance(source, MappingNode) and (found := _find_pair(source, key)):
            return found
    return None


def locate(root: Node, loc: Sequence[str | int], on_key: bool = False) -> Node:
    """The node ``loc`` names, or the nearest ancestor that exists (for a missing field)."""
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, MappingNode) and isinstance(part, str):
            pair = _find_pair(node, part)
            if pair is None:
                return node
            if on_key and i == len(loc) - 1:
                return pair[0]
            node = pair[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def find_loc(root: Node, target: Node) -> Loc:
    """The data path of ``target`` (a value or key node) inside ``root``; ``()`` if not found."""
    stack: list[tuple[Node, Loc]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if node is target:
            return loc
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                scalar = isinstance(key_node, ScalarNode)
                key = key_node.value if scalar else "?"
                if key_node is target:
                    return (*loc, key) if scalar else loc
                stack.append((value_node, (*loc, key)))
        elif isinstance(node, SequenceNode):
            stack.extend((child, (*loc, i)) for i, child in enumerate(node.value))
    return ()
