"""Acquisition functions of ``skopt-gp`` and the search for their maximum.

All work on losses (lower is better) on the GP's transformed scale.

* ``EI``: expected improvement over ``best - xi``, as its logarithm, computed stably far
  into the tail (Ament et al., 2023: "Unexpected improvements to expected improvement"),
  so candidates far from the incumbent are still ranked rather than all scoring zero.
* ``PI``: the log probability of improving on ``best - xi``.
* ``LCB``: minus the lower confidence bound ``mean - kappa * std``.
* ``portfolio``: the candidates that no other candidate beats on all three at once (the
  Pareto front of EI, PI and LCB, as HEBO's MACE takes it, here among the 128 best
  candidates by each of the three); one of them is picked by a seeded draw. EI alone
  exploits a well-fitted GP and stalls on a misfitted one; LCB explores; the front holds
  the points that are best under some trade-off between them.

The maximum is searched among candidates, all snapped to points a proposal can have (ints
rounded, finite dimensions on their values, inactive parameters imputed), so the score is
the score of what will be proposed: ``n_points`` uniform draws (``acq_optimizer:
sampling``, the default), and with ``auto`` also local perturbations of the best observed
points, then a second, finer round of perturbations around the best candidates (more
exploitation: it pays once the GP has many good points, but at budgets of tens of trials
it tends to stay on a plateau of equally good ones).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfcx, log_ndtr

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def log_ei(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    """log E[max(best - xi - f, 0)] for f ~ N(mean, std**2), stable for any z."""
    z = (best - xi - mean) / std
    out = np.empty_like(z)
    # h(z) = z Phi(z) + phi(z); for z < 0: phi(z) * (1 - |z| sqrt(pi/2) erfcx(|z|/sqrt 2))
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(zu * np.exp(log_ndtr(zu)) + np.exp(-0.5 * zu * zu - _LOG_SQRT_2PI))
    zl = z[~upper]
    tail = 1.0 + zl * math.sqrt(math.pi / 2) * erfcx(-zl / math.sqrt(2))
    far = zl < -1e3
    tail = np.where(far, 1.0 / np.maximum(zl * zl, 1.0), tail)  # h(z) ~ phi(z) / z**2
    out[~upper] = -0.5 * zl * zl - _LOG_SQRT_2PI + np.log(np.maximum(tail, 1e-300))
    result: np.ndarray = out + np.log(std)
    return result


def log_pi(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    return np.asarray(log_ndtr((best - xi - mean) / std), dtype=float)


def neg_lcb(mean: np.ndarray, std: np.ndarray, kappa: float) -> np.ndarray:
    return -(mean - kappa * std)


def pareto_front(scores: np.ndarray) -> np.ndarray:
    """Indices of the rows not dominated by any other row (every column: higher is better)."""
    order = np.lexsort(tuple(-scores[:, k] for k in reversed(range(scores.shape[1]))))
    front = np.empty_like(scores)
    kept: list[int] = []
    for i in order:  # a row can only be dominated by rows sorted before it
        row, ahead = scores[i], front[: len(kept)]
        if not np.any(np.all(ahead >= row, axis=1) & np.any(ahead > row, axis=1)):
            front[len(kept)] = row
            kept.append(int(i))
    return np.asarray(sorted(kept), dtype=int)


def perturb(
    rng: np.random.Generator,
    centres: np.ndarray,
    count: int,
    sigma: float,
    numeric: np.ndarray,
    choices: np.ndarray,
) -> np.ndarray:
    """``count`` perturbations of each centre row: numeric columns moved by N(0, sigma) on
    a random subset of the columns, categorical ones switched to a random choice now and
    then."""
    if len(centres) == 0:
        return np.empty((0, len(numeric)))
    rows = np.repeat(centres, count, axis=0)
    d = rows.shape[1]
    chance = max(1.0 / d, min(1.0, 2.0 / d))
    mask = rng.random(rows.shape) < chance
    # every perturbation moves at least one column
    forced = rng.integers(0, d, len(rows))
    mask[np.arange(len(rows)), forced] = True
    noise = rng.normal(0.0, sigma, rows.shape)
    moved = np.where(mask & numeric, rows + noise, rows)
    draws = np.floor(rng.random(rows.shape) * np.maximum(choices, 1))
    return np.where(mask & ~numeric, draws, moved)


def uniform(
    rng: np.random.Generator, count: int, numeric: np.ndarray, choices: np.ndarray
) -> np.ndarray:
    """``count`` uniform rows: numeric columns in [0, 1), categorical ones a random code."""
    u = rng.random((count, len(numeric)))
    return np.where(numeric, u, np.floor(u * np.maximum(choices, 1)))
