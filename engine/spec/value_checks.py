"""Checks of the values that build objects: estimator choices, nested estimators, functions,
column selectors, estimators that take ``**kwargs``, and the extra metrics of ``objective.report``.

Each finding is located at the key that caused it, like every other spec check.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
from sklearn.base import is_classifier, is_regressor

from tunedag.errors import SpecError
from tunedag.estimators import (
    accepts_any_keyword,
    build_estimator,
    choice_table,
    is_estimator_ref,
    resolve_estimator,
)
from tunedag.scoring import resolve_scorer, scorer_task
from tunedag.spec.loader import Loc
from tunedag.spec.models import CategoricalDimension, EstimatorChoice, Spec
from tunedag.values import (
    SELECTOR_KEYS,
    build_selector,
    is_function_ref,
    is_selector,
    resolve_function,
)

Finding = tuple[Loc, str, int]


def check_values(spec: Spec) -> Iterator[Finding]:
    """Every nested ``{estimator: ...}``, ``{function: ...}`` and column selector in the
    pipeline's and choices' params."""
    for index, step in enumerate(spec.pipeline or []):
        yield from _walk_params(step.params, ("pipeline", index, "params"), spec.allow_imports)
    for key, dim in spec.space.items():
        if isinstance(dim, CategoricalDimension):
            for index, choice in enumerate(dim.choices):
                if isinstance(choice, EstimatorChoice):
                    loc: Loc = ("space", key, "choices", index, "params")
                    yield from _walk_params(choice.params, loc, spec.allow_imports)


def _walk_params(params: dict[str, Any], loc: Loc, allow: list[str]) -> Iterator[Finding]:
    """An estimator's parameters: each value may describe an object (a value is checked, the
    mapping of names itself is not: a parameter may be called `estimator`)."""
    for key, value in params.items():
        yield from _walk(value, (*loc, key), allow)


def _walk(value: Any, loc: Loc, allow: list[str]) -> Iterator[Finding]:
    if is_estimator_ref(value):
        yield from _check_nested_estimator(value, loc, allow)
        return
    if is_function_ref(value):
        try:
            resolve_function(value["function"], allow)
        except SpecError as error:
            for problem in error.problems:
                yield (*loc, "function"), problem.message, problem.code
        return
    if is_selector(value):
        yield from _check_selector(value, loc)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*loc, key), allow)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index), allow)


def _check_nested_estimator(value: dict[str, Any], loc: Loc, allow: list[str]) -> Iterator[Finding]:
    """``{estimator: PATH, params: {...}}``: the name resolves and the params are a mapping."""
    try:
        resolve_estimator(value["estimator"], allow)
    except SpecError as error:
        for problem in error.problems:
            yield (*loc, "estimator"), problem.message, problem.code
    params = value.get("params") or {}
    if not isinstance(params, dict):
        yield (*loc, "params"), f"`params` must be a mapping of name: value, not {params!r}", 65
        return
    yield from _walk_params(params, (*loc, "params"), allow)


def _check_selector(value: dict[str, Any], loc: Loc) -> Iterator[Finding]:
    refused = False
    for key in ("dtype_include", "dtype_exclude"):
        kinds = value.get(key)
        if kinds is None:
            continue
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if not isinstance(kind, str):
                refused = True
                yield (*loc, key), f"a dtype is a name such as number or object, not {kind!r}", 65
    pattern = value.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as error:
            refused = True
            yield (*loc, "pattern"), f"not a valid regular expression: {error}", 65
    if not refused:  # pandas judges the dtype names: select from a one-column frame
        try:
            build_selector(value)(pd.DataFrame({"x": [0]}))
        except (TypeError, ValueError) as error:
            yield loc, f"not a column selector pandas accepts: {error}", 65


def check_choices(spec: Spec) -> Iterator[Finding]:
    """Each estimator a categorical dimension may choose resolves, with its parameters."""
    for key, options in choice_table(spec).items():
        dim = spec.space[key]
        assert isinstance(dim, CategoricalDimension)
        for index, option in enumerate(options.values()):
            if not isinstance(option, dict):
                continue
            choice = dim.choices[index]
            loc: Loc = ("space", key, "choices", index)
            if isinstance(choice, EstimatorChoice):
                loc = (*loc, "estimator")
            try:
                cls = resolve_estimator(option["estimator"], spec.allow_imports)
            except SpecError as error:
                for problem in error.problems:
                    yield loc, problem.message, problem.code
                continue
            accepted = param_names(cls)
            for param in option["params"]:
                if accepted is not None and param not in accepted:
                    message = (
                        f"{cls.__name__} has no parameter {param!r}{did_you_mean(param, accepted)}"
                    )
                    yield ("space", key, "choices", index, "params", param), message, 65


def choice_param_findings(spec: Spec, key: str) -> list[Finding] | None:
    """Findings for a space key under an estimator-valued dimension (``model__C`` when
    ``model`` chooses the estimator); None when the key is not under one.

    The key must be a parameter of every estimator its ``when:`` lets the parent choose.
    """
    table = choice_table(spec)
    parent = next((p for p in table if key.startswith(p + "__")), None)
    if parent is None:
        return None
    rest = key[len(parent) + 2 :]
    allowed = (spec.space[key].when or {}).get(parent)
    options = table[parent]
    labels = (
        list(options) if allowed is None else allowed if isinstance(allowed, list) else [allowed]
    )
    missing: list[str] = []
    for label in labels:
        option = options.get(label)
        if not isinstance(option, dict):
            continue
        try:
            instance = build_estimator(option["estimator"], option["params"], spec.allow_imports)
        except (SpecError, TypeError, ValueError):
            return []  # reported by check_choices
        if rest in instance.get_params(deep=True):
            continue
        if "__" not in rest and accepts_any_keyword(type(instance)):
            continue
        missing.append(str(label))
    if not missing:
        return []
    others = [str(label) for label in options if str(label) not in missing]
    if others:
        hint = f"; add `when: {{{parent}: {others[0] if len(others) == 1 else others}}}`"
    else:
        hint = ""
    message = f"{rest!r} is not a parameter of {', '.join(missing)} (a choice of {parent!r}){hint}"
    return [(("space", key), message, 65)]


def check_report(spec: Spec, final: Any) -> Iterator[Finding]:
    """The extra metrics of ``objective.report`` are scorer names that suit the model."""
    seen: set[str] = set()
    for index, metric in enumerate(spec.objective.report):
        loc: Loc = ("objective", "report", index)
        if metric == spec.objective.metric or metric in seen:
            yield loc, f"{metric!r} is already reported; list each metric once", 65
            continue
        seen.add(metric)
        try:
            resolve_scorer(metric)
        except SpecError as error:
            yield loc, error.problems[0].message, 65
            continue
        if final is None:
            continue
        task = scorer_task(metric)
        kind = type(final).__name__
        if task == "regression" and is_classifier(final):
            yield loc, f"{metric!r} scores regressors, but the model is a classifier ({kind})", 65
        if task == "classification" and is_regressor(final):
            yield loc, f"{metric!r} scores classifiers, but the model is a regressor ({kind})", 65


def param_names(cls: type[Any]) -> list[str] | None:
    """The constructor parameters of an estimator class, without instantiating it; None when
    unknown or when the class takes ``**kwargs`` (any name may be meant)."""
    if accepts_any_keyword(cls):
        return None
    getter = getattr(cls, "_get_param_names", None)
    if getter is not None:
        try:
            return list(getter())
        except (TypeError, RuntimeError):
            return None
    try:
        return list(cls().get_params(deep=False))
    except Exception:
        return None


def did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = ["SELECTOR_KEYS", "check_choices", "check_report", "check_values", "param_names"]
