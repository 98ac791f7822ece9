"""Contract test suites for sampler and pruner plugins, built-in or third-party.

Subclass one in your own tests and supply a fixture; every test of the contract then runs
against your plugin::

    import pytest
    from tunedag.testing import SamplerContract
    from tunedag_halton import HaltonSampler

    class TestHaltonSampler(SamplerContract):
        @pytest.fixture
        def sampler_class(self):
            return HaltonSampler
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tunedag.pruner import Pruner
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace
from tunedag.spec.models import CategoricalDimension, FloatDimension, IntDimension
from tunedag.storage import TrialRecord, TrialState

MIXED_SPACE = SearchSpace(
    {
        "model__C": FloatDimension(type="float", low=1e-4, high=1e2, log=True),
        "model__alpha": FloatDimension(type="float", low=-1.0, high=1.0),
        "model__depth": IntDimension(type="int", low=1, high=12),
        "model__width": IntDimension(type="int", low=2, high=512, log=True),
        "model__kernel": CategoricalDimension(
            type="categorical", choices=["rbf", "poly", "linear"]
        ),
        "model__degree": IntDimension(type="int", low=2, high=5, when={"model__kernel": "poly"}),
        "model__coef0": FloatDimension(
            type="float", low=0.0, high=1.0, when={"model__kernel": ["poly", "rbf"]}
        ),
    }
)


#: MIXED_SPACE made finite, for samplers that need a grid.
FINITE_SPACE = SearchSpace(
    {
        "model__C": FloatDimension(type="float", low=1e-4, high=1e2, log=True, grid_points=13),
        "model__alpha": FloatDimension(type="float", low=-1.0, high=1.0, step=0.5),
        "model__depth": IntDimension(type="int", low=1, high=12, step=3),
        "model__width": IntDimension(type="int", low=2, high=512, log=True, grid_points=4),
        "model__kernel": CategoricalDimension(
            type="categorical", choices=["rbf", "poly", "linear"]
        ),
        "model__degree": IntDimension(type="int", low=2, high=5, when={"model__kernel": "poly"}),
        "model__coef0": FloatDimension(
            type="float", values=[0.0, 1.0], when={"model__kernel": ["poly", "rbf"]}
        ),
    }
)


def toy_objective(params: Params) -> float:
    """A smooth, deterministic objective over MIXED_SPACE, best near C=1, alpha=0.3."""
    value = -((math.log10(params["model__C"])) ** 2) - (params["model__alpha"] - 0.3) ** 2
    value -= 0.01 * abs(params["model__depth"] - 6)
    return float(value + (0.1 if params["model__kernel"] == "rbf" else 0.0))


def history_of(
    sampler: Sampler, size: int, objective: Callable[[Params], float] = toy_objective
) -> list[TrialRecord]:
    """Grow a history of ``size`` completed trials by asking ``sampler`` one at a time."""
    history: list[TrialRecord] = []
    while len(history) < size:
        proposals = sampler.ask(history, 1)
        if not proposals:
            break
        trial = TrialRecord(
            number=len(history),
            state=TrialState.COMPLETE,
            params=proposals[0],
            value=objective(proposals[0]),
        )
        sampler.tell(trial)
        history.append(trial)
    return history


class SamplerContract:
    """What every sampler guarantees; supply ``sampler_class`` (and ``sampler_options``)."""

    space: SearchSpace = MIXED_SPACE

    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        raise NotImplementedError("supply a `sampler_class` fixture")

    @pytest.fixture
    def sampler_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def make(
        self, sampler_class: type[Sampler], sampler_options: dict[str, Any]
    ) -> Callable[..., Sampler]:
        def build(space: SearchSpace | None = None, seed: int = 0) -> Sampler:
            options = sampler_class.Options.model_validate(sampler_options)
            return sampler_class(space or self.space, options, seed=seed, direction="maximize")

        return build

    def test_has_a_name_and_strict_options(self, sampler_class: type[Sampler]) -> None:
        assert isinstance(sampler_class.name, str) and sampler_class.name
        assert sampler_class.Options.model_config.get("extra") == "forbid"

    def test_proposals_lie_inside_the_space(self, make: Callable[..., Sampler]) -> None:
        sampler = make()
        history = history_of(sampler, 15)
        for params in [t.params for t in history] + sampler.ask(history, 8):
            assert self.space.contains(params), params

    def test_ints_are_ints_and_floats_are_floats(self, make: Callable[..., Sampler]) -> None:
        for params in make().ask([], 16):
            for name, value in params.items():
                dimension = self.space.dimensions[name]
                if isinstance(dimension, IntDimension):
                    assert type(value) is int, (name, value)
                elif isinstance(dimension, FloatDimension):
                    assert type(value) is float, (name, value)

    def test_log_dimensions_are_sampled_on_a_log_scale(self, make: Callable[..., Sampler]) -> None:
        values = [p["model__C"] for p in make().ask([], 40)]
        below_geometric_middle = sum(1 for v in values if v < 1e-1) / len(values)
        # uniform sampling on [1e-4, 1e2] would put 0.1% of the values below 0.1
        assert below_geometric_middle > 0.15, sorted(values)

    def test_conditionals_are_respected(self, make: Callable[..., Sampler]) -> None:
        sampler = make()
        history = history_of(sampler, 12)
        for params in [t.params for t in history] + sampler.ask(history, 8):
            assert ("model__degree" in params) == (params["model__kernel"] == "poly")
            assert ("model__coef0" in params) == (params["model__kernel"] != "linear")

    @pytest.mark.parametrize("n", [1, 4, 9])
    def test_a_batch_ask_of_n_gives_n_configurations(
        self, make: Callable[..., Sampler], n: int
    ) -> None:
        sampler = make()
        history = history_of(sampler, 3)
        assert len(sampler.ask(history, n)) == n

    def test_same_seed_and_history_give_the_same_proposals(
        self, make: Callable[..., Sampler]
    ) -> None:
        history = history_of(make(seed=7), 12)
        first = make(seed=7).ask(copy.deepcopy(history), 4)
        second = make(seed=7).ask(copy.deepcopy(history), 4)
        assert first == second

    def test_a_different_seed_gives_different_proposals(self, make: Callable[..., Sampler]) -> None:
        assert make(seed=1).ask([], 4) != make(seed=2).ask([], 4)

    def test_failed_and_pruned_trials_in_the_history_are_tolerated(
        self, make: Callable[..., Sampler]
    ) -> None:
        sampler = make()
        history = history_of(sampler, 6)
        history[1].state, history[1].value, history[1].error = TrialState.FAILED, None, "boom"
        history[2].state, history[2].intermediate = TrialState.PRUNED, {0: -5.0}
        history.append(
            TrialRecord(number=len(history), state=TrialState.RUNNING, params=history[3].params)
        )
        for params in sampler.ask(history, 3):
            assert self.space.contains(params)


class PrunerContract:
    """What every pruner guarantees; supply ``pruner_class`` (and ``pruner_options``)."""

    @pytest.fixture
    def pruner_class(self) -> type[Pruner]:
        raise NotImplementedError("supply a `pruner_class` fixture")

    @pytest.fixture
    def pruner_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def pruner(self, pruner_class: type[Pruner], pruner_options: dict[str, Any]) -> Pruner:
        return pruner_class(
            pruner_class.Options.model_validate(pruner_options), direction="maximize"
        )

    @staticmethod
    def study(curves: Sequence[Sequence[float]]) -> list[TrialRecord]:
        return [
            TrialRecord(
                number=i,
                state=TrialState.COMPLETE,
                params={"x": i},
                value=curve[-1],
                intermediate=dict(enumerate(curve)),
            )
            for i, curve in enumerate(curves)
        ]

    def test_has_a_name_and_strict_options(self, pruner_class: type[Pruner]) -> None:
        assert isinstance(pruner_class.name, str) and pruner_class.name
        assert pruner_class.Options.model_config.get("extra") == "forbid"

    def test_a_first_trial_is_judged_without_error(self, pruner: Pruner) -> None:
        trial = TrialRecord(number=0, state=TrialState.RUNNING, params={}, intermediate={0: 0.5})
        assert pruner.prune(trial, 0, []) in (True, False)

    def test_decisions_are_deterministic_and_change_nothing(self, pruner: Pruner) -> None:
        history = self.study([[0.5 + 0.01 * i + 0.05 * s for s in range(5)] for i in range(12)])
        trial = TrialRecord(
            number=12, state=TrialState.RUNNING, params={}, intermediate={0: 0.1, 1: 0.12, 2: 0.13}
        )
        before = copy.deepcopy((trial, history))
        decisions = [pruner.prune(trial, 2, history) for _ in range(3)]
        assert len(set(decisions)) == 1 and isinstance(decisions[0], bool)
        assert (trial, history) == before

    def test_the_best_trial_so_far_is_never_pruned(self, pruner: Pruner) -> None:
        history = self.study([[0.5 + 0.01 * i + 0.05 * s for s in range(5)] for i in range(12)])
        best = TrialRecord(number=12, state=TrialState.RUNNING, params={}, intermediate={})
        for step in range(5):
            best.intermediate[step] = 2.0 + step
            assert pruner.prune(best, step, history) is False
