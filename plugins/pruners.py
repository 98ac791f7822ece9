"""Built-in pruners: `none`, and `median` (stop a trial below the median at the same step)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from tunedag import hookimpl
from tunedag.pruner import Pruner
from tunedag.storage import TrialRecord, TrialState


class NoPruner(Pruner):
    name = "none"

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        return False


class MedianPruner(Pruner):
    """Stop a trial whose value at a step is worse than the median of earlier trials there."""

    name = "median"

    class Options(Pruner.Options):
        n_startup_trials: int = Field(5, ge=0, description="finished trials before any pruning")
        n_warmup_steps: int = Field(0, ge=0, description="steps of a trial never pruned")
        interval: int = Field(1, ge=1, description="judge every this many steps")

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        options = self.options
        if step < options.n_warmup_steps or (step - options.n_warmup_steps) % options.interval:
            return False
        finished = [
            other.intermediate[step]
            for other in history
            if other.number != trial.number
            and other.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and step in other.intermediate
        ]
        if len(finished) < max(options.n_startup_trials, 1):
            return False
        return self.better(statistics.median(finished), trial.intermediate[step])


@hookimpl
def register_pruners(register: Any) -> None:
    register(NoPruner)
    register(MedianPruner)
