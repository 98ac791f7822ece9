"""The Executor base class: where trials run.

The driver owns the sampler and the storage; an executor only runs what it is handed.
The engine calls ``start(workload, on_report)`` once per run, then alternates
``submit`` (while ``free_slots()`` > 0) and ``wait``, and finally ``close``.
``on_report(number, step, value)`` must be called in the driver's process for every
intermediate value; its answer says whether the trial should stop (pruning). When the
executor is made with ``prunes=False`` (the study's pruner never stops a trial) the answer
is always False, so a worker may send its report on and go on without waiting for it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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


@dataclass
class TrialOutcome:
    """What running one trial gave. ``lost`` means its worker died: the driver re-queues it."""

    number: int
    state: TrialState
    value: float | None = None
    fold_values: list[float] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    fold_durations: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    lost: bool = False


class Workload(Protocol):
    """Runs one configuration on the development rows; never sees the test rows."""

    def run(
        self, number: int, params: Params, report: Callable[[int, float], bool]
    ) -> TrialOutcome: ...


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
        self.trial_timeout = trial_timeout
        self.address = address
        self.prunes = prunes

    @abc.abstractmethod
    def start(self, workload: Workload, on_report: Reporter) -> None:
        """Called once per run, before any trial: ship the workload to the workers."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more trials the executor can take now."""

    @abc.abstractmethod
    def submit(self, number: int, params: Params) -> None:
        """Start trial ``number``; its outcome comes back from a later ``wait``."""

    @abc.abstractmethod
    def wait(self) -> list[TrialOutcome]:
        """Block until at least one submitted trial ended; return every ended one."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker. Trials still running are abandoned; the driver re-queues them."""
