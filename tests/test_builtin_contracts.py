"""The built-in samplers and pruners pass the same contract suites a third party runs."""

from __future__ import annotations

import pytest

from tunedag.plugins.grid_sampler import GridSampler
from tunedag.plugins.pruners import MedianPruner, NoPruner
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


@pytest.mark.parametrize("cls", [NoPruner, MedianPruner])
class TestBuiltinPruners(PrunerContract):
    @pytest.fixture
    def pruner_class(self, cls: type[Pruner]) -> type[Pruner]:
        return cls
