"""The one node that sees the test rows: refit the best configuration, score it once."""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from tunedag.prepare import Prepared
from tunedag.storage import TestEvaluation, TrialRecord
from tunedag.trial import PipelineWorkload

#: a test score further than this many fold standard deviations below CV is flagged
GAP_TOLERANCE_STDS = 2.0


def evaluate_test_set(
    prepared: Prepared, best: TrialRecord, direction: str, *, second_look: bool
) -> TestEvaluation | None:
    """Fit ``best`` on every development row and score the test rows.

    Returns None for custom trial functions: they return a score, not a model to refit.
    """
    workload = prepared.workload
    if not isinstance(workload, PipelineWorkload):
        return None
    with threadpool_limits(limits=1):
        value = workload.refit_and_score(best.params, prepared.test.X, prepared.test.y)
    cv_value = float(best.value if best.value is not None else np.nan)
    gap = cv_value - value if direction == "maximize" else value - cv_value
    spread = float(np.std(best.fold_values, ddof=1)) if len(best.fold_values) > 1 else 0.0
    return TestEvaluation(
        trial_number=best.number,
        value=value,
        cv_value=cv_value,
        gap=gap,
        flagged=bool(gap > GAP_TOLERANCE_STDS * spread + 1e-12),
        split_fingerprint=prepared.split_fingerprint,
        evaluated_at=time.time(),
        second_look=second_look,
    )
