"""The `skopt-gp` sampler: Bayesian optimisation with a Gaussian process.

The name is historical: the first version drove scikit-optimize's ``Optimizer``. The GP is
now tunedag's own (``_gp``: input warping, a categorical kernel term, priors, analytic
gradients), because search quality across problem kinds needed what scikit-optimize's GP
lacks, and a fit of its own is faster; scikit-optimize still builds the space-filling
initial designs (``sobol``, ``halton``, ``lhs``). How each dimension kind becomes a GP
column is in ``_gp_space``; the acquisition functions and their search in ``_acquisition``.

How a proposal is made
----------------------
``ask(history, n)`` is a pure function of the history and the seed, so a resumed study
proposes exactly what an uninterrupted one would have. Proposal ``k`` of a batch is
exactly what ``ask`` would propose one at a time with proposals ``0..k-1`` added to the
history as running trials: a trial's proposal depends on its number, the seed and the
history it was proposed from, never on how the driver grouped its asks into batches.

1. Trials numbered below ``n_initial_points`` come from the initial design: for ``lhs``
   (the default), ``sobol`` and ``halton`` trial ``t`` is point ``t`` of a design of
   ``n_initial_points`` points seeded by the seed; for ``random`` it is drawn exactly as
   the ``random`` sampler draws it (a generator seeded by ``(seed, t)``), except that
   ``grid_points`` dimensions are then moved to their nearest grid point (``random``
   samples their whole range). Both depend on the trial number only.
2. Later trials come from the GP once at least ``max(2, n_initial_points // 2)`` trials have
   been observed (a seeded random draw before that, which only happens with many workers).
   The GP is fitted to the observations; trials still running or waiting are added at the
   best value seen (a constant liar, ``cl_min``), so parallel proposals spread out. The
   prediction averages ``hyper_samples`` GPs: the fitted hyperparameters and draws from a
   Laplace approximation of their posterior, from a generator seeded by ``(seed, t)``
   (with tens of observations one fitted set of length scales is often confidently wrong:
   on the plateaus of a decision tree's loss it predicts the best values where the tree
   is a constant). The acquisition (``acq_func``) is maximised over candidates drawn from
   a generator seeded by ``(seed, t)``.

Why these defaults: a maximin Latin hypercube covers every dimension's range evenly with
few points, where ten random draws leave gaps; and at budgets of tens of trials, local
perturbations of the best trials (``acq_optimizer: auto``) settle on a plateau of equally
good configurations (a decision tree's stump, an accuracy step) instead of looking past
it. Both were chosen on the tuning set of ``benchmarks/protocol.py``, never on its
held-out set.
3. Proposals equal to a configuration already in the history or earlier in the batch are
   skipped for the next-best candidate, then replaced by a seeded random draw; once a
   finite space has no unseen configuration, fewer than ``n`` (or none) are returned.

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

The targets
-----------
The losses are mapped by ``y_transform`` before the fit: by default ``power``:
standardised, then a Yeo-Johnson power transform fitted to them (as HEBO does), then
standardised again. A log loss or a diverging fit makes a few losses huge; the power
transform pulls that tail in, so the GP's fit is not spent on the worst trials, while it
keeps the order and the spacing of the good ones (``copula``, the normal scores of the
ranks, flattens those). ``standardize`` is the plain mean 0, standard deviation 1.

Speed
-----
The hyperparameters (amplitude, noise, a length scale a column, two warping exponents a
warped column) are fitted by L-BFGS-B with analytic gradients from two fixed starts, and
their Laplace approximation takes one Hessian (central differences of the gradient) a
fit. They are refitted on every ask below ``refit_all_below`` completed trials; above, on a
deterministic prefix of the completed trials (by number) whose length grows in steps of
``max(refit_every, length // 10)``, so a fresh sampler (a resumed study) computes the same
ones, and a small cache keeps them between asks. Each ask conditions ``hyper_samples`` GPs on
the observations and scores the candidates with each: most of an ask's time, and the
reason ``hyper_samples: 1`` is several times faster. Past 200 completed trials the fit uses
the 100 best and 100 others spread over the rest. BLAS runs on one thread during ``ask``:
the GP's matrices are small, and threads only add overhead there and compete with the
trials for the cores. ``benchmarks/samplers.py`` measures the latency at 50 to 400
observations.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, PositiveFloat
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from tunedag import hookimpl
from tunedag.plugins import _acquisition as acq
from tunedag.plugins import _gp
from tunedag.plugins._gp_space import make_axis
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace, pairs
from tunedag.storage import TrialRecord, TrialState

_RANDOM_TRIES = 64
_FIT_CACHE = 8
_GRID_LIMIT = 20_000
_FIT_LIMIT = 200
#: lhs: fewer maximin iterations than skopt's 1000 (the design is built once per run, but
#: 1000 take seconds); halton: a seeded random skip, so the design differs by seed
_GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "lhs": {"criterion": "maximin", "iterations": 200},
    "halton": {"min_skip": 1, "max_skip": 1000},
}


class SkoptGPSampler(Sampler):
    """Gaussian-process Bayesian optimisation (see the module docstring)."""

    name = "skopt-gp"

    class Options(Sampler.Options):
        model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

        n_initial_points: int = Field(
            10, ge=0, description="trials from the initial design before the GP takes over"
        )
        initial_point_generator: Literal["random", "sobol", "halton", "lhs"] = Field(
            "lhs",
            description="the initial design: a space-filling lhs (maximin Latin hypercube), "
            "sobol or halton design of n_initial_points points, or random (the same draws "
            "as the random sampler)",
        )
        acq_func: Literal["EI", "PI", "LCB", "gp_hedge", "portfolio"] = Field(
            "portfolio",
            description="acquisition function: expected improvement, probability of "
            "improvement, lower confidence bound, gp_hedge (one of the three, drawn per "
            "trial), or portfolio (a seeded pick among the candidates that are best under "
            "some trade-off of the three: their Pareto front)",
        )
        acq_optimizer: Literal["auto", "sampling", "lbfgs"] = Field(
            "sampling",
            description="how the acquisition is maximised: sampling (n_points random "
            "candidates), auto (those, local perturbations of the best trials, then a finer "
            "round around the best candidates: more exploitation), or lbfgs (auto, then "
            "L-BFGS-B on the real-valued columns from the best 3 candidates; slower)",
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
        y_transform: Literal["power", "standardize", "copula"] = Field(
            "power",
            description="the scale the GP models: power (standardised, then a fitted "
            "Yeo-Johnson transform: pulls in a tail of very bad trials), standardize (mean "
            "0, standard deviation 1) or copula (normal scores of the ranks); xi is in "
            "these units",
        )
        warping: bool = Field(
            True,
            description="fit a Kumaraswamy input warping to each numeric dimension with the "
            "kernel (a learned log or logit-like scale)",
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
        hyper_samples: int = Field(
            16,
            ge=1,
            le=256,
            description="GPs averaged on each ask: the fitted hyperparameters and "
            "hyper_samples - 1 draws from a Laplace approximation of their posterior (1: the "
            "fitted ones alone, faster)",
        )
        refit_all_below: int = Field(
            30,
            ge=0,
            description="below this many observations the hyperparameters are refitted on "
            "every ask",
        )

    def __init__(self, space: SearchSpace, options: Any = None, **kwargs: Any) -> None:
        super().__init__(space, options, **kwargs)
        self.axes = [make_axis(space, name) for name in space.names]
        self.gp_axes = [axis for axis in self.axes if axis.dim is not None]
        self._dims = [axis.dim for axis in self.gp_axes]
        numeric = np.array([axis.numeric for axis in self.gp_axes], dtype=bool)
        warped = np.array(
            [axis.warpable and self.options.warping for axis in self.gp_axes], dtype=bool
        )
        self._layout = _gp.Layout(numeric=numeric, warped=warped)
        self._choices = np.array(
            [0 if axis.numeric else len(axis.values) for axis in self.gp_axes], dtype=float
        )
        self._column = {axis.name: j for j, axis in enumerate(self.gp_axes)}
        self._conditional = any(space.conditions(name) for name in space.names)
        self._design: list[list[Any]] | None = None
        self._fits: OrderedDict[bytes, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._grid = _small_grid(space)

    # -- ask -----------------------------------------------------------------------------------

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        # The GP's matrices are small (observations x observations): BLAS threads only add
        # overhead there, and compete with the trials for the cores.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._ask(history, n)

    def _ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        seen = {_key(trial.params) for trial in history}
        if self._grid is not None:
            n = min(n, sum(1 for key in self._grid if key not in seen))
        if n <= 0:
            return []
        X, y, told_complete, pending = self._observations(history)
        out: list[Params] = []
        for t in range(len(history), len(history) + n):
            params = self._propose(t, X, y, told_complete, pending, seen)
            if params is None:
                break
            seen.add(_key(params))
            out.append(params)
            row = self._row(params)
            if row is not None:
                pending.append(row)
        return out

    def _propose(
        self,
        t: int,
        X: list[np.ndarray],
        y: list[float],
        told_complete: list[bool],
        pending: list[np.ndarray],
        seen: set[str],
    ) -> Params | None:
        """Trial ``t``'s proposal from the observations and the pending points, or None
        when a finite space has no unseen configuration left."""
        params: Params | None
        if t < self.options.n_initial_points:
            params = self._initial(t)
        elif len(y) >= max(2, self.options.n_initial_points // 2) and self.gp_axes:
            params = self._gp_proposal(t, X, y, told_complete, pending, seen)
        else:
            params = self._sample(self.rng(t))
        attempt = 0
        while (params is None or _key(params) in seen) and attempt < _RANDOM_TRIES:
            attempt += 1
            params = self._sample(np.random.default_rng([self.seed, t, attempt]))
        if params is None or _key(params) in seen:
            if self._grid is None:
                return params
            return next((p for key, p in self._grid.items() if key not in seen), None)
        return params

    def _initial(self, number: int) -> Params:
        generator = self.options.initial_point_generator
        if generator == "random" or not self._dims:
            return self._sample(self.rng(number))
        if self._design is None:
            from skopt.utils import cook_initial_point_generator  # scikit-learn: when needed

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
        coords = dict(zip((axis.name for axis in self.gp_axes), self._design[number], strict=True))
        return self._params(lambda axis: axis.native(coords[axis.name]))

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

    def _params(self, value_of: Any) -> Params:
        """Params of the active dimensions, in dependency order, from ``value_of(axis)``."""
        params: Params = {}
        for axis in self.axes:
            if self.space.is_active(axis.name, params):
                params[axis.name] = axis.values[0] if axis.dim is None else value_of(axis)
        return params

    # -- history -> observations ---------------------------------------------------------------

    def _observations(
        self, history: Sequence[TrialRecord]
    ) -> tuple[list[np.ndarray], list[float], list[bool], list[np.ndarray]]:
        """GP rows and losses of the told trials (and which of them completed), and the
        rows of the unfinished trials."""
        complete = [(t, self.loss(t)) for t in history if t.state == TrialState.COMPLETE]
        losses = [loss for _, loss in complete if loss is not None and math.isfinite(loss)]
        worst = max(losses) if losses else None
        median = float(np.median(losses)) if losses else None
        X: list[np.ndarray] = []
        y: list[float] = []
        told_complete: list[bool] = []
        pending: list[np.ndarray] = []
        for trial in history:
            row = self._row(trial.params)
            if row is None:
                continue
            if trial.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(row)
                continue
            loss = self._told_loss(trial, worst, median)
            if loss is not None and math.isfinite(loss):
                X.append(row)
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

    def _row(self, params: dict[str, Any]) -> np.ndarray | None:
        """The GP row of a configuration (inactive parameters imputed at 0), or None when a
        value is outside the space."""
        row = np.zeros(len(self.gp_axes))
        for j, axis in enumerate(self.gp_axes):
            if axis.name in params:
                u = axis.unit(params[axis.name])
                if u is None:
                    return None
                row[j] = u
        return row

    def _decode(self, row: np.ndarray) -> Params:
        return self._params(lambda axis: axis.value(float(row[self._column[axis.name]])))

    # -- the GP --------------------------------------------------------------------------------

    def _gp_proposal(
        self,
        t: int,
        X: list[np.ndarray],
        y: list[float],
        told_complete: list[bool],
        pending: list[np.ndarray],
        seen: set[str],
    ) -> Params | None:
        opts = self.options
        Xc = np.array([x for x, c in zip(X, told_complete, strict=True) if c])
        yc = np.array([v for v, c in zip(y, told_complete, strict=True) if c])
        theta, root = self._fitted(Xc, yc)
        yt = _transform_y(np.asarray(y, dtype=float), opts.y_transform)
        best = float(yt.min())
        rows = np.vstack([np.array(X), *([np.array(pending)] if pending else [])])
        targets = np.concatenate([yt, np.full(len(pending), best)])
        thetas = [theta]
        if root is not None:
            draw_rng = np.random.default_rng([self.seed, t, 0x4C41])
            thetas = _gp.draws(self._layout, theta, root, opts.hyper_samples - 1, draw_rng)
        posterior = _gp.Mixture([_gp.Posterior(self._layout, th, rows, targets) for th in thetas])
        rng = np.random.default_rng([self.seed, t, 0x6750])
        kind = opts.acq_func
        if kind == "gp_hedge":
            kind = ("EI", "PI", "LCB")[int(rng.integers(3))]

        predicted: list[tuple[np.ndarray, np.ndarray]] = []

        def score(candidates: np.ndarray, record: bool = True) -> np.ndarray:
            mean, std = posterior.predict(candidates)
            if record:  # the portfolio reuses the predictions of every scored candidate
                predicted.append((mean, std))
            if kind == "PI":
                return acq.log_pi(mean, std, best, opts.xi)
            if kind == "LCB":
                return acq.neg_lcb(mean, std, opts.kappa)
            return acq.log_ei(mean, std, best, opts.xi)

        numeric, choices = self._layout.numeric, self._choices
        candidates = acq.uniform(rng, opts.n_points, numeric, choices)
        if opts.acq_optimizer != "sampling":
            top = np.array(X)[np.argsort(yt, kind="stable")[:5]]
            local = [acq.perturb(rng, top, 60, sigma, numeric, choices) for sigma in (0.03, 0.1)]
            candidates = np.vstack([candidates, *local])
        candidates = self._snap(candidates)
        values = score(candidates)
        if opts.acq_optimizer != "sampling":
            best_rows = candidates[np.argsort(-values, kind="stable")[:8]]
            finer = self._snap(acq.perturb(rng, best_rows, 25, 0.015, numeric, choices))
            candidates = np.vstack([candidates, finer])
            values = np.concatenate([values, score(finer)])
        if opts.acq_optimizer == "lbfgs":
            polished = self._polish(
                candidates[np.argsort(-values, kind="stable")[:3]],
                lambda rows: score(rows, record=False),
            )
            candidates = np.vstack([candidates, polished])
            values = np.concatenate([values, score(polished)])
        if kind == "portfolio":
            mean = np.concatenate([m for m, _ in predicted])
            std = np.concatenate([s for _, s in predicted])
            trio = np.column_stack(
                [
                    acq.log_ei(mean, std, best, opts.xi),
                    acq.log_pi(mean, std, best, opts.xi),
                    acq.neg_lcb(mean, std, opts.kappa),
                ]
            )
            best_by_each = np.unique(np.argsort(-trio, axis=0, kind="stable")[:128].ravel())
            front = best_by_each[acq.pareto_front(trio[best_by_each])]
            order = list(rng.permutation(front)) + list(np.argsort(-trio[:, 0], kind="stable"))
        else:
            order = list(np.argsort(-values, kind="stable"))
        for index in order[:200]:
            params = self._decode(candidates[index])
            if _key(params) not in seen:
                return params
        return None

    def _polish(self, starts: np.ndarray, score: Any) -> np.ndarray:
        """L-BFGS-B on the real-valued columns from each start (finite-difference gradients);
        the other columns stay as they are."""
        columns = [j for j, a in enumerate(self.gp_axes) if a.kind == "real" and not a.step]
        if not columns:
            return np.empty((0, len(self.gp_axes)))
        out = []
        for start in starts:

            def objective(x: np.ndarray, start: np.ndarray = start) -> float:
                row = start.copy()
                row[columns] = x
                return -float(score(row[None, :])[0])

            result = minimize(
                objective,
                start[columns],
                method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * len(columns),
                options={"maxiter": 30},
            )
            row = start.copy()
            row[columns] = result.x
            out.append(row)
        return self._snap(np.array(out))

    def _snap(self, candidates: np.ndarray) -> np.ndarray:
        """Candidates moved to points a proposal can have, inactive parameters imputed."""
        out = np.empty_like(candidates)
        for j, axis in enumerate(self.gp_axes):
            out[:, j] = axis.snap(candidates[:, j])
        if self._conditional:
            active = np.ones(len(out), dtype=bool)
            flags: dict[str, np.ndarray] = {}
            for axis in self.axes:
                mask = active.copy()
                for parent, allowed in self.space.conditions(axis.name).items():
                    mask &= flags.get(parent, active)
                    parent_axis = next(a for a in self.axes if a.name == parent)
                    if parent_axis.dim is None:
                        mask &= parent_axis.values[0] in allowed
                        continue
                    coords = [parent_axis.unit(value) for value in allowed]
                    column = out[:, self._column[parent]]
                    mask &= np.isin(column, [c for c in coords if c is not None])
                flags[axis.name] = mask
                if axis.dim is not None:
                    out[~mask, self._column[axis.name]] = 0.0
        return out

    def _fitted(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Hyperparameters fitted on a deterministic prefix of the completed trials (by
        number; see "Speed" in the module docstring), and the square root of their Laplace
        covariance (None with ``hyper_samples: 1``)."""
        m = _fit_size(len(y), self.options.refit_all_below, self.options.refit_every)
        if m < 2:
            return _gp.starts(self._layout)[0], None
        Xf, yf = X[:m], y[:m]
        if m > _FIT_LIMIT:
            order = np.argsort(yf, kind="stable")
            rest = np.sort(order[_FIT_LIMIT // 2 :])
            keep = np.sort(
                np.concatenate(
                    [
                        order[: _FIT_LIMIT // 2],
                        rest[np.linspace(0, len(rest) - 1, _FIT_LIMIT // 2).astype(int)],
                    ]
                )
            )
            Xf, yf = Xf[keep], yf[keep]
        key = Xf.tobytes() + b"|" + yf.tobytes()
        fitted = self._fits.get(key)
        if fitted is None:
            noise = self.options.noise
            yt = _transform_y(yf, self.options.y_transform)
            theta = _gp.fit(
                self._layout, Xf, yt, noise=None if noise == "gaussian" else float(noise)
            )
            root = None
            if self.options.hyper_samples > 1:
                root = _gp.laplace(self._layout, Xf, yt, theta, fixed_noise=noise != "gaussian")
            fitted = self._fits[key] = (theta, root)
            while len(self._fits) > _FIT_CACHE:
                self._fits.popitem(last=False)
        else:
            self._fits.move_to_end(key)
        return fitted


def _fit_size(m: int, all_below: int, every: int) -> int:
    """How many of ``m`` completed trials the hyperparameters are fitted on."""
    if m <= all_below:
        return m
    size = all_below
    while True:
        step = max(every, size // 10)
        if size + step > m:
            return size
        size += step


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
        return np.zeros_like(y)
    if mode == "copula":  # normal scores of the ranks, ties sharing their mean rank
        from scipy.stats import norm, rankdata

        return np.asarray(norm.ppf(rankdata(y) / (len(y) + 1)), dtype=float)
    y = _standardize(y)
    if mode == "power" and np.ptp(y) > 0:
        y = _standardize(_yeo_johnson(y))
    return y


_LAMBDAS = np.linspace(-3.0, 3.0, 121)


def _yeo_johnson(y: np.ndarray) -> np.ndarray:
    """The Yeo-Johnson transform of ``y`` with the maximum-likelihood exponent among
    ``_LAMBDAS``, all exponents at once (scipy's ``yeojohnson`` finds the same to within the
    grid's step, far slower through its generic machinery)."""
    positive = y >= 0
    magnitude = np.log1p(np.abs(y))
    # (1 + |y|)**p - 1) / p with p = lambda (y >= 0) or 2 - lambda (y < 0); log1p at p = 0
    power = np.where(positive, _LAMBDAS[:, None], 2.0 - _LAMBDAS[:, None])
    safe = np.where(np.abs(power) < 1e-12, 1.0, power)
    with np.errstate(over="ignore", invalid="ignore"):
        moved = np.where(power == safe, np.expm1(safe * magnitude) / safe, magnitude)
        out = np.where(positive, moved, -moved)
        var = np.var(out, axis=1)
        llf = -0.5 * len(y) * np.log(var) + (_LAMBDAS - 1.0) * float(
            np.sum(np.where(positive, magnitude, -magnitude))
        )
    llf[~(np.isfinite(var) & (var > 0))] = -np.inf
    if not np.isfinite(llf).any():
        return y
    transformed: np.ndarray = out[int(np.argmax(llf))]
    return transformed


def _standardize(y: np.ndarray) -> np.ndarray:
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
