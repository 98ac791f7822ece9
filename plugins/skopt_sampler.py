"""The `skopt-gp` sampler: Bayesian optimisation with scikit-optimize's Gaussian process.

This is the only module that imports scikit-optimize (pinned ``>=0.10,<0.11``; the project
is archived, so ``tests/test_skopt_sampler.py`` keeps a smoke test of the pieces used here).

How a proposal is made
----------------------
``ask(history, n)`` is a pure function of the history and the seed. Every call rebuilds a
``skopt.Optimizer`` from the history's finished trials, seeded by ``(seed, len(history))``,
so a resumed study proposes exactly what an uninterrupted one would have:

1. Trials numbered below ``n_initial_points`` come from the initial design: for
   ``random`` trial ``t`` is drawn exactly as the ``random`` sampler draws it (a generator
   seeded by ``(seed, t)``), except that ``grid_points`` dimensions are then moved to their
   nearest grid point (``random`` samples their whole range); for ``sobol``, ``halton``
   and ``lhs`` it is point ``t`` of a design of ``n_initial_points`` points seeded by the
   seed. Both depend on the trial
   number only.
2. Later trials come from the GP once at least ``max(2, n_initial_points // 2)`` trials have
   been observed (a seeded random draw before that, which only happens with many workers).
   The GP is fitted to the observations; trials still running or waiting are added as
   constant-liar points (at the best loss seen, ``cl_min``), and a batch of ``n`` is asked
   with ``Optimizer.ask(n_points=n, strategy="cl_min")``, so the ``n`` proposals spread out.
3. Proposals equal to a configuration already in the history or earlier in the batch (a
   finite space, or two points that differ only in inactive parameters) are replaced by a
   seeded random draw; once a finite space has no unseen configuration, fewer than ``n``
   (or none) are returned.

Search space
------------
* ``float``: ``Real`` with a ``log-uniform`` prior when ``log: true``, else ``uniform``.
* ``int``: ``Integer`` (``log-uniform`` when ``log: true``).
* ``categorical``: ``Categorical`` over the choices' positions, so any choice type (str,
  int, float, bool, None) comes back as exactly the value written in the spec.
* ``step``, ``values`` and ``grid_points`` dimensions: an ``Integer`` *index* into the
  dimension's sorted finite values. Unlike a ``Categorical``, the index keeps their order,
  so the GP can interpolate between neighbours; a log grid is evenly spaced in its index.
  Every proposal of a ``grid_points`` dimension is a grid point; a stored value off the
  grid but inside the range (a trial another sampler proposed) is told to the GP at the
  nearest grid point, on the dimension's scale.
  (A ``step`` too fine to enumerate, over 100,000 values, is searched as a continuous
  ``Real`` or ``Integer`` and snapped to the step.)
* A dimension with a single possible value is left out of the GP and always proposed.

Values come back as Python types: ``int`` for int dimensions, ``float`` for floats, and the
spec's own values for finite and categorical dimensions (no numpy scalars).

Conditional parameters
----------------------
The GP works on the full space. A parameter that is inactive in a trial (its ``when`` is
not met) is *imputed* to a fixed value for the surrogate: the lower bound (``low``, the
first finite value, the first choice), i.e. ``0`` on the GP's normalised axis. So the GP
sees trials that differ only in inactive parameters as one point. A proposal is decoded in
dependency order and keeps only the parameters active under the values chosen so far, so
``space.contains(proposal)`` always holds; a proposal is then the same configuration as
its imputed point, which is what the GP is told once it completes.

Failed and pruned trials
------------------------
* **Completed** trials are told with their value (oriented so lower is better).
* **Failed** trials are told as the *worst completed value seen so far*. Most failures are
  a property of the configuration (an invalid combination, a diverging fit), so the GP
  should learn to avoid the region, or it would propose it again and again and exhaust
  ``budget.max_failed``; the worst seen value stays inside the range of the observed
  values, so it does not stretch the GP's normalised targets or its length scales as a
  huge penalty would. Failed trials before any completed one are not told.
* **Pruned** trials are told with their last intermediate value, but never as better
  than the median completed value: the pruner stopped them for looking worse than their
  peers at that step, and an early fold or epoch value can be optimistic or pessimistic.
  A pruned trial without an intermediate value is not told.
* Running and waiting trials are constant-liar points (see above). Every trial, in any
  state, counts as "seen", so no configuration is proposed twice.

The surrogate
-------------
A ``skopt.learning.GaussianProcessRegressor`` with scikit-optimize's default GP kernel
(a constant times an anisotropic Matern 5/2 over the normalised space, a Hamming kernel
when every dimension is categorical) plus a white-noise term (``noise``). The losses are
first mapped by ``y_transform``: by default ``standardize`` (mean 0, standard deviation
1), so ``xi`` means the same for ``roc_auc`` as for ``neg_mean_squared_error``;
``copula`` (normal scores of the ranks, ``Phi^-1(rank / (n + 1))``) is robust to a few
diverged trials, but flattens the differences among the best ones, and searched worse on
``benchmarks/samplers.py``. ``xi`` and ``kappa`` are in those units.

Speed
-----
The defaults are tuned for the driver's one ``ask`` per trial. On a 4-d mixed space at
100 observations, scikit-optimize's defaults took 1.9 s a call (``benchmarks/samplers.py``,
2-core machine); these a median of about 30 ms, and 0.2-0.35 s on the asks that refit the
kernel's hyperparameters (one in five there):

* the acquisition is maximised over ``n_points`` (1000) random candidates
  (``acq_optimizer: sampling``), not by L-BFGS restarts from 10,000 candidates;
* the acquisition is EI, not ``gp_hedge`` (whose portfolio gains need a long-lived
  optimizer, which a rebuild per ask does not have), and the GP's predictive variance for
  the candidates is computed with BLAS, not skopt's three-operand ``einsum``;
* the kernel's hyperparameters are fitted (one L-BFGS start from the kernel's defaults) on
  every ask below ``refit_all_below`` (30) completed trials, then every ``refit_every``
  (5): in between, the GP reuses the hyperparameters fitted on the first completed trials
  (by trial number) at the last refit point. Those are a function of the history alone,
  so reuse never changes a proposal; a small cache only saves recomputing them, and a
  fresh sampler (a resumed study) computes the same ones;
* BLAS runs on one thread during ``ask``: the GP's matrices are small, and threads only
  add overhead there and compete with the trials for the cores.

``benchmarks/samplers.py`` measures the latency on a 4-d mixed space, next to
scikit-optimize's defaults, and the search quality on eight scikit-learn tasks next to
random search, Optuna's TPE and ``gp_minimize``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, PositiveFloat
from scipy.optimize import minimize
from scipy.stats import norm, rankdata
from sklearn.gaussian_process import GaussianProcessRegressor
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor as SkoptGPR
from skopt.learning.gaussian_process.kernels import (
    ConstantKernel,
    HammingKernel,
    Matern,
    WhiteKernel,
)
from skopt.space import Categorical, Integer, Real, Space
from skopt.utils import cook_initial_point_generator, normalize_dimensions
from threadpoolctl import ThreadpoolController

from tunedag import hookimpl
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace, pairs
from tunedag.spec.models import CategoricalDimension, IntDimension
from tunedag.storage import TrialRecord, TrialState

_RANDOM_TRIES = 64
_THETA_CACHE = 8
_GRID_LIMIT = 20_000
#: lhs: fewer maximin iterations than skopt's 1000 (the design is built once per run, but
#: 1000 take seconds); halton: a seeded random skip, so the design differs by seed
_GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "lhs": {"criterion": "maximin", "iterations": 200},
    "halton": {"min_skip": 1, "max_skip": 1000},
}


@dataclass
class _Axis:
    """One tunedag dimension as the GP sees it; ``dim`` is None for a single-valued one."""

    name: str
    kind: Literal["real", "int", "index", "categorical", "constant"]
    dim: Any
    low: float = 0.0
    high: float = 0.0
    values: tuple[Any, ...] = ()
    step: float | None = None  # a step too fine to enumerate: searched as continuous, snapped
    grid_log: bool | None = None  # a grid_points axis: True on a log scale, False on a linear one

    @property
    def impute(self) -> Any:
        """The value an inactive parameter takes for the surrogate: the axis's low end."""
        if self.kind == "real":
            return float(self.low)
        if self.kind == "int":
            return int(self.low)
        return 0

    def encode(self, value: Any) -> Any:
        """The GP coordinate of a stored value, or None when it is not in this dimension."""
        if self.kind == "real":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value) if self.low <= value <= self.high else None
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                return None
            return int(value) if self.low <= value <= self.high else None
        if self.kind == "categorical":
            for index, choice in enumerate(self.values):
                if type(choice) is type(value) and choice == value:
                    return index
            return None
        for index, point in enumerate(self.values):  # index and constant
            if point == value or (
                isinstance(point, float)
                and isinstance(value, int | float)
                and math.isclose(point, value, rel_tol=1e-9, abs_tol=1e-12)
            ):
                return index
        return self.nearest(value)

    def nearest(self, value: Any) -> int | None:
        """The index of the grid point nearest ``value`` (on the dimension's scale) when this
        is a ``grid_points`` axis and ``value`` lies in its range; else None."""
        if self.grid_log is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        low, high = self.values[0], self.values[-1]
        if not low - 1e-9 * abs(low) <= value <= high + 1e-9 * abs(high):
            return None
        scale = math.log if self.grid_log else float
        target = scale(max(value, low) if self.grid_log else value)
        distances = [abs(scale(point) - target) for point in self.values]
        return distances.index(min(distances))

    def decode(self, x: Any) -> Any:
        """A GP coordinate back to the spec's value, as a plain Python object."""
        if self.kind in ("real", "int"):
            value = min(max(float(x), self.low), self.high)
            if self.step:
                count = math.floor((self.high - self.low) / self.step + 1e-9)
                value = (
                    self.low + min(max(round((value - self.low) / self.step), 0), count) * self.step
                )
            return round(value) if self.kind == "int" else float(value)
        index = min(max(round(float(x)), 0), len(self.values) - 1)
        return self.values[index]


def _axis(space: SearchSpace, name: str) -> _Axis:
    dim = space.dimensions[name]
    if isinstance(dim, CategoricalDimension):
        choices = tuple(dim.labels)
        if len(choices) == 1:
            return _Axis(name, "constant", None, values=choices)
        return _Axis(
            name, "categorical", Categorical(list(range(len(choices))), name=name), values=choices
        )
    if dim.values is not None or dim.step is not None or dim.grid_points:
        axis = space.finite_values(name)
        if axis is not None:
            points = tuple(sorted(dict.fromkeys(axis)))
            if len(points) == 1:
                return _Axis(name, "constant", None, values=points)
            grid_log = bool(dim.log) if dim.grid_points and dim.values is None else None
            return _Axis(
                name,
                "index",
                Integer(0, len(points) - 1, name=name),
                values=points,
                grid_log=grid_log,
            )
    assert dim.low is not None and dim.high is not None
    prior = "log-uniform" if dim.log else "uniform"
    # a dimension with a step too fine to enumerate is searched as continuous, then snapped
    step = float(dim.step) if dim.step is not None else None
    if isinstance(dim, IntDimension):
        low, high = int(dim.low), int(dim.high)
        return _Axis(name, "int", Integer(low, high, prior=prior, name=name), low, high, (), step)
    return _Axis(
        name,
        "real",
        Real(dim.low, dim.high, prior=prior, name=name),
        float(dim.low),
        float(dim.high),
        (),
        step,
    )


class SkoptGPSampler(Sampler):
    """Gaussian-process Bayesian optimisation through ``skopt.Optimizer``."""

    name = "skopt-gp"

    class Options(Sampler.Options):
        model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

        n_initial_points: int = Field(
            10, ge=0, description="trials from the initial design before the GP takes over"
        )
        initial_point_generator: Literal["random", "sobol", "halton", "lhs"] = Field(
            "random",
            description="the initial design: random (the same draws as the random sampler), "
            "or a space-filling sobol, halton or lhs design of n_initial_points points",
        )
        acq_func: Literal["EI", "PI", "LCB", "gp_hedge"] = Field(
            "EI",
            description="acquisition function: expected improvement, probability of "
            "improvement, lower confidence bound, or gp_hedge (a random pick among the "
            "three per ask, as a rebuilt optimizer keeps no hedging history)",
        )
        acq_optimizer: Literal["auto", "sampling", "lbfgs"] = Field(
            "auto",
            description="how the acquisition is maximised: sampling (the best of n_points "
            "random candidates), lbfgs (L-BFGS from the best 3 candidates; slower), or "
            "auto (sampling)",
        )
        n_points: int = Field(
            1000, ge=10, le=100_000, description="random candidates the acquisition is scored on"
        )
        xi: float = Field(
            0.01, ge=0, description="EI and PI: the improvement over the best that counts"
        )
        kappa: float = Field(
            1.96, ge=0, description="LCB: how many standard deviations below the mean"
        )
        y_transform: Literal["standardize", "copula"] = Field(
            "standardize",
            description="the scale the GP models: standardize (mean 0, standard deviation 1) "
            "or copula (normal scores of the values' ranks: robust to outliers, but it flattens "
            "the differences among the best trials); xi is in these units",
        )
        noise: Literal["gaussian"] | PositiveFloat = Field(
            "gaussian",
            description="observation noise: gaussian (estimated with the kernel) or a fixed "
            "variance of the normalised values",
        )
        refit_every: int = Field(
            5,
            ge=1,
            description="refit the kernel hyperparameters every this many observations "
            "(each ask in between reuses the last ones; deterministic either way)",
        )
        refit_all_below: int = Field(
            30,
            ge=0,
            description="below this many observations the hyperparameters are refitted on "
            "every ask",
        )

    def __init__(self, space: SearchSpace, options: Any = None, **kwargs: Any) -> None:
        super().__init__(space, options, **kwargs)
        self.axes = [_axis(space, name) for name in space.names]
        self.gp_axes = [axis for axis in self.axes if axis.dim is not None]
        self._dims = [axis.dim for axis in self.gp_axes]
        self._space = Space(normalize_dimensions(self._dims)) if self._dims else None
        self._design: list[list[Any]] | None = None
        self._theta: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._grid = _small_grid(space)

    # -- ask -----------------------------------------------------------------------------------

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        # The GP's matrices are small (observations x observations): BLAS threads only add
        # overhead there, and compete with the trials for the cores.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._ask(history, n)

    def _ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        first = len(history)
        seen = {_key(trial.params) for trial in history}
        if self._grid is not None:
            n = min(n, sum(1 for key in self._grid if key not in seen))
        if n <= 0:
            return []
        X, y, told_complete, pending = self._observations(history)
        minimum = max(2, self.options.n_initial_points // 2)
        numbers = list(range(first, first + n))
        model = [t for t in numbers if t >= self.options.n_initial_points]
        proposals: dict[int, Params] = {}
        for t in numbers:
            if t < self.options.n_initial_points:
                proposals[t] = self._initial(t)
        if model:
            if len(y) >= minimum and self._space is not None:
                points = self._gp_points(X, y, told_complete, pending, len(model), first)
                for t, x in zip(model, points, strict=True):
                    proposals[t] = self._decode(x)
            else:
                for t in model:
                    proposals[t] = self._sample(self.rng(t))
        out: list[Params] = []
        for t in numbers:
            params = proposals[t]
            attempt = 0
            while _key(params) in seen and attempt < _RANDOM_TRIES:
                attempt += 1
                params = self._sample(np.random.default_rng([self.seed, t, attempt]))
            if _key(params) in seen:
                if self._grid is None:
                    continue
                unseen = next((key for key in self._grid if key not in seen), None)
                if unseen is None:
                    break
                params = self._grid[unseen]
            seen.add(_key(params))
            out.append(params)
        return out

    def _initial(self, number: int) -> Params:
        generator = self.options.initial_point_generator
        if generator == "random" or not self._dims:
            return self._sample(self.rng(number))
        if self._design is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                design = cook_initial_point_generator(
                    generator, **_GENERATOR_OPTIONS.get(generator, {})
                ).generate(
                    self._dims,
                    self.options.n_initial_points,
                    random_state=np.random.RandomState(_seed32(self.seed, "design")),
                )
            self._design = [list(point) for point in design]
        return self._decode(self._design[number])

    def _sample(self, rng: np.random.Generator) -> Params:
        """A random draw, as the ``random`` sampler makes it, with ``grid_points`` dimensions
        snapped to their nearest grid point (``random`` samples their whole range)."""
        params = self.space.sample(rng)
        for axis in self.axes:
            if axis.grid_log is not None and axis.name in params:
                index = axis.nearest(params[axis.name])
                if index is not None:
                    params[axis.name] = axis.values[index]
        return params

    # -- history -> observations ---------------------------------------------------------------

    def _observations(
        self, history: Sequence[TrialRecord]
    ) -> tuple[list[list[Any]], list[float], list[bool], list[list[Any]]]:
        """GP points and losses of the told trials (and which of them completed), and the
        points of the unfinished trials."""
        complete = [(t, self.loss(t)) for t in history if t.state == TrialState.COMPLETE]
        losses = [loss for _, loss in complete if loss is not None and math.isfinite(loss)]
        worst = max(losses) if losses else None
        median = float(np.median(losses)) if losses else None
        X: list[list[Any]] = []
        y: list[float] = []
        told_complete: list[bool] = []
        pending: list[list[Any]] = []
        for trial in history:
            point = self._encode(trial.params)
            if point is None:
                continue
            if trial.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(point)
                continue
            loss = self._told_loss(trial, worst, median)
            if loss is not None and math.isfinite(loss):
                X.append(point)
                y.append(loss)
                told_complete.append(trial.state == TrialState.COMPLETE)
        return X, y, told_complete, pending

    def _told_loss(
        self, trial: TrialRecord, worst: float | None, median: float | None
    ) -> float | None:
        if trial.state == TrialState.COMPLETE:
            return self.loss(trial)
        if trial.state == TrialState.FAILED:
            return worst
        if trial.state == TrialState.PRUNED:
            value = (
                trial.intermediate[max(trial.intermediate)] if trial.intermediate else trial.value
            )
            if value is None:
                return None
            loss = -value if self.direction == "maximize" else value
            return loss if median is None else max(loss, median)
        return None

    def _encode(self, params: dict[str, Any]) -> list[Any] | None:
        point: list[Any] = []
        for axis in self.gp_axes:
            if axis.name in params:
                value = axis.encode(params[axis.name])
                if value is None:
                    return None
            else:
                value = axis.impute
            point.append(value)
        return point

    def _decode(self, point: Sequence[Any]) -> Params:
        coords = dict(zip((axis.name for axis in self.gp_axes), point, strict=True))
        params: Params = {}
        for axis in self.axes:
            if not self.space.is_active(axis.name, params):
                continue
            params[axis.name] = (
                axis.values[0] if axis.dim is None else axis.decode(coords[axis.name])
            )
        return params

    # -- the GP ---------------------------------------------------------------------------------

    def _gp_points(
        self,
        X: list[list[Any]],
        y: list[float],
        told_complete: list[bool],
        pending: list[list[Any]],
        n: int,
        first: int,
    ) -> list[list[Any]]:
        assert self._space is not None
        opts = self.options
        kernel = self._fitted_kernel(
            [x for x, c in zip(X, told_complete, strict=True) if c],
            [v for v, c in zip(y, told_complete, strict=True) if c],
        )
        y = list(_transform_y(np.asarray(y, dtype=float), opts.y_transform))
        # noise="gaussian" tells skopt the kernel holds a WhiteKernel (fixed or fitted),
        # which it strips for predictions; optimizer=None keeps the hyperparameters given.
        gp = _GPR(kernel=kernel, optimizer=None, normalize_y=True, noise="gaussian")
        acq_optimizer = "sampling" if opts.acq_optimizer == "auto" else opts.acq_optimizer
        optimizer = Optimizer(
            self._dims,
            base_estimator=gp,
            n_initial_points=0,
            acq_func=opts.acq_func,
            acq_optimizer=acq_optimizer,
            acq_func_kwargs={"xi": opts.xi, "kappa": opts.kappa},
            acq_optimizer_kwargs={
                "n_points": opts.n_points,
                "n_restarts_optimizer": 3,
                "n_jobs": 1,
            },
            random_state=np.random.RandomState(_seed32(self.seed, first)),
        )
        lie = min(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizer.tell(X + pending, y + [lie] * len(pending))
            if n == 1:
                return [optimizer.ask()]
            return list(optimizer.ask(n_points=n, strategy="cl_min"))

    def _kernel(self) -> Any:
        assert self._space is not None
        n_dims = self._space.transformed_n_dims
        amplitude = ConstantKernel(1.0, (0.01, 1000.0))
        if self._space.is_categorical:
            shape = HammingKernel(length_scale=np.ones(n_dims))
        else:
            shape = Matern(
                length_scale=np.ones(n_dims), length_scale_bounds=[(0.01, 100.0)] * n_dims, nu=2.5
            )
        noise = self.options.noise
        white = (
            WhiteKernel(1.0, (1e-5, 1e5))
            if noise == "gaussian"
            else WhiteKernel(float(noise), "fixed")
        )
        return amplitude * shape + white

    def _fitted_kernel(self, X: list[list[Any]], y: list[float]) -> Any:
        """The kernel, its hyperparameters fitted on a deterministic prefix of the completed
        trials (by number): all of them below ``refit_all_below``, else the longest prefix
        whose length is ``refit_all_below`` plus a multiple of ``refit_every``."""
        assert self._space is not None
        m = len(y)
        opts = self.options
        if m > opts.refit_all_below:
            m -= (m - opts.refit_all_below) % opts.refit_every
        kernel = self._kernel()
        if m < 2:
            return kernel
        Xt = np.asarray(self._space.transform(X[:m]), dtype=float)
        yt = _transform_y(np.asarray(y[:m], dtype=float), opts.y_transform)
        key = Xt.tobytes() + b"|" + yt.tobytes()
        theta = self._theta.get(key)
        if theta is None:
            theta = _fit_theta(kernel, Xt, yt)
            self._theta[key] = theta
            while len(self._theta) > _THETA_CACHE:
                self._theta.popitem(last=False)
        else:
            self._theta.move_to_end(key)
        return kernel.clone_with_theta(theta)


class _GPR(SkoptGPR):  # type: ignore[misc]
    """skopt's GP with a faster predictive variance for many candidates at once.

    skopt computes ``diag(K* K^-1 K*^T)`` with a three-operand ``einsum`` that does not use
    BLAS; ``(K* @ K^-1) * K*`` summed by row is the same number, several times faster.
    """

    def predict(
        self,
        X: Any,
        return_std: bool = False,
        return_cov: bool = False,
        return_mean_grad: bool = False,
        return_std_grad: bool = False,
    ) -> Any:
        if return_cov or return_mean_grad or return_std_grad or not return_std:
            return super().predict(X, return_std, return_cov, return_mean_grad, return_std_grad)
        if not hasattr(self, "X_train_"):
            return super().predict(X, return_std)
        X = np.asarray(X, dtype=float)
        K_trans = self.kernel_(X, self.X_train_)
        y_mean = self.y_train_std_ * K_trans.dot(self.alpha_) + self.y_train_mean_
        y_var = self.kernel_.diag(X) - np.einsum("ij,ij->i", K_trans @ self.K_inv_, K_trans)
        y_std = np.sqrt(np.maximum(y_var, 0.0) * self.y_train_std_**2)
        return y_mean, y_std


def _fit_theta(kernel: Any, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximise the log marginal likelihood from the kernel's default hyperparameters."""

    def lbfgs(obj_func: Any, initial_theta: np.ndarray, bounds: np.ndarray) -> Any:
        result = minimize(
            obj_func,
            initial_theta,
            method="L-BFGS-B",
            jac=True,
            bounds=bounds,
            options={"maxiter": 100},
        )
        return result.x, result.fun

    gp = GaussianProcessRegressor(
        kernel=kernel, normalize_y=True, optimizer=lbfgs, n_restarts_optimizer=0, alpha=1e-10
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp.fit(X, y)
    return np.asarray(gp.kernel_.theta)


def _small_grid(space: SearchSpace) -> dict[str, Params] | None:
    """Every configuration of a finite space of at most _GRID_LIMIT, by key; else None."""
    size = 1
    for name in space.names:
        axis = space.finite_values(name)
        if axis is None:
            return None
        size *= len(axis)
        if size > _GRID_LIMIT:
            return None
    return {_key(params): params for params in space.grid()}


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _transform_y(y: np.ndarray, mode: str) -> np.ndarray:
    """Losses on the scale the GP is fitted to (see ``Options.y_transform``)."""
    if len(y) < 2:
        return y
    if mode == "copula":  # normal scores of the ranks, ties sharing their mean rank
        return np.asarray(norm.ppf(rankdata(y) / (len(y) + 1)), dtype=float)
    std = float(np.std(y))
    return np.asarray((y - np.mean(y)) / (std if std > 0 else 1.0), dtype=float)


def _key(params: dict[str, Any]) -> str:
    return repr(pairs(params))


def _seed32(seed: int, salt: int | str) -> int:
    entropy = [seed, salt] if isinstance(salt, int) else [seed, sum(map(ord, salt)), 1 << 20]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


@hookimpl
def register_samplers(register: Any) -> None:
    register(SkoptGPSampler)
