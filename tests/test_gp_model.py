"""skopt-gp's own Gaussian process and acquisition functions: the hyperparameter gradient,
the warping, the hyperparameters' Laplace draws and their mixture, the stable log expected
improvement and the target transform."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, yeojohnson

from tunedag.plugins import _acquisition as acq
from tunedag.plugins import _gp
from tunedag.plugins.skopt_sampler import _standardize, _transform_y, _yeo_johnson

LAYOUT = _gp.Layout(
    numeric=np.array([True, True, False, True]), warped=np.array([True, False, False, True])
)


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.random(n), rng.random(n), rng.integers(0, 3, n), rng.random(n)])
    y = np.sin(5 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * X[:, 2] + rng.normal(0, 0.05, n)
    return X.astype(float), _standardize(y)


def test_the_gradient_of_the_log_posterior_is_exact() -> None:
    X, y = data(30)
    fixed = _gp._square_differences(LAYOUT, X, X)
    theta = np.random.default_rng(1).normal(0, 0.5, LAYOUT.size)
    theta[1] = -3.0
    _, grad = _gp._neg_log_posterior(theta, LAYOUT, X, y, fixed)
    for i in range(LAYOUT.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        up = _gp._neg_log_posterior(theta + step, LAYOUT, X, y, fixed)[0]
        down = _gp._neg_log_posterior(theta - step, LAYOUT, X, y, fixed)[0]
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-6), i


def test_the_fit_predicts_held_out_points_and_is_deterministic() -> None:
    X, y = data(50)
    theta = _gp.fit(LAYOUT, X[:40], y[:40])
    assert np.array_equal(theta, _gp.fit(LAYOUT, X[:40], y[:40]))
    mean, std = _gp.Posterior(LAYOUT, theta, X[:40], y[:40]).predict(X[40:])
    assert np.corrcoef(mean, y[40:])[0, 1] > 0.9
    assert np.all(std > 0)
    fixed = _gp.fit(LAYOUT, X[:40], y[:40], noise=0.01, max_iter=5)
    assert math.exp(fixed[1]) == pytest.approx(0.01)


def test_warping_is_the_identity_at_unit_exponents_and_stays_monotone() -> None:
    u = np.linspace(0, 1, 11)[:, None]
    assert np.allclose(_gp._warp(u, np.zeros((2, 1)))[0], np.clip(u, 1e-6, 1 - 1e-6))
    warped = _gp._warp(u, np.log([[3.0], [0.5]]))[0][:, 0]
    assert np.all(np.diff(warped) > 0) and warped[0] >= 0 and warped[-1] <= 1


def test_the_laplace_covariance_inverts_the_hessian_and_narrows_with_more_data() -> None:
    X, y = data(60)
    theta = _gp.fit(LAYOUT, X, y)
    root = _gp.laplace(LAYOUT, X, y, theta)
    cov = root @ root.T
    assert np.all(np.linalg.eigvalsh(cov) >= -1e-12)
    assert np.all(np.linalg.eigvalsh(cov) <= 1.0 + 1e-9)  # capped at sd 1 in each direction
    # along a well-determined direction (largest curvature) cov is the Hessian's inverse
    fixed = _gp._square_differences(LAYOUT, X, X)
    H = np.array(
        [
            (
                _gp._neg_log_posterior(theta + e, LAYOUT, X, y, fixed)[1]
                - _gp._neg_log_posterior(theta - e, LAYOUT, X, y, fixed)[1]
            )
            / 2e-4
            for e in np.eye(LAYOUT.size) * 1e-4
        ]
    )
    values, vectors = np.linalg.eigh(0.5 * (H + H.T))
    top = vectors[:, -1]
    assert top @ cov @ top == pytest.approx(1.0 / values[-1], rel=1e-3)
    few = _gp.laplace(LAYOUT, X[:12], y[:12], _gp.fit(LAYOUT, X[:12], y[:12]))
    assert np.trace(few @ few.T) > np.trace(cov)


def test_laplace_draws_are_seeded_bounded_and_keep_a_fixed_noise() -> None:
    X, y = data(20)
    theta = _gp.fit(LAYOUT, X, y, noise=0.01)
    root = _gp.laplace(LAYOUT, X, y, theta, fixed_noise=True)
    drawn = _gp.draws(LAYOUT, theta, root, 50, np.random.default_rng(3))
    again = _gp.draws(LAYOUT, theta, root, 50, np.random.default_rng(3))
    assert len(drawn) == 51 and np.array_equal(drawn[0], theta)
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again, strict=True))
    bounds = np.array(_gp._bounds(LAYOUT))
    assert all(np.all((d >= bounds[:, 0]) & (d <= bounds[:, 1])) for d in drawn)
    assert {d[1] for d in drawn} == {theta[1]}
    assert np.std([d[2] for d in drawn]) > 0.01


def test_the_mixture_adds_the_parts_disagreement_to_their_variance() -> None:
    X, y = data(30)
    theta = _gp.fit(LAYOUT, X, y)
    other = theta.copy()
    other[2:6] -= 1.0  # shorter length scales: a different fit of the same data
    parts = [_gp.Posterior(LAYOUT, th, X, y) for th in (theta, other)]
    test_points = data(10, seed=5)[0]
    (m1, s1), (m2, s2) = (part.predict(test_points) for part in parts)
    mean, std = _gp.Mixture(parts).predict(test_points)
    assert np.allclose(mean, (m1 + m2) / 2)
    assert np.allclose(std**2, (s1**2 + s2**2) / 2 + ((m1 - m2) / 2) ** 2)
    alone = _gp.Mixture(parts[:1]).predict(test_points)
    assert np.array_equal(alone[0], m1) and np.array_equal(alone[1], s1)


def test_log_expected_improvement_is_exact_and_finite_far_in_the_tail() -> None:
    mean = np.array([0.0, 0.5, 2.0, 10.0, 60.0, 1e4])
    std = np.ones_like(mean)
    z = (0.0 - mean) / std
    direct = z * norm.cdf(z) + norm.pdf(z)
    value = acq.log_ei(mean, std, best=0.0, xi=0.0)
    assert np.allclose(value[:4], np.log(direct[:4]), rtol=1e-9)
    assert np.all(np.isfinite(value)) and np.all(np.diff(value) < 0)


def test_the_pareto_front_keeps_the_undominated_rows() -> None:
    scores = np.array([[1.0, 1.0], [2.0, 0.0], [0.5, 0.5], [0.0, 2.0], [1.0, 1.0]])
    assert list(acq.pareto_front(scores)) == [0, 1, 3, 4]


def test_the_power_transform_finds_scipys_exponent_and_pulls_in_a_tail() -> None:
    y = _standardize(np.random.default_rng(0).lognormal(0.0, 1.5, 60))
    ours = _standardize(_yeo_johnson(y))
    theirs = _standardize(yeojohnson(y)[0])
    assert np.max(np.abs(ours - theirs)) < 0.05
    losses = np.array([0.1, 0.11, 0.12, 0.13, 0.2, 5.0])  # one diverged trial
    t = _transform_y(losses, "power")
    assert np.all(np.diff(t) > 0)  # the order is kept
    assert t[-1] - t[-2] < _standardize(losses)[-1] - _standardize(losses)[-2]
