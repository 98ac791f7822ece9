"""The `skopt-gp` sampler: the sampler contract, its space mapping, determinism, batches,
failed and pruned trials, a real study, and a latency print at 100 observations."""

from __future__ import annotations

import copy
import functools
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import tunedag
from tunedag.plugins.skopt_sampler import SkoptGPSampler
from tunedag.registry import make_plugins
from tunedag.sampler import Sampler
from tunedag.space import SearchSpace
from tunedag.spec.models import CategoricalDimension, FloatDimension, IntDimension
from tunedag.storage import TrialRecord, TrialState
from tunedag.testing import FINITE_SPACE, MIXED_SPACE, SamplerContract, history_of, toy_objective

#: fewer acquisition candidates and hyperparameter refits than the defaults, to keep this fast
FAST = {"n_points": 300, "refit_all_below": 6, "refit_every": 4}


class TestSkoptGPContract(SamplerContract):
    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        return SkoptGPSampler

    @pytest.fixture
    def sampler_options(self) -> dict[str, object]:
        return {"n_initial_points": 5, **FAST}


class TestSkoptGPContractFiniteSobol(SamplerContract):
    space = FINITE_SPACE

    @pytest.fixture
    def sampler_class(self) -> type[Sampler]:
        return SkoptGPSampler

    @pytest.fixture
    def sampler_options(self) -> dict[str, object]:
        return {"n_initial_points": 5, "initial_point_generator": "sobol", **FAST}


def make(space: SearchSpace = MIXED_SPACE, seed: int = 0, **options: Any) -> SkoptGPSampler:
    opts = SkoptGPSampler.Options.model_validate({"n_initial_points": 5, **FAST, **options})
    return SkoptGPSampler(space, opts, seed=seed, direction="maximize")


def complete(number: int, params: dict[str, Any], value: float) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.COMPLETE, params=params, value=value)


# -- scikit-optimize itself (archived upstream: catch a broken release early) -----------------


def test_scikit_optimize_smoke() -> None:
    import skopt
    from skopt import Optimizer
    from skopt.space import Categorical, Integer, Real

    assert skopt.__version__.startswith("0.10.")
    dims = [Real(1e-3, 1e3, prior="log-uniform"), Integer(1, 10), Categorical(["a", "b", "c"])]
    optimizer = Optimizer(
        dims,
        base_estimator="GP",
        n_initial_points=3,
        acq_optimizer="sampling",
        acq_optimizer_kwargs={"n_points": 200},
        random_state=0,
    )
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(4):
            x = optimizer.ask()
            assert 1e-3 <= x[0] <= 1e3 and 1 <= x[1] <= 10 and x[2] in ("a", "b", "c")
            optimizer.tell(x, (math.log10(x[0]) - 1) ** 2 + x[1] / 10 + (x[2] == "b"))
        batch = optimizer.ask(n_points=2, strategy="cl_min")
    assert len(batch) == 2 and optimizer.models


def test_registered_as_a_builtin() -> None:
    provided = make_plugins(autoload=False).get("sampler", "skopt-gp")
    assert provided.cls is SkoptGPSampler and provided.distribution == "tunedag"


def test_options_are_validated_and_described() -> None:
    with pytest.raises(pydantic.ValidationError):
        SkoptGPSampler.Options.model_validate({"acq_func": "EIps"})
    with pytest.raises(pydantic.ValidationError):
        SkoptGPSampler.Options.model_validate({"n_initial_point": 3})
    fields = SkoptGPSampler.Options.model_fields
    for name in (
        "n_initial_points",
        "initial_point_generator",
        "acq_func",
        "acq_optimizer",
        "xi",
        "kappa",
        "noise",
    ):
        assert fields[name].description, name
    assert SkoptGPSampler.Options.model_validate({"noise": 0.1}).noise == 0.1


@pytest.mark.parametrize(
    "options",
    [
        {"acq_func": "gp_hedge", "acq_optimizer": "lbfgs", "n_points": 50},
        {"acq_func": "LCB", "kappa": 3.0, "y_transform": "copula"},
        {"acq_func": "PI", "xi": 0.1, "noise": 0.05, "initial_point_generator": "halton"},
        {"acq_func": "portfolio", "y_transform": "standardize", "warping": False},
        {"acq_optimizer": "sampling", "initial_point_generator": "lhs"},
    ],
    ids=["gp_hedge-lbfgs", "lcb-copula", "pi-fixed-noise-halton", "portfolio-plain", "sampling"],
)
def test_every_option_proposes_inside_the_space(options: dict[str, Any]) -> None:
    sampler = make(**options)
    history = history_of(sampler, 8)
    proposals = sampler.ask(history, 2)
    assert len(proposals) == 2 and all(MIXED_SPACE.contains(p) for p in proposals)


# -- the space ------------------------------------------------------------------------------


ODD_SPACE = SearchSpace(
    {
        "lr": FloatDimension(type="float", low=1e-5, high=1.0, log=True),
        "width": IntDimension(type="int", low=1, high=1000, log=True),
        "frac": FloatDimension(type="float", low=0.0, high=1.0, step=0.1),
        "grid": FloatDimension(type="float", low=1e-3, high=1.0, log=True, grid_points=4),
        "layers": IntDimension(type="int", values=[4, 1, 2]),
        "odd": CategoricalDimension(type="categorical", choices=[None, True, 1, "1", 2.5]),
        "only": CategoricalDimension(type="categorical", choices=["single"]),
        "momentum": FloatDimension(type="float", low=0.0, high=0.99, when={"odd": [True, "1"]}),
        "solver": CategoricalDimension(
            type="categorical", choices=["sgd", "adam"], when={"odd": True}
        ),
        "nesterov": CategoricalDimension(
            type="categorical", choices=[False, True], when={"solver": "sgd"}
        ),
    }
)


def odd_objective(params: dict[str, Any]) -> float:
    return -abs(math.log10(params["lr"]) + 2) - abs(params["frac"] - 0.3) + 0.1 * params["layers"]


def test_values_have_the_spec_types_and_lie_inside_the_space() -> None:
    sampler = make(ODD_SPACE)
    history = history_of(sampler, 14, odd_objective)
    proposals = [t.params for t in history] + sampler.ask(history, 6)
    for params in proposals:
        assert ODD_SPACE.contains(params), params
        assert type(params["lr"]) is float and type(params["width"]) is int
        assert type(params["frac"]) is float and type(params["grid"]) is float
        assert type(params["layers"]) is int and params["only"] == "single"
        assert any(
            params["odd"] is c or (type(params["odd"]) is type(c) and params["odd"] == c)
            for c in [None, True, 1, "1", 2.5]
        )
        for value in params.values():
            assert not isinstance(value, np.generic), params
    assert {type(p["odd"]) for p in proposals} > {str}


def test_a_step_too_fine_to_enumerate_is_searched_as_continuous_and_snapped() -> None:
    space = SearchSpace(
        {
            "f": FloatDimension(type="float", low=0.0, high=1.0, step=1e-6),
            "i": IntDimension(type="int", low=0, high=10_000_000, step=7),
        }
    )
    sampler = make(space, n_initial_points=3)
    history = history_of(sampler, 7, lambda p: -abs(p["f"] - 0.3) - abs(p["i"] - 5e6) / 1e7)
    for params in [t.params for t in history] + sampler.ask(history, 3):
        assert type(params["i"]) is int and 0 <= params["i"] <= 10_000_000, params
        assert type(params["f"]) is float and 0.0 <= params["f"] <= 1.0, params
        assert params["i"] % 7 == 0
        assert abs(params["f"] * 1e6 - round(params["f"] * 1e6)) < 1e-6


def test_log_dimensions_are_log_scale_in_the_initial_phase() -> None:
    for generator in ("random", "sobol", "halton", "lhs"):
        sampler = make(ODD_SPACE, n_initial_points=40, initial_point_generator=generator)
        widths = [p["width"] for p in sampler.ask([], 40)]
        # log-uniform over [1, 1000]: a third below 10; uniform: under 1%
        assert sum(w < 10 for w in widths) >= 8, (generator, sorted(widths))


def test_initial_design_depends_on_the_trial_number_only() -> None:
    sampler = make(n_initial_points=8, initial_point_generator="lhs")
    batch = sampler.ask([], 8)
    history = [complete(i, p, toy_objective(p)) for i, p in enumerate(batch[:3])]
    assert make(n_initial_points=8, initial_point_generator="lhs").ask(history, 5) == batch[3:]


# -- grid_points dimensions ---------------------------------------------------------------------

GRID_SPACE = SearchSpace(
    {
        "C": FloatDimension(type="float", low=1e-2, high=1e4, log=True, grid_points=25),
        "gamma": FloatDimension(type="float", low=1e-4, high=1e1, log=True, grid_points=21),
        "epsilon": FloatDimension(type="float", low=0.0, high=50.0, grid_points=11),
        "max_iter": IntDimension(type="int", low=100, high=5000, log=True, grid_points=6),
    }
)


@functools.cache
def _diabetes_folds() -> tuple[np.ndarray, np.ndarray, list[Any]]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:240], y[:240]
    return X, y, list(KFold(3, shuffle=True, random_state=0).split(X))


def svr_r2(params: dict[str, Any]) -> float:
    """Mean 3-fold R^2 of a scaled SVR on 240 rows of the diabetes data (~10 ms)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    X, y, folds = _diabetes_folds()
    scores = []
    for train, test in folds:
        with warnings.catch_warnings():  # a small max_iter stops the solver early: allowed
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make_pipeline(StandardScaler(), SVR(**params)).fit(X[train], y[train])
        residual = y[test] - model.predict(X[test])
        scores.append(1 - residual @ residual / np.sum((y[test] - y[test].mean()) ** 2))
    return float(np.mean(scores))


def on_the_grid(params: dict[str, Any]) -> bool:
    return all(value in (GRID_SPACE.finite_values(name) or []) for name, value in params.items())


def test_grid_points_dimensions_are_modelled_not_drawn_at_random() -> None:
    """The GP sees grid_points dimensions by index: it proposes grid points, and after the
    initial design its proposals part ways with the random sampler's."""
    from tunedag.plugins.random_sampler import RandomSampler

    gp = history_of(make(GRID_SPACE, seed=1, n_initial_points=5), 9, svr_r2)
    random = history_of(RandomSampler(GRID_SPACE, seed=1), 9, svr_r2)
    assert all(on_the_grid(t.params) for t in gp)
    assert all(gp[k].params != random[k].params for k in range(5, 9))
    # a history with off-grid values (random draws) is told at the nearest grid points
    X, y, _, _ = make(GRID_SPACE, seed=1)._observations(random)
    assert len(X) == len(y) == 9


@pytest.mark.slow
def test_skopt_gp_beats_random_search_on_a_grid_points_task() -> None:
    """Real SVR fits over a 4-d grid (25 x 21 x 11 x 6 points); 3 seeds of 20 trials each."""
    from tunedag.plugins.random_sampler import RandomSampler

    gp_best, random_best, gp_later, random_later = [], [], [], []
    for seed in range(3):
        gp = [
            t.value or 0.0
            for t in history_of(make(GRID_SPACE, seed, n_initial_points=8), 20, svr_r2)
        ]
        random = [
            t.value or 0.0 for t in history_of(RandomSampler(GRID_SPACE, seed=seed), 20, svr_r2)
        ]
        gp_best.append(max(gp))
        random_best.append(max(random))
        gp_later.append(statistics.fmean(gp[8:]))
        random_later.append(statistics.fmean(random[8:]))
    assert statistics.fmean(gp_best) > statistics.fmean(random_best)
    # after the initial design the GP's trials are far better on average than random draws
    assert statistics.fmean(gp_later) > statistics.fmean(random_later) + 0.1


# -- batches, determinism, resumes ------------------------------------------------------------


def test_a_batch_gives_distinct_configurations_from_the_gp() -> None:
    sampler = make()
    history = history_of(sampler, 12)
    batch = sampler.ask(history, 8)
    assert len(batch) == 8
    keys = {repr(sorted(p.items())) for p in batch + [t.params for t in history]}
    assert len(keys) == 8 + len(history)


def test_a_batch_is_what_one_at_a_time_asks_would_propose_with_the_rest_running() -> None:
    """Proposal k of a batch depends on the history and its trial number only, never on how
    the driver grouped its asks: it is the proposal for a history with proposals 0..k-1
    running. So two runs with several workers agree on every trial proposed from the same
    history, however the free workers were counted."""
    sampler = make(seed=2)
    history = history_of(sampler, 9)
    history.append(TrialRecord(number=9, state=TrialState.RUNNING, params=history[0].params))
    batch = make(seed=2).ask(history, 3)
    grown = list(history)
    for k, params in enumerate(batch):
        assert make(seed=2).ask(grown, 1) == [params], k
        grown.append(TrialRecord(number=len(grown), state=TrialState.WAITING, params=params))
    assert make(seed=2).ask(history, 2) == batch[:2]


def test_a_finite_space_is_exhausted_without_repeats() -> None:
    space = SearchSpace(
        {
            "a": CategoricalDimension(type="categorical", choices=["x", "y", "z"]),
            "b": IntDimension(type="int", low=1, high=3),
        }
    )
    sampler = make(space, n_initial_points=2)
    history: list[TrialRecord] = []
    while proposals := sampler.ask(history, 4):
        for params in proposals:
            history.append(complete(len(history), params, float(params["b"])))
    assert len(history) == 9
    assert len({repr(sorted(t.params.items())) for t in history}) == 9


def test_same_seed_and_history_give_the_same_proposals_and_resumes_continue_exactly() -> None:
    options = {"refit_all_below": 5, "refit_every": 3}
    running = make(seed=3, **options)
    history = history_of(running, 12)
    # a fresh sampler at any point (a resumed study) proposes what the running one did
    for k in (6, 9, 11):
        assert make(seed=3, **options).ask(copy.deepcopy(history[:k]), 1) == [history[k].params]
    assert make(seed=3).ask(history, 3) == make(seed=3).ask(history, 3)
    assert make(seed=3).ask(history, 3) != make(seed=4).ask(history, 3)


def test_the_gp_beats_random_draws_on_a_smooth_objective() -> None:
    best_gp = max(t.value for t in history_of(make(seed=5), 20) if t.value is not None)
    random = MIXED_SPACE.sample
    best_random = max(toy_objective(random(np.random.default_rng([5, i]))) for i in range(20))
    assert best_gp > best_random


# -- failed, pruned and running trials ------------------------------------------------------


def test_failed_pruned_and_running_trials_do_not_crash_it() -> None:
    sampler = make()
    history = history_of(sampler, 10)
    for number in (2, 5, 7):
        trial = history[number]
        trial.state, trial.value, trial.error = TrialState.FAILED, None, "ValueError: boom"
    history[3].state, history[3].intermediate = TrialState.PRUNED, {0: -50.0, 1: -40.0}
    history[4].state, history[4].value, history[4].intermediate = TrialState.PRUNED, None, {}
    history.append(TrialRecord(number=10, state=TrialState.RUNNING, params=history[0].params))
    history.append(
        TrialRecord(
            number=11, state=TrialState.WAITING, params=MIXED_SPACE.sample(np.random.default_rng(1))
        )
    )
    proposals = sampler.ask(history, 4)
    assert len(proposals) == 4
    assert all(MIXED_SPACE.contains(p) for p in proposals)
    seen = {repr(sorted(t.params.items())) for t in history}
    assert not seen & {repr(sorted(p.items())) for p in proposals}


def test_told_values_of_failed_and_pruned_trials() -> None:
    sampler = make()
    params = [MIXED_SPACE.sample(np.random.default_rng(i)) for i in range(6)]
    history = [
        complete(i, p, v)
        for i, (p, v) in enumerate(zip(params[:4], [1.0, 2.0, 3.0, 4.0], strict=True))
    ]
    history.append(TrialRecord(4, TrialState.FAILED, params[4], error="boom"))
    history.append(
        TrialRecord(5, TrialState.PRUNED, params[5], value=9.0, intermediate={0: 1.0, 1: 9.0})
    )
    _, y, told_complete, pending = sampler._observations(history)
    # maximised: losses are -value; failed = worst completed (-1); pruned never better than
    # the median completed loss (-2.5), even though its last value (9) beats every trial
    assert y == [-1.0, -2.0, -3.0, -4.0, -1.0, -2.5]
    assert told_complete == [True] * 4 + [False, False] and pending == []


def test_only_failed_trials_fall_back_to_random_draws() -> None:
    sampler = make(n_initial_points=2)
    history = [
        TrialRecord(
            i, TrialState.FAILED, MIXED_SPACE.sample(np.random.default_rng(i)), error="boom"
        )
        for i in range(6)
    ]
    proposals = sampler.ask(history, 3)
    assert len(proposals) == 3 and all(MIXED_SPACE.contains(p) for p in proposals)


# -- a real study ---------------------------------------------------------------------------


SPEC = """\
name: skopt-study
seed: 3
data: {{source: "sklearn:breast_cancer"}}
split:
  test: {{fraction: 0.25, stratify: true}}
  validation: {{method: stratified_kfold, folds: 3}}
pipeline:
  - {{name: scale, estimator: sklearn.preprocessing.StandardScaler}}
  - {{name: model, estimator: sklearn.linear_model.LogisticRegression, params: {{max_iter: 200}}}}
space:
  model__C: {{type: float, low: 1.0e-3, high: 1.0e+2, log: true}}
  model__fit_intercept: {{type: categorical, choices: [true, false]}}
  model__tol: {{type: float, low: 1.0e-5, high: 1.0e-2, log: true, grid_points: 4}}
objective: {{metric: roc_auc}}
sampler: {{name: skopt-gp, options: {{n_initial_points: 4, n_points: 500}}}}
budget: {{trials: 9, max_failed: 2}}
storage: "sqlite:///{storage}"
"""


def test_a_small_study_runs_with_skopt_gp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(storage=(tmp_path / "study.sqlite").resolve()))
    spec = tunedag.load_spec(path)
    result = tunedag.run(spec, plugins=make_plugins(autoload=False))
    assert result.finished and result.reason == "budget"
    assert [t.number for t in result.trials] == list(range(9))
    assert all(t.state == TrialState.COMPLETE for t in result.trials)
    assert result.best_value is not None and result.best_value > 0.9
    assert result.test_value is not None


# -- latency ----------------------------------------------------------------------------------


LATENCY_SPACE = SearchSpace(
    {
        "C": FloatDimension(type="float", low=1e-3, high=1e3, log=True),
        "x": FloatDimension(type="float", low=-1.0, high=1.0),
        "kernel": CategoricalDimension(type="categorical", choices=["rbf", "poly", "linear"]),
        "k": IntDimension(type="int", low=1, high=20),
    }
)


def latency_objective(params: dict[str, Any]) -> float:
    return -(
        (math.log10(params["C"]) - 1) ** 2
        + params["x"] ** 2
        + 0.5 * (params["kernel"] == "poly")
        + 0.01 * (params["k"] - 7) ** 2
    )


def test_ask_latency_at_100_observations_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    history = []
    for number in range(100):
        params = LATENCY_SPACE.sample(rng)
        history.append(complete(number, params, latency_objective(params)))
    sampler = SkoptGPSampler(LATENCY_SPACE, SkoptGPSampler.Options(), seed=0)
    seconds = []
    for _ in range(5):  # 100 to 104 observations: one hyperparameter refit, four reuses
        started = time.perf_counter()
        (params,) = sampler.ask(history, 1)
        seconds.append(time.perf_counter() - started)
        history.append(complete(len(history), params, latency_objective(params)))
    with capsys.disabled():
        print(
            f"\nskopt-gp ask at 100-104 observations (4-d mixed, default options): median "
            f"{1000 * statistics.median(seconds):.0f} ms, refit {1000 * seconds[0]:.0f} ms, "
            f"reuse {', '.join(f'{1000 * s:.0f}' for s in seconds[1:])} ms"
        )
