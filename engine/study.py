"""Running a study: open or resume it, run the search, score the test set once.

The driver owns the sampler, the pruner and the storage; the executor only runs trials on
the development rows. A run killed at any point resumes where it stopped: trials left
running are re-queued with their parameters and run again. The test rows reach one place
only, the final evaluation.

A driver holds a lease on its study (``tunedag.lease``) from before it reads anything until
it returns; with ``join`` it shares the study with the drivers already on it, and exactly
one of them, the first to claim it once the study is finished, scores the test set.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from tunedag.baseline import plan_baseline, score_outside_space
from tunedag.dag import build_dag, check_test_isolation
from tunedag.datachecks import data_warnings
from tunedag.dryrun import dry_run_apart
from tunedag.errors import (
    InterruptedStudy,
    SpecChangedError,
    StorageError,
    StudyFailedError,
    TestSetLockedError,
    UsageError,
)
from tunedag.evaluation import evaluate_test_set, judged, save_missing_model
from tunedag.events import Events
from tunedag.lease import Lease, lease_timeout
from tunedag.ledger import Ledger
from tunedag.looks import Look
from tunedag.model import model_path
from tunedag.observer import Observer, Observers
from tunedag.prepare import Prepared, prepare, spec_fingerprint
from tunedag.registry import Plugins, make_plugins
from tunedag.result import StudyResult, read_result, read_status
from tunedag.search import (
    POLL_S,
    Interrupt,
    Limits,
    Search,
    StudyContext,
    announce_requeued,
    report_takeover,
)
from tunedag.spec.models import MAX_TRIALS, MAX_WORKERS, Spec
from tunedag.spec.validate import base_dir_of
from tunedag.stopsignals import STOP_SIGNALS, deferred_while_blocked
from tunedag.storage import (
    Storage,
    StudyRecord,
    TestEvaluation,
    TrialState,
    open_storage,
)
from tunedag.testlock import TestSetLock, looks_of_study

__all__ = ["StudyContext", "direction_of", "run", "status"]


def run(
    spec: Spec,
    *,
    workers: int | None = None,
    storage: str | None = None,
    max_new_trials: int | None = None,
    fresh: bool = False,
    allow_second_look: bool = False,
    join: bool = False,
    events: Events | None = None,
    plugins: Plugins | None = None,
    observers: Sequence[Observer] = (),
) -> StudyResult:
    """Run or resume ``spec``'s study to its budget, then score the best trial on the test set.

    ``observers`` run besides those the spec lists (made by the caller, with their options).

    ``join`` shares the study with drivers already running it on the same storage; without
    it, a study another live driver runs is refused (StudyBusyError, exit 75).

    Raises StudyFailedError (exit 1), TestSetLockedError (3), SpecChangedError (65),
    StudyBusyError or LeaseLostError (75) or InterruptedStudy (130/143); every stored result
    survives each of them.
    """
    if join and fresh:
        raise UsageError(
            "--fresh starts a new study, which other drivers cannot be running: "
            "drop --join or --fresh"
        )
    _check_count("--workers", workers, 1, MAX_WORKERS, "as execution.workers")
    _check_count("--max-new-trials", max_new_trials, 0, MAX_TRIALS, "trials to add this run")
    if storage is not None and not storage.strip():
        raise UsageError("--storage '': give a storage URL (sqlite:///PATH, postgresql://...)")
    plugins = plugins or make_plugins()
    events = events or Events()
    events.study = spec.name
    graph = build_dag(spec)  # the graph that executes: its test rows reach the evaluation only
    check_test_isolation(graph)
    with open_storage(storage or spec.storage_url, Path.cwd()) as store:
        driver = _Driver(spec, graph, store, plugins, events, workers or spec.execution.workers)
        driver.observers = Observers.of_spec(spec, plugins, observers)
        with _signals_raise() as driver.interrupt:
            try:
                result = driver.run(max_new_trials, fresh, allow_second_look, join)
            finally:
                driver.observers.close()
    return result.with_model(model_path(spec, storage), spec.allow_imports)


def status(spec: Spec, *, storage: str | None = None) -> StudyResult | None:
    """The study's trials by state, the best, the stop reason; None if it never ran."""
    result = read_status(spec, storage=storage)
    if result is None:
        return None
    return result.with_model(model_path(spec, storage), spec.allow_imports)


def direction_of(spec: Spec) -> str:
    return spec.objective.direction or "maximize"


def _check_count(option: str, value: Any, low: int, high: int, meaning: str) -> None:
    """A count given to ``run`` (the CLI's option or the Python API's keyword): None or an
    int from ``low`` to ``high``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{option} {value!r}: give a whole number from {low} to {high}, {meaning}")


class _Driver:
    lock: TestSetLock  # set once the data is prepared
    observers: Observers

    def __init__(
        self,
        spec: Spec,
        graph: nx.DiGraph,
        storage: Storage,
        plugins: Plugins,
        events: Events,
        workers: int,
    ) -> None:
        self.spec = spec
        self.graph = graph
        self.name = spec.name
        self.storage = storage
        self.plugins = plugins
        self.events = events
        self.workers = workers
        self.direction = direction_of(spec)
        self.context = StudyContext(spec.name, spec, storage)
        for kind, name in (
            ("sampler", spec.sampler.name),
            ("pruner", spec.pruner.name),
            ("executor", spec.execution.executor),
        ):
            plugins.get(kind, name)  # an unknown name fails before anything is stored
        self.ledger = Ledger()
        self.interrupt = Interrupt()

    def run(
        self, max_new_trials: int | None, fresh: bool, allow_second_look: bool, join: bool
    ) -> StudyResult:
        """Take the lease, run the study, give the lease back whatever happens."""
        timeout = lease_timeout(self.spec.execution.lease_timeout)
        self.lease = Lease(self.storage, self.name, timeout)
        self.takeover = self.lease.acquire(join=join)
        try:
            result = self._run(max_new_trials, fresh, allow_second_look)
        except BaseException:
            with contextlib.suppress(StorageError):  # the error that stopped the run wins
                self.lease.release()
            raise
        self.lease.release()
        return result

    def _run(self, max_new_trials: int | None, fresh: bool, allow_second_look: bool) -> StudyResult:
        prepared = prepare(self.spec, base_dir_of(self.spec))
        self.lock = TestSetLock(self.spec, prepared.test, self.storage)
        existing = None if fresh else self.storage.get_study(self.name)
        scored_here = existing is not None and bool(self.storage.test_evaluations(self.name))
        unrecorded = None
        if existing is not None and not scored_here:
            unrecorded = self.lock.unrecorded(existing.created_at)
        if self.spec.trial is None:  # a custom trial function never scores the test rows
            self.lock.check(
                scored_here=scored_here or unrecorded is not None,
                allow_second_look=allow_second_look,
            )
        # a spec that would fail every trial fails here, before anything is stored; apart,
        # so that native threads its fits start never reach the workers forked later
        dry_run_apart(self.spec, prepared)
        record = self._open_study(prepared, fresh)
        self.observers.before_study(self.context)
        plan_baseline(
            self.storage, self.spec, self.plugins.get("sampler", self.spec.sampler.name).cls
        )
        self.ledger = Ledger(self.storage.trials(self.name), self.direction)
        if unrecorded is not None and unrecorded.trial < len(self.ledger):
            self._record_unrecorded(unrecorded)
        evaluations = self.storage.test_evaluations(self.name)
        if evaluations and not allow_second_look:
            if self._would_add_trials(record):
                raise TestSetLockedError(
                    f"study {self.name!r} was already scored on its test set; running more "
                    "trials would be a second look. Pass --allow-second-look to record one, "
                    "or --fresh to start a new study"
                )
            self._save_missing_model(prepared, evaluations[-1])
            result = self._result()
            self._emit_finished(result)  # nothing to run: say so, as the last event
            self.observers.after_study(self.context, result)
            return result
        started = time.monotonic()
        budget = self.spec.budget
        self.events.emit(
            "study_started",
            budget=budget.trials,
            budget_time_s=budget.time,
            max_failed=budget.max_failed,
            trials=len(self.ledger),
            finished=len(self.ledger) - self.ledger.pending,
            direction=self.direction,
            metric=self.spec.objective.metric,
            sampler={"name": self.spec.sampler.name, "options": self.spec.sampler.options},
            pruner={"name": self.spec.pruner.name, "options": self.spec.pruner.options},
            best=self.ledger.best_summary(),
        )
        report_takeover(self.events, self.takeover, self._requeued)
        if existing is None:  # a new study: say once what looks wrong with its data
            for warning in data_warnings(self.spec, prepared.dev, prepared.test):
                self.events.emit("warning", message=str(warning), field=warning.path)
        search = Search(
            self.context,
            self.ledger,
            self.plugins,
            self.events,
            self.interrupt,
            self.direction,
            self.observers,
            lease=self.lease,
        )
        limits = Limits(
            trials=self.spec.budget.trials,
            new_trials=max_new_trials,
            seconds=(self.spec.budget.time or float("inf")) - record.elapsed_s,
            started=started,
        )
        try:
            reason = search.run(prepared, self.graph, self.workers, limits)
        finally:
            self.storage.add_elapsed(self.name, time.monotonic() - started)
        self.interrupt.check()
        return self._finish(reason, prepared, allow_second_look)

    # -- setup ---------------------------------------------------------------------------------

    def _open_study(self, prepared: Prepared, fresh: bool) -> StudyRecord:
        fingerprint = spec_fingerprint(self.spec, prepared)
        spec_json = self.spec.model_dump_json()
        record = self.storage.get_study(self.name)
        if record is not None and fresh:
            archived = self.storage.archive_study(self.name)
            self.events.emit("study_archived", archived_as=archived)
            record = None
        if record is None:
            created = self.storage.create_study(self.name, fingerprint, spec_json, exist_ok=True)
            if created is not None:
                self.storage.save_folds(self.name, prepared.folds)
                return created
            record = self.storage.get_study(self.name)  # a joining driver made it first
            assert record is not None
        changed = [
            part for part, value in fingerprint.items() if record.fingerprint.get(part) != value
        ]
        if changed:
            raise SpecChangedError(
                f"the {', '.join(changed)} of study {self.name!r} changed since it was stored in "
                f"{self.storage.url}; pass --fresh to start a new study (the old one is kept)"
            )
        stored_folds = self.storage.load_folds(self.name)
        if stored_folds is not None:
            prepared.folds = stored_folds
        self.storage.update_spec(self.name, spec_json)
        return record

    def _would_add_trials(self, record: StudyRecord) -> bool:
        """Whether this spec's budget allows trials the stored study has not run."""
        if record.finished_reason == "exhausted":
            return False
        if (self.spec.budget.time or float("inf")) <= record.elapsed_s:
            return False
        return len(self.ledger) < self.spec.budget.trials

    def _requeued(self, number: int, reason: str) -> None:
        """A trial a stopped driver left running, now back in the queue."""
        announce_requeued(self.context, self.ledger, self.events, number, reason)

    # -- ending --------------------------------------------------------------------------------

    def _finish(self, reason: str | None, prepared: Prepared, second_look: bool) -> StudyResult:
        if reason is None:
            self.storage.set_finished(self.name, None)
            result = self._result()
            self.events.emit("study_paused", counts=result.counts)
            self.observers.after_study(self.context, result)
            return result
        self.storage.set_finished(self.name, reason)
        looks = len(self.storage.test_evaluations(self.name))  # read before the result
        result = self._result()
        best = result.best
        self._emit_finished(result)
        if reason == "failed":
            self.observers.after_study(self.context, result)
            raise StudyFailedError(self._failed_message())
        wanted = best is not None and (result.test is None or second_look)
        if not self._claim_evaluation(wanted, looks):
            result = self._result()  # another driver scored the test set: its result
            self.observers.after_study(self.context, result)
            return result
        score_outside_space(self.storage, prepared, self.graph)
        if best is not None and (result.test is None or second_look):
            evaluation = evaluate_test_set(
                prepared,
                best,
                self.direction,
                second_look=result.test is not None,
                model_path=model_path(self.spec, self.storage.url),
            )
            if evaluation is None:
                self.observers.after_study(self.context, result)
                return result
            look, of = self.lock.record(evaluation, allow_second_look=second_look)
            evaluation.second_look = look.number > 1
            self.storage.record_test_evaluation(self.name, evaluation)
            self._emit_evaluated(evaluation, look, of)
            result = self._result()
        self.observers.after_study(self.context, result)
        return result

    def _emit_evaluated(self, evaluation: TestEvaluation, look: Look, of: int) -> None:
        self.events.emit(
            "test_evaluated",
            value=evaluation.value,
            cv_value=evaluation.cv_value,
            gap=evaluation.gap,
            flagged=evaluation.flagged,
            trial=evaluation.trial_number,
            second_look=evaluation.second_look,
            metrics=evaluation.metrics,
            look=look.number,
            of=of,
        )

    def _record_unrecorded(self, look: Look) -> None:
        """Finish what a stopped run began: its look is in the ledger, so the storage records
        it as it was scored (no second look; the report's extra metrics are not kept)."""
        best = self.ledger[look.trial]
        evaluation = judged(
            best,
            math.nan if look.value is None else float(look.value),
            self.direction,
            split_fingerprint=look.split_fingerprint,
            evaluated_at=look.looked_at,
            second_look=look.number > 1,
        )
        self.storage.record_test_evaluation(self.name, evaluation)
        self._emit_evaluated(evaluation, look, len(self.lock.earlier))

    def _claim_evaluation(self, wanted: bool, looks: int) -> bool:
        """Whether this driver scores the test set, which has ``looks`` evaluations so far.

        Only one driver of a study claims it; the others wait until it recorded its look
        (False), or claim it in turn when it stopped without one.
        """
        while not self.storage.claim_evaluation(self.name, self.lease.owner, looks):
            if not wanted or len(self.storage.test_evaluations(self.name)) > looks:
                return False
            time.sleep(POLL_S)
            self.interrupt.check()
            self.lease.check()
            report_takeover(self.events, self.storage.reap_stale_leases(self.name), self._requeued)
        return True

    def _save_missing_model(self, prepared: Prepared, evaluation: TestEvaluation) -> None:
        trial = self.storage.get_trial(self.name, evaluation.trial_number)
        path = model_path(self.spec, self.storage.url)
        if save_missing_model(prepared, trial, evaluation, self.direction, path):
            self.events.emit("model_saved", path=str(path), trial=trial.number, refit=True)

    def _emit_finished(self, result: StudyResult) -> None:
        best = result.best
        self.events.emit(
            "study_finished",
            reason=result.reason,
            counts=result.counts,
            best_number=best.number if best else None,
            best_params=best.params if best else None,
            best_value=best.value if best else None,
        )

    def _result(self) -> StudyResult:
        record = self.storage.get_study(self.name)
        assert record is not None
        result = read_result(self.storage, record, self.direction)
        result.looks = looks_of_study(
            self.spec, self.storage.test_evaluations(self.name), self.storage
        )
        return result

    def _failed_message(self) -> str:
        failed = [t for t in self.ledger.trials if t.state == TrialState.FAILED]
        last = (failed[-1].error or "").split("\n", 1)[0] if failed else ""
        return (
            f"study {self.name!r} failed: {len(failed)} failed trials, more than "
            f"budget.max_failed={self.spec.budget.max_failed}; last error: {last}"
        )


@contextlib.contextmanager
def _signals_raise() -> Iterator[Interrupt]:
    """SIGINT and SIGTERM raise InterruptedStudy, so in-flight trials get re-queued."""
    interrupt = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def handler(signum: int, frame: Any) -> None:
        if deferred_while_blocked(signum) or interrupt.signum is not None:
            return  # held back until the block ends, or already stopping
        interrupt.signum = signum
        raise InterruptedStudy(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield interrupt
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
