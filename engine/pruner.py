"""The Pruner base class: whether a running trial should stop early.

A trial reports intermediate values: the running mean of its fold scores after each fold,
or a score after each training increment. After every report the engine calls
``prune(trial, step, history)``; ``True`` stops the trial, which is stored as pruned with
its last value. ``history`` holds every trial of the study as the driver knows it at that
moment, ``trial`` included (skip it by number), so with parallel workers a decision sees
only what has been reported so far. A decision to stop after a trial's last fold or
increment is ignored: stopping a finished trial saves nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from tunedag.plugin import Plugin, PluginOptions
from tunedag.sampler import Direction
from tunedag.storage import TrialRecord


class Pruner(Plugin, abc.ABC):
    kind: ClassVar[str] = "pruner"
    #: False for a pruner that never stops a trial: workers then send their reports on
    #: without waiting for an answer, which saves a round trip to the driver per report.
    may_prune: ClassVar[bool] = True

    class Options(PluginOptions):
        """Override in a subclass to accept options."""

    def __init__(
        self, options: PluginOptions | None = None, *, direction: Direction = "maximize"
    ) -> None:
        self.options: Any = options if options is not None else self.Options()
        self.direction: Direction = direction

    @abc.abstractmethod
    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        """True to stop ``trial``, whose ``intermediate[step]`` was just reported."""

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` in the study's direction."""
        return a > b if self.direction == "maximize" else a < b
