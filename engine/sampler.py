"""The Sampler base class: how a search strategy proposes configurations.

The engine calls, in this order:

1. ``check_space(space)`` when the spec is validated, to refuse a space it cannot search;
2. ``Sampler(space, options, seed=..., direction=...)`` once per run;
3. ``ask(history, n)`` whenever ``n`` workers are free;
4. ``tell(trial)`` after each trial reaches a final state.

``ask`` must be a function of ``history`` and the seed only: a resumed study passes the
same history and so gets the proposals an uninterrupted run would have had.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from tunedag.plugin import Plugin, PluginOptions
from tunedag.space import Params, SearchSpace
from tunedag.storage import TrialRecord, TrialState

Direction = Literal["maximize", "minimize"]


class Sampler(Plugin, abc.ABC):
    kind: ClassVar[str] = "sampler"
    #: True for a sampler that proposes each configuration at most once (a grid): the
    #: storage then refuses a configuration already stored, so drivers sharing a study
    #: never run one twice
    distinct: ClassVar[bool] = False

    class Options(PluginOptions):
        """Override in a subclass to accept options."""

    def __init__(
        self,
        space: SearchSpace,
        options: PluginOptions | None = None,
        *,
        seed: int = 0,
        direction: Direction = "maximize",
    ) -> None:
        self.space = space
        self.options: Any = options if options is not None else self.Options()
        self.seed = seed
        self.direction: Direction = direction

    @classmethod
    def check_space(cls, space: SearchSpace) -> list[str]:
        """Problems with a space this sampler cannot search; called by `tunedag validate`."""
        return []

    @classmethod
    def could_propose(cls, space: SearchSpace, params: Params) -> bool:
        """Whether ``params`` is a configuration this sampler searches (so the estimators'
        defaults can be trial 0); a sampler that searches a grid narrows this to the grid."""
        return space.contains(params)

    @abc.abstractmethod
    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        """Propose up to ``n`` new configurations.

        ``history`` holds every trial of the study so far, in every state, ordered by
        number; the first proposal becomes trial ``len(history)``. Return fewer than ``n``,
        or none, once the space is exhausted.
        """

    def tell(self, trial: TrialRecord) -> None:
        """Called after ``trial`` reached a final state; learn from it if useful."""

    def rng(self, number: int) -> np.random.Generator:
        """A generator for trial ``number``, independent of every other trial's."""
        return np.random.default_rng([self.seed, number])

    def loss(self, trial: TrialRecord) -> float | None:
        """The trial's value oriented so lower is better, or None unless it completed."""
        if trial.state != TrialState.COMPLETE or trial.value is None:
            return None
        return -trial.value if self.direction == "maximize" else trial.value
