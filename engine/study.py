"""Running a study: the driver that asks the sampler, hands trials out, stores every result.

The driver owns the sampler, the pruner and the storage; the executor only runs trials on
the development rows. Every state change is committed before the next step, so a run
killed at any point resumes where it stopped: trials left running are re-queued with
their parameters and run again, and in sequential mode the resumed study proposes what an
uninterrupted one would have. The test rows reach one place only, the final evaluation.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunedag.dag import build_dag, check_test_isolation
from tunedag.errors import (
    InterruptedStudy,
    PluginError,
    SpecChangedError,
    SpecError,
    StudyFailedError,
    TestSetLockedError,
)
from tunedag.evaluation import evaluate_test_set
from tunedag.events import Events
from tunedag.executor import Executor, TrialOutcome
from tunedag.prepare import Prepared, prepare, spec_fingerprint
from tunedag.pruner import Pruner
from tunedag.registry import Plugins, Provided, make_plugins
from tunedag.result import StudyResult, read_result
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace
from tunedag.spec.validate import base_dir_of
from tunedag.spec.models import Spec
from tunedag.storage import (
    FINISHED_STATES,
    Storage,
    StudyRecord,
    TrialRecord,
    TrialState,
    open_storage,
)


#: A trial whose worker dies this many times is recorded as failed, not re-queued again.
LOST_ATTEMPTS = 3


@dataclass
class StudyContext:
    """What observer hooks receive as ``study``."""

    name: str
    spec: Spec
    storage: Storage


def run(
    spec: Spec,
    *,
    workers: int | None = None,
    storage: str | None = None,
    max_new_trials: int | None = None,
    fresh: bool = False,
    allow_second_look: bool = False,
    events: Events | None = None,
    plugins: Plugins | None = None,
) -> StudyResult:
    """Run or resume ``spec``'s study to its budget, then score the best trial on the test set.

    Raises StudyFailedError (exit 1), TestSetLockedError (3), SpecChangedError (65) or
    InterruptedStudy (130/143); every stored result survives each of them.
    """
    plugins = plugins or make_plugins()
    events = events or Events()
    events.study = spec.name
    check_test_isolation(build_dag(spec))
    with open_storage(storage or spec.storage_url, Path.cwd()) as store:
        driver = _Driver(spec, store, plugins, events, workers or spec.execution.workers)
        with _signals_raise() as driver.interrupt:
            return driver.run(max_new_trials, fresh, allow_second_look)


def status(spec: Spec, *, storage: str | None = None) -> StudyResult | None:
    """The study's trials by state, the best, the stop reason; None if it never ran."""
    with open_storage(storage or spec.storage_url, Path.cwd()) as store:
        record = store.get_study(spec.name)
        if record is None:
            return None
        return read_result(store, record, direction_of(spec))


def direction_of(spec: Spec) -> str:
    return spec.objective.direction or "maximize"


class _Driver:
    def __init__(
        self, spec: Spec, storage: Storage, plugins: Plugins, events: Events, workers: int
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.storage = storage
        self.plugins = plugins
        self.events = events
        self.workers = workers
        self.direction = direction_of(spec)
        self.context = StudyContext(spec.name, spec, storage)
        self.sampler_ref = plugins.get("sampler", spec.sampler.name)
        self.pruner_ref = plugins.get("pruner", spec.pruner.name)
        self.executor_ref = plugins.get("executor", spec.execution.executor)
        self.history: dict[int, TrialRecord] = {}
        self.interrupt = _Interrupt()

    def run(self, max_new_trials: int | None, fresh: bool, allow_second_look: bool) -> StudyResult:
        prepared = prepare(self.spec, base_dir_of(self.spec))
        record = self._open_study(prepared, fresh)
        evaluations = self.storage.test_evaluations(self.name)
        self.history = {t.number: t for t in self.storage.trials(self.name)}
        if evaluations and not allow_second_look:
            if self._would_add_trials(record):
                raise TestSetLockedError(
                    f"study {self.name!r} was already scored on its test set; running more "
                    "trials would be a second look. Pass --allow-second-look to record one, "
                    "or --fresh to start a new study"
                )
            result = self._result()
            self._emit_finished(result)  # nothing to run: say so, as the last event
            return result
        self._requeue_abandoned()
        started = time.monotonic()
        self.events.emit("study_started", budget=self.spec.budget.trials, trials=len(self.history))
        try:
            reason = self._search(prepared, max_new_trials, record.elapsed_s, started)
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
            record = self.storage.create_study(self.name, fingerprint, spec_json)
            self.storage.save_folds(self.name, prepared.folds)
            return record
        changed = [part for part, value in fingerprint.items()
                   if record.fingerprint.get(part) != value]
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
        return len(self.history) < self.spec.budget.trials

    def _requeue_abandoned(self) -> None:
        for number in self.storage.requeue_running(self.name):
            self.history[number] = self.storage.get_trial(self.name, number)
            self.events.emit("trial_requeued", number=number, reason="left running by a stopped run")

    # -- the search loop -----------------------------------------------------------------------

    def _search(
        self, prepared: Prepared, max_new_trials: int | None, elapsed: float, started: float
    ) -> str | None:
        space = SearchSpace(self.spec.space)
        sampler: Sampler = self._plugin_call(
            self.sampler_ref, "__init__", lambda: self.sampler_ref.cls(  # type: ignore[call-arg]
                space, self.sampler_ref.cls.Options.model_validate(self.spec.sampler.options),
                seed=self.spec.seed, direction=self.direction))
        self.pruner: Pruner = self._plugin_call(
            self.pruner_ref, "__init__", lambda: self.pruner_ref.cls(  # type: ignore[call-arg]
                self.pruner_ref.cls.Options.model_validate(self.spec.pruner.options),
                direction=self.direction))
        executor: Executor = self.executor_ref.cls(  # type: ignore[call-arg,assignment]
            workers=self.workers, trial_timeout=self.spec.budget.trial_timeout,
            address=self.spec.execution.address)
        executor.start(prepared.workload, self._on_report)
        in_flight: set[int] = set()
        new_trials = 0
        exhausted = False
        time_left = (self.spec.budget.time or float("inf")) - elapsed
        try:
            while True:
                self.interrupt.check()
                while executor.free_slots() > 0 and not self._too_many_failures():
                    if time.monotonic() - started >= time_left:
                        break
                    trial = self._next_waiting(in_flight)
                    if trial is None:
                        wanted = min(
                            executor.free_slots(),
                            self.spec.budget.trials - len(self.history),
                            (max_new_trials - new_trials) if max_new_trials is not None else 1 << 30,
                        )
                        if wanted <= 0:
                            break
                        proposals = self._ask(sampler, space, wanted)
                        if not proposals:
                            exhausted = True
                            break
                        for params in proposals:
                            self._submit(executor, self.storage.create_trial(self.name, params),
                                         in_flight)
                        new_trials += len(proposals)
                    else:
                        self._submit(executor, self.storage.start_trial(self.name, trial.number),
                                     in_flight)
                if not in_flight:
                    break
                for outcome in executor.wait():
                    in_flight.discard(outcome.number)
                    self._store(outcome, sampler)
        except BaseException as error:
            executor.close()
            # every trial still running is this run's (a run starts by re-queueing strays), and
            # that includes one a signal caught between its storage commit and `in_flight`
            for number in self.storage.requeue_running(self.name):
                self.events.emit("trial_requeued", number=number, reason=type(error).__name__)
            raise
        executor.close()
        return self._stop_reason(exhausted, time.monotonic() - started >= time_left)

    def _next_waiting(self, in_flight: set[int]) -> TrialRecord | None:
        waiting = [t for t in self.history.values()
                   if t.state == TrialState.WAITING and t.number not in in_flight]
        return min(waiting, key=lambda t: t.number) if waiting else None

    def _ask(self, sampler: Sampler, space: SearchSpace, n: int) -> list[Params]:
        history = [self.history[number] for number in sorted(self.history)]
        proposals = self._plugin_call(self.sampler_ref, "ask", lambda: sampler.ask(history, n))
        if not isinstance(proposals, list) or len(proposals) > n:
            raise self._plugin_error(self.sampler_ref, "ask", f"returned {proposals!r}, "
                                     f"not a list of at most {n} configurations")
        for params in proposals:
            if not isinstance(params, dict) or not space.contains(params):
                raise self._plugin_error(
                    self.sampler_ref, "ask", f"proposed {params!r}, which is not in the space")
        return proposals

    def _submit(self, executor: Executor, trial: TrialRecord, in_flight: set[int]) -> None:
        self.history[trial.number] = trial
        in_flight.add(trial.number)
        self.plugins.notify("before_trial", study=self.context, trial=trial)
        self.events.emit("trial_started", number=trial.number, params=trial.params,
                         attempt=trial.attempt)
        executor.submit(trial.number, trial.params)

    def _on_report(self, number: int, step: int, value: float) -> bool:
        self.storage.report(self.name, number, step, value)
        trial = self.history[number]
        trial.intermediate[step] = value
        self.events.emit("trial_reported", number=number, step=step, value=value)
        others = [t for t in self.history.values() if t.number != number]
        decision = self._plugin_call(
            self.pruner_ref, "prune", lambda: self.pruner.prune(trial, step, others))
        return bool(decision)

    def _store(self, outcome: TrialOutcome, sampler: Sampler) -> None:
        number = outcome.number
        if outcome.lost and self.history[number].attempt >= LOST_ATTEMPTS:
            # a trial whose worker keeps dying (out of memory, a crash in native code) is a
            # failed trial, not an endless re-queue
            outcome = replace(outcome, lost=False, state=TrialState.FAILED, error=(
                f"WorkerLost: its worker died on attempt {self.history[number].attempt}, the "
                f"last one allowed; {outcome.error}"))
        if outcome.lost:
            self.storage.requeue(self.name, number)
            self.history[number] = self.storage.get_trial(self.name, number)
            self.events.emit("trial_requeued", number=number, reason=outcome.error)
            return
        trial = self.storage.finish_trial(
            self.name, number, outcome.state, value=outcome.value,
            fold_values=outcome.fold_values, intermediate=outcome.intermediate,
            fold_durations=outcome.fold_durations, duration_s=outcome.duration_s,
            error=outcome.error)
        self.history[number] = trial
        if trial.state == TrialState.COMPLETE:
            self.events.emit("trial_completed", number=number, params=trial.params,
                             value=trial.value, fold_values=trial.fold_values,
                             duration_s=trial.duration_s)
        elif trial.state == TrialState.PRUNED:
            last = max(trial.intermediate) if trial.intermediate else None
            self.events.emit("trial_pruned", number=number, params=trial.params, step=last,
                             value=trial.value, duration_s=trial.duration_s)
        else:
            reason = (trial.error or "").split("\n", 1)[0]
            self.events.emit("trial_failed", number=number, params=trial.params, reason=reason,
                             error=trial.error, duration_s=trial.duration_s)
            self.plugins.notify("on_trial_error", error=trial.error or "", study=self.context,
                                trial=trial)
        self._plugin_call(self.sampler_ref, "tell", lambda: sampler.tell(trial))
        self.plugins.notify("after_trial", study=self.context, trial=trial)

    # -- ending --------------------------------------------------------------------------------

    def _too_many_failures(self) -> bool:
        failed = sum(1 for t in self.history.values() if t.state == TrialState.FAILED)
        return failed > self.spec.budget.max_failed

    def _stop_reason(self, exhausted: bool, out_of_time: bool) -> str | None:
        if self._too_many_failures():
            return "failed"
        pending = any(t.state not in FINISHED_STATES for t in self.history.values())
        if pending:
            return "time" if out_of_time else None
        if len(self.history) >= self.spec.budget.trials:
            return "budget"
        if exhausted:
            return "exhausted"
        return "time" if out_of_time else None

    def _finish(self, reason: str | None, prepared: Prepared, second_look: bool) -> StudyResult:
        if reason is None:
            self.storage.set_finished(self.name, None)
            result = self._result()
            self.events.emit("study_paused", counts=result.counts)
            self.plugins.notify("after_study", study=self.context, result=result)
            return result
        self.storage.set_finished(self.name, reason)
        result = self._result()
        best = result.best
        self._emit_finished(result)
        if reason == "failed":
            self.plugins.notify("after_study", study=self.context, result=result)
            raise StudyFailedError(self._failed_message())
        if best is not None and (result.test is None or second_look):
            evaluation = evaluate_test_set(prepared, best, self.direction,
                                           second_look=result.test is not None)
            if evaluation is None:
                self.plugins.notify("after_study", study=self.context, result=result)
                return result
            self.storage.record_test_evaluation(self.name, evaluation)
            self.events.emit("test_evaluated", value=evaluation.value,
                             cv_value=evaluation.cv_value, gap=evaluation.gap,
                             flagged=evaluation.flagged, trial=best.number,
                             second_look=evaluation.second_look)
            result = self._result()
        self.plugins.notify("after_study", study=self.context, result=result)
        return result

    def _emit_finished(self, result: StudyResult) -> None:
        best = result.best
        self.events.emit(
            "study_finished", reason=result.reason, counts=result.counts,
            best_number=best.number if best else None,
            best_params=best.params if best else None,
            best_value=best.value if best else None)

    def _result(self) -> StudyResult:
        record = self.storage.get_study(self.name)
        assert record is not None
        return read_result(self.storage, record, self.direction)

    def _failed_message(self) -> str:
        failed = [t for t in self.history.values() if t.state == TrialState.FAILED]
        last = (failed[-1].error or "").split("\n", 1)[0] if failed else ""
        return (f"study {self.name!r} failed: {len(failed)} failed trials, more than "
                f"budget.max_failed={self.spec.budget.max_failed}; last error: {last}")

    # -- plugin fault isolation ----------------------------------------------------------------

    def _plugin_call(self, provided: Provided, method: str, call: Any) -> Any:
        try:
            return call()
        except (InterruptedStudy, SpecError):
            raise
        except Exception as error:
            raise self._plugin_error(provided, method, f"raised {type(error).__name__}: {error}"
                                     ) from error

    def _plugin_error(self, provided: Provided, method: str, what: str) -> PluginError:
        return PluginError(
            f"{provided.kind} {provided.name!r} from {provided.provider} {what} in {method}(); "
            "stored trials are kept and the study resumes once the plugin is fixed"
        )


class _Interrupt:
    """The signal that stopped the run, kept in case its exception was swallowed.

    Python drops an exception raised where it cannot propagate (an at-fork hook, a
    ``__del__``), so the driver also checks this between trials.
    """

    signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise InterruptedStudy(self.signum)


@contextlib.contextmanager
def _signals_raise() -> Iterator[_Interrupt]:
    """SIGINT and SIGTERM raise InterruptedStudy, so in-flight trials get re-queued."""
    interrupt = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def handler(signum: int, frame: Any) -> None:
        if interrupt.signum is not None:
            return  # already stopping: let the clean-up finish
        interrupt.signum = signum
        raise InterruptedStudy(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupt
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
