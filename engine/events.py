"""The event stream: one JSON object a line, for orchestrators, and listeners in process.

The first line a sink writes is ``{"event": "version", "schema": 1}``; later versions only
add fields. Every other event carries ``event``, ``study`` and ``ts``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import IO, Any

from tunedag.errors import OutputError

SCHEMA = 1
Listener = Callable[[dict[str, Any]], None]


class Events:
    """Fans each event out to its listeners: JSON-lines writers, progress printers, tests."""

    def __init__(self, study: str = "") -> None:
        self.study = study
        self.listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "study": self.study, "ts": round(time.time(), 6), **fields}
        for listener in self.listeners:
            listener(record)


class JsonLines:
    """Writes events to a text stream, flushing each line so a reader sees it at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._write({"event": "version", "schema": SCHEMA})

    def __call__(self, record: dict[str, Any]) -> None:
        self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.stream.write(encode(record) + "\n")
            self.stream.flush()
        except OSError as error:
            raise OutputError(
                f"events to {getattr(self.stream, 'name', 'a stream')}", error
            ) from error


def encode(record: dict[str, Any]) -> str:
    """One event as one compact JSON line (no newline inside, NaN and infinity as null)."""
    return json.dumps(json_safe(record), separators=(",", ":"))


def json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON; they travel as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
