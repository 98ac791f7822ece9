"""Checks that need the data itself, made once it is split and before anything is fitted.

- overlap: test rows that duplicate development feature rows make the test score a score on
  training rows; any more than `split.test.allow_overlap` refuse the study (exit 65);
- target leak: a single feature that predicts the target almost perfectly on the
  development rows alone is most likely the target in disguise; a warning, never an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from tunedag.data import Dataset
from tunedag.errors import Problem, SpecError
from tunedag.rows import overlap
from tunedag.spec.loader import Loc
from tunedag.spec.models import Spec

#: a feature alone this good on held-out development rows is reported as a likely leak
LEAK_SCORE = 0.99
#: at most this many development rows are used for the target-leak check
LEAK_SAMPLE = 20_000


def locate(spec: Spec, loc: Loc, message: str, code: int = 65) -> Problem:
    """A problem placed at ``loc`` of the spec's file (when the spec came from a file)."""
    source: Any = spec._source
    if source is None:
        return Problem(".".join(str(part) for part in loc), message, code=code)
    problem: Problem = source.document.problem(loc, message, code)
    return problem


def overlap_problem(spec: Spec, dev: Dataset, test: Dataset) -> Problem | None:
    """The test rows that duplicate development rows, if more than the spec allows."""
    pairs = overlap(test, dev)
    allowed = spec.split.test.allow_overlap
    if len(pairs) <= allowed:
        return None
    where = "source" if spec.split.test.source else "fraction"
    if spec.split.test.source:
        first_test, first_dev = pairs[0]
        what = (
            f"{len(pairs)} of the {len(test)} test rows in {test.name} are exact duplicates of "
            f"development rows in {dev.name} (first: test row {first_test} = development row "
            f"{first_dev}, counting data rows from 0)"
        )
    else:
        what = (
            f"{len(pairs)} of the {len(test)} test rows split off {dev.name} are exact "
            "duplicates of development rows (the data repeats feature rows)"
        )
    allowance = f" (split.test.allow_overlap is {allowed})" if allowed else ""
    message = (
        f"{what}{allowance}; a test score on rows the model trained on is no test score. "
        f"Remove the duplicates, or write `allow_overlap: {len(pairs)}` under split.test if "
        "they are legitimately distinct observations"
    )
    return locate(spec, ("split", "test", where), message)


def check_overlap(spec: Spec, dev: Dataset, test: Dataset) -> None:
    """Refuse a separate test file that repeats development rows (exit 65).

    Duplicates within one data file that a `fraction` split scatters across both sides are
    the data's own (two flowers of iris measure alike): `data_warnings` reports them instead.
    """
    if spec.split.test.source is None:
        return
    problem = overlap_problem(spec, dev, test)
    if problem is not None:
        raise SpecError([problem])


def data_warnings(spec: Spec, dev: Dataset, test: Dataset) -> list[Problem]:
    """What a new study should hear about its data: duplicated rows across a `fraction` split,
    features that look like the target."""
    found = []
    if spec.split.test.source is None:
        problem = overlap_problem(spec, dev, test)
        if problem is not None:
            found.append(problem)
    for message in target_leaks(dev, spec.seed):
        found.append(locate(spec, ("data", "source"), message))
    return found


def target_leaks(dev: Dataset, seed: int = 0) -> list[str]:
    """Features that alone predict the target almost perfectly on held-out development rows.

    Each feature gets a shallow one-feature tree (classification, balanced accuracy) or a
    rank correlation (regression), fitted on one half of at most LEAK_SAMPLE rows and judged
    on the other: milliseconds per feature, so it runs before every new study.
    """
    n = len(dev)
    if n < 20:
        return []
    rng = np.random.default_rng(seed % (2**32))
    rows = rng.permutation(n)[:LEAK_SAMPLE]
    fit, held = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    frame = dev.X if isinstance(dev.X, pd.DataFrame) else pd.DataFrame(dev.X)
    names = dev.feature_names
    y = np.asarray(dev.y)
    found = []
    for index, name in enumerate(names):
        column = frame.iloc[:, index]
        score = (
            _classifier_score(column, y, fit, held)
            if dev.task == "classification"
            else _regression_score(column, y, held)
        )
        if score is not None and score >= LEAK_SCORE:
            measure = "balanced accuracy" if dev.task == "classification" else "|rank correlation|"
            found.append(
                f"feature {name!r} alone predicts the target with {measure} {score:.3f} on "
                "held-out development rows: a likely target leak (a copy of the target, or "
                "something known only after it); drop it under data.drop if so"
            )
    return found


def _codes(column: pd.Series[Any]) -> np.ndarray[Any, Any] | None:
    """A numeric column as the dense ranks of its values, missing values ranked 0 (below all);
    None for text or an all-missing column.

    Both checks depend on the order of the values alone, and ranks keep a one-feature tree
    (which computes in float32) clear of infinities and values beyond float32's range.
    """
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(values).all():
            return None
        return pd.Series(values).rank(method="dense").fillna(0.0).to_numpy()
    return None


def _classifier_score(
    column: pd.Series[Any],
    y: np.ndarray[Any, Any],
    fit: np.ndarray[Any, Any],
    held: np.ndarray[Any, Any],
) -> float | None:
    classes = pd.unique(y)
    if len(classes) < 2:
        return None
    values = _codes(column)
    if values is None:  # text: each category predicts its most frequent class
        return _category_score(column.astype(str).to_numpy(), y, fit, held)
    tree = DecisionTreeClassifier(max_leaf_nodes=max(4, 2 * len(classes)), random_state=0)
    tree.fit(values[fit].reshape(-1, 1), y[fit])
    return _balanced_accuracy(y[held], tree.predict(values[held].reshape(-1, 1)))


def _category_score(
    text: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    fit: np.ndarray[Any, Any],
    held: np.ndarray[Any, Any],
) -> float | None:
    train = pd.DataFrame({"x": text[fit], "y": y[fit]})
    if train["x"].nunique() > len(fit) // 10:  # an identifier, not a category: no evidence
        return None
    mode = train.groupby("x")["y"].agg(lambda s: s.value_counts().index[0])
    predicted = pd.Series(text[held]).map(mode)
    known = predicted.notna().to_numpy()
    if known.sum() < len(held) // 2:
        return None
    return _balanced_accuracy(y[held][known], predicted[known].to_numpy())


def _balanced_accuracy(truth: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> float:
    recalls = [float(np.mean(predicted[truth == label] == label)) for label in pd.unique(truth)]
    return float(np.mean(recalls))


def _regression_score(
    column: pd.Series[Any], y: np.ndarray[Any, Any], held: np.ndarray[Any, Any]
) -> float | None:
    values = _codes(column)
    if values is None:
        return None
    x = pd.Series(values[held]).rank().to_numpy()
    target = pd.Series(np.asarray(y, dtype="float64")[held]).rank().to_numpy()
    if np.std(x) == 0 or np.std(target) == 0:
        return None
    return float(abs(np.corrcoef(x, target)[0, 1]))


__all__ = [
    "LEAK_SCORE",
    "check_overlap",
    "data_warnings",
    "locate",
    "overlap_problem",
    "target_leaks",
]
