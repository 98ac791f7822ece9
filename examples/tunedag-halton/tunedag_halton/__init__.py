"""A quasi-random Halton sampler for tunedag.

Halton points fill the unit cube more evenly than independent random draws, so a small
budget covers the space better. Trial ``n`` takes point ``n`` of one scrambled sequence,
so proposals depend only on the seed and the trial's number: resumes and batches continue
the sequence exactly. ``SearchSpace.from_unit`` maps each coordinate onto its dimension
(log scales, ints, steps and choices included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from scipy.stats import qmc

from tunedag import Sampler, TrialRecord, hookimpl

__version__ = "0.1.0"


class HaltonSampler(Sampler):
    name = "halton"

    class Options(Sampler.Options):
        scramble: bool = Field(True, description="Owen-scramble the sequence (seeded)")

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[dict[str, Any]]:
        names = self.space.names
        sequence = qmc.Halton(d=len(names), scramble=self.options.scramble, seed=self.seed)
        sequence.fast_forward(len(history))
        proposals = []
        for point in sequence.random(n):
            params: dict[str, Any] = {}
            for name, u in zip(names, point, strict=True):
                if self.space.is_active(name, params):
                    params[name] = self.space.from_unit(name, float(u))
            proposals.append(params)
        return proposals


@hookimpl
def register_samplers(register: Any) -> None:
    register(HaltonSampler)
