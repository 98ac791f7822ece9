"""Running one configuration: cross-validation on the development rows, fold by fold.

Per fold a fresh clone of the pipeline is fitted on the training rows only and scored on
the validation rows, so scaling, encoding and feature selection never see validation data.
After each fold the running mean is reported as step k, which lets a pruner stop a hopeless
configuration after one or two folds.
"""

from __future__ import annotations

import importlib
import math
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from tunedag.errors import InterruptedStudy
from tunedag.executor import TrialOutcome
from tunedag.space import Params
from tunedag.storage import TrialState

Fold = tuple[np.ndarray, np.ndarray]
Report = Callable[[int, float], bool]


def take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


class TrialPruned(Exception):
    """Raised inside a trial when the pruner said stop."""


@dataclass
class PipelineWorkload:
    """A scikit-learn pipeline cross-validated on fixed folds of the development rows."""

    pipeline: Any
    scorer: Any
    X: Any
    y: np.ndarray
    folds: Sequence[Fold]

    def run(self, number: int, params: Params, report: Report) -> TrialOutcome:
        return _timed(number, lambda record: self._folds(params, report, record))

    def _folds(self, params: Params, report: Report, record: _Record) -> float:
        for step, (train, validation) in enumerate(self.folds):
            started = time.perf_counter()
            model = clone(self.pipeline).set_params(**params)
            model.fit(take(self.X, train), self.y[train])
            score = float(self.scorer(model, take(self.X, validation), self.y[validation]))
            record.fold(score, time.perf_counter() - started)
            pruned = record.report(step, report)
            if pruned and step < len(self.folds) - 1:  # stopping after the last fold saves nothing
                raise TrialPruned
        return record.mean()

    def refit(self, params: Params) -> Any:
        """The pipeline fitted on every development row: the model the test node scores."""
        return clone(self.pipeline).set_params(**params).fit(self.X, self.y)

    def refit_and_score(self, params: Params, X_test: Any, y_test: np.ndarray) -> float:
        """Fit on every development row and score the given rows once (the test node)."""
        return float(self.scorer(self.refit(params), X_test, y_test))


@dataclass
class TrialContext:
    """What a custom trial function gets: its parameters, the folds, and `report`."""

    params: Params
    X: Any
    y: np.ndarray
    _folds: Sequence[Fold]
    _report: Report
    _record: _Record
    _pruned: bool = False

    def folds(self) -> Iterator[tuple[Any, np.ndarray, Any, np.ndarray]]:
        """(X_train, y_train, X_validation, y_validation) for each fold."""
        for train, validation in self._folds:
            yield take(self.X, train), self.y[train], take(self.X, validation), self.y[validation]

    def report(self, step: int, value: float) -> None:
        """Record an intermediate value; raises to stop the trial when the pruner says so."""
        if self._record.report_value(step, value, self._report):
            self._pruned = True
            raise TrialPruned

    def should_prune(self) -> bool:
        return self._pruned


@dataclass
class FunctionWorkload:
    """A custom trial: ``package.module:function`` called with a TrialContext, returns a float."""

    function_path: str
    X: Any
    y: np.ndarray
    folds: Sequence[Fold]

    def run(self, number: int, params: Params, report: Report) -> TrialOutcome:
        function = load_function(self.function_path)

        def body(record: _Record) -> float:
            context = TrialContext(params, self.X, self.y, self.folds, report, record)
            return float(function(context))

        return _timed(number, body)


def load_function(path: str) -> Callable[..., Any]:
    module_name, _, name = path.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    if not callable(function):
        raise TypeError(f"{path} is not callable")
    return function  # type: ignore[no-any-return]


@dataclass
class _Record:
    fold_values: list[float] = field(default_factory=list)
    fold_durations: list[float] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)

    def fold(self, score: float, seconds: float) -> None:
        self.fold_values.append(score)
        self.fold_durations.append(seconds)

    def mean(self) -> float:
        return float(np.mean(self.fold_values))

    def report(self, step: int, report: Report) -> bool:
        return self.report_value(step, self.mean(), report)

    def report_value(self, step: int, value: float, report: Report) -> bool:
        self.intermediate[step] = value
        return report(step, value)


def _timed(number: int, body: Callable[[_Record], float]) -> TrialOutcome:
    record = _Record()
    started = time.perf_counter()
    state, value, error = TrialState.COMPLETE, None, None
    try:
        value = body(record)
        if not math.isfinite(value):
            state, error = TrialState.FAILED, f"the objective is {value} (not a finite number)"
    except TrialPruned:
        state = TrialState.PRUNED
        value = record.intermediate[max(record.intermediate)] if record.intermediate else None
    except InterruptedStudy:
        raise
    except Exception as exc:  # a trial's own failure must not stop the study
        state, value = TrialState.FAILED, None
        error = f"{type(exc).__name__}: {exc}\n{_short_traceback(exc)}"
    return TrialOutcome(
        number=number,
        state=state,
        value=value,
        fold_values=record.fold_values,
        intermediate=record.intermediate,
        fold_durations=record.fold_durations,
        duration_s=time.perf_counter() - started,
        error=error,
    )


def _short_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc, limit=-3)).strip()
