"""The Executor base class: where the nodes of trials run.

The driver owns the sampler, the pruner, the storage and the scheduler; an executor only
runs the tasks it is handed. A task is one fold's chain of nodes of a trial (fit the
pipeline's prefixes, fit the model, score), or a whole trial when its folds cannot be
split apart (a custom trial function, a model trained in fidelity levels).

The engine calls ``start(workload, on_report)`` once per run, then alternates ``submit``
(while ``free_slots()`` > 0) and ``wait``, may ``cancel`` a trial's tasks (its time is up),
and finally calls ``close``. ``wait(timeout)`` returns the outcome of every task that ended,
or an empty list when ``timeout`` seconds passed first. ``on_report(number, step, value)``
must be called in the driver's process for every intermediate value a whole-trial task
reports; its answer says whether the trial should stop (pruning). When the executor is
made with ``prunes=False`` (the study's pruner never stops a trial) the answer is always
False, so a worker may send its report on and go on without waiting for it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Protocol

from tunedag.capture import captured_output
from tunedag.plugin import Plugin, PluginOptions
from tunedag.space import Params
from tunedag.storage import TrialState

Reporter = Callable[[int, int, float], bool]

#: Read when a native library initialises its thread pool, so that libraries first loaded
#: inside a worker start single-threaded too (threadpool_limits covers those already loaded).
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class TaskAbandoned(BaseException):
    """Raised by an executor's own code inside a running task (through ``report``) to stop
    it, because the task no longer has a driver to go to: not the trial's failure.

    Every other exception a trial raises, ``BaseException`` subclasses included, fails that
    trial alone.
    """


@dataclass(frozen=True)
class Task:
    """What a worker runs: fold ``fold``'s chain of nodes of a trial, or (fold None) all of it.

    ``keys`` are the content keys of the chain's nodes (its fit nodes, then its score node):
    the worker's cache looks fitted prefixes up by them, and Dask names its task after the
    last one. ``attempt`` tells a re-queued trial's tasks from a stale one of its last try.
    """

    number: int
    params: Params
    attempt: int = 1
    fold: int | None = None
    keys: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        part = "trial" if self.fold is None else f"fold{self.fold}"
        return f"trial {self.number} ({part}, attempt {self.attempt})"


@dataclass
class TrialOutcome:
    """What running one task gave: a whole trial, or one fold of it (``fold`` set).

    ``lost`` means its worker died: the driver re-queues the trial. ``cache_hits`` and
    ``cache_misses`` count fit nodes taken from the cache and fitted.
    """

    number: int
    state: TrialState
    value: float | None = None
    fold_values: list[float] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    fold_durations: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    lost: bool = False
    fold: int | None = None
    attempt: int = 1
    cache_hits: int = 0
    cache_misses: int = 0
    #: extra metrics (objective.report): name -> one value per fold
    metrics: dict[str, list[float]] = field(default_factory=dict)
    #: the tail of what the task wrote to fds 1 and 2 (``tunedag.capture``); None if unknown
    output: str | None = None

    @classmethod
    def lost_task(cls, task: Task, error: str, output: str | None = None) -> TrialOutcome:
        """A task whose worker died: the driver re-queues its trial."""
        return cls(
            number=task.number,
            state=TrialState.RUNNING,
            lost=True,
            error=error,
            fold=task.fold,
            attempt=task.attempt,
            output=output,
        )


class Workload(Protocol):
    """Runs tasks of a configuration on the development rows; never sees the test rows."""

    def tasks(self, number: int, params: Params, attempt: int) -> list[Task]:
        """A trial's tasks: one per fold when its folds run apart, else one for all."""
        ...

    def run(self, task: Task, report: Callable[[int, float], bool]) -> TrialOutcome: ...


def run_captured(
    workload: Workload,
    task: Task,
    report: Callable[[int, float], bool],
    *,
    sink: IO[bytes] | None = None,
    echo: bool = False,
) -> TrialOutcome:
    """Run ``task`` with its fds 1 and 2 captured (``tunedag.capture``) into its outcome.

    Executors call this wherever a task runs in a process of its own (or the driver's,
    inline), so trial output never reaches the event stream on stdout.
    """
    with captured_output(sink, echo=echo) as captured:
        outcome = workload.run(task, report)
    outcome.output = captured.output
    return outcome


class Executor(Plugin, abc.ABC):
    kind: ClassVar[str] = "executor"

    class Options(PluginOptions):
        """Override in a subclass to accept options."""

    def __init__(
        self,
        options: PluginOptions | None = None,
        *,
        workers: int = 1,
        trial_timeout: float | None = None,
        address: str | None = None,
        prunes: bool = True,
    ) -> None:
        self.options: Any = options if options is not None else self.Options()
        self.workers = workers
        self.trial_timeout = trial_timeout  # enforced by the driver, through cancel()
        self.address = address
        self.prunes = prunes

    @abc.abstractmethod
    def start(self, workload: Workload, on_report: Reporter) -> None:
        """Called once per run, before any trial: ship the workload to the workers."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more tasks the executor can take now."""

    @abc.abstractmethod
    def submit(self, task: Task) -> None:
        """Start ``task``; its outcome comes back from a later ``wait``."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Block until a task ended, or ``timeout`` seconds passed; return every ended one."""

    @abc.abstractmethod
    def cancel(self, number: int) -> None:
        """Stop every task of trial ``number`` now; no outcome comes back for them."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker. Trials still running are abandoned; the driver re-queues them."""
