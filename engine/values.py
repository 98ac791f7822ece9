"""Spec values that stand for Python objects other than estimators: functions and column
selectors.

``{function: numpy.log}`` names a function. Like an estimator it is never imported by an
arbitrary dotted path: a segment starting with ``_`` is refused, and the path must lie under
``numpy`` or ``sklearn`` or a prefix the spec lists in ``allow_imports``.

``{dtype_include: number}``, ``{dtype_exclude: [object]}`` or ``{pattern: "^num_"}`` (the
keywords of scikit-learn's ``make_column_selector``) stands wherever scikit-learn takes a
list of columns, such as the third item of a ColumnTransformer's transformer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from sklearn.compose import make_column_selector

from tunedag.errors import SpecError, UnknownNameError
from tunedag.imports import ModuleCrashedError, import_user_module

#: Module prefixes whose functions a spec may name without `allow_imports`.
DEFAULT_FUNCTION_PREFIXES = ("numpy", "sklearn")
SELECTOR_KEYS = frozenset({"dtype_include", "dtype_exclude", "pattern"})


class FunctionRefused(SpecError):
    """A function path that may not be imported: private, not allowed, or not a function."""


def is_function_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"function"}


def is_selector(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= SELECTOR_KEYS


def resolve_function(path: Any, allow: Sequence[str] = ()) -> Callable[..., Any]:
    """The function ``{function: PATH}`` names, or an error saying why it is refused."""
    if not isinstance(path, str) or not path.replace(".", "").replace("_", "").isalnum():
        raise FunctionRefused(f"`function` needs a dotted name such as numpy.log, not {path!r}")
    if any(part.startswith("_") for part in path.split(".")):
        raise FunctionRefused(f"{path!r} has a private segment (starting with '_'); refused")
    prefixes = (*DEFAULT_FUNCTION_PREFIXES, *allow)
    if not any(path == prefix or path.startswith(prefix + ".") for prefix in prefixes):
        raise FunctionRefused(
            f"function {path!r} is outside numpy, sklearn and `allow_imports` "
            f"({', '.join(allow) or 'none listed'}); refused"
        )
    found = _import_path(path)
    if inspect.isclass(found) or not callable(found):
        raise FunctionRefused(f"{path!r} is not a function; refused")
    return found  # type: ignore[no-any-return]


def _import_path(path: str) -> Any:
    """The object at ``path``: the longest importable module, then attributes."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = import_user_module(".".join(parts[:end]))
        except ModuleCrashedError as error:
            raise UnknownNameError(f"unknown function {path!r}: {error}") from error
        except ImportError:
            continue
        for attribute in parts[end:]:
            found = getattr(found, attribute, None)
            if found is None:
                raise UnknownNameError(f"unknown function {path!r}: no {attribute!r}")
        return found
    raise UnknownNameError(f"unknown function {path!r}: cannot import {parts[0]!r}")


def build_selector(value: dict[str, Any]) -> make_column_selector:
    """A column selector by dtype and name pattern, as scikit-learn's own."""
    return make_column_selector(
        pattern=value.get("pattern"),
        dtype_include=value.get("dtype_include"),
        dtype_exclude=value.get("dtype_exclude"),
    )


def describe_selector(value: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value[key]!r}" for key in sorted(value))
