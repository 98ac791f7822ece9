"""The study's trials in memory, indexed by number, with the counts the driver loop needs.

Keeping the counts up to date as trials change state makes each step of the loop O(1) in
the size of the study, so the thousandth trial costs what the first did.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tunedag.storage import TrialRecord, TrialState


class Ledger:
    def __init__(self, trials: Iterable[TrialRecord] = (), direction: str = "maximize") -> None:
        self.trials: list[TrialRecord] = []
        self.counts: Counter[TrialState] = Counter()
        self.waiting: set[int] = set()
        self.sign = 1.0 if direction == "maximize" else -1.0
        #: the study's best complete trial so far (ties go to the earlier trial)
        self.best: TrialRecord | None = None
        for trial in sorted(trials, key=lambda t: t.number):
            self.put(trial)

    def __len__(self) -> int:
        return len(self.trials)

    def __getitem__(self, number: int) -> TrialRecord:
        return self.trials[number]

    def put(self, trial: TrialRecord) -> None:
        """Record a new trial, or a new state of a known one (numbers are contiguous)."""
        if trial.number < len(self.trials):
            self.counts[self.trials[trial.number].state] -= 1
            self.trials[trial.number] = trial
        elif trial.number == len(self.trials):
            self.trials.append(trial)
        else:
            raise ValueError(f"trial {trial.number} skips a number; ledger has {len(self)}")
        self.counts[trial.state] += 1
        self._consider(trial)
        if trial.state == TrialState.WAITING:
            self.waiting.add(trial.number)
        else:
            self.waiting.discard(trial.number)

    def _consider(self, trial: TrialRecord) -> None:
        value = trial.value
        if trial.state != TrialState.COMPLETE or value is None or not math.isfinite(value):
            return
        best = self.best
        if best is None or best.value is None:
            self.best = trial
            return
        better = self.sign * value > self.sign * best.value
        if better or (value == best.value and trial.number < best.number):
            self.best = trial

    def best_summary(self) -> dict[str, Any] | None:
        """``{number, value}`` of the best trial so far, as events carry it; None if none."""
        best = self.best
        return None if best is None else {"number": best.number, "value": best.value}

    def next_waiting(self) -> int | None:
        """The lowest-numbered trial waiting to run, so re-queued trials keep their order."""
        return min(self.waiting) if self.waiting else None

    @property
    def pending(self) -> int:
        return self.counts[TrialState.WAITING] + self.counts[TrialState.RUNNING]

    @property
    def failed(self) -> int:
        return self.counts[TrialState.FAILED]
