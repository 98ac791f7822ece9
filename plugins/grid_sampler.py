"""The `grid` sampler: every configuration of a finite space exactly once.

The grid is enumerated in a fixed order and handed out by position; points already in the
history (under any state) are skipped, so resumes and parallel batches never repeat one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from tunedag import hookimpl
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace, pairs
from tunedag.storage import TrialRecord

#: The most configurations a grid may have: each ask enumerates it.
MAX_GRID_POINTS = 1_000_000


class GridSampler(Sampler):
    name = "grid"
    distinct = True

    class Options(Sampler.Options):
        shuffle: bool = Field(False, description="visit the grid in a seeded random order")

    @classmethod
    def check_space(cls, space: SearchSpace) -> list[str]:
        problems = [
            f"grid search needs finite dimensions: give {name!r} `values: [...]`, "
            "`grid_points: N` or `step`"
            for name in space.names
            if space.finite_values(name) is None
        ]
        if problems:
            return problems
        # the product of the axes bounds the grid (conditions only remove points); it is
        # computed, not enumerated, so a huge grid is refused without being built
        bound = math.prod(len(space.finite_values(name) or []) for name in space.names)
        if bound > MAX_GRID_POINTS:
            return [
                f"the grid has up to {bound:,} points; grid search takes at most "
                f"{MAX_GRID_POINTS:,} (use fewer values, or a random or skopt-gp sampler)"
            ]
        return []

    @classmethod
    def could_propose(cls, space: SearchSpace, params: Params) -> bool:
        wanted = repr(pairs(params))
        return space.contains(params) and any(repr(pairs(p)) == wanted for p in space.grid())

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        seen = {repr(pairs(trial.params)) for trial in history}
        points = list(self.space.grid())
        if self.options.shuffle:
            order = np.random.default_rng(self.seed).permutation(len(points))
            points = [points[i] for i in order]
        fresh = (point for point in points if repr(pairs(point)) not in seen)
        return [point for point, _ in zip(fresh, range(n), strict=False)]


@hookimpl
def register_samplers(register: Any) -> None:
    register(GridSampler)
