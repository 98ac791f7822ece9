"""Running one configuration: cross-validation on the development rows, fold by fold.

A pipeline trial is split into one task per fold (see ``tunedag.nodes``): each fits the
pipeline's steps on the fold's training rows only, reusing fitted prefixes from the
worker's cache, and scores the validation rows, so scaling, encoding and feature selection
never see validation data. The driver's scheduler puts the folds back together in order
and reports the running mean after fold k as step k, which lets a pruner stop a hopeless
configuration after one or two folds.

A custom trial function, and a model trained in fidelity levels, run as one task: their
folds are interleaved inside the trial, which reports through ``report``.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from sklearn.base import clone

from tunedag.cache import OFF, CacheSettings, FitCache, process_cache
from tunedag.errors import InterruptedStudy
from tunedag.executor import Task, TaskAbandoned, TrialOutcome
from tunedag.imports import import_user_module
from tunedag.nodes import Fold, chain_keys, fold_key, run_fold, step_digests, take
from tunedag.space import Params
from tunedag.storage import TrialState
from tunedag.text import LIMIT, clip, error_text

Report = Callable[[int, float], bool]

__all__ = ["Fold", "FunctionWorkload", "PipelineWorkload", "TrialContext", "take"]


class TrialPruned(Exception):
    """Raised inside a trial when the pruner said stop."""


@dataclass
class PipelineWorkload:
    """A scikit-learn pipeline cross-validated on fixed folds of the development rows.

    ``data_fingerprint`` and ``seed`` start every content key, and ``cache`` says how much
    fitted preprocessing each worker keeps (``tunedag.cache``).
    """

    pipeline: Any
    scorer: Any
    X: Any
    y: np.ndarray
    folds: Sequence[Fold]
    metric: str = "score"
    seed: int = 0
    data_fingerprint: str = ""
    cache: CacheSettings = OFF
    report: tuple[str, ...] = ()  # extra metrics scored on every fold (objective.report)

    @property
    def fit_cache(self) -> FitCache | None:
        """This process's cache of fitted prefixes (None when ``execution.cache`` is off)."""
        return process_cache(self.cache) if self.cache.enabled else None

    @cached_property
    def fold_keys(self) -> list[str]:
        return [
            fold_key(self.data_fingerprint, self.seed, k, rows) for k, rows in enumerate(self.folds)
        ]

    def tasks(self, number: int, params: Params, attempt: int) -> list[Task]:
        """One task per fold, each with the content keys of its chain of nodes."""
        digests = None
        if self.cache.enabled and len(self.pipeline.steps) > 1:
            digests = step_digests(clone(self.pipeline).set_params(**params))
        return [
            Task(
                number,
                params,
                attempt,
                fold=k,
                keys=chain_keys(start, digests, self.metric) if digests is not None else (),
            )
            for k, start in enumerate(self.fold_keys)
        ]

    def run(self, task: Task, report: Report) -> TrialOutcome:
        """One fold's chain: fit the prefixes (or take them from the cache), fit, score."""
        assert task.fold is not None, "a pipeline trial runs fold by fold"
        started = time.perf_counter()
        outcome = TrialOutcome(
            number=task.number, state=TrialState.COMPLETE, fold=task.fold, attempt=task.attempt
        )
        try:
            ran = run_fold(
                self.pipeline,
                task.params,
                self.scorer,
                self.X,
                self.y,
                self.folds[task.fold],
                task.keys,
                self.fit_cache,
                self.report,
            )
        except (InterruptedStudy, TaskAbandoned):
            raise
        except BaseException as exc:  # a trial's own failure (as in ``_timed``)
            outcome.state, outcome.error = TrialState.FAILED, _describe(exc)
        else:
            outcome.value = ran.score
            outcome.fold_values = [ran.score]
            outcome.cache_hits, outcome.cache_misses = ran.fit_hits, ran.fit_misses
            outcome.metrics = {name: [value] for name, value in ran.metrics.items()}
        outcome.duration_s = time.perf_counter() - started
        outcome.fold_durations = [outcome.duration_s] if outcome.value is not None else []
        return outcome

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

    def tasks(self, number: int, params: Params, attempt: int) -> list[Task]:
        return [Task(number, params, attempt)]  # the function walks its folds itself

    def run(self, task: Task, report: Report) -> TrialOutcome:
        function = load_function(self.function_path)

        def body(record: _Record) -> float:
            context = TrialContext(task.params, self.X, self.y, self.folds, report, record)
            return float(function(context))

        return _timed(task, body)


def load_function(path: str) -> Callable[..., Any]:
    module_name, _, name = path.partition(":")
    function = getattr(import_user_module(module_name), name)
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


def _timed(task: Task, body: Callable[[_Record], float]) -> TrialOutcome:
    """Run a whole trial's body and say how it ended."""
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
    except (InterruptedStudy, TaskAbandoned):
        raise
    # a trial's own failure must not stop the study: SIGINT reaches the driver (as
    # InterruptedStudy), never a trial, so a KeyboardInterrupt here is the trial's own
    except BaseException as exc:
        state, value, error = TrialState.FAILED, None, _describe(exc)
    return TrialOutcome(
        number=task.number,
        attempt=task.attempt,
        state=state,
        value=value,
        fold_values=record.fold_values,
        intermediate=record.intermediate,
        fold_durations=record.fold_durations,
        duration_s=time.perf_counter() - started,
        error=error,
    )


def _describe(exc: BaseException) -> str:
    """The error stored with a failed trial: its message, then the last frames (clipped:
    a message of megabytes would be stored, and sent in events, with every attempt)."""
    frames = "".join(traceback.format_exception(exc, limit=-3)).strip()
    return clip(f"{error_text(exc)}\n{frames}", 2 * LIMIT)
