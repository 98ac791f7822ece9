"""The Halton sampler passes tunedag's sampler contract, plus its own checks."""

from __future__ import annotations

import pytest
from tunedag_halton import HaltonSampler

from tunedag.sampler import Sampler
from tunedag.testing import MIXED_SPACE, SamplerContract


class TestHaltonSampler(SamplerContract):
    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        return HaltonSampler


def test_a_batch_continues_the_sequence_a_single_ask_would_give() -> None:
    sampler = HaltonSampler(MIXED_SPACE, seed=3)
    batch = sampler.ask([], 4)
    assert [sampler.ask([None] * i, 1)[0] for i in range(4)] == batch  # type: ignore[list-item]
