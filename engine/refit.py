"""The model the test node scores: the best configuration fitted on every development row.

A pipeline study refits its pipeline (through every fidelity level, when it has some). A
custom trial function has no pipeline to refit; its spec may name a ``trial.fit`` function,
``package.module:fit``, which gets a :class:`FitContext` and returns a fitted estimator::

    def fit(context):
        model = MyEstimator(**context.params)
        return model.fit(context.X, context.y)

Without one the study has no model and no test score, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunedag.errors import PluginError
from tunedag.estimators import plain_pipeline
from tunedag.prepare import Prepared
from tunedag.space import Params
from tunedag.trial import PipelineWorkload, load_function

NO_FIT = (
    "no test score: a custom trial function returns a score, not a model; name a "
    "`trial.fit` function that returns an estimator fitted on every development row to "
    "have it scored once on the test rows and saved"
)


@dataclass
class FitContext:
    """What a ``trial.fit`` function gets: the best parameters and every development row."""

    params: Params
    X: Any
    y: np.ndarray


def refit_best(prepared: Prepared, params: Params) -> Any | None:
    """The fitted model for ``params``, or None for a trial function without ``fit``."""
    workload = prepared.workload
    if isinstance(workload, PipelineWorkload):
        return plain_pipeline(workload.refit(params))
    trial = prepared.spec.trial
    if trial is None or trial.fit is None:
        return None
    try:
        model = load_function(trial.fit)(FitContext(dict(params), prepared.dev.X, prepared.dev.y))
    except Exception as error:
        raise PluginError(
            f"trial.fit {trial.fit} raised {type(error).__name__}: {error}"
        ) from error
    if not hasattr(model, "predict"):
        raise PluginError(
            f"trial.fit {trial.fit} returned {type(model).__name__}, not a fitted estimator "
            "(an object with predict)"
        )
    return model
