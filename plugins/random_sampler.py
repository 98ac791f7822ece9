"""The `random` sampler: independent draws, each dimension on its own scale.

Trial ``n`` draws from a generator seeded by ``(seed, n)``, so a proposal depends only on
the seed and the trial's number: resumed, batched or parallel runs propose what an
uninterrupted sequential run would have.

Each dimension is drawn uniformly on its own scale (log-uniform with ``log: true``);
``values`` and ``step`` dimensions give one of their values, categorical ones one of their
choices. ``grid_points: N`` is only the grid that grid search walks over a numeric range:
this sampler ignores it and draws from the whole range ``[low, high]``, so a random study
may find a value between two grid points. (``skopt-gp`` proposes grid points only, and
``grid`` walks them in order.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunedag import hookimpl
from tunedag.sampler import Sampler
from tunedag.space import Params
from tunedag.storage import TrialRecord


class RandomSampler(Sampler):
    name = "random"

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        first = len(history)
        return [self.space.sample(self.rng(number)) for number in range(first, first + n)]


@hookimpl
def register_samplers(register: Any) -> None:
    register(RandomSampler)
