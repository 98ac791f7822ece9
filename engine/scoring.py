"""Objective metrics: scikit-learn scorer names, and the task each one suits."""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

from sklearn.metrics import get_scorer, get_scorer_names

from tunedag.errors import SpecError

Task = Literal["classification", "regression", "clustering"]


def resolve_scorer(metric: str) -> Any:
    if metric not in get_scorer_names():
        close = difflib.get_close_matches(metric, get_scorer_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise SpecError(f"unknown scorer {metric!r}{hint} (any scikit-learn scorer name works)")
    return get_scorer(metric)


def score_metrics(model: Any, X: Any, y: Any, names: Sequence[str]) -> dict[str, float]:
    """The extra metrics of ``objective.report`` for a fitted model; a metric that cannot be
    computed on these rows (one class only, say) is NaN rather than a failed trial."""
    values: dict[str, float] = {}
    for name in names:
        try:
            values[name] = float(get_scorer(name)(model, X, y))
        except Exception:
            values[name] = math.nan
    return values


@functools.cache
def scorer_task(metric: str) -> Task | None:
    """The kind of estimator a scorer is meant for, read from where its metric lives."""
    function = getattr(resolve_scorer(metric), "_score_func", None)
    module = getattr(function, "__module__", "") or ""
    if "cluster" in module:
        return "clustering"
    if module.endswith("_regression"):
        return "regression"
    if module.endswith(("_classification", "_ranking")):
        return "classification"
    return None
