"""A YAML 1.2 document as a tree of located nodes, built from parser events within limits.

Why events and not a YAML library's loader: a loader constructs objects (tags), resolves
scalars by YAML 1.1 rules (`no` is false), recurses once per nesting level and expands
aliases without limit (a 1 KB "billion laughs" file fills the memory). Here the parser only
tokenizes (libyaml when installed, linear time); this module decides every rule itself:

- scalars follow the YAML 1.2 core schema; integers must fit in 64 bits and a float
  literal must not overflow (`1e400`); `.inf` and `.nan` are floats the spec models judge;
- only the standard tags for plain values are accepted (`!!str`, `!!int`, `!!float`,
  `!!bool`, `!!null`, `!!map`, `!!seq`); every other tag is a located error, so no tag
  ever runs code;
- aliases refer to anchors already closed (no cycles), and the document after alias
  expansion is held to ``MAX_VALUES`` values and ``MAX_DEPTH`` levels;
- merge keys (`<<: *base`) merge as YAML 1.1 defined them; explicit keys win;
- one document per file; a key must be a scalar and appear once per mapping.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

#: Nesting levels a spec may have, after alias expansion (a spec needs about 6).
MAX_DEPTH = 64
#: Keys, items and scalars a spec may hold after alias expansion (a large spec has ~2,000).
MAX_VALUES = 200_000
_INT64 = 2**63
_CORE = "tag:yaml.org,2002:"

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
_WORDS: dict[str, Any] = {**dict.fromkeys(("", "~", "null", "Null", "NULL")), **_BOOL}
_NUMBER_START = frozenset("0123456789+-.")
_REFUSED_HINTS = {
    "omap": "write a plain mapping (keys keep the order they are written in)",
    "set": "write a list",
    "pairs": "write a plain mapping",
    "binary": "write the value as a plain string",
    "timestamp": "write the date as a plain string",
}


class TreeError(Exception):
    """A located problem in the YAML text; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(eq=False, slots=True)
class Node:
    """One value of the document: a scalar (``value``) or a collection (``items``)."""

    kind: str  # "scalar", "map" or "seq"
    line: int
    column: int
    value: Any = None
    text: str = ""  # a scalar as written, which is what a mapping key means
    merge: bool = False  # a `<<` merge key
    items: list[Any] = field(default_factory=list)  # map: (key, value) pairs; seq: nodes
    error: str | None = None  # why this value is refused (reported with its field path)
    size: int = 1
    height: int = 1


def parse(text: str) -> Node | None:
    """The one document of ``text`` as a tree, or None for an empty file."""
    builder = _Builder()
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            builder.feed(event)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "cannot be parsed"
        message = f"not valid YAML: {problem}"
        where = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise TreeError(message, *where) from None
    except yaml.YAMLError as error:
        raise TreeError(f"not valid YAML: {error}", None, None) from None
    return builder.root


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: linear and fast


def tag_name(tag: str) -> str:
    """`tag:yaml.org,2002:omap` is written `!!omap` in a file; show it that way."""
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class _Builder:
    """Feeds on parser events, keeping a stack of open collections (no recursion)."""

    def __init__(self) -> None:
        self.root: Node | None = None
        self.stack: list[tuple[Node, str | None]] = []  # open collection, its anchor
        self.keys: list[Node | None] = []  # per open mapping: the key awaiting its value
        self.anchors: dict[str, Node] = {}
        self.documents = 0

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                line, column = _at(event)
                raise TreeError(
                    "a spec file holds one YAML document, but a second one starts here",
                    line,
                    column,
                )
        elif isinstance(event, yaml.ScalarEvent):
            self._add(self._scalar(event), event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            found = self.anchors.get(event.anchor)
            if found is None:
                raise TreeError(f"alias *{event.anchor} names no anchor before it", *_at(event))
            self._add(found, None)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            if len(self.stack) >= MAX_DEPTH:
                raise TreeError(
                    f"the spec is nested more than {MAX_DEPTH} levels deep", *_at(event)
                )
            line, column = _at(event)
            node = Node(kind, line, column, error=_collection_tag_error(event.tag, kind))
            self.stack.append((node, event.anchor))
            self.keys.append(None)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            node, anchor = self.stack.pop()
            self.keys.pop()
            node.size = 1 + sum(_sizes(node))
            node.height = 1 + max(_heights(node), default=0)
            if node.size > MAX_VALUES:
                raise TreeError(
                    f"the spec holds more than {MAX_VALUES} values once its aliases are "
                    "expanded; write a smaller spec",
                    node.line,
                    node.column,
                )
            if node.height > MAX_DEPTH:
                raise TreeError(
                    f"the spec is nested more than {MAX_DEPTH} levels deep once its aliases "
                    "are expanded",
                    node.line,
                    node.column,
                )
            self._add(node, anchor)

    def _add(self, node: Node, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = node
        if not self.stack:
            self.root = node
            return
        parent = self.stack[-1][0]
        if parent.kind == "seq":
            parent.items.append(node)
            return
        key = self.keys[-1]
        if key is None:
            if node.kind != "scalar":
                raise TreeError(
                    "a mapping key must be a plain value, not a mapping or a list",
                    node.line,
                    node.column,
                )
            self.keys[-1] = node
        else:
            parent.items.append((key, node))
            self.keys[-1] = None

    def _scalar(self, event: Any) -> Node:
        line, column = _at(event)
        text: str = event.value
        node = Node("scalar", line, column, text=text)
        tag = event.tag
        try:
            if event.style in (None, "") and tag is None:
                node.merge = text == "<<"
                node.value = _resolve(text)
            elif tag is None or tag == "!" or tag == _CORE + "str":
                node.value = text
            elif tag == _CORE + "merge":
                node.merge = True
            elif tag in (_CORE + "int", _CORE + "float", _CORE + "bool", _CORE + "null"):
                node.value = _typed(text, tag[len(_CORE) :])
            else:
                node.error = _refused(tag)
        except ValueError as error:
            node.error = str(error)
        return node


def _at(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def _sizes(node: Node) -> list[int]:
    if node.kind == "seq":
        return [item.size for item in node.items]
    return [key.size + value.size for key, value in node.items]


def _heights(node: Node) -> list[int]:
    if node.kind == "seq":
        return [item.height for item in node.items]
    return [value.height for _, value in node.items]


def _collection_tag_error(tag: str | None, kind: str) -> str | None:
    if tag is None or tag == "!" or tag == _CORE + kind:
        return None
    return _refused(tag)


def _refused(tag: str) -> str:
    short = tag[len(_CORE) :] if tag.startswith(_CORE) else None
    hint = _REFUSED_HINTS.get(short or "")
    if hint:
        return f"YAML tag {tag_name(tag)!r} is not supported in a spec; {hint}"
    return f"YAML tag {tag_name(tag)!r} is not allowed in a spec"


def _resolve(text: str) -> Any:
    """A plain scalar by the YAML 1.2 core schema (`no` and `on` stay strings)."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMBER_START:
        return text  # most keys and names: no pattern can match
    if _INT10.match(text) or _INT8.match(text) or _INT16.match(text):
        return _integer(text)
    if _FLOAT.match(text) or _INF.match(text) or _NAN.match(text):
        return _float(text)
    return text


def _typed(text: str, kind: str) -> Any:
    """A scalar with an explicit standard tag: it must read as that type."""
    if kind == "null" and _NULL.match(text):
        return None
    if kind == "bool" and text in _BOOL:
        return _BOOL[text]
    if kind == "int" and (_INT10.match(text) or _INT8.match(text) or _INT16.match(text)):
        return _integer(text)
    if kind == "float" and (_FLOAT.match(text) or _INF.match(text) or _NAN.match(text)):
        return _float(text)
    raise ValueError(f"{_short(text)!r} is not a valid !!{kind}")


def _integer(text: str) -> int:
    digits = text.lstrip("+-")
    if len(digits) > 24:  # long before int() would spend time on it
        raise ValueError(_too_large(text))
    if digits.startswith("0o"):
        number = int(digits[2:], 8)
    elif digits.startswith("0x"):
        number = int(digits[2:], 16)
    else:
        number = int(digits)
    number = -number if text.startswith("-") else number
    if not -_INT64 <= number < _INT64:
        raise ValueError(_too_large(text))
    return number


def _float(text: str) -> float:
    if _NAN.match(text):
        return math.nan
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{_short(text)} is beyond the range of a float (about 1.8e308)")
    return number


def _too_large(text: str) -> str:
    return f"{_short(text)} is beyond the range of a 64-bit integer"


def _short(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"
