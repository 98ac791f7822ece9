"""The built-in samplers and pruners pass the same contract suites a third party runs."""

from __future__ import annotations

import pytest

from tunedag.plugins.grid_sampler import GridSampler
from tunedag.plugins.pruners import BUILTIN as BUILTIN_PRUNERS
from tunedag.plugins.random_sampler import RandomSampler
from tunedag.pruner import Pruner
from tunedag.sampler import Sampler
from tunedag.testing import FINITE_SPACE, PrunerContract, SamplerContract


class TestRandomSampler(SamplerContract):
    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        return RandomSampler


class TestGridSampler(SamplerContract):
    space = FINITE_SPACE

    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        return GridSampler

    @pytest.fixture
    def sampler_options(self) -> dict[str, object]:
        return {"shuffle": True}


#: `threshold` needs a bound; only a lower one lets the contract's best trial (maximized,
#: rising to 6.0) through, since an `upper` bound on a maximized value prunes the best by design
CONTRACT_OPTIONS: dict[str, dict[str, object]] = {
    "threshold": {"lower": 0.0},
    "patience": {"patience": 1, "wrapped": {"name": "median"}},
}


@pytest.mark.parametrize("cls", list(BUILTIN_PRUNERS.values()), ids=list(BUILTIN_PRUNERS))
class TestBuiltinPruners(PrunerContract):
    @pytest.fixture
    def pruner_class(self, cls: type[Pruner]) -> type[Pruner]:
        return cls

    @pytest.fixture
    def pruner_options(self, cls: type[Pruner]) -> dict[str, object]:
        return CONTRACT_OPTIONS.get(cls.name, {})
