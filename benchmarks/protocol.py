"""The samplers protocol: a tuning set and a held-out set, scored as bayesmark scores.

Run from the repository root (``benchmarks/samplers.py --protocol`` runs the same)::

    .venv/bin/python benchmarks/protocol.py                    # both sets, 5 seeds, 30 calls
    .venv/bin/python benchmarks/protocol.py --set tuning --seeds 3
    .venv/bin/python benchmarks/protocol.py --set held-out --json /tmp/protocol.json
    .venv/bin/python benchmarks/protocol.py --set tuning --gp '{"acq_func": "EI"}'
    .venv/bin/python benchmarks/protocol.py --seeds 5 --json a.json &             # seeds 0-4
    .venv/bin/python benchmarks/protocol.py --seeds 5 --first-seed 5 --json b.json  # 5-9
    .venv/bin/python benchmarks/protocol.py --merge a.json b.json                 # as one run

Two sets of tasks, every method on every task with the same seeds and budget, in one run:

* **tuning**: the eight tasks of ``tasks.py`` and four bayesmark problems
  (``bayesmark_tasks.TUNING``). skopt-gp's defaults may be chosen on these, and only on
  these: ``--gp OPTIONS`` adds a skopt-gp variant to compare.
* **held-out**: six bayesmark problems (``bayesmark_tasks.HELD_OUT``: SVM, decision tree,
  k-NN and logistic regression on wine, breast cancer and digits, accuracy and log loss),
  fixed before any tuning. Report these figures as the sampler's quality.

Methods: tunedag's ``random`` and ``skopt-gp`` through ``Sampler.ask(history, 1)``;
scikit-optimize's ``gp_minimize`` (its default GP, ``gp_hedge``, 10 random initial points,
with ``acq_optimizer="sampling"`` and 1000 points: its default L-BFGS acquisition costs
1-2 s a call here); Optuna's ``TPESampler`` with its defaults, and Optuna's ``GPSampler``
where it can run (it needs PyTorch; the run says when it is left out). See
``samplers.py`` for how each is driven.

The score is bayesmark's leaderboard score, per task: ``100 x (1 - normalised loss)``
where, with ``S`` a run's best loss after the budget (losses are minus the CV score),

    normalised loss = (mean over seeds of min(S, clip) - opt) / (clip - opt)

``opt`` is the best loss any method found on the task in this run, and ``clip`` the median
loss of a single random configuration (the pooled evaluations of ``random``, which are
independent draws). 100 = every seed found the best configuration anyone found; 0 = no
better than one random draw. The overall score is the mean over the set's tasks. Since
``opt`` comes from this run, the scores compare the methods of one run, not runs.
"""

# ruff: noqa: E402  (the thread settings below must come before numpy and sklearn load)
from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayesmark_tasks import HELD_OUT, TUNING
from samplers import Objective, Run, optuna_method, run_gp_minimize, tunedag_method
from tasks import TASKS
from threadpoolctl import threadpool_limits

from tunedag.plugins.random_sampler import RandomSampler
from tunedag.plugins.skopt_sampler import SkoptGPSampler

BUDGET = 30


def methods(gp_variants: Sequence[str]) -> dict[str, Callable[..., Run]]:
    import optuna

    out: dict[str, Callable[..., Run]] = {
        "random": tunedag_method(RandomSampler, {}),
        "skopt-gp": tunedag_method(SkoptGPSampler, {}),
    }
    for number, variant in enumerate(gp_variants, 1):
        out[f"gp#{number}"] = tunedag_method(SkoptGPSampler, json.loads(variant))
    out["gp_minimize"] = lambda task, seed, budget, objective: run_gp_minimize(
        task, seed, budget, objective, n_points=1000
    )
    out["optuna-tpe"] = optuna_method(lambda seed: optuna.samplers.TPESampler(seed=seed))
    if importlib.util.find_spec("torch") is not None:
        out["optuna-gp"] = optuna_method(
            lambda seed: optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        )
    return out


def run_set(
    tasks: Sequence[Any], runners: dict[str, Callable[..., Run]], seeds: list[int]
) -> dict[str, dict[str, list[Run]]]:
    results: dict[str, dict[str, list[Run]]] = {}
    started = time.perf_counter()
    for task in tasks:
        objective: Objective = task.objective()
        results[task.name] = {}
        for name, runner in runners.items():
            task_started = time.perf_counter()
            results[task.name][name] = [runner(task, seed, BUDGET, objective) for seed in seeds]
            log(
                f"  {task.name:24s} {name:28s} {time.perf_counter() - task_started:6.1f} s "
                f"(total {time.perf_counter() - started:6.0f} s)"
            )
    return results


def seed_scores(by_method: dict[str, list[Run]], budget: int) -> dict[str, list[float]]:
    """Bayesmark's leaderboard score of each method's run on one task, seed by seed (see the
    module docstring; the task's score is their mean)."""
    opt = min(-v for runs in by_method.values() for run in runs for v in run.values)
    clip = statistics.median(-v for run in by_method["random"] for v in run.values)
    if clip <= opt:
        return {method: [100.0] * len(runs) for method, runs in by_method.items()}
    return {
        method: [
            100.0 * (1.0 - (min(-run.best(budget), clip) - opt) / (clip - opt)) for run in runs
        ]
        for method, runs in by_method.items()
    }


def paired_differences(
    per_seed: dict[str, dict[str, list[float]]], names: list[str], reference: str
) -> dict[str, tuple[float, float]]:
    """Each method's set score less ``reference``'s, seed by seed (the same seed of every
    task), as mean and standard error: a gap within about two standard errors is noise."""
    tasks = list(per_seed.values())
    out = {}
    for name in names:
        gaps = [
            statistics.fmean(row[name][s] - row[reference][s] for row in tasks)
            for s in range(len(tasks[0][reference]))
        ]
        error = statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else math.nan
        out[name] = (statistics.fmean(gaps), error)
    return out


def print_set(
    title: str, results: dict[str, dict[str, list[Run]]], names: list[str]
) -> dict[str, float]:
    per_seed = {task: seed_scores(by, BUDGET) for task, by in results.items()}
    table = {
        task: {n: statistics.fmean(v) for n, v in row.items()} for task, row in per_seed.items()
    }
    width = max(12, *(len(n) for n in names))
    print(
        f"\n{title}: leaderboard score at {BUDGET} calls "
        "(100 = the best anyone found, 0 = one random draw)"
    )
    print(f"{'task':24s} " + " ".join(f"{n:>{width}s}" for n in names))
    for task, row in table.items():
        print(f"{task:24s} " + " ".join(f"{row[n]:{width}.1f}" for n in names))
    overall = {n: statistics.fmean(row[n] for row in table.values()) for n in names}
    print(f"{'mean':24s} " + " ".join(f"{overall[n]:{width}.1f}" for n in names))
    asks = {n: [s for by in results.values() for r in by[n] for s in r.ask_s] for n in names}
    if all(asks.values()):
        medians = (1000 * statistics.median(asks[n]) for n in names)
        print(f"{'ask ms (median)':24s} " + " ".join(f"{m:{width}.1f}" for m in medians))
    if "skopt-gp" in names:
        gaps = paired_differences(per_seed, names, "skopt-gp")
        print(
            f"{'- skopt-gp (+- s.e.)':24s} "
            + " ".join(f"{f'{m:+.1f} +-{e:4.1f}':>{width}s}" for m, e in gaps.values())
        )
        behind = [t for t, row in table.items() if row["skopt-gp"] < row["random"]]
        print(
            f"skopt-gp below random on {len(behind)} of {len(table)} tasks"
            + (f": {', '.join(behind)}" if behind else "")
        )
    return overall


def merge(paths: Sequence[Path]) -> int:
    """Score the runs of several ``--json`` files as one run: each file's seeds are added
    to the others' (run a set's seeds in parallel processes, then merge). A method is
    scored where every file has it; ``gp#N`` must be the same ``--gp`` in every file."""
    merged: dict[str, dict[str, dict[str, list[Run]]]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for name, by_task in data["runs"].items():
            for task, by_method in by_task.items():
                for method, runs in by_method.items():
                    asks = data.get("ask_s", {}).get(name, {}).get(task, {}).get(method)
                    target = merged.setdefault(name, {}).setdefault(task, {})
                    target.setdefault(method, []).extend(
                        Run(values, asks[i] if asks else []) for i, values in enumerate(runs)
                    )
    for name, results in merged.items():
        counts = {m: len(runs) for by in results.values() for m, runs in by.items()}
        names = [m for m, count in counts.items() if count == counts["random"]]
        print_set(f"{name} ({counts['random']} seeds, merged)", results, names)
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=["tuning", "held-out", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", help="only tasks whose name contains one of these")
    parser.add_argument(
        "--methods", nargs="*", help="only these methods (random and the --gp variants always run)"
    )
    parser.add_argument(
        "--gp",
        action="append",
        default=[],
        help="a skopt-gp variant (JSON options), shown as gp#1, gp#2, ...",
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="score these --json files' runs as one run"
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge)

    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threadpool_limits(1)
    runners = methods(args.gp)
    if args.methods:
        kept = {"random", *(f"gp#{n}" for n in range(1, len(args.gp) + 1)), *args.methods}
        runners = {n: r for n, r in runners.items() if n in kept}
    names = list(runners)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    sets = {"tuning": [*TASKS, *TUNING], "held-out": HELD_OUT}
    chosen = ["tuning", "held-out"] if args.set == "both" else [args.set]
    started = time.perf_counter()
    print(
        f"samplers protocol: {len(seeds)} seeds, {BUDGET} calls, methods {', '.join(names)}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        + (
            ""
            if importlib.util.find_spec("torch")
            else "; optuna-gp left out: PyTorch is not installed"
        )
    )
    for number, variant in enumerate(args.gp, 1):
        print(f"gp#{number}: skopt-gp with {variant}")
    raw: dict[str, Any] = {}
    asks: dict[str, Any] = {}
    for name in chosen:
        tasks = [t for t in sets[name] if not args.tasks or any(s in t.name for s in args.tasks)]
        log(f"{name}: {len(tasks)} tasks")
        results = run_set(tasks, runners, seeds)
        print_set(name, results, names)
        raw[name] = {
            task: {m: [r.values for r in runs] for m, runs in by.items()}
            for task, by in results.items()
        }
        asks[name] = {
            task: {m: [r.ask_s for r in runs] for m, runs in by.items()}
            for task, by in results.items()
        }
    print(
        f"\n{time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.1f} "
        f"(1 min), {os.getloadavg()[1]:.1f} (5 min)"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"seeds": seeds, "budget": BUDGET, "runs": raw, "ask_s": asks})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
