"""How fast an orchestrator can poll a study: ``tunedag status --json`` against ``optuna trials``.

Run from the repository root (optuna comes with ``pip install -e '.[bench]'``)::

    .venv/bin/python benchmarks/status.py                 # 1,000 trials, 5 polls each
    .venv/bin/python benchmarks/status.py --trials 5000 --repeat 3
    .venv/bin/python benchmarks/status.py --check         # exit 1 above 0.5 s (the goal)

Both studies are written straight into their own SQLite storage (no model is fitted): a
tunedag study of ``--trials`` complete trials with 5 fold values each and two parameters,
and an Optuna study of the same trials (same parameters and values). Each command then runs
as its own process, as a flow's polling task runs it, and the benchmark prints the median
wall time and CPU time (user + system of the child) of each, and their ratio. What is
measured is the whole command: interpreter start, imports, reading the spec, reading the
storage, printing JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
GOAL_S = 0.5

SPEC = """\
name: polled
seed: 1
data: {{source: "sklearn:breast_cancer"}}
split:
  test: {{fraction: 0.2, stratify: true}}
  validation: {{method: stratified_kfold, folds: 5}}
pipeline:
  - {{name: scale, estimator: sklearn.preprocessing.StandardScaler}}
  - {{name: model, estimator: sklearn.svm.SVC}}
space:
  model__C: {{type: float, low: 1.0e-3, high: 1.0e+3, log: true}}
  model__gamma: {{type: float, low: 1.0e-4, high: 1.0, log: true}}
objective: {{metric: roc_auc}}
sampler: {{name: random}}
budget: {{trials: {trials}}}
storage: sqlite:///{storage}
"""


def trials_of(n: int) -> list[tuple[dict[str, float], list[float]]]:
    rng = random.Random(0)
    return [
        (
            {"model__C": 10 ** rng.uniform(-3, 3), "model__gamma": 10 ** rng.uniform(-4, 0)},
            [rng.uniform(0.9, 1.0) for _ in range(5)],
        )
        for _ in range(n)
    ]


def build_tunedag(folder: Path, trials: Sequence[tuple[dict[str, float], list[float]]]) -> Path:
    """The spec and its storage, written through tunedag's storage API (one commit a trial)."""
    from tunedag.storage import TrialState, open_storage

    storage = folder / "tunedag.sqlite"
    spec = folder / "polled.yaml"
    spec.write_text(SPEC.format(trials=len(trials), storage=storage), encoding="utf-8")
    with open_storage(f"sqlite:///{storage}") as store:
        store.create_study("polled", {"space": "bench"}, "{}")
        for params, folds in trials:
            number = store.create_trial("polled", params).number
            store.finish_trial(
                "polled",
                number,
                TrialState.COMPLETE,
                value=sum(folds) / len(folds),
                fold_values=folds,
                intermediate={k: folds[k] for k in range(len(folds))},
                fold_durations=[0.01] * len(folds),
                duration_s=0.05,
            )
    return spec


def build_optuna(folder: Path, trials: Sequence[tuple[dict[str, float], list[float]]]) -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder / 'optuna.sqlite'}"
    study = optuna.create_study(study_name="polled", storage=url, direction="maximize")
    space = {
        "model__C": optuna.distributions.FloatDistribution(1e-3, 1e3, log=True),
        "model__gamma": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
    }
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=params,
                distributions=space,
                value=sum(folds) / len(folds),
                intermediate_values=dict(enumerate(folds)),
            )
            for params, folds in trials
        ]
    )
    return url


def timed(command: list[str], cwd: Path) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (user + system) of one run of ``command``, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def measure(command: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    timed(command, cwd)  # warm the page cache and the bytecode cache
    runs = [timed(command, cwd) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {GOAL_S} s")
    args = parser.parse_args(argv)
    trials = trials_of(args.trials)
    with tempfile.TemporaryDirectory(prefix="tunedag-status-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        spec = build_tunedag(folder, trials)
        optuna_url = build_optuna(folder, trials)
        print(f"built two studies of {args.trials} trials in {time.perf_counter() - started:.1f} s")
        ours = [str(BIN / "tunedag"), "status", str(spec), "--json"]
        *_, out = timed(ours, folder)
        counts = json.loads(out)["counts"]
        assert counts["complete"] == args.trials, counts
        theirs = [
            str(BIN / "optuna"),
            "trials",
            "--study-name",
            "polled",
            "--storage",
            optuna_url,
            "-f",
            "json",
        ]
        env_note = os.environ.get("OMP_NUM_THREADS", "unset")
        tunedag_wall, tunedag_cpu = measure(ours, folder, args.repeat)
        optuna_wall, optuna_cpu = measure(theirs, folder, args.repeat)
    print(f"median of {args.repeat} runs each (OMP_NUM_THREADS={env_note}):")
    print(f"  tunedag status --json  wall {tunedag_wall:.3f} s  cpu {tunedag_cpu:.3f} s")
    print(f"  optuna trials -f json  wall {optuna_wall:.3f} s  cpu {optuna_cpu:.3f} s")
    print(
        f"  ratio tunedag/optuna   wall {tunedag_wall / optuna_wall:.2f}  "
        f"cpu {tunedag_cpu / optuna_cpu:.2f}"
    )
    verdict = "meets" if tunedag_wall < GOAL_S else "misses"
    print(f"tunedag status {verdict} the {GOAL_S} s goal at {args.trials} trials")
    return 1 if args.check and tunedag_wall >= GOAL_S else 0


if __name__ == "__main__":
    raise SystemExit(main())
