"""A custom trial that does next to no work, for measuring the engine's own cost per trial.

Used by ``overhead.py`` as ``trial: {function: "trivial_trial:objective"}``; that script puts
this folder on ``sys.path`` so the module imports by its bare name.
"""

from __future__ import annotations

from typing import Any


def objective(context: Any) -> float:
    """A quadratic bowl in the one parameter ``x``: a constant-ish value, no data touched."""
    x = float(context.params["x"])
    return (x - 2.0) ** 2


def optuna_objective(trial: Any) -> float:
    """The same near-zero work for Optuna: one suggested float, one arithmetic expression."""
    x = float(trial.suggest_float("x", -10.0, 10.0))
    return (x - 2.0) ** 2
