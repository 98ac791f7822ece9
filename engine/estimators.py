"""The estimator registry: spec strings resolve to classes here, never by importing a path.

scikit-learn's public estimators are known by their public path (`sklearn.svm.SVC`) and,
when unambiguous, by their class name (`SVC`). Other estimators are reachable only under a
module prefix the spec lists in `allow_imports`. A path with a segment that starts with
`_` is refused, as is anything that is not an estimator class.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Sequence
from typing import Any, cast

from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from tunedag.errors import SpecError, UnknownNameError
from tunedag.spec.models import StepSpec


class EstimatorRefused(SpecError):
    """A path that may not be imported: private, not allowed, or not an estimator."""


@functools.cache
def sklearn_estimators() -> dict[str, type[Any]]:
    """Public path -> class, for every estimator scikit-learn lists."""
    from sklearn.utils import all_estimators

    registry: dict[str, type[Any]] = {}
    for name, cls in all_estimators():
        parts = cls.__module__.split(".")
        private = next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))
        for end in range(private, 0, -1):
            public = ".".join(parts[:end])
            found: Any = getattr(importlib.import_module(public), name, None)
            if found is cls:
                registry[f"{public}.{name}"] = cls
                break
    return registry


@functools.cache
def _short_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for path in sklearn_estimators():
        names.setdefault(path.rsplit(".", 1)[1], []).append(path)
    return names


def resolve_estimator(path: str, allow_imports: Sequence[str] = ()) -> type[Any]:
    """The class a spec's `estimator:` string names, or an error saying what to write."""
    if any(part.startswith("_") for part in path.split(".")):
        raise EstimatorRefused(f"{path!r} has a private segment (starting with '_'); refused")
    found = _public_sklearn_class(path)
    if found is not None:
        return found
    registry = sklearn_estimators()
    if path in registry:
        return registry[path]
    short = _short_names().get(path, [])
    if len(short) == 1:
        return registry[short[0]]
    if len(short) > 1:
        raise SpecError(f"{path!r} is ambiguous; write one of {sorted(short)}")
    if any(path == prefix or path.startswith(prefix + ".") for prefix in allow_imports):
        return _import_allowed(path)
    candidates = difflib.get_close_matches(path, [*registry, *_short_names()], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in candidates)}?" if candidates else ""
    if path.startswith("sklearn."):
        raise UnknownNameError(f"unknown estimator {path!r}{hint}")
    raise UnknownNameError(
        f"unknown estimator {path!r}{hint} (estimators outside scikit-learn need their module "
        "listed in `allow_imports`)"
    )


def _public_sklearn_class(path: str) -> type[Any] | None:
    """Fast path: a public scikit-learn module's concrete estimator class, else None.

    A public name that exists but is no concrete estimator class (a function, a module, an
    abstract base) is refused rather than reported as unknown.
    """
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith("sklearn.") or not module_name.replace(".", "").isidentifier():
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls: Any = getattr(module, name, None)
    if cls is None:
        return None
    is_estimator_class = (
        inspect.isclass(cls)
        and issubclass(cls, BaseEstimator)
        and cls.__module__.startswith("sklearn.")
        and not inspect.isabstract(cls)
    )
    if not is_estimator_class:
        raise EstimatorRefused(f"{path!r} is not a scikit-learn estimator class; refused")
    return cast("type[Any]", cls)


def _import_allowed(path: str) -> type[Any]:
    module_name, _, attribute = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UnknownNameError(f"cannot import {module_name!r} for {path!r}: {error}") from error
    cls = getattr(module, attribute, None)
    if cls is None:
        raise UnknownNameError(f"module {module_name!r} has no {attribute!r}")
    if not (inspect.isclass(cls) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise EstimatorRefused(f"{path!r} is not an estimator class (it needs fit and get_params)")
    return cls


def build_estimator(estimator: str, params: dict[str, Any], allow: Sequence[str]) -> Any:
    """An unfitted estimator; a param written as {estimator: ..., params: ...} nests one."""
    cls = resolve_estimator(estimator, allow)
    instance = cls(**{key: _build_value(value, allow) for key, value in params.items()})
    return instance


def _build_value(value: Any, allow: Sequence[str]) -> Any:
    if isinstance(value, dict) and "estimator" in value and set(value) <= {"estimator", "params"}:
        return build_estimator(value["estimator"], value.get("params") or {}, allow)
    if isinstance(value, list):
        return [_build_value(item, allow) for item in value]
    return value


def build_pipeline(steps: Sequence[StepSpec], allow: Sequence[str] = ()) -> Pipeline:
    return Pipeline(
        [(step.name, build_estimator(step.estimator, step.params, allow)) for step in steps]
    )
