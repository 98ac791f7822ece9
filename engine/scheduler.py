"""The scheduler: each trial's part of the study graph, handed to the executor task by task.

In the study graph (``tunedag.dag``) a trial is the nodes between ``make_folds`` and
``aggregate``: per fold, a chain of fit nodes ending in a score node. Every node carries
the task that runs it (``fold0``, ``fold1``, ... or ``trial`` when the folds of a trial
cannot run apart). The scheduler reads those tasks off the graph, asks the workload for
their content keys, and decides what a free worker runs next:

1. the next fold of a running trial whose folds so far are all judged (a trial finishes
   before new ones start, and a pruner sees fold k before fold k+1 is spent);
2. otherwise a new trial (the search loop's part: waiting trials, then the sampler);
3. otherwise, when no new trial can start (the budget is handed out, the sampler has
   nothing more now), a fold ahead of its turn, so the study's tail uses every worker.

Fold results may come back in any order; ``aggregate`` judges them in fold order: the
running mean after fold k goes to the pruner as step k, and a trial ends complete after
its last fold, pruned when the pruner stops it earlier, failed at its first failed fold,
or lost (re-queued by the search loop) when a worker died under one of its folds.
Outcomes of a trial already decided, or of an earlier attempt, are dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from tunedag.capture import bounded
from tunedag.executor import Task, TrialOutcome, Workload
from tunedag.storage import TrialRecord, TrialState

#: Asked after each fold in order: (trial number, step, running mean) -> stop the trial?
Judge = Callable[[int, int, float], bool]


def trial_tasks(graph: nx.DiGraph) -> list[str]:
    """The tasks a trial's nodes run in (``fold0``, ``fold1``, ... or ``trial``), in order."""
    tasks: dict[str, int] = {}
    for _, data in graph.nodes(data=True):
        if "task" in data:
            tasks.setdefault(data["task"], data.get("fold", 0))
    return sorted(tasks, key=lambda task: tasks[task])


@dataclass
class TrialRun:
    """One trial in flight: its tasks, how many went out, and the folds judged so far."""

    number: int
    attempt: int
    tasks: list[Task]
    started: float
    sent: int = 0
    results: dict[int, TrialOutcome] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    metrics: dict[str, list[float]] = field(default_factory=dict)
    outputs: dict[int, str] = field(default_factory=dict)

    @property
    def in_order(self) -> bool:
        """Every task sent so far is judged, and one is left: its next fold's turn."""
        return self.sent == len(self.scores) < len(self.tasks)

    def take(self) -> Task:
        task = self.tasks[self.sent]
        self.sent += 1
        return task

    def outcome(self, state: TrialState, value: float | None, error: str | None) -> TrialOutcome:
        return TrialOutcome(
            number=self.number,
            attempt=self.attempt,
            state=state,
            value=value,
            fold_values=list(self.scores),
            intermediate=dict(self.intermediate),
            fold_durations=list(self.durations),
            duration_s=time.monotonic() - self.started,
            error=error,
            cache_hits=self.cache_hits,
            cache_misses=self.cache_misses,
            metrics={name: list(values) for name, values in self.metrics.items()},
            output=self.output(),
        )

    def output(self) -> str | None:
        """The folds' outputs in fold order, each under a header when there are several."""
        if not self.outputs:
            return None
        texts = sorted((fold, text) for fold, text in self.outputs.items() if text)
        if len(texts) <= 1:
            return texts[0][1] if texts else ""
        parts = (f"--- fold {fold} ---\n{text.rstrip(chr(10))}\n" for fold, text in texts)
        return bounded("".join(parts))


class Scheduler:
    def __init__(
        self,
        graph: nx.DiGraph,
        workload: Workload,
        judge: Judge,
        trial_timeout: float | None = None,
    ) -> None:
        self.task_names = trial_tasks(graph)
        self.workload = workload
        self.judge = judge
        self.trial_timeout = trial_timeout
        self.runs: dict[int, TrialRun] = {}

    def __len__(self) -> int:
        return len(self.runs)

    # -- what runs next --------------------------------------------------------------------------

    def start(self, trial: TrialRecord) -> Task:
        """Take a trial that storage just marked running; its first task."""
        tasks = self.workload.tasks(trial.number, trial.params, trial.attempt)
        if len(tasks) != len(self.task_names):
            raise RuntimeError(
                f"the workload split trial {trial.number} into {len(tasks)} tasks, but the "
                f"study graph has {len(self.task_names)}: {self.task_names}"
            )
        run = TrialRun(trial.number, trial.attempt, tasks, started=time.monotonic())
        self.runs[trial.number] = run
        return run.take()

    def next_in_order(self) -> Task | None:
        """The next fold of the lowest-numbered trial whose sent folds are all judged."""
        for number in sorted(self.runs):
            if self.runs[number].in_order:
                return self.runs[number].take()
        return None

    def next_ahead(self) -> Task | None:
        """A fold sent before its turn: only when no trial can start, at the study's tail."""
        for number in sorted(self.runs):
            run = self.runs[number]
            if run.sent < len(run.tasks):
                return run.take()
        return None

    # -- what came back --------------------------------------------------------------------------

    def receive(self, outcome: TrialOutcome) -> TrialOutcome | None:
        """A task's outcome; the trial's outcome once it is decided, else None."""
        run = self.runs.get(outcome.number)
        if run is None or run.attempt != outcome.attempt:
            return None  # its trial was decided already, or this is an earlier attempt's
        if outcome.fold is None or outcome.lost:  # a whole trial, or a worker that died
            del self.runs[outcome.number]
            return outcome
        if outcome.output is not None:
            run.outputs[outcome.fold] = outcome.output
        if outcome.state == TrialState.FAILED:
            del self.runs[outcome.number]
            return run.outcome(TrialState.FAILED, None, outcome.error)
        run.results[outcome.fold] = outcome
        decided = self._aggregate(run)
        if decided is not None:
            del self.runs[outcome.number]
        return decided

    def _aggregate(self, run: TrialRun) -> TrialOutcome | None:
        """Judge the folds that are back, in fold order (the graph's ``aggregate`` node)."""
        last = len(run.tasks) - 1
        while len(run.scores) in run.results:
            step = len(run.scores)
            fold = run.results.pop(step)
            assert fold.value is not None
            run.scores.append(fold.value)
            run.durations.append(fold.duration_s)
            run.cache_hits += fold.cache_hits
            run.cache_misses += fold.cache_misses
            for name, values in fold.metrics.items():
                run.metrics.setdefault(name, []).extend(values)
            mean = float(np.mean(run.scores))
            run.intermediate[step] = mean
            stop = self.judge(run.number, step, mean)
            if step == last:  # stopping after the last fold saves nothing: it completes
                if not math.isfinite(mean):
                    error = f"the objective is {mean} (not a finite number)"
                    return run.outcome(TrialState.FAILED, None, error)
                return run.outcome(TrialState.COMPLETE, mean, None)
            if stop:
                return run.outcome(TrialState.PRUNED, mean, None)
        return None

    # -- time ------------------------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When the oldest running trial runs out of its ``trial_timeout``."""
        if self.trial_timeout is None or not self.runs:
            return None
        return min(run.started for run in self.runs.values()) + self.trial_timeout

    def overdue(self) -> list[TrialOutcome]:
        """Failed outcomes for the trials past their timeout (the caller cancels their tasks)."""
        if self.trial_timeout is None:
            return []
        now = time.monotonic()
        late = [run for run in self.runs.values() if now - run.started > self.trial_timeout]
        for run in late:
            del self.runs[run.number]
        message = f"TrialTimeout: stopped after the trial_timeout of {self.trial_timeout:g}s"
        return [run.outcome(TrialState.FAILED, None, message) for run in late]

    def drop(self) -> list[int]:
        """Forget every running trial (the run stops); their numbers."""
        numbers = sorted(self.runs)
        self.runs.clear()
        return numbers
