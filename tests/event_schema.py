"""Every event the suite emits is checked against the shipped events.schema.json.

``conftest.py`` hooks a checking listener into every ``Events`` stream and wraps the two
writers of JSON lines (``JsonLines`` for events files, ``MachineOutput`` for --json stdout);
tests that read a subprocess's events check them with ``check_event``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from tunedag.events import encode


@cache
def events_schema() -> dict[str, Any]:
    text = resources.files("tunedag").joinpath("events.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = events_schema()
    return Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": schema["$defs"]})


def problems_with(record: Any) -> list[str]:
    """What is wrong with one event, as JSON carries it; [] when it matches its schema."""
    try:
        record = json.loads(encode(record))  # as a JSON line carries it
    except (TypeError, ValueError) as error:
        return [f"not JSON: {error}: {record!r}"]
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return [f"not an event: {record!r}"]
    kind = record["event"]
    if kind not in events_schema()["$defs"]:
        return [f"event kind {kind!r} has no schema in tunedag/events.schema.json: {record}"]
    return [
        f"{kind}: {'.'.join(str(p) for p in error.absolute_path) or '(event)'}: {error.message}"
        for error in _validator(kind).iter_errors(record)
    ]


def check_event(record: Any) -> None:
    problems = problems_with(record)
    assert not problems, "\n".join(problems)
