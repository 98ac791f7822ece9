"""One run's search loop: ask the sampler, hand trials' tasks to the executor, store outcomes.

Every state change is committed before the next step. A free worker gets, in this order,
the next fold of a running trial (``tunedag.scheduler``), a waiting trial (re-queued by an
earlier stop, lowest number first), a new trial from the sampler (asked in batches of the
executor's free slots, so parallel workers stay busy and, in sequential mode, a resumed
study proposes what an uninterrupted one would have), and last a fold ahead of its turn.
A trial past its ``trial_timeout`` is stopped and failed; when ``budget.time`` runs out,
the trials still running are stopped and re-queued.

Several drivers may share a study (``tunedag run --join``). Each holds a lease
(``tunedag.lease``) and marks the trials it runs as its own. Once another driver has been
seen, the loop reads the shared history before each start, so the sampler proposes from
every driver's trials; claims of waiting trials and new trial numbers are atomic in the
storage, which refuses a trial past the budget or (for a grid) a configuration stored
before. A driver with nothing left to start waits for the others' trials to end, taking
over the lease of a driver that stopped and running its re-queued trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import numpy as np

from tunedag.errors import InterruptedStudy, PluginError, SpecError, TunedagError, os_exit_code
from tunedag.events import Events
from tunedag.executor import Executor, Task, TrialOutcome
from tunedag.lease import Lease
from tunedag.ledger import Ledger
from tunedag.observer import Observers
from tunedag.prepare import Prepared
from tunedag.pruner import Pruner
from tunedag.registry import Plugins, Provided
from tunedag.sampler import Sampler
from tunedag.scheduler import Scheduler
from tunedag.space import Params, SearchSpace
from tunedag.spec.models import Spec
from tunedag.storage import Storage, Takeover, TrialState
from tunedag.text import clip, error_text

#: A trial whose worker dies this many times is recorded as failed, not re-queued again.
LOST_ATTEMPTS = 3
#: How often a driver with nothing to start looks at the other drivers' trials (seconds).
POLL_S = 0.5


class Interrupt:
    """The signal that stopped the run, kept in case its exception was swallowed.

    Python drops an exception raised where it cannot propagate (an at-fork hook, a
    ``__del__``), so the loop also checks this between trials.
    """

    signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise InterruptedStudy(self.signum)


@dataclass
class StudyContext:
    """What observers receive as ``study``."""

    name: str
    spec: Spec
    storage: Storage


@dataclass
class Limits:
    """When this run stops asking for new trials."""

    trials: int
    new_trials: int | None
    seconds: float
    started: float

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started >= self.seconds

    @property
    def ends(self) -> float:
        """When ``budget.time`` runs out (monotonic clock)."""
        return self.started + self.seconds


class Search:
    def __init__(
        self,
        context: StudyContext,
        ledger: Ledger,
        plugins: Plugins,
        events: Events,
        interrupt: Interrupt,
        direction: str,
        observers: Observers | None = None,
        *,
        lease: Lease,
    ) -> None:
        self.context = context
        self.lease = lease
        self.owner = lease.owner
        #: whether another driver has worked on the study since this run started
        self.shared = False
        self.spec = context.spec
        self.name = context.name
        self.storage = context.storage
        self.ledger = ledger
        self.plugins = plugins
        self.events = events
        self.interrupt = interrupt
        self.direction = direction
        self.observers = observers or Observers()
        self.space = SearchSpace(self.spec.space)
        self.sampler_ref = plugins.get("sampler", self.spec.sampler.name)
        self.pruner_ref = plugins.get("pruner", self.spec.pruner.name)
        self.executor_ref = plugins.get("executor", self.spec.execution.executor)
        self.exhausted = False
        self.new_trials = 0
        self.distinct = bool(getattr(self.sampler_ref.cls, "distinct", False))

    def run(
        self, prepared: Prepared, graph: nx.DiGraph, workers: int, limits: Limits
    ) -> str | None:
        """Run trials until a limit is reached; the reason the study finished, or None."""
        self.sampler: Sampler = self._plugin_call(
            self.sampler_ref,
            "__init__",
            lambda: self.sampler_ref.cls(  # type: ignore[call-arg]
                self.space,
                self._options(self.sampler_ref, self.spec.sampler.options),
                seed=self.spec.seed,
                direction=self.direction,
            ),
        )
        self.pruner: Pruner = self._plugin_call(
            self.pruner_ref,
            "__init__",
            lambda: self.pruner_ref.cls(  # type: ignore[call-arg]
                self._options(self.pruner_ref, self.spec.pruner.options), direction=self.direction
            ),
        )
        workload = prepared.workload
        self.scheduler = Scheduler(
            graph, workload, self._on_report, trial_timeout=self.spec.budget.trial_limit_s
        )
        executor = GuardedExecutor(
            self._plugin_call(
                self.executor_ref,
                "__init__",
                lambda: self.executor_ref.cls(  # type: ignore[call-arg]
                    workers=workers,
                    trial_timeout=self.spec.budget.trial_limit_s,
                    address=self.spec.execution.address,
                    prunes=self.pruner.may_prune,
                ),
                passes=TunedagError,
            ),
            lambda method, call: self._plugin_call(
                self.executor_ref, method, call, passes=TunedagError
            ),
        )
        executor.start(workload, self._on_report)
        try:
            while True:
                self.interrupt.check()
                self.lease.check()
                self._fill(executor, limits)
                if not self.scheduler:
                    if self._await_others(limits):
                        continue
                    break
                for outcome in executor.wait(self._wait_timeout(limits)):
                    decided = self.scheduler.receive(outcome)
                    if decided is not None:
                        self._store(decided)
                for outcome in self.scheduler.overdue():
                    executor.cancel(outcome.number)
                    self._store(outcome)
                if limits.out_of_time():
                    self._stop_running(executor, "budget.time ran out")
        except BaseException as error:
            executor.close()
            self.scheduler.drop()
            # every trial still running is this run's (a run starts by re-queueing strays),
            # including one a signal caught between its storage commit and the ledger
            requeued = self.storage.requeue_running(self.name, owner=self.owner)
            for number in requeued:
                self._requeued(number, type(error).__name__)
            if isinstance(error, TunedagError):
                error.requeued = tuple(requeued)
            raise
        executor.close()
        return self._stop_reason(limits)

    def _wait_timeout(self, limits: Limits) -> float | None:
        """How long to wait for a task: until the next trial timeout or the end of the budget."""
        ends = [limits.ends, time.monotonic() + self.lease.interval_s]
        deadline = self.scheduler.deadline()
        if deadline is not None:
            ends.append(deadline)
        soonest = min(ends)
        return None if soonest == float("inf") else max(0.0, soonest - time.monotonic())

    def _stop_running(self, executor: GuardedExecutor, reason: str) -> None:
        """Stop every running trial's tasks and put the trials back in the queue."""
        for number in self.scheduler.drop():
            executor.cancel(number)
            self.storage.requeue(self.name, number, owner=self.owner)
            self._requeued(number, reason)

    def _fill(self, executor: GuardedExecutor, limits: Limits) -> None:
        """Hand out tasks while the executor has room (the order is in the module doc)."""
        while executor.free_slots() > 0:
            task = self.scheduler.next_in_order()
            if task is None and self._start_trials(executor, limits):
                continue
            if task is None:
                task = self.scheduler.next_ahead()
            if task is None:
                return
            executor.submit(task)

    def _start_trials(self, executor: GuardedExecutor, limits: Limits) -> bool:
        """Start a waiting trial, or a batch of new ones; False when none can start now."""
        if self.too_many_failures() or limits.out_of_time():
            return False
        self._sync()
        number = self.ledger.next_waiting()
        if number is not None:
            fresh = self.ledger[number].started_at is None  # queued, never run: the baseline
            if fresh and limits.new_trials is not None and self.new_trials >= limits.new_trials:
                return False
            trial = self.storage.claim_trial(self.name, number, self.owner)
            if trial is None:  # another driver claimed it first
                self._sync(force=True)
                return True
            self._submit(executor, trial)
            self.new_trials += fresh
            return True
        wanted = min(executor.free_slots(), limits.trials - len(self.ledger))
        if limits.new_trials is not None:
            wanted = min(wanted, limits.new_trials - self.new_trials)
        if wanted <= 0 or self.exhausted:
            return False
        proposals = self._ask(wanted)
        if not proposals:
            self.exhausted = True
            return False
        for params in proposals:
            trial = self.storage.add_trial(
                self.name, params, owner=self.owner, budget=limits.trials, distinct=self.distinct
            )
            if trial is None:  # other drivers spent the budget, or stored this grid point
                self._sync(force=True)
                return True
            if trial.number != len(self.ledger):  # another driver added trials meanwhile
                self._sync(force=True)
            self._submit(executor, trial)
            self.new_trials += 1
        return True

    def _sync(self, *, force: bool = False) -> None:
        """Read the other drivers' trials into the ledger, once another driver was seen."""
        if not (force or self.shared):
            return
        self.shared = True
        for trial in self.storage.trials(self.name):
            if trial.number not in self.scheduler.runs:  # this run's own keep their reports
                self.ledger.put(trial)

    def _await_others(self, limits: Limits) -> bool:
        """With nothing of its own to run: wait for the other drivers' trials (True), or
        end the run (False) when this run's limits are reached or no trial is pending."""
        if self.too_many_failures() or limits.out_of_time():
            return False
        if limits.new_trials is not None and self.new_trials >= limits.new_trials:
            return False
        if not self.shared and len(self.storage.leases(self.name)) < 2:
            return False
        self._sync(force=True)
        if not self.ledger.pending:
            return False
        if not self.ledger.waiting:  # the others' trials run: wait, then look again
            time.sleep(POLL_S)
            self._take_over_stale()
        return True

    def _take_over_stale(self) -> None:
        takeover = self.storage.reap_stale_leases(self.name)
        report_takeover(self.events, takeover, self._requeued)

    def _ask(self, n: int) -> list[Params]:
        history = self.ledger.trials
        proposals = self._plugin_call(self.sampler_ref, "ask", lambda: self.sampler.ask(history, n))
        if not isinstance(proposals, list) or len(proposals) > n:
            raise self._plugin_error(
                self.sampler_ref,
                "ask",
                f"returned {clip(repr(proposals))}, not a list of at most {n} configurations",
            )
        for params in proposals:
            if not isinstance(params, dict) or not self.space.contains(params):
                raise self._plugin_error(
                    self.sampler_ref,
                    "ask",
                    f"proposed {clip(repr(params))}, which is not in the space",
                )
        return proposals

    def _submit(self, executor: GuardedExecutor, trial: Any) -> None:
        self.ledger.put(trial)
        self.observers.before_trial(self.context, trial)
        self.events.emit(
            "trial_started", number=trial.number, params=trial.params, attempt=trial.attempt
        )
        executor.submit(self.scheduler.start(trial))

    def _on_report(self, number: int, step: int, value: float) -> bool:
        """An intermediate value: kept in memory (stored with the outcome), then judged."""
        trial = self.ledger[number]
        trial.intermediate[step] = value
        self.events.emit("trial_reported", number=number, step=step, value=value)
        history = self.ledger.trials
        decision = self._plugin_call(
            self.pruner_ref, "prune", lambda: self.pruner.prune(trial, step, history)
        )
        if not isinstance(decision, bool | np.bool_):  # "no" would prune every trial
            raise self._plugin_error(
                self.pruner_ref, "prune", f"returned {clip(repr(decision))}, not True or False"
            )
        return bool(decision)

    def _store(self, outcome: TrialOutcome) -> None:
        number = outcome.number
        attempt = self.ledger[number].attempt
        if outcome.lost and attempt >= LOST_ATTEMPTS:
            # a worker that keeps dying (out of memory, a crash in native code) fails the
            # trial rather than re-queueing it forever
            outcome = replace(
                outcome,
                lost=False,
                state=TrialState.FAILED,
                error=(
                    f"WorkerLost: its worker died on attempt {attempt}, the last one allowed; "
                    f"{outcome.error}"
                ),
            )
        if outcome.lost:
            self.storage.requeue(self.name, number, owner=self.owner)
            self._requeued(number, outcome.error)
            return
        trial = self.storage.finish_trial(
            self.name,
            number,
            outcome.state,
            value=outcome.value,
            fold_values=outcome.fold_values,
            intermediate=outcome.intermediate,
            fold_durations=outcome.fold_durations,
            duration_s=outcome.duration_s,
            error=outcome.error,
            cache_hits=outcome.cache_hits,
            cache_misses=outcome.cache_misses,
            metrics=outcome.metrics,
            output=outcome.output,
            owner=self.owner,
        )
        self.ledger.put(trial)
        if trial.state == TrialState.COMPLETE:
            self.events.emit(
                "trial_completed",
                number=number,
                params=trial.params,
                value=trial.value,
                fold_values=trial.fold_values,
                duration_s=trial.duration_s,
                cache_hits=trial.cache_hits,
                cache_misses=trial.cache_misses,
                metrics=trial.metric_means(),
                attempt=trial.attempt,
                best=self.ledger.best_summary(),
            )
        elif trial.state == TrialState.PRUNED:
            last = max(trial.intermediate) if trial.intermediate else None
            self.events.emit(
                "trial_pruned",
                number=number,
                params=trial.params,
                step=last,
                value=trial.value,
                duration_s=trial.duration_s,
                attempt=trial.attempt,
                best=self.ledger.best_summary(),
            )
        else:
            reason = (trial.error or "").split("\n", 1)[0]
            self.events.emit(
                "trial_failed",
                number=number,
                params=trial.params,
                reason=reason,
                error=trial.error,
                traceback=trial.error,
                duration_s=trial.duration_s,
                attempt=trial.attempt,
                best=self.ledger.best_summary(),
            )
            self.observers.on_trial_error(trial.error or "", self.context, trial)
        self._plugin_call(self.sampler_ref, "tell", lambda: self.sampler.tell(trial))
        self.observers.after_trial(self.context, trial)

    def _requeued(self, number: int, reason: str | None) -> None:
        announce_requeued(self.context, self.ledger, self.events, number, reason)

    def too_many_failures(self) -> bool:
        return self.ledger.failed > self.spec.budget.max_failed

    def _stop_reason(self, limits: Limits) -> str | None:
        if self.too_many_failures():
            return "failed"
        if self.ledger.pending:
            return "time" if limits.out_of_time() else None
        if len(self.ledger) >= limits.trials:
            return "budget"
        if self.exhausted:
            return "exhausted"
        return "time" if limits.out_of_time() else None

    # -- plugin fault isolation ----------------------------------------------------------------

    def _options(self, provided: Provided, options: dict[str, Any]) -> Any:
        return provided.cls.Options.model_validate(options)

    def _plugin_call(
        self,
        provided: Provided,
        method: str,
        call: Any,
        passes: type[TunedagError] | tuple[type[TunedagError], ...] = (InterruptedStudy, SpecError),
    ) -> Any:
        """``call()``, any failure but ``passes`` (and a machine's condition, such as a full
        disk) reported as the plugin's, named. An executor's own errors pass (unreachable:
        75); a sampler's or pruner's are its failure."""
        try:
            return call()
        except passes:
            raise
        except OSError as error:
            if os_exit_code(error) is not None:
                raise
            raise self._plugin_error(provided, method, f"raised {error_text(error)}") from error
        except (Exception, SystemExit) as error:  # a plugin's sys.exit is its failure too
            raise self._plugin_error(provided, method, f"raised {error_text(error)}") from error

    def _plugin_error(self, provided: Provided, method: str, what: str) -> PluginError:
        return PluginError(
            f"{provided.kind} {provided.name!r} from {provided.provider} {what} in {method}(); "
            "stored trials are kept and the study resumes once the plugin is fixed"
        )


class GuardedExecutor:
    """The run's executor, each call going through ``guard(method, call)``: a plugin
    executor that raises is named in the error, as a sampler is."""

    def __init__(self, executor: Executor, guard: Callable[[str, Callable[[], Any]], Any]):
        self.executor = executor
        self.guard = guard

    def start(self, workload: Any, on_report: Any) -> None:
        self.guard("start", lambda: self.executor.start(workload, on_report))

    def free_slots(self) -> int:
        slots: int = self.guard("free_slots", lambda: int(self.executor.free_slots()))
        return slots

    def submit(self, task: Task) -> None:
        self.guard("submit", lambda: self.executor.submit(task))

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        outcomes: list[TrialOutcome] = self.guard("wait", lambda: list(self.executor.wait(timeout)))
        return outcomes

    def cancel(self, number: int) -> None:
        self.guard("cancel", lambda: self.executor.cancel(number))

    def close(self) -> None:
        self.guard("close", self.executor.close)


def announce_requeued(
    context: StudyContext, ledger: Ledger, events: Events, number: int, reason: str | None
) -> None:
    """A trial storage just put back in the queue: the ledger and the event learn it."""
    trial = context.storage.get_trial(context.name, number)
    ledger.put(trial)
    events.emit(
        "trial_requeued",
        number=number,
        reason=reason,
        attempt=trial.attempt - 1,
        best=ledger.best_summary(),
    )


def report_takeover(
    events: Events, takeover: Takeover, requeued: Callable[[int, str], None]
) -> None:
    """Say which stale leases were taken over; ``requeued`` reports each trial they ran."""
    for lease, numbers in takeover.stale:
        events.emit(
            "lease_taken_over",
            owner=lease.where,
            since=lease.started_at,
            heartbeat_at=lease.heartbeat_at,
            requeued=numbers,
        )
        for number in numbers:
            requeued(number, f"its driver {lease.where} stopped renewing its lease")
    for number in takeover.orphans:
        requeued(number, "left running by a stopped run")
