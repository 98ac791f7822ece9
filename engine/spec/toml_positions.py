"""Where each key of a TOML spec is written, found in one pass over the text.

The standard library's TOML parser keeps no positions, so a key is placed at the first line
after its parent's line that names it. Every line is scanned once into an index of key
name -> lines, and each lookup is a binary search in that index: linear in the size of the
file, where searching the text from the parent's line for every key was quadratic.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

Loc = tuple[str | int, ...]

# a bare or double-quoted key before `=`, `]` or `.`, at a line start or after a separator
_KEY = re.compile(r"(?:^|(?<=[\s.{,\[]))(\"?)([A-Za-z0-9_\-]+)\1\s*(?==|\]|\.)")
_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*(?:[^\]]*\.)?\"?([A-Za-z0-9_\-]+)\"?\s*\]\]")


def toml_positions(text: str, data: Any) -> dict[Loc, tuple[int, int]]:
    """Best effort: 1-based (line, column) of each key, by its path in ``data``."""
    keys: dict[str, list[tuple[int, int]]] = {}
    headers: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(text.splitlines()):
        for found in _KEY.finditer(line):
            keys.setdefault(found.group(2), []).append((number, found.start() + 1))
        header = _ARRAY_HEADER.match(line)
        if header:
            headers.setdefault(header.group(1), []).append((number, line.index("[") + 1))
    positions: dict[Loc, tuple[int, int]] = {(): (1, 1)}
    stack: list[tuple[Any, Loc, int]] = [(data, (), 0)]
    while stack:
        node, loc, start = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                place = _first_at_or_after(keys.get(str(key), []), start)
                if place is not None:
                    positions[(*loc, key)] = (place[0] + 1, place[1])
                    stack.append((value, (*loc, key), place[0]))
        elif isinstance(node, list) and loc:
            # items of an array of tables start at their own `[[...key]]` headers, in order
            lines = headers.get(str(loc[-1]), [])
            first = bisect.bisect_left(lines, (start, 0))
            for index, item in enumerate(node):
                if first + index >= len(lines):
                    break  # an inline array: its items share the key's position
                number, column = lines[first + index]
                positions[(*loc, index)] = (number + 1, column)
                stack.append((item, (*loc, index), number))
    return positions


def _first_at_or_after(places: list[tuple[int, int]], line: int) -> tuple[int, int] | None:
    index = bisect.bisect_left(places, (line, 0))
    return places[index] if index < len(places) else None
