"""What the MLflow observer writes: a trial as an MLflow run's params, metrics and tags.

Pure functions of tunedag's records, so they read (and test) without a tracking server.
Names mirror ``trials.csv``: the objective's metric name for the trial's value, ``fold_0``,
``fold_1``, ... for the folds, ``intermediate`` (one step a report) for the values a
pruner judged, ``duration_s``, and each extra metric of ``objective.report`` by its name.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from tunedag.storage import StudyRecord, TrialRecord, TrialState

TAG = "tunedag."  # the prefix of every tag tunedag writes
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
#: MLflow's run status for each final trial state (a pruned trial was stopped early).
STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAILED: "FAILED",
}
FINAL = frozenset(STATUS)
_TAG_LIMIT = 4000  # characters; MLflow stores tag values up to a few thousand


def study_key(record: StudyRecord) -> str:
    """The identity of one study in storage: its name, fingerprint and creation time.

    ``--fresh`` starts a new study under the same name, with a new creation time, so it
    gets a parent run of its own.
    """
    payload = [record.name, record.fingerprint, repr(record.created_at)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint_digest(record: StudyRecord) -> str:
    text = json.dumps(record.fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def study_tags(record: StudyRecord, key: str, sampler: str, storage: str) -> dict[str, str]:
    return {
        f"{TAG}role": "study",
        f"{TAG}study": record.name,
        f"{TAG}study_key": key,
        f"{TAG}fingerprint": fingerprint_digest(record),
        f"{TAG}storage": storage,
        f"{TAG}sampler": sampler,
    }


def trial_tags(trial: TrialRecord, parent_id: str, key: str, sampler: str) -> dict[str, str]:
    """The tags a trial's run starts with; its outcome adds ``outcome_tags``."""
    return {
        PARENT: parent_id,
        RUN_NAME: f"trial {trial.number}",
        f"{TAG}role": "trial",
        f"{TAG}trial": str(trial.number),
        f"{TAG}study_key": key,
        f"{TAG}sampler": sampler,
        f"{TAG}attempt": str(trial.attempt),
    }


def outcome_tags(trial: TrialRecord) -> dict[str, str]:
    """Written once the trial is final; a run that has ``tunedag.state`` is fully logged."""
    tags = {f"{TAG}state": trial.state.value, f"{TAG}attempt": str(trial.attempt)}
    if trial.error:
        tags[f"{TAG}error"] = trial.error[-_TAG_LIMIT:]
    return tags


def trial_params(trial: TrialRecord) -> dict[str, str]:
    """The trial's parameters as MLflow strings (inactive conditional ones are absent)."""
    return {name: _text(value) for name, value in trial.params.items()}


def trial_metrics(trial: TrialRecord, metric: str) -> list[tuple[str, float, int]]:
    """(name, value, step) for each number the trial produced."""
    values: list[tuple[str, float, int]] = []
    if trial.value is not None:
        values.append((metric, trial.value, 0))
    values += [(f"fold_{i}", value, 0) for i, value in enumerate(trial.fold_values)]
    values += [("intermediate", value, step) for step, value in sorted(trial.intermediate.items())]
    if trial.duration_s is not None:
        values.append(("duration_s", trial.duration_s, 0))
    values += [(name, value, 0) for name, value in trial.metric_means().items()]
    return values


def milliseconds(seconds: float | None = None) -> int:
    """MLflow's timestamps: milliseconds since the epoch (of ``seconds``, or of now)."""
    return int((time.time() if seconds is None else seconds) * 1000)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
