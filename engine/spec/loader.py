"""Read a spec file (YAML 1.2, JSON or TOML) into plain data plus the position of every value.

YAML goes through ruamel.yaml's round-trip parser, which follows YAML 1.2 (`1e-3` is a
number, `no` is a string) and constructs no Python objects: a tag such as
`!!python/object/apply` is reported as an error and nothing runs. JSON is YAML 1.2, so it
takes the same path and keeps its positions. TOML has no positions in the standard
library parser; its problems are located by searching the file's text.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from tunedag.errors import Problem, SpecError, SpecNotFoundError

Loc = tuple[str | int, ...]
_STANDARD_TAG = re.compile(r"^tag:yaml\.org,2002:(str|int|float|bool|null|map|seq|omap|set)$")


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
        raise SpecNotFoundError(f"{path}: spec file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([Problem("", f"cannot read the spec: {error}", str(path))]) from error
    if path.suffix.lower() == ".toml":
        return _read_toml(str(path), text)
    return read_yaml(str(path), text)


def read_yaml(file: str, text: str) -> Document:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = f"not valid YAML: {error.problem or error.context}"
        raise SpecError([Problem("", message, file, line, column)]) from error
    except YAMLError as error:
        raise SpecError([Problem("", f"not valid YAML: {error}", file)]) from error
    positions: dict[Loc, tuple[int, int]] = {(): (1, 1)}
    problems: list[Problem] = []
    data = _plain(tree, (), positions, problems, file)
    if problems:
        raise SpecError(problems)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "the spec must be a mapping of sections", file, 1, 1)])
    return Document(file, data, positions)


def _plain(
    node: Any, loc: Loc, positions: dict[Loc, tuple[int, int]], problems: list[Problem], file: str
) -> Any:
    """Turn ruamel's round-trip nodes into dicts, lists and scalars, recording positions."""
    tag = getattr(getattr(node, "tag", None), "value", None) or getattr(node, "tag", None)
    if isinstance(tag, str) and tag.startswith("tag:") and not _STANDARD_TAG.match(tag):
        line, column = positions.get(loc, (None, None))
        problems.append(
            Problem(_dotted(loc), f"YAML tag {tag!r} is not allowed in a spec", file, line, column)
        )
        return None
    if isinstance(tag, str) and tag.startswith("!"):
        line, column = positions.get(loc, (None, None))
        problems.append(
            Problem(_dotted(loc), f"YAML tag {tag!r} is not allowed in a spec", file, line, column)
        )
        return None
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            line, column = node.lc.key(key)
            positions[(*loc, str(key))] = (line + 1, column + 1)
            result[str(key)] = _plain(value, (*loc, str(key)), positions, problems, file)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, column = node.lc.item(index)
            positions[(*loc, index)] = (line + 1, column + 1)
            items.append(_plain(value, (*loc, index), positions, problems, file))
        return items
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _read_toml(file: str, text: str) -> Document:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+), column (\d+)", str(error))
        line, column = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        raise SpecError([Problem("", f"not valid TOML: {error}", file, line, column)]) from error
    return Document(file, data, _toml_positions(text, data))


def _toml_positions(text: str, data: Any) -> dict[Loc, tuple[int, int]]:
    """Best effort: the first line that names each key after its parent's line."""
    lines = text.splitlines()
    positions: dict[Loc, tuple[int, int]] = {(): (1, 1)}

    def visit(node: Any, loc: Loc, start: int) -> None:
        if isinstance(node, list):
            visit_list(node, loc, start)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            pattern = re.compile(rf"(^|[\s.{{,\[])\"?{re.escape(str(key))}\"?\s*(=|\]|\.)")
            for number in range(start, len(lines)):
                found = pattern.search(lines[number])
                if found:
                    positions[(*loc, key)] = (number + 1, found.start() + len(found.group(1)) + 1)
                    visit(value, (*loc, key), number)
                    break

    def visit_list(items: list[Any], loc: Loc, start: int) -> None:
        """Items of an array of tables start at their own `[[...key]]` header, in order."""
        key = re.escape(str(loc[-1])) if loc else ""
        header = re.compile(rf"^\s*\[\[\s*(?:[^\]]*\.)?\"?{key}\"?\s*\]\]")
        number = start
        for index, item in enumerate(items):
            while number < len(lines) and not header.search(lines[number]):
                number += 1
            if number >= len(lines):
                return  # an inline array: its items share the key's position
            positions[(*loc, index)] = (number + 1, lines[number].index("[") + 1)
            visit(item, (*loc, index), number)
            number += 1

    visit(data, (), 0)
    return positions
