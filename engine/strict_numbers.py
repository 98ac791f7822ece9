"""Models that refuse a YAML boolean where a number goes.

pydantic reads `low: true` as 1.0 and `trials: true` as 1; in a spec that is a slip, never
a number, so every spec section and every plugin's options refuse it by the key's name.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError


class NoBooleanNumbers(BaseModel):
    """A model whose numeric fields (a number, a list of numbers, perhaps None) refuse bools."""

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key, value in data.items():
            field = cls.model_fields.get(key) if isinstance(key, str) else None
            if field is None or not _numbers_only(field.annotation):
                continue
            items = value if isinstance(value, list) else [value]
            if any(isinstance(item, bool) for item in items):
                raise PydanticCustomError(
                    "spec_invalid",
                    "expected a number, but got {value}",
                    {"value": repr(value), "spec_loc": (key,)},
                )
        return data


def _numbers_only(annotation: Any) -> bool:
    """Whether a type holds numbers (perhaps a list of them, or None) and no bool."""
    kinds: set[Any] = set()
    stack = [annotation]
    while stack:
        item = stack.pop()
        args = get_args(item)
        if args:
            stack.extend(args)
        elif isinstance(item, type):
            kinds.add(item)
    return bool(kinds & {int, float}) and not kinds - {int, float, list, type(None)}
