"""The Gaussian process behind ``skopt-gp``: a Matern 5/2 kernel over warped inputs.

Why not scikit-learn's or scikit-optimize's GP: this one adds what search quality across
problem kinds needs, and stays fast because its gradients are analytic:

* **input warping**: each numeric column (scaled to [0, 1]) passes through a Kumaraswamy
  CDF ``1 - (1 - u**a)**b`` whose ``a`` and ``b`` are fitted with the kernel, so a
  dimension whose good values crowd at one end (a regularisation strength on a linear
  scale, a fraction near 0 or 1) gets a finer resolution there, as a log or logit scale
  would give it, without the user having to say so;
* **categorical columns** (integer codes) add ``[c != c'] / l**2`` to the kernel's squared
  distance (a Hamming distance with its own length scale), so choices are neither ordered
  nor one-hot encoded;
* **priors** on the hyperparameters, fitted by maximum a posteriori: a log-normal prior
  on each length scale, scaled with the dimension (``sqrt(2) + log(d) / 2``, ``sqrt(3)``:
  Hvarfner et al., 2024), a log-normal on the noise around ``exp(-4)`` and on the warping
  exponents around 1 (no warping). With 5 observations the data cannot pin down 3 d + 2
  hyperparameters; the priors keep the fit sensible.

The targets are standardised before the fit, so the amplitude is near 1 and the noise is a
fraction of the targets' variance.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

_SQRT5 = math.sqrt(5.0)
_EPS = 1e-6  # warped inputs are clipped to [_EPS, 1 - _EPS]: the CDF's logs stay finite
_AMP = (math.log(0.05), math.log(20.0))
_NOISE = (math.log(1e-6), math.log(0.5))
_LENGTH = (math.log(0.01), math.log(100.0))
_WARP = (math.log(0.2), math.log(5.0))
_WARP_SD = 0.75
_NOISE_MEAN, _NOISE_SD = -4.0, 1.0


@dataclass(frozen=True)
class Layout:
    """Which columns of the GP's inputs are numeric (in [0, 1]) and which of those are
    warped; the other columns hold categorical codes."""

    numeric: np.ndarray
    warped: np.ndarray

    @property
    def dims(self) -> int:
        return len(self.numeric)

    @property
    def n_warped(self) -> int:
        return int(self.warped.sum())

    @property
    def size(self) -> int:
        """The number of hyperparameters: amplitude, noise, a length scale a column, and
        two warping exponents a warped column."""
        return 2 + self.dims + 2 * self.n_warped


def _unpack(layout: Layout, theta: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    d, w = layout.dims, layout.n_warped
    return theta[0], theta[1], theta[2 : 2 + d], theta[2 + d : 2 + d + 2 * w].reshape(2, w)


def _warp(u: np.ndarray, log_ab: np.ndarray, grad: bool = False) -> tuple[np.ndarray, ...]:
    """Kumaraswamy CDF of ``u`` (rows x warped columns), and with ``grad`` its derivatives
    by ``log a`` and ``log b``."""
    a, b = np.exp(log_ab[0]), np.exp(log_ab[1])
    u = np.clip(u, _EPS, 1.0 - _EPS)
    ua = u**a
    rest = 1.0 - ua
    restb = rest**b
    z = 1.0 - restb
    if not grad:
        return (z,)
    dz_dloga = b * restb / rest * ua * np.log(u) * a
    dz_dlogb = -restb * np.log(rest) * b
    return z, dz_dloga, dz_dlogb


def _features(layout: Layout, X: np.ndarray, log_ab: np.ndarray) -> np.ndarray:
    """Inputs with the warped columns warped."""
    if not layout.n_warped:
        return X
    Z = X.copy()
    Z[:, layout.warped] = _warp(X[:, layout.warped], log_ab)[0]
    return Z


def _sq_distance(layout: Layout, A: np.ndarray, B: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Squared scaled distances between the rows of A and B (both already warped): the
    numeric columns as ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product), the categorical
    ones as mismatches."""
    scale = np.exp(-length)
    numeric = layout.numeric
    As, Bs = A[:, numeric] * scale[numeric], B[:, numeric] * scale[numeric]
    out: np.ndarray = np.add.outer(np.einsum("ij,ij->i", As, As), np.einsum("ij,ij->i", Bs, Bs))
    out -= 2.0 * (As @ Bs.T)
    np.maximum(out, 0.0, out=out)
    for j in np.flatnonzero(~numeric):
        out += scale[j] ** 2 * (A[:, j, None] != B[None, :, j])
    return out


def _matern(r2: np.ndarray) -> np.ndarray:
    """Matern 5/2 of the squared distance."""
    value: np.ndarray = np.sqrt(r2) * _SQRT5
    e = np.exp(-value)
    value += 1.0
    value += 5.0 / 3.0 * r2
    value *= e
    return value


def _matern_slope(r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matern 5/2 of the squared distance, and its derivative by the squared distance."""
    r = np.sqrt(np.maximum(r2, 0.0))
    e = np.exp(-_SQRT5 * r)
    value = (1.0 + _SQRT5 * r + 5.0 / 3.0 * r2) * e
    slope = -5.0 / 6.0 * (1.0 + _SQRT5 * r) * e
    return value, slope


def _length_prior(dims: int) -> tuple[float, float]:
    return math.sqrt(2.0) + 0.5 * math.log(max(dims, 1)), math.sqrt(3.0)


def _square_differences(layout: Layout, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Per column (first axis): squared differences (numeric) or mismatches (categorical)."""
    diff = A[:, None, :] - B[None, :, :]
    out: np.ndarray = np.where(layout.numeric, diff * diff, diff != 0).transpose(2, 0, 1)
    return out


def _neg_log_posterior(
    theta: np.ndarray, layout: Layout, X: np.ndarray, y: np.ndarray, fixed: np.ndarray
) -> tuple[float, np.ndarray]:
    """Minus the log posterior density of ``theta`` and its gradient; ``fixed`` holds the
    square differences of the unwarped inputs (the warped columns are recomputed here)."""
    log_amp, log_noise, length, log_ab = _unpack(layout, theta)
    n, d, w = len(y), layout.dims, layout.n_warped
    sq = fixed
    if w:
        cols = np.flatnonzero(layout.warped)
        zw, dza, dzb = _warp(X[:, cols], log_ab, grad=True)
        diff = zw[:, None, :] - zw[None, :, :]
        sq = fixed.copy()
        sq[cols] = (diff * diff).transpose(2, 0, 1)
    scale = np.exp(-2.0 * length)
    r2 = np.tensordot(scale, sq, axes=1)
    m, slope = _matern_slope(r2)
    amp, noise = math.exp(log_amp), math.exp(log_noise)
    K = amp * m
    K[np.diag_indices(n)] += noise + 1e-8
    try:
        L = cholesky(K, lower=True, check_finite=False)
    except LinAlgError:
        return 1e25, np.zeros_like(theta)
    alpha = cho_solve((L, True), y, check_finite=False)
    nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(L)).sum()) + 0.5 * n * math.log(2 * math.pi)
    W = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n), check_finite=False)
    grad = np.zeros_like(theta)
    # d(-log p)/d theta = -1/2 sum(W * dK/d theta)
    grad[0] = -0.5 * amp * float(np.sum(W * m))
    grad[1] = -0.5 * noise * float(np.trace(W))
    ws = W * (amp * slope)  # W times dK/d(r2)
    grad[2 : 2 + d] = scale * np.tensordot(sq, ws, axes=([1, 2], [0, 1]))  # -1/2 * -2
    if w:
        # sum_ab ws_ab 2 s diff_ab (dz_a - dz_b) = 4 s sum_a dz_a (sum_b ws_ab diff_ab)
        v = np.einsum("ab,abk->ak", ws, diff)
        factor = -2.0 * scale[cols]
        grad[2 + d : 2 + d + w] = factor * np.sum(dza * v, axis=0)
        grad[2 + d + w :] = factor * np.sum(dzb * v, axis=0)
    # priors (Gaussian in the log parameters)
    mean, sd = _length_prior(d)
    nll += float(np.sum((length - mean) ** 2)) / (2 * sd * sd)
    grad[2 : 2 + d] += (length - mean) / (sd * sd)
    nll += (log_noise - _NOISE_MEAN) ** 2 / (2 * _NOISE_SD**2)
    grad[1] += (log_noise - _NOISE_MEAN) / _NOISE_SD**2
    nll += log_amp**2 / 2.0
    grad[0] += log_amp
    if w:
        flat = log_ab.ravel()
        nll += float(np.sum(flat**2)) / (2 * _WARP_SD**2)
        grad[2 + d :] += flat / _WARP_SD**2
    return nll, grad


def _bounds(layout: Layout) -> list[tuple[float, float]]:
    return [_AMP, _NOISE] + [_LENGTH] * layout.dims + [_WARP] * (2 * layout.n_warped)


def starts(layout: Layout) -> list[np.ndarray]:
    """The fixed starting points of a fit: moderately short length scales, and the prior's
    mode; amplitude 1, a small noise, no warping."""
    out = []
    for length in (math.log(0.5), _length_prior(layout.dims)[0]):
        theta = np.zeros(layout.size)
        theta[1] = math.log(1e-3)
        theta[2 : 2 + layout.dims] = length
        out.append(theta)
    return out


def laplace(
    layout: Layout, X: np.ndarray, y: np.ndarray, theta: np.ndarray, fixed_noise: bool = False
) -> np.ndarray:
    """A square root ``R`` of the covariance of the Laplace approximation of the
    hyperparameters' posterior at its mode ``theta`` (the inverse Hessian of minus the log
    posterior, by central differences of the analytic gradient): ``theta + R @ z`` with
    ``z`` standard normal is a draw. Each direction's standard deviation is capped at 1 (in
    log units), so a flat or non-convex direction (a bound, a plateau) stays local; a fixed
    noise stays fixed."""
    size, step = len(theta), 1e-4
    free = np.ones(size, dtype=bool)
    free[1] = not fixed_noise
    fixed = _square_differences(layout, X, X)
    H = np.empty((size, size))
    for i in range(size):
        e = np.zeros(size)
        e[i] = step
        plus = _neg_log_posterior(theta + e, layout, X, y, fixed)[1]
        minus = _neg_log_posterior(theta - e, layout, X, y, fixed)[1]
        H[i] = (plus - minus) / (2 * step)
    H = 0.5 * (H + H.T)[np.ix_(free, free)]
    root = np.zeros((size, size))
    if np.all(np.isfinite(H)):
        values, vectors = np.linalg.eigh(H)
        root[np.ix_(free, free)] = vectors / np.sqrt(np.maximum(values, 1.0))
    return root


def draws(
    layout: Layout, theta: np.ndarray, root: np.ndarray, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``theta`` and ``count`` draws ``theta + root @ z``, clipped to the bounds."""
    bounds = np.array(_bounds(layout))
    out = theta + rng.standard_normal((count, len(theta))) @ root.T
    return [theta, *np.clip(out, bounds[:, 0], bounds[:, 1])]


def fit(
    layout: Layout, X: np.ndarray, y: np.ndarray, noise: float | None = None, max_iter: int = 60
) -> np.ndarray:
    """MAP hyperparameters of the GP on inputs ``X`` and standardised targets ``y``: the best
    of L-BFGS-B runs from ``starts``, a deterministic function of the data."""
    best: tuple[float, np.ndarray] | None = None
    fixed = _square_differences(layout, X, X)
    bounds = _bounds(layout)
    if noise is not None:  # a fixed noise variance
        bounds[1] = (math.log(noise), math.log(noise))
    for theta0 in starts(layout):
        if noise is not None:
            theta0 = theta0.copy()
            theta0[1] = math.log(noise)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = minimize(
                _neg_log_posterior,
                theta0,
                args=(layout, X, y, fixed),
                method="L-BFGS-B",
                jac=True,
                bounds=bounds,
                options={"maxiter": max_iter},
            )
        value = float(result.fun)
        if math.isfinite(value) and (best is None or value < best[0]):
            best = (value, np.asarray(result.x, dtype=float))
    if best is not None:
        return best[1]
    theta = starts(layout)[0]
    if noise is not None:
        theta[1] = math.log(noise)
    return theta


class Posterior:
    """The GP conditioned on ``X``, ``y`` with hyperparameters ``theta``."""

    def __init__(self, layout: Layout, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> None:
        self.layout = layout
        log_amp, log_noise, self.length, self.log_ab = _unpack(layout, theta)
        self.amp = math.exp(log_amp)
        self.Z = _features(layout, X, self.log_ab)
        K = self.amp * _matern(_sq_distance(layout, self.Z, self.Z, self.length))
        jitter = 1e-8
        while True:
            K_noisy = K + (math.exp(log_noise) + jitter) * np.eye(len(y))
            try:
                self.L = cholesky(K_noisy, lower=True)
                break
            except LinAlgError:
                jitter *= 100
        self.alpha = cho_solve((self.L, True), y)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the latent function at the rows of ``X``."""
        Zc = _features(self.layout, X, self.log_ab)
        Ks = self.amp * _matern(_sq_distance(self.layout, Zc, self.Z, self.length))
        mean = Ks @ self.alpha
        V = solve_triangular(self.L, Ks.T, lower=True)
        var = self.amp - np.einsum("ij,ij->j", V, V)
        return mean, np.sqrt(np.maximum(var, 1e-12))


class Mixture:
    """Equally weighted GPs (one for each hyperparameter draw), moment-matched to one
    Gaussian: the mean of their means, and a variance that adds their disagreement."""

    def __init__(self, parts: list[Posterior]) -> None:
        self.parts = parts

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self.parts) == 1:
            return self.parts[0].predict(X)
        predictions = [part.predict(X) for part in self.parts]
        means = np.array([mean for mean, _ in predictions])
        stds = np.array([std for _, std in predictions])
        mean = means.mean(axis=0)
        var = (stds * stds + means * means).mean(axis=0) - mean * mean
        return mean, np.sqrt(np.maximum(var, 1e-12))
