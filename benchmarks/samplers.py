"""How well and how fast tunedag's samplers search, next to Optuna and scikit-optimize.

Run from the repository root (optuna comes with ``pip install -e '.[bench]'``)::

    .venv/bin/python benchmarks/samplers.py --quick   # smoke run (~1 min): 1 seed, budgets 15, 30
    .venv/bin/python benchmarks/samplers.py           # full run: 5 seeds, budgets 30 and 60
    .venv/bin/python benchmarks/samplers.py --json /tmp/samplers.json   # also save raw data
    .venv/bin/python benchmarks/samplers.py --protocol  # the held-out protocol (protocol.py)
    .venv/bin/python benchmarks/samplers.py --latency-only  # part (b) alone

Options: ``--seeds N``, ``--tasks SUBSTRING ...``, ``--methods NAME ...``,
``--no-latency`` (skip part b), ``--check`` (exit 1 when a goal is missed).

(a) Quality on Bayesmark-style tasks (``benchmarks/tasks.py``): 8 scikit-learn model x
    dataset pairs (SVC, random forest, gradient boosting, MLP, kNN, elastic net, decision
    tree, AdaBoost on breast_cancer, wine, diabetes, digits, iris). The objective of a
    task is the mean 3-fold CV score (higher is better) of a small model with fixed seeds,
    on a fixed subset with fixed folds, so it is deterministic and cheap (the metrics are
    computed with numpy, equal to scikit-learn's scorers: ``python benchmarks/tasks.py``
    checks that; the scorers' own validation cost as much as the fits). Every method gets
    the same tasks, the same seeds and the same budget, and is driven the same way: an
    in-process ask/tell loop, one trial at a time, that calls the same objective (nothing
    is cached across methods except the data and its folds):

    * ``random``, ``grid``, ``skopt-gp``: tunedag's samplers through ``Sampler.ask(history,
      1)`` and ``tell`` (``grid`` with ``shuffle: true``, and only on finite spaces: kNN);
      ``skopt-gp`` with its default options.
    * ``optuna-tpe``, ``optuna-random``: ``study.ask()`` + ``trial.suggest_*`` for the active
      parameters (define-by-run, so conditionals are native) + ``study.tell``; TPE with its
      defaults and the seed.
    * ``gp_minimize``: scikit-optimize's own loop, ``gp_minimize(func, dimensions,
      n_calls=budget, random_state=seed)`` over the flat space (inactive parameters are
      dropped before the objective sees them). Its defaults (three L-BFGS fits of the GP a
      call, L-BFGS acquisition from 10,000 points) took 0.5-1 s of CPU a call here at 30-60
      observations, 15-30x skopt-gp: 40 runs of 60 calls would take the full run far past
      its 10 minutes. It runs with ``acq_optimizer="sampling"``, ``n_points=500`` and its
      default GP kernel fitted from one start (``n_restarts_optimizer=0``), everything else
      at its defaults (``gp_hedge``, 10 random initial points, gaussian noise).

    A run of budget 60 gives the budget-30 result too (its first 30 trials): no sampler
    knows its budget. Per task and sampler the table shows the mean (over seeds) best CV
    value after 30 and 60 trials; the normalised score ``100 x (best - R) / (B - R)`` with R
    random's mean best at the same budget and B the best value any method found on the task
    (0 = random search, 100 = the best found, higher is better); the trials needed to reach
    R60, random's mean 60-trial best (median over seeds; "—" when the median seed never gets
    there); and the median ask latency (ask + tell, or for gp_minimize the time between two
    objective calls).

(b) Ask latency on a 4-d mixed space (log float, float, 3-way categorical, int): skopt-gp
    with default options, given 50, 100, 200 and 400 completed random trials and then asked
    sequentially as a study grows (median of the asks; each refits the GP, and the kernel's
    hyperparameters on every 5th observation past 30), once from a fresh sampler (a resumed study:
    the hyperparameters are fitted on that ask), and scikit-optimize's defaults
    (``Optimizer(dims)``, tell all points, ask) for reference.

Goals, checked at the end: skopt-gp reaches random's 60-trial best within 30 trials on the
median task; its normalised score at 30 is at least Optuna TPE's on 5 of the 8 tasks; its
median ask at 100 observations is at most 250 ms.

Everything runs in this one process with one BLAS thread (the models are single-threaded
too). Progress goes to stderr, the tables to stdout. The first lines name the versions, the
CPU count, the load average and a speed probe (a fixed pure-Python loop; about 0.15-0.2 s on
a quiet modern core), since on a shared machine every time here scales with it.
"""

# ruff: noqa: E402  (the thread settings below must come before numpy and sklearn load)
from __future__ import annotations

import os

# one thread for BLAS and OpenMP, set before numpy and scikit-learn load them: every method
# and model runs single-threaded, and spinning worker threads cannot skew a busy machine
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import importlib.metadata
import json
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tasks import TASKS, Task

from tunedag.plugins.grid_sampler import GridSampler
from tunedag.plugins.random_sampler import RandomSampler
from tunedag.plugins.skopt_sampler import SkoptGPSampler
from tunedag.sampler import Sampler
from tunedag.space import Params, SearchSpace
from tunedag.spec.models import (
    CategoricalDimension,
    FloatDimension,
    IntDimension,
)
from tunedag.storage import TrialRecord, TrialState

METHODS = ["random", "grid", "skopt-gp", "optuna-tpe", "optuna-random", "gp_minimize"]
Objective = Callable[[Params], float]


@dataclass
class Run:
    values: list[float] = field(default_factory=list)
    ask_s: list[float] = field(default_factory=list)

    def best(self, budget: int) -> float:
        return max(self.values[:budget])

    def reach(self, target: float) -> float:
        """Trials until the running best reaches ``target``; inf when it never does."""
        best = -math.inf
        for number, value in enumerate(self.values, start=1):
            best = max(best, value)
            if best >= target - 1e-12:
                return number
        return math.inf


# -- the methods, each an ask/tell loop over the same objective -------------------------------


def run_tunedag(sampler: Sampler, budget: int, objective: Objective) -> Run:
    run, history = Run(), []
    while len(history) < budget:
        started = time.perf_counter()
        proposals = sampler.ask(history, 1)
        asked = time.perf_counter() - started
        if not proposals:
            break
        value = objective(proposals[0])
        trial = TrialRecord(
            number=len(history), state=TrialState.COMPLETE, params=proposals[0], value=value
        )
        started = time.perf_counter()
        sampler.tell(trial)
        run.ask_s.append(asked + time.perf_counter() - started)
        run.values.append(value)
        history.append(trial)
    return run


def tunedag_method(cls: type[Sampler], options: dict[str, Any]) -> Callable[..., Run]:
    def method(task: Task, seed: int, budget: int, objective: Objective) -> Run:
        sampler = cls(
            task.space, cls.Options.model_validate(options), seed=seed, direction="maximize"
        )
        return run_tunedag(sampler, budget, objective)

    return method


def suggest(trial: Any, space: SearchSpace) -> Params:
    """Optuna define-by-run: suggest the active parameters, parents first."""
    params: Params = {}
    for name in space.names:
        if not space.is_active(name, params):
            continue
        dim = space.dimensions[name]
        finite = space.finite_values(name)
        if isinstance(dim, CategoricalDimension):
            params[name] = trial.suggest_categorical(name, dim.choices)
        elif dim.values is not None or dim.grid_points:
            params[name] = trial.suggest_categorical(name, finite)
        elif isinstance(dim, IntDimension):
            params[name] = trial.suggest_int(
                name, dim.low, dim.high, step=dim.step or 1, log=dim.log
            )
        else:
            params[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return params


def optuna_method(make_sampler: Callable[[int], Any]) -> Callable[..., Run]:
    def method(task: Task, seed: int, budget: int, objective: Objective) -> Run:
        import optuna

        study = optuna.create_study(direction="maximize", sampler=make_sampler(seed))
        run = Run()
        for _ in range(budget):
            started = time.perf_counter()
            trial = study.ask()
            params = suggest(trial, task.space)
            asked = time.perf_counter() - started
            value = objective(params)
            started = time.perf_counter()
            study.tell(trial, value)
            run.ask_s.append(asked + time.perf_counter() - started)
            run.values.append(value)
        return run

    return method


def skopt_dimensions(space: SearchSpace) -> list[Any]:
    from skopt.space import Categorical, Integer, Real

    dims: list[Any] = []
    for name in space.names:
        dim = space.dimensions[name]
        finite = space.finite_values(name)
        if isinstance(dim, CategoricalDimension):
            dims.append(Categorical(list(range(len(dim.choices))), name=name))
        elif dim.values is not None or dim.grid_points or dim.step is not None:
            dims.append(Categorical(list(range(len(finite or []))), name=name))
        elif isinstance(dim, IntDimension):
            prior = "log-uniform" if dim.log else "uniform"
            dims.append(Integer(dim.low, dim.high, prior=prior, name=name))
        else:
            assert isinstance(dim, FloatDimension)
            prior = "log-uniform" if dim.log else "uniform"
            dims.append(Real(dim.low, dim.high, prior=prior, name=name))
    return dims


def skopt_params(space: SearchSpace, x: Sequence[Any]) -> Params:
    """A flat skopt point as tunedag params: active parameters only, plain Python values."""
    params: Params = {}
    for name, value in zip(space.names, x, strict=True):
        if not space.is_active(name, params):
            continue
        dim = space.dimensions[name]
        if isinstance(dim, CategoricalDimension):
            params[name] = dim.choices[int(value)]
        elif dim.values is not None or dim.grid_points or dim.step is not None:
            params[name] = (space.finite_values(name) or [])[int(value)]
        elif isinstance(dim, IntDimension):
            params[name] = int(value)
        else:
            params[name] = float(value)
    return params


def run_gp_minimize(
    task: Task, seed: int, budget: int, objective: Objective, n_points: int = 500
) -> Run:
    from skopt import gp_minimize
    from skopt.utils import cook_estimator

    dims = skopt_dimensions(task.space)
    run = Run()
    last = [time.perf_counter()]

    def func(x: list[Any]) -> float:
        run.ask_s.append(time.perf_counter() - last[0])
        value = objective(skopt_params(task.space, x))
        run.values.append(value)
        last[0] = time.perf_counter()
        return -value

    gp = cook_estimator(
        "GP", space=dims, random_state=seed, noise="gaussian", n_restarts_optimizer=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp_minimize(
            func,
            dims,
            base_estimator=gp,
            n_calls=budget,
            random_state=seed,
            acq_optimizer="sampling",
            n_points=n_points,
        )
    return run


def all_methods() -> dict[str, Callable[..., Run]]:
    import optuna

    return {
        "random": tunedag_method(RandomSampler, {}),
        "grid": tunedag_method(GridSampler, {"shuffle": True}),
        "skopt-gp": tunedag_method(SkoptGPSampler, {}),
        "optuna-tpe": optuna_method(lambda seed: optuna.samplers.TPESampler(seed=seed)),
        "optuna-random": optuna_method(lambda seed: optuna.samplers.RandomSampler(seed=seed)),
        "gp_minimize": run_gp_minimize,
    }


# -- (a) quality ----------------------------------------------------------------------------


def applies(method: str, task: Task) -> bool:
    return method != "grid" or task.space.is_finite


def run_quality(
    tasks: list[Task], methods: list[str], seeds: list[int], budget: int
) -> dict[str, dict[str, list[Run]]]:
    runners = all_methods()
    results: dict[str, dict[str, list[Run]]] = {}
    started = time.perf_counter()
    for task in tasks:
        objective = task.objective()
        results[task.name] = {}
        for method in methods:
            if not applies(method, task):
                continue
            task_started = time.perf_counter()
            runs = []
            for seed in seeds:
                runs.append(runners[method](task, seed, budget, objective))
            results[task.name][method] = runs
            log(
                f"  {task.name:28s} {method:14s} {time.perf_counter() - task_started:6.1f} s "
                f"(total {time.perf_counter() - started:6.0f} s)"
            )
    return results


@dataclass
class Row:
    best: dict[int, float]
    norm: dict[int, float]
    reach: float
    ask_ms: float


def summarise(
    results: dict[str, dict[str, list[Run]]], budgets: tuple[int, int]
) -> dict[str, dict[str, Row]]:
    large = budgets[1]
    table: dict[str, dict[str, Row]] = {}
    for task, by_method in results.items():
        top = max(max(run.values) for runs in by_method.values() for run in runs)
        random_runs = by_method["random"]
        reference = {b: statistics.fmean(r.best(b) for r in random_runs) for b in budgets}
        table[task] = {}
        for method, runs in by_method.items():
            best = {b: statistics.fmean(r.best(b) for r in runs) for b in budgets}
            norm = {
                b: (
                    100 * (best[b] - reference[b]) / (top - reference[b])
                    if top - reference[b] > 1e-9 * max(1.0, abs(top))
                    else math.nan
                )
                for b in budgets
            }
            reach = statistics.median(r.reach(reference[large]) for r in runs)
            asks = [s for r in runs for s in r.ask_s]
            table[task][method] = Row(best, norm, reach, 1000 * statistics.median(asks))
    return table


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``, or a dash as wide when it is missing, NaN or inf."""
    if value is None or math.isnan(value) or math.isinf(value):
        width = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "—".rjust(int(width or 0))
    return format(value, spec)


def print_quality(
    table: dict[str, dict[str, Row]],
    methods: list[str],
    tasks: list[Task],
    budgets: tuple[int, int],
) -> None:
    small, large = budgets
    header = (
        f"{'sampler':14s} {f'best@{small}':>9s} {f'best@{large}':>9s} "
        f"{f'norm@{small}':>8s} {f'norm@{large}':>8s} {f'to R{large}':>7s} "
        f"{'ask ms':>8s}"
    )
    spaces = {task.name: task for task in tasks}
    for name, rows in table.items():
        task = spaces[name]
        conditional = any(dim.when for dim in task.space.dimensions.values())
        print(
            f"\n{name}  ({len(task.space.names)} parameters"
            f"{', conditional' if conditional else ''}; metric {task.scoring}; "
            f"{task.rows} rows, 3-fold CV)"
        )
        print(header)
        for method in methods:
            row = rows.get(method)
            if row is None:
                print(f"{method:14s} {'(not applicable: the space is not finite)':>56s}")
                continue
            print(
                f"{method:14s} {row.best[small]:9.4f} {row.best[large]:9.4f} "
                f"{fmt(row.norm[small], '8.1f')} {fmt(row.norm[large], '8.1f')} "
                f"{fmt(row.reach, '7.0f')} {row.ask_ms:8.1f}"
            )


def print_summary(
    table: dict[str, dict[str, Row]], methods: list[str], budgets: tuple[int, int]
) -> None:
    small, large = budgets
    print(
        f"\nSummary over {len(table)} tasks (norm: mean and median over tasks of the "
        f"normalised scores; to R{large}: median over tasks, '—' = not reached on the median "
        "task; ask ms: median over tasks)"
    )
    print(
        f"{'sampler':14s} {f'mean@{small}':>8s} {f'med@{small}':>8s} {f'mean@{large}':>8s} "
        f"{f'med@{large}':>8s} {f'to R{large}':>7s} {'ask ms':>8s} {'tasks':>5s}"
    )
    for method in methods:
        rows = [rows[method] for rows in table.values() if method in rows]
        if not rows:
            continue
        cells = []
        for b in budgets:
            norms = [r.norm[b] for r in rows if not math.isnan(r.norm[b])]
            cells.append(fmt(statistics.fmean(norms) if norms else math.nan, "8.1f"))
            cells.append(fmt(statistics.median(norms) if norms else math.nan, "8.1f"))
        print(
            f"{method:14s} {' '.join(cells)} "
            f"{fmt(statistics.median(r.reach for r in rows), '7.0f')} "
            f"{statistics.median(r.ask_ms for r in rows):8.1f} {len(rows):5d}"
        )


# -- (b) latency ----------------------------------------------------------------------------


LATENCY_SPACE = SearchSpace(
    {
        "C": FloatDimension(type="float", low=1e-3, high=1e3, log=True),
        "x": FloatDimension(type="float", low=-1.0, high=1.0),
        "kernel": CategoricalDimension(type="categorical", choices=["rbf", "poly", "linear"]),
        "k": IntDimension(type="int", low=1, high=20),
    }
)


def latency_objective(params: Params, rng: np.random.Generator) -> float:
    return -(
        (math.log10(params["C"]) - 1) ** 2
        + params["x"] ** 2
        + 0.5 * (params["kernel"] == "poly")
        + 0.01 * (params["k"] - 7) ** 2
        + 0.05 * float(rng.standard_normal())
    )


def random_history(size: int) -> list[TrialRecord]:
    rng = np.random.default_rng(0)
    history = []
    for number in range(size):
        params = LATENCY_SPACE.sample(rng)
        history.append(
            TrialRecord(
                number=number,
                state=TrialState.COMPLETE,
                params=params,
                value=latency_objective(params, rng),
            )
        )
    return history


def measure_latency(sizes: list[int], asks: int, reference_reps: int) -> dict[str, Any]:
    from skopt import Optimizer

    out: dict[str, Any] = {}
    for size in sizes:
        rng = np.random.default_rng(1)
        history = random_history(size)
        sampler = SkoptGPSampler(LATENCY_SPACE, SkoptGPSampler.Options(), seed=0)
        seconds, cpu = [], []
        for _ in range(asks):
            started, cpu_started = time.perf_counter(), time.process_time()
            (params,) = sampler.ask(history, 1)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            history.append(
                TrialRecord(
                    number=len(history),
                    state=TrialState.COMPLETE,
                    params=params,
                    value=latency_objective(params, rng),
                )
            )
        cold = []
        for extra in range(3):
            fresh = SkoptGPSampler(LATENCY_SPACE, SkoptGPSampler.Options(), seed=0)
            started = time.perf_counter()
            fresh.ask(history[: size + extra], 1)
            cold.append(time.perf_counter() - started)
        reference = []
        if reference_reps:
            dims = skopt_dimensions(LATENCY_SPACE)
            points = [skopt_point(LATENCY_SPACE, t.params) for t in history[:size]]
            losses = [-(t.value or 0.0) for t in history[:size]]
            for rep in range(reference_reps if size <= 100 else 0):
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    optimizer = Optimizer(dims, n_initial_points=0, random_state=rep)
                    optimizer.tell(points, losses)
                    optimizer.ask()
                reference.append(time.perf_counter() - started)
        out[str(size)] = {
            "sequential_ms": [1000 * s for s in seconds],
            "median_ms": 1000 * statistics.median(seconds),
            "cpu_median_ms": 1000 * statistics.median(cpu),
            "p90_ms": 1000 * float(np.percentile(seconds, 90)),
            "max_ms": 1000 * max(seconds),
            "cold_median_ms": 1000 * statistics.median(cold),
            "skopt_default_ms": 1000 * statistics.median(reference) if reference else None,
        }
        log(f"  latency at {size} observations done")
    return out


def skopt_point(space: SearchSpace, params: Params) -> list[Any]:
    """Params of an unconditional space with plain numeric dimensions as a skopt point."""
    return [
        space.dimensions[n].choices.index(params[n])  # type: ignore[union-attr]
        if isinstance(space.dimensions[n], CategoricalDimension)
        else params[n]
        for n in space.names
    ]


def print_latency(latency: dict[str, Any], asks: int) -> None:
    print(
        f"\nAsk latency of skopt-gp, 4-d mixed space, default options ({asks} sequential asks "
        "from N observations; cold = a fresh sampler, as after a resume)"
    )
    print(
        f"{'N':>5s} {'median':>8s} {'cpu med':>8s} {'p90':>8s} {'max':>8s} {'cold':>8s} "
        f"{'skopt defaults (tell+ask)':>26s}"
    )
    for size, row in latency.items():
        reference = row["skopt_default_ms"]
        print(
            f"{size:>5s} {row['median_ms']:7.0f}ms {row['cpu_median_ms']:7.0f}ms "
            f"{row['p90_ms']:7.0f}ms "
            f"{row['max_ms']:7.0f}ms {row['cold_median_ms']:7.0f}ms "
            f"{fmt(reference, '24.0f') + 'ms' if reference else '—':>26s}"
        )


# -- goals ----------------------------------------------------------------------------------


def goals(
    table: dict[str, dict[str, Row]], latency: dict[str, Any] | None, budgets: tuple[int, int]
) -> list[tuple[str, bool | None, str]]:
    small, large = budgets
    out: list[tuple[str, bool | None, str]] = []
    gp_rows = {task: rows["skopt-gp"] for task, rows in table.items() if "skopt-gp" in rows}
    if gp_rows:
        reach = statistics.median(row.reach for row in gp_rows.values())
        per_task = ", ".join(f"{t.split('/')[0]} {fmt(r.reach, '.0f')}" for t, r in gp_rows.items())
        out.append(
            (
                f"skopt-gp reaches random's {large}-trial best within {small} trials on "
                f"the median task",
                reach <= small,
                f"median task: {fmt(reach, '.0f')} trials ({per_task})",
            )
        )
    versus = [
        (task, rows["skopt-gp"].norm[small], rows["optuna-tpe"].norm[small])
        for task, rows in table.items()
        if "skopt-gp" in rows and "optuna-tpe" in rows
    ]
    if versus:
        wins = [t for t, gp, tpe in versus if not (gp < tpe)]
        need = math.ceil(5 * len(versus) / 8)
        detail = "; ".join(
            f"{t.split('/')[0]} {fmt(gp, '.0f')} vs {fmt(tpe, '.0f')}" for t, gp, tpe in versus
        )
        out.append(
            (
                f"normalised score at {small} >= Optuna TPE's on >= {need} of {len(versus)} tasks",
                len(wins) >= need,
                f"{len(wins)} of {len(versus)} (skopt-gp vs TPE: {detail})",
            )
        )
    if latency and "100" in latency:
        median = latency["100"]["median_ms"]
        out.append(
            (
                "median ask <= 200 ms at 100 observations (4-d mixed)",
                median <= 200,
                f"{median:.0f} ms ({latency['100']['cpu_median_ms']:.0f} ms of CPU)",
            )
        )
    return out


# -- running --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def speed_probe() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, budgets 15 and 30")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5, quick 1)")
    parser.add_argument("--tasks", nargs="*", help="only tasks whose name contains one of these")
    parser.add_argument("--methods", nargs="*", choices=METHODS, help="only these methods")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency part")
    parser.add_argument("--latency-only", action="store_true", help="only the latency part")
    parser.add_argument(
        "--protocol", action="store_true", help="run protocol.py (the other options are its own)"
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    if "--protocol" in (sys.argv[1:] if argv is None else argv):
        from protocol import main as protocol_main

        rest = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--protocol"]
        return protocol_main(rest)
    args = parser.parse_args(argv)

    budgets = (15, 30) if args.quick else (30, 60)
    seeds = list(range(args.seeds or (1 if args.quick else 5)))
    tasks = [t for t in TASKS if not args.tasks or any(s in t.name for s in args.tasks)]
    methods = args.methods or METHODS
    if "random" not in methods:
        methods = ["random", *methods]  # the normalised scores need it

    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threadpool_limits(1)
    import sklearn
    import skopt

    started, cpu_started = time.perf_counter(), time.process_time()
    print(
        f"tunedag {importlib.metadata.version('tunedag')} samplers benchmark: "
        f"Python {platform.python_version()}, "
        f"scikit-learn {sklearn.__version__}, scikit-optimize {skopt.__version__}, "
        f"optuna {optuna.__version__}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; speed probe {speed_probe():.2f} s"
    )
    print(
        f"{len(tasks)} tasks x {len(seeds)} seeds, budgets {budgets[0]} and {budgets[1]}; "
        f"methods: {', '.join(methods)}"
    )
    if args.latency_only:
        tasks = []
    log(f"(a) quality: {len(tasks)} tasks, {len(seeds)} seeds, budget {budgets[1]}")
    results = run_quality(tasks, methods, seeds, budgets[1])
    table = summarise(results, budgets)
    if tasks:
        print_quality(table, methods, tasks, budgets)
        print_summary(table, methods, budgets)
    quality_s = time.perf_counter() - started

    latency = None
    asks = 10 if args.quick else 20
    if not args.no_latency:
        log("(b) latency")
        sizes = [100] if args.quick else [50, 100, 200, 400]
        latency = measure_latency(sizes, asks, reference_reps=1 if args.quick else 3)
        print_latency(latency, asks)

    print("\nGoals")
    verdicts = goals(table, latency, budgets)
    for text, met, detail in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {text}: {detail}")
    print(
        f"\nquality part {quality_s:.0f} s; total {time.perf_counter() - started:.0f} s wall, "
        f"{time.process_time() - cpu_started:.0f} s CPU; load average now "
        f"{os.getloadavg()[0]:.1f}; speed probe {speed_probe():.2f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "budgets": budgets,
                    "seeds": seeds,
                    "runs": {
                        task: {
                            m: [{"values": r.values, "ask_s": r.ask_s} for r in runs]
                            for m, runs in by.items()
                        }
                        for task, by in results.items()
                    },
                    "latency": latency,
                }
            )
        )
    return 1 if args.check and not all(met for _, met, _ in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
