"""What a study has produced: the object `status --json`, `results.json` and the API share."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunedag.baseline import Baseline, baseline_payload, read_baseline
from tunedag.looks import Look
from tunedag.storage import (
    Storage,
    StudyRecord,
    TestEvaluation,
    TrialRecord,
    TrialState,
    open_storage,
    storage_exists,
)

if TYPE_CHECKING:
    from tunedag.spec.models import Spec


@dataclass(frozen=True)
class Driver:
    """A driver's lease on the study, as ``status`` shows it."""

    owner: str
    where: str  # HOST:PID
    since: float
    heartbeat_age_s: float
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": self.where,
            "since": self.since,
            "heartbeat_age_s": round(self.heartbeat_age_s, 3),
            "stale": self.stale,
        }


@dataclass
class StudyResult:
    study: str
    finished: bool
    reason: str | None
    counts: dict[str, int]
    direction: str
    best: TrialRecord | None = None
    test: TestEvaluation | None = None
    second_looks: int = 0
    trials: list[TrialRecord] = field(default_factory=list)
    baseline: Baseline | None = None
    model_file: Path | None = None
    model_trust: tuple[str, ...] = ()
    _estimator: Any = field(default=None, repr=False, compare=False)

    def with_model(self, path: Path, allow_imports: Sequence[str]) -> StudyResult:
        """This result, knowing where its study keeps the saved model."""
        self.model_file = path
        self.model_trust = tuple(allow_imports)
        return self

    @property
    def best_estimator(self) -> Any:
        """The model the test set scored, loaded from its skops file (trusted types only).

        Raises ModelNotFoundError while the study has none: before it is finished and
        scored, or for a custom trial function without ``trial.fit``.
        """
        from tunedag.errors import ModelNotFoundError
        from tunedag.model import load_model

        if self.model_file is None or not self.model_file.is_file():
            raise ModelNotFoundError(
                f"study {self.study!r} has no saved model"
                + (f" at {self.model_file}" if self.model_file else "")
                + ": a model is saved when a finished study is scored on its test set"
            )
        if self._estimator is None:
            self._estimator = load_model(self.model_file, allow_imports=self.model_trust)
        return self._estimator

    #: every look at this study's test rows, by any study (from the look ledger)
    looks: list[Look] = field(default_factory=list)

    #: how many test evaluations this study's own storage holds
    own_looks: int = 0
    #: run time spent on the study so far, every run together (what budget.time counts)
    elapsed_s: float = 0.0
    #: when the study was first stored (Unix time)
    created_at: float | None = None
    #: the drivers holding a lease on the study (``status`` fills it in)
    drivers: list[Driver] = field(default_factory=list)

    @property
    def stale_running(self) -> list[int]:
        """Running trials whose driver holds no live lease: the next run re-queues them."""
        live = {driver.owner for driver in self.drivers if not driver.stale}
        return [
            t.number for t in self.trials if t.state == TrialState.RUNNING and t.owner not in live
        ]

    @property
    def look_count(self) -> int:
        """Looks at the test rows: the ledger's, or this study's own where it predates it."""
        return max(len(self.looks), self.own_looks)

    @property
    def second_look_count(self) -> int:
        """Every look after the first at these rows, by this study or any other."""
        return max(self.second_looks, self.look_count - 1)

    @property
    def best_params(self) -> dict[str, Any] | None:
        return self.best.params if self.best else None

    @property
    def best_value(self) -> float | None:
        return self.best.value if self.best else None

    @property
    def test_value(self) -> float | None:
        return self.test.value if self.test else None

    @property
    def gap_flagged(self) -> bool:
        return bool(self.test and self.test.flagged)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        test = self.test
        return {
            "study": self.study,
            "finished": self.finished,
            "reason": self.reason,
            "counts": self.counts,
            "cache": {
                "hits": sum(t.cache_hits for t in self.trials),
                "misses": sum(t.cache_misses for t in self.trials),
            },
            "best": None
            if best is None
            else {
                "number": best.number,
                "params": best.params,
                "value": best.value,
                "fold_values": best.fold_values,
                "metrics": best.metric_means(),
            },
            "test": None
            if test is None
            else {
                "value": test.value,
                "cv_value": test.cv_value,
                "gap": test.gap,
                "flagged": test.flagged,
                "trial": test.trial_number,
                "looks": self.look_count,
                "second_looks": self.second_look_count,
                "metrics": test.metrics,
            },
            "baseline": baseline_payload(self.baseline, best, self.direction),
            "drivers": [driver.to_dict() for driver in self.drivers],
            "stale_running": self.stale_running,
        }


def read_status(spec: Spec, *, storage: str | None = None) -> StudyResult | None:
    """The stored study by state, its best and stop reason; None if it never ran.

    Reads storage only (a file that does not exist is left uncreated), importing nothing a
    run needs, so polling a study is fast.
    """
    from tunedag.testlock import looks_of_study

    url = storage or spec.storage_url
    if not storage_exists(url, Path.cwd()):
        return None
    with open_storage(url, Path.cwd()) as store:
        record = store.get_study(spec.name)
        if record is None:
            return None
        result = read_result(store, record, spec.objective.direction or "maximize")
        result.looks = looks_of_study(spec, store.test_evaluations(spec.name), store)
        now, host = time.time(), socket.gethostname()
        result.drivers = [
            Driver(
                lease.owner,
                lease.where,
                lease.started_at,
                now - lease.heartbeat_at,
                lease.stale(now, host),
            )
            for lease in store.leases(spec.name)
        ]
    return result


def status_payload(spec: Spec, result: StudyResult | None) -> dict[str, Any]:
    """The object ``status --json`` prints and ``results.json`` holds, even before a run.

    Besides the study's state it says what the study is judged by (``direction``,
    ``metric``), how much of its ``budget`` is used, and which trials are running.
    """
    payload = _stored_payload(spec.name, result)
    trials = result.trials if result is not None else []
    used = result.elapsed_s if result is not None else 0.0
    payload["direction"] = spec.objective.direction or "maximize"
    payload["metric"] = spec.objective.metric
    payload["budget"] = {"trials": spec.budget.trials, "time": spec.budget.time, "used_time": used}
    payload["elapsed_s"] = _wall_span(result)
    drivers = {driver.owner: driver for driver in (result.drivers if result is not None else [])}
    payload["running"] = [
        _running(t, drivers.get(t.owner or "")) for t in trials if t.state == TrialState.RUNNING
    ]
    return payload


def _running(trial: TrialRecord, driver: Driver | None) -> dict[str, Any]:
    """A running trial, its driver (HOST:PID) and that driver's last heartbeat, when known."""
    return {
        "number": trial.number,
        "attempt": trial.attempt,
        "started_at": trial.started_at,
        "owner": trial.owner,
        "driver": driver.where if driver is not None else None,
        "heartbeat_age_s": round(driver.heartbeat_age_s, 3) if driver is not None else None,
        "stale": driver is None or driver.stale,
    }


def _wall_span(result: StudyResult | None) -> float | None:
    """Wall-clock seconds from the study's creation to the last thing stored about it.

    Read from storage alone, so ``status --json`` and ``results.json`` agree at any time.
    """
    if result is None or result.created_at is None:
        return None
    moments = [t.finished_at or t.started_at or 0.0 for t in result.trials]
    if result.test is not None:
        moments.append(result.test.evaluated_at)
    return max(0.0, max(moments, default=result.created_at) - result.created_at)


def _stored_payload(study: str, result: StudyResult | None) -> dict[str, Any]:
    if result is not None:
        return result.to_dict()
    return {
        "study": study,
        "finished": False,
        "reason": None,
        "counts": {state.value: 0 for state in TrialState},
        "cache": {"hits": 0, "misses": 0},
        "best": None,
        "test": None,
        "baseline": None,
        "drivers": [],
        "stale_running": [],
    }


def ranked(trials: Iterable[TrialRecord], direction: str) -> list[TrialRecord]:
    """Complete trials with a value, best first; a tie goes to the earlier trial."""
    sign = 1.0 if direction == "maximize" else -1.0
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value)
    ]
    return sorted(complete, key=lambda t: (-sign * (t.value or 0.0), t.number))


def best_trial(trials: list[TrialRecord], direction: str) -> TrialRecord | None:
    best = ranked(trials, direction)
    return best[0] if best else None


def read_result(storage: Storage, record: StudyRecord, direction: str) -> StudyResult:
    trials = storage.trials(record.name)
    counts = {state.value: 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.value] += 1
    evaluations = storage.test_evaluations(record.name)
    return StudyResult(
        study=record.name,
        finished=record.finished_reason is not None,
        reason=record.finished_reason,
        counts=counts,
        direction=direction,
        best=best_trial(trials, direction),
        test=evaluations[-1] if evaluations else None,
        second_looks=sum(1 for e in evaluations if e.second_look),
        trials=trials,
        own_looks=len(evaluations),
        elapsed_s=record.elapsed_s,
        created_at=record.created_at,
        baseline=read_baseline(storage, record.name, trials),
    )
