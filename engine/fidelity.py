"""Intermediate values from training steps: the final model trained in increments.

A spec's ``fidelity:`` section turns each trial into a sequence of resource levels::

    fidelity: {param: model__n_estimators, min: 10, max: 270, reduction_factor: 3}
    #   levels 10, 30, 90, 270 (geometric: min * 3**k, then max)
    fidelity: {param: model__max_iter, min: 10, max: 300, steps: 5}
    #   levels 10, 82, 155, 228, 300 (evenly spaced, rounded)
    fidelity: {partial_fit: true, epochs: 20}
    #   levels 1, 2, ..., 20: one partial_fit pass over the training rows per epoch
    fidelity: {partial_fit: true, epochs: 27, reduction_factor: 3}
    #   trained 27 epochs, reported at epochs 1, 3, 9, 27 only (scoring has a cost too)

For every fold the preprocessing steps are fitted once on the fold's training rows; only
the final step is trained further at each level. After each level the mean over the folds
of the validation score is reported, with **the level itself as the step** (10, 30, 90,
270; the epoch for ``partial_fit``), so a pruner's step options (``n_warmup_steps``,
``min_resource``) are written in resource units, and ``successive_halving`` with
``min_resource`` = ``min`` and the same ``reduction_factor`` puts its rungs on the levels.

How a level is reached, on the final step with ``warm_start=True`` set:

- ``n_estimators`` (gradient boosting, random forests, bagging) and HistGradientBoosting's
  ``max_iter`` count the total, so the parameter is set to the level and fit adds the rest;
- any other estimator's ``max_iter`` (MLP, SGD, Perceptron, LogisticRegression) counts the
  iterations of one ``fit`` call, so it is set to the difference between this level and
  the last one, and the total after a level is the level;
- ``partial_fit: true`` calls ``partial_fit`` once per epoch (with every class on the first
  call, for classifiers).

The last level is reported like the others, but the pruner's answer there is not acted
on: the trial is already trained in full, so it completes. A ``ConvergenceWarning`` from
an intermediate level is silenced (stopping early is the
point); one from the last level passes as it would without fidelity. A complete trial's
value and fold values are those at ``max``; a pruned trial keeps those of its last level.
The final evaluation trains the best configuration on every development row through the
same levels up to ``max``, so the test set scores the procedure that cross-validation
measured (for MLP and SGD, whose optimiser restarts at each ``fit``, a single fit to
``max`` would be a different model).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning

from tunedag.executor import Task, TrialOutcome
from tunedag.space import Params
from tunedag.spec.models import FidelitySpec
from tunedag.trial import PipelineWorkload, Report, TrialPruned, _Record, _timed, take


def levels(fidelity: FidelitySpec) -> list[int]:
    """The resource levels a trial is trained and reported at, increasing, ending at max."""
    if fidelity.partial_fit:
        assert fidelity.epochs is not None
        low, high = 1, fidelity.epochs
        if (fidelity.steps is None and fidelity.reduction_factor is None) or high == 1:
            return list(range(1, high + 1))
    else:
        assert fidelity.min is not None and fidelity.max is not None
        low, high = fidelity.min, fidelity.max
    if fidelity.steps is not None:
        points = np.linspace(low, high, fidelity.steps)
        return sorted({round(float(p)) for p in points})
    assert fidelity.reduction_factor is not None
    found: list[int] = []
    level = float(low)
    while round(level) < high:
        if not found or round(level) > found[-1]:
            found.append(round(level))
        level *= fidelity.reduction_factor
    return [*found, high]


def counts_per_call(estimator: Any, param: str) -> bool:
    """Whether ``param`` counts the iterations of one fit call (not the total so far)."""
    return param == "max_iter" and not type(estimator).__name__.startswith("HistGradientBoosting")


class _Incremental:
    """One pipeline: its preprocessing fitted once, its final step trained level by level."""

    def __init__(
        self, pipeline: Any, fidelity: FidelitySpec, X: Any, y: np.ndarray, classes: Any
    ) -> None:
        self.fidelity = fidelity
        self.final = pipeline.steps[-1][1]
        self.prefix = pipeline[:-1] if len(pipeline.steps) > 1 else None
        self.X = self.prefix.fit_transform(X, y) if self.prefix is not None else X
        self.y = y
        self.classes = classes
        self.param = (fidelity.param or "").split("__", 1)[-1]
        self.done = 0
        if not fidelity.partial_fit:
            self.final.set_params(warm_start=True)

    def advance(self, level: int, last: bool) -> None:
        with warnings.catch_warnings():
            if not last:
                warnings.simplefilter("ignore", ConvergenceWarning)
            if self.fidelity.partial_fit:
                for _ in range(level - self.done):
                    if self.classes is not None:
                        self.final.partial_fit(self.X, self.y, classes=self.classes)
                    else:
                        self.final.partial_fit(self.X, self.y)
            else:
                per_call = counts_per_call(self.final, self.param)
                amount = level - self.done if per_call else level
                self.final.set_params(**{self.param: amount})
                self.final.fit(self.X, self.y)
        self.done = level

    def transform(self, X: Any) -> Any:
        return self.prefix.transform(X) if self.prefix is not None else X


@dataclass
class FidelityWorkload(PipelineWorkload):
    """A pipeline cross-validated on fixed folds, its final model trained in increments.

    Runs as one task a trial (its levels walk every fold before the next level), which
    reports each level through ``report``; ``refit_and_score`` is the test node's fit and
    score.
    """

    fidelity: FidelitySpec | None = None

    @property
    def levels(self) -> list[int]:
        assert self.fidelity is not None
        return levels(self.fidelity)

    def tasks(self, number: int, params: Params, attempt: int) -> list[Task]:
        return [Task(number, params, attempt)]

    def run(self, task: Task, report: Report) -> TrialOutcome:
        return _timed(task, lambda record: self._levels(task.params, report, record))

    def _classes(self) -> Any:
        assert self.fidelity is not None
        if self.fidelity.partial_fit and is_classifier(self.pipeline.steps[-1][1]):
            return np.unique(self.y)
        return None

    def _levels(self, params: Params, report: Report, record: _Record) -> float:
        assert self.fidelity is not None
        classes = self._classes()
        folds: list[tuple[_Incremental, Any, np.ndarray]] = []
        durations: list[float] = []
        for train, validation in self.folds:
            started = time.perf_counter()
            model = clone(self.pipeline).set_params(**params)
            learner = _Incremental(
                model, self.fidelity, take(self.X, train), self.y[train], classes
            )
            folds.append((learner, learner.transform(take(self.X, validation)), self.y[validation]))
            durations.append(time.perf_counter() - started)
        levels = self.levels
        for level in levels:
            scores = []
            for index, (learner, X_valid, y_valid) in enumerate(folds):
                started = time.perf_counter()
                learner.advance(level, last=level == levels[-1])
                scores.append(float(self.scorer(learner.final, X_valid, y_valid)))
                durations[index] += time.perf_counter() - started
            record.fold_values = scores
            record.fold_durations = list(durations)
            # at max the trial is trained in full: stopping it then would save nothing
            if record.report(level, report) and level != levels[-1]:
                raise TrialPruned
        return record.mean()

    def refit(self, params: Params) -> Any:
        """The pipeline trained on every development row through every level to max."""
        assert self.fidelity is not None
        model = clone(self.pipeline).set_params(**params)
        learner = _Incremental(model, self.fidelity, self.X, self.y, self._classes())
        levels = self.levels
        for level in levels:
            learner.advance(level, last=level == levels[-1])
        return model  # its steps are the learner's, fitted in place

    def refit_and_score(self, params: Params, X_test: Any, y_test: np.ndarray) -> float:
        """Train on every development row through every level to max; score the given rows."""
        return float(self.scorer(self.refit(params), X_test, y_test))
