"""The target-leak check a new study runs on its development rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunedag.data import Dataset
from tunedag.datachecks import target_leaks


def test_a_leak_is_found_among_infinite_and_float32_overflowing_values() -> None:
    """A one-feature tree computes in float32; the check must not fail on what it cannot hold."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    frame = pd.DataFrame(
        {
            "huge": rng.choice([1.0, 1e308, -1e300], 200),
            "infinite": np.where(rng.random(200) < 0.1, np.inf, rng.normal(size=200)),
            "sparse": np.where(rng.random(200) < 0.5, np.nan, rng.normal(size=200)),
            "leak": np.where(y == 1, 1e308, -np.inf),
        }
    )
    dev = Dataset(X=frame, y=y, columns={}, task="classification", name="extremes")
    found = target_leaks(dev)
    assert len(found) == 1 and "feature 'leak' alone predicts the target" in found[0]


def test_a_leak_is_found_among_extreme_values_of_a_regression_target() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    noise = np.where(rng.random(200) < 0.1, -np.inf, rng.normal(size=200))
    frame = pd.DataFrame({"copy": y * 1e307, "noise": noise})
    dev = Dataset(X=frame, y=y, columns={}, task="regression", name="extremes")
    found = target_leaks(dev)
    assert len(found) == 1 and "feature 'copy' alone predicts the target" in found[0]
