"""Read a spec file (YAML 1.2, JSON or TOML) into plain data plus the position of every value.

The loader is total: whatever the bytes, it returns a document or raises a located
SpecError (exit 65), never another exception. A spec file is at most ``MAX_SPEC_BYTES``
(1 MB), UTF-8 without control characters, and after alias expansion at most
``MAX_VALUES`` values nested at most ``MAX_DEPTH`` levels; integers fit in 64 bits.

YAML is tokenized by the parser and turned into values here (`yaml_tree`), by the YAML 1.2
core schema (`1e-3` is a number, `no` is a string); no tag constructs an object, so nothing
in a spec runs. JSON is YAML 1.2, so it takes the same path and keeps its positions. TOML
goes through the standard library; its keys are located by `toml_positions`.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunedag.errors import Problem, SpecError, SpecNotFoundError
from tunedag.spec.toml_positions import toml_positions
from tunedag.spec.yaml_tree import MAX_DEPTH, MAX_VALUES, Node, TreeError, parse

Loc = tuple[str | int, ...]
#: The largest spec file tunedag reads; a spec is a few kilobytes.
MAX_SPEC_BYTES = 1_000_000
_INT64 = 2**63
# what YAML 1.2 calls printable, less the byte-order mark a file may start with
_UNPRINTABLE = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)

__all__ = ["MAX_DEPTH", "MAX_SPEC_BYTES", "MAX_VALUES", "Document", "read_document", "read_yaml"]


class Document:
    """The plain data of one spec file, and where in the file each value was written."""

    def __init__(self, file: str, data: Any, positions: dict[Loc, tuple[int, int]]) -> None:
        self.file = file
        self.data = data
        self.positions = positions

    def problem(self, loc: Loc, message: str, code: int = 65) -> Problem:
        """A problem at `loc`, placed at the nearest position the file records."""
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.positions:
                line, column = self.positions[loc[:cut]]
                return Problem(_dotted(loc), message, self.file, line, column, code)
        return Problem(_dotted(loc), message, self.file, code=code)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_document(path: str | Path) -> Document:
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "not found"
        raise SpecNotFoundError(f"{path}: spec file {what}", path=str(path))
    file = str(path)
    text = _read_text(path)
    if path.suffix.lower() == ".toml":
        return _read_toml(file, text)
    return read_yaml(file, text)


def _read_text(path: Path) -> str:
    """The file as text: at most MAX_SPEC_BYTES of UTF-8, every character printable."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        message = f"cannot read the spec: {error.strerror or error}"
        raise SpecError([Problem("", message, str(path))]) from None
    if len(raw) > MAX_SPEC_BYTES:
        message = f"the spec file is larger than {MAX_SPEC_BYTES:,} bytes; a spec is a few KB"
        raise SpecError([Problem("", message, str(path))])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(raw[: error.start].decode("utf-8", "replace"))
        message = f"byte 0x{raw[error.start]:02x} is not UTF-8; save the spec as UTF-8"
        raise SpecError([Problem("", message, str(path), line, column)]) from None
    return check_printable(str(path), text.removeprefix("\ufeff"))


def check_printable(file: str, text: str) -> str:
    """Refuse control characters (other than tab and newlines), located."""
    found = _UNPRINTABLE.search(text)
    if found:
        line, column = _line_column(text[: found.start()])
        message = (
            f"control character U+{ord(found.group()):04X} is not allowed in a spec; "
            "remove it or write it as an escape in a quoted string"
        )
        raise SpecError([Problem("", message, file, line, column)])
    return text


def _line_column(before: str) -> tuple[int, int]:
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


def read_yaml(file: str, text: str) -> Document:
    if len(text) > MAX_SPEC_BYTES:
        message = f"the spec is larger than {MAX_SPEC_BYTES:,} characters"
        raise SpecError([Problem("", message, file)])
    check_printable(file, text)
    with _no_gc():  # the tree is acyclic; collecting while it grows doubles the time
        try:
            tree = parse(text)
        except TreeError as error:
            problem = Problem("", error.message, file, error.line, error.column)
            raise SpecError([problem]) from None
        if tree is None or tree.kind != "map":
            raise SpecError([Problem("", "the spec must be a mapping of sections", file, 1, 1)])
        plain = _Plain(file)
        data = plain.value(tree, ())
    if plain.problems:
        raise SpecError(plain.problems)
    return Document(file, data, plain.positions)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Plain:
    """Turns a node tree into dicts, lists and scalars, recording where each value is."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Loc, tuple[int, int]] = {(): (1, 1)}
        self.problems: list[Problem] = []

    def value(self, node: Node, loc: Loc) -> Any:
        if node.error is not None:
            line, column = self.positions.get(loc, (node.line, node.column))
            self.problems.append(Problem(_dotted(loc), node.error, self.file, line, column))
            return None
        if node.kind == "scalar":
            return node.value
        if node.kind == "seq":
            items = []
            for index, item in enumerate(node.items):
                self.positions[(*loc, index)] = (item.line, item.column)
                items.append(self.value(item, (*loc, index)))
            return items
        return self.mapping(node, loc)

    def mapping(self, node: Node, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        sources = [value for key, value in node.items if key.merge]
        for source in reversed(sources):  # the first source named wins, as YAML defines
            result.update(self.merged(source, loc, node))
        seen: dict[str, Node] = {}
        for key, value in node.items:
            if key.merge:
                continue
            name = key.text
            if key.error is not None:
                self.problems.append(
                    Problem(_dotted(loc), key.error, self.file, key.line, key.column)
                )
                continue
            if name in seen:
                first = seen[name]
                self.problems.append(
                    Problem(
                        _dotted((*loc, name)),
                        f"duplicate key {name!r} (first written at line {first.line})",
                        self.file,
                        key.line,
                        key.column,
                    )
                )
                continue
            seen[name] = key
            self.positions[(*loc, name)] = (key.line, key.column)
            result[name] = self.value(value, (*loc, name))
        return result

    def merged(self, source: Node, loc: Loc, at: Node) -> dict[str, Any]:
        """The keys a `<<` value brings: a mapping, or a list of mappings (first wins)."""
        parts = source.items if source.kind == "seq" else [source]
        if source.kind == "scalar" or any(part.kind != "map" for part in parts):
            self.problems.append(
                Problem(
                    _dotted(loc),
                    "a merge key `<<` takes a mapping or a list of mappings",
                    self.file,
                    source.line,
                    source.column,
                )
            )
            return {}
        result: dict[str, Any] = {}
        for part in reversed(parts):
            result.update(self.value(part, loc) or {})
        return result


def _read_toml(file: str, text: str) -> Document:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+), column (\d+)", str(error))
        line, column = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        raise SpecError([Problem("", f"not valid TOML: {error}", file, line, column)]) from None
    except RecursionError:
        message = f"not valid TOML: nested more than {MAX_DEPTH} levels deep"
        raise SpecError([Problem("", message, file)]) from None
    except ValueError as error:  # an integer too long for int(): tomllib lets it through
        message = f"not valid TOML: a number is out of range ({error})"
        raise SpecError([Problem("", message, file)]) from None
    positions = toml_positions(text, data)
    document = Document(file, data, positions)
    problems = _check_toml_values(document)
    if problems:
        raise SpecError(problems)
    return document


def _check_toml_values(document: Document) -> list[Problem]:
    """TOML's own limits differ from YAML's: hold them to the same (depth, size, ranges).

    Dates and times become their ISO text, as YAML 1.2 reads an unquoted date.
    """
    problems: list[Problem] = []
    count = 0
    stack: list[tuple[Any, Any, Loc]] = [(None, document.data, ())]
    while stack:
        parent, node, loc = stack.pop()
        count += 1
        if count > MAX_VALUES:
            message = f"the spec holds more than {MAX_VALUES} values; write a smaller spec"
            return [document.problem((), message)]
        if len(loc) > MAX_DEPTH:
            message = f"the spec is nested more than {MAX_DEPTH} levels deep"
            return [document.problem(loc, message)]
        if isinstance(node, dict):
            stack.extend((node, value, (*loc, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((node, value, (*loc, index)) for index, value in enumerate(node))
        elif isinstance(node, datetime.date | datetime.time):
            parent[loc[-1]] = node.isoformat()
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= _INT64:
            problems.append(document.problem(loc, "integer beyond the range of a 64-bit integer"))
    return problems
