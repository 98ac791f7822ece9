"""Pydantic's errors, rewritten as problems located in the spec file."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from tunedag.errors import Problem
from tunedag.spec.loader import Document, Loc


def problems_from(
    error: ValidationError, document: Document, root: type[BaseModel]
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for item in error.errors(include_url=False):
        loc = _data_loc((*item["loc"], *spec_loc(item)), document.data)
        problem = document.problem(loc, _message(item, loc, document.data, root))
        if problem.path not in seen or item["type"] == "extra_forbidden":
            seen.add(problem.path)
            problems.append(problem)
    return problems


def spec_loc(item: Any) -> tuple[str | int, ...]:
    """The key a model validator's error is about, below the model's own location."""
    return tuple((item.get("ctx") or {}).get("spec_loc", ()))


def _data_loc(loc: tuple[Any, ...], data: Any) -> Loc:
    """Drop the segments pydantic adds for union members, keeping those found in the data.

    A dimension's own error comes at `space.NAME.TAG` (the `type` value names the union
    member); the tag is dropped, so the path reads `space.NAME`.
    """
    result: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
            result.append(part)
        elif last and isinstance(node, dict) and part != node.get("type"):
            result.append(part)
    return tuple(result)


def _message(item: Any, loc: Loc, data: Any, root: type[BaseModel]) -> str:
    kind, message = item["type"], item["msg"]
    if kind == "extra_forbidden":
        allowed = sorted(_fields_at(root, loc[:-1], data))
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {loc[-1]!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing required key"
    if kind == "union_tag_invalid":
        expected = item.get("ctx", {}).get("expected_tags", "")
        tag = str(item.get("ctx", {}).get("tag", ""))
        tags = [t.strip(" '") for t in str(expected).split(",")]
        close = difflib.get_close_matches(tag, tags, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown type {tag!r}{hint} (one of {', '.join(tags)})"
    if kind == "union_tag_not_found":
        return "missing required key 'type' (float, int or categorical)"
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return (
            f"{item['input']!r} is not a safe study name: use up to 128 letters, digits, '.', "
            "'_' and '-', starting with a letter or digit (it names the storage file)"
        )
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return f"{message}, but got {item['input']!r}" if _echo(kind, item) else message


def _echo(kind: str, item: Any) -> bool:
    simple = isinstance(item.get("input"), str | int | float | bool)
    return simple and not kind.startswith(("value_error", "assertion", "spec_invalid"))


def _fields_at(root: type[BaseModel], loc: Loc, data: Any) -> set[str]:
    """The keys the model at ``loc`` accepts, found by walking the annotations."""
    annotation: Any = root
    node = data
    for part in loc:
        model = _model(annotation, node)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        else:
            annotation = _item(annotation)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    model = _model(annotation, node)
    return set(model.model_fields) if model else set()


def _unwrap(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [member for arg in get_args(annotation) for member in _unwrap(arg)]
    return [annotation]


def _model(annotation: Any, node: Any) -> type[BaseModel] | None:
    models = [a for a in _unwrap(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) > 1 and isinstance(node, dict):
        for model in models:
            tag = model.model_fields.get("type")
            if tag is not None and node.get("type") in get_args(tag.annotation):
                return model
    return models[0] if models else None


def _item(annotation: Any) -> Any:
    for member in _unwrap(annotation):
        args = get_args(member)
        if get_origin(member) in (list, dict) and args:
            return args[-1]
    return None
