"""The one node that sees the test rows: refit the best configuration, score it once, save it."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tunedag.errors import TestRowsError, TunedagError
from tunedag.model import is_saved, make_card, save_model
from tunedag.prepare import Prepared
from tunedag.refit import refit_best
from tunedag.scoring import resolve_scorer, score_metrics
from tunedag.storage import TestEvaluation, TrialRecord
from tunedag.text import error_text

#: a test score further than this many fold standard deviations below CV is flagged
GAP_TOLERANCE_STDS = 2.0


def evaluate_test_set(
    prepared: Prepared,
    best: TrialRecord,
    direction: str,
    *,
    second_look: bool,
    model_path: Path | None = None,
) -> TestEvaluation | None:
    """Fit ``best`` on every development row, score the test rows, save the model.

    The model and its card are saved (atomically) before the caller records the
    evaluation, so a run killed in between leaves no recorded look and the next run
    finishes the job. Returns None for a custom trial function without ``trial.fit``.
    """
    with threadpool_limits(limits=1), _test_rows_errors(best):
        model = refit_best(prepared, best.params)
        if model is None:
            return None
        scorer = resolve_scorer(prepared.spec.objective.metric)
        value = float(scorer(model, prepared.test.X, prepared.test.y))
        if not math.isfinite(value):  # roc_auc on one class: not a score worth a look
            metric = prepared.spec.objective.metric
            raise ValueError(f"{metric} on the test rows is {value}, undefined for those rows")
        report = prepared.spec.objective.report
        metrics = score_metrics(model, prepared.test.X, prepared.test.y, report)
    evaluation = judged(
        best,
        value,
        direction,
        split_fingerprint=prepared.split_fingerprint,
        evaluated_at=time.time(),
        second_look=second_look,
        metrics=metrics,
    )
    if model_path is not None:
        save_model(model, model_path, make_card(prepared, best, evaluation, direction))
    return evaluation


def judged(best: TrialRecord, value: float, direction: str, **recorded: Any) -> TestEvaluation:
    """The evaluation of ``best`` scoring ``value`` on the test rows: its gap to the CV value,
    flagged past GAP_TOLERANCE_STDS fold standard deviations."""
    cv_value = float(best.value if best.value is not None else np.nan)
    gap = cv_value - value if direction == "maximize" else value - cv_value
    spread = float(np.std(best.fold_values, ddof=1)) if len(best.fold_values) > 1 else 0.0
    return TestEvaluation(
        trial_number=best.number,
        value=value,
        cv_value=cv_value,
        gap=gap,
        flagged=bool(gap > GAP_TOLERANCE_STDS * spread + 1e-12),
        **recorded,
    )


@contextlib.contextmanager
def _test_rows_errors(best: TrialRecord) -> Iterator[None]:
    """A refit or a score that fails is the data's problem, told before any look counts."""
    try:
        yield
    except TunedagError:
        raise
    except Exception as error:
        raise TestRowsError(
            f"the best trial ({best.number}) cannot be refit on the development rows or "
            f"scored on the test rows: {error_text(error)}. The trials passed on the "
            "development rows, so the test rows likely hold what they do not (text or "
            "infinity in a numeric column, a class never seen); no look was recorded and "
            "the trials are kept. Fix the data and start a new study (--fresh)"
        ) from error


def save_missing_model(
    prepared: Prepared,
    trial: TrialRecord,
    evaluation: TestEvaluation,
    direction: str,
    model_path: Path,
) -> bool:
    """Give a scored study its model when the file is missing or does not match its card.

    That is a study scored before tunedag saved models, a model file removed by hand, or a
    save interrupted between the model and its card. The recorded trial is refit on the
    development rows only; the test rows are not scored again, so it is no second look.
    The card says ``refit_after_evaluation: true``: an estimator without a fixed
    ``random_state`` may differ from the one that was scored.
    """
    if is_saved(model_path, evaluation):
        return False
    with threadpool_limits(limits=1):
        model = refit_best(prepared, trial.params)
    if model is None:
        return False
    card = make_card(prepared, trial, evaluation, direction)
    save_model(model, model_path, {**card, "refit_after_evaluation": True})
    return True
