"""The rows of ``trials.csv`` and of the report's tables, from stored trials."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunedag.result import ranked
from tunedag.spec.models import Spec
from tunedag.storage import TrialRecord, TrialState

BASE_COLUMNS = ("number", "state", "value", "duration_s")
Cell = str | int | float


def param_names(spec: Spec, trials: Iterable[TrialRecord]) -> list[str]:
    """The spec's parameters in the order written, then any other stored name, sorted."""
    names = list(spec.space)
    extra = {name for trial in trials for name in trial.params} - set(names)
    return names + sorted(extra)


def metric_names(spec: Spec, trials: Iterable[TrialRecord]) -> list[str]:
    """The extra metrics of ``objective.report`` in the order written, then any other stored."""
    names = list(spec.objective.report)
    extra = {name for trial in trials for name in trial.metrics} - set(names)
    return names + sorted(extra)


def fold_count(trials: Iterable[TrialRecord]) -> int:
    """The most fold values any trial has: a pruned trial stops after fewer."""
    return max((len(t.fold_values) for t in trials), default=0)


def csv_header(names: Sequence[str], folds: int, metrics: Sequence[str] = ()) -> list[str]:
    return [
        *BASE_COLUMNS,
        *(f"params.{n}" for n in names),
        *(f"metric.{m}" for m in metrics),
        *(f"fold_{i}" for i in range(folds)),
    ]


def csv_row(
    trial: TrialRecord, names: Sequence[str], folds: int, metrics: Sequence[str] = ()
) -> list[Cell]:
    """One trial; a parameter the trial did not use (inactive, conditional) is an empty cell,
    and so is a metric it has no value of (a trial run before the metric was reported)."""
    values: list[float | None] = [*trial.fold_values]
    values += [None] * (folds - len(values))
    means = trial.metric_means()
    return [
        trial.number,
        trial.state.value,
        _number(trial.value),
        _number(trial.duration_s),
        *(_param(trial.params[n]) if n in trial.params else "" for n in names),
        *(_number(means.get(m)) for m in metrics),
        *(_number(v) for v in values),
    ]


def write_trials_csv(path: Path, spec: Spec, trials: Sequence[TrialRecord]) -> None:
    """``trials.csv``: one row a trial, by number, columns as the contract lists them."""
    names = param_names(spec, trials)
    metrics = metric_names(spec, trials)
    folds = fold_count(trials)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(csv_header(names, folds, metrics))
        writer.writerows(csv_row(t, names, folds, metrics) for t in trials)


def top_trials(
    trials: Iterable[TrialRecord], direction: str, limit: int | None = 10
) -> list[TrialRecord]:
    """Complete trials, best first in the study's direction; ties go to the earlier trial."""
    best = ranked(trials, direction)
    return best if limit is None else best[:limit]


def failed_trials(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.state == TrialState.FAILED]


def first_line(error: str | None) -> str:
    """The line that names the exception, without the traceback stored after it."""
    return (error or "").strip().split("\n", 1)[0]


def fold_spread(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and sample standard deviation of fold values (std 0 for a single fold).

    The same spread the test-gap flag is measured against.
    """
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(np.mean(finite)), std


def _number(value: float | None) -> Cell:
    return "" if value is None else float(value)


def _param(value: Any) -> Cell:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    return _text_cell(str(value))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(text: str) -> str:
    """A text cell a spreadsheet will not run: `=HYPERLINK(...)` becomes `'=HYPERLINK(...)`.

    Spreadsheets take a cell that starts with = + - @ (or a tab or carriage return before
    them) as a formula; a leading apostrophe makes it text, as OWASP recommends for CSV.
    """
    return "'" + text if text.startswith(_FORMULA_START) else text
