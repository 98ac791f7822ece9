"""Several drivers on one PostgreSQL study: tunedag's ``run --join`` against Optuna's RDB storage.

Four processes share one study of trivial trials (``trivial_trial``: one float, one
arithmetic expression) on one PostgreSQL database, for tunedag and for Optuna in the same
run, on the same server:

- tunedag: four ``tunedag run SPEC --join`` processes, random sampler, ``budget.trials = N``;
- Optuna: four processes, each ``create_study(load_if_exists=True)`` on an ``RDBStorage``
  (SQLAlchemy over psycopg 3) and ``optimize`` with ``MaxTrialsCallback(N)``, Optuna's
  documented way to share one budget between processes, random sampler.

Throughput = complete trials / wall time from starting the four processes until the last
exits (start-up included, the same for both); "in the loop" leaves start-up out (first
trial's start to last trial's end, read from each storage). Optuna's callback checks the
count after a trial ends, so its study may end above N; the table shows how many trials
each side ran. The PostgreSQL server is ``--postgres-url`` (or ``TUNEDAG_TEST_POSTGRES_URL``),
else a throwaway cluster started as the test suite does (``tests/pg_server.py``).

    .venv/bin/python benchmarks/shared.py            # N = 400 trials a side
    .venv/bin/python benchmarks/shared.py --trials 1000

Numbers depend on the machine and its load; compare figures from one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TESTS_DIR = BENCH_DIR.parent / "tests"
DRIVERS = 4


def trivial_spec(folder: Path, url: str, trials: int) -> Path:
    spec = {
        "name": "shared-trivial",
        "seed": 0,
        "data": {"source": "sklearn:iris"},  # the function never looks at it
        "split": {"test": {"fraction": 0.2}, "validation": {"method": "kfold", "folds": 2}},
        "trial": {"function": "trivial_trial:objective"},
        "allow_imports": ["trivial_trial"],
        "space": {"x": {"type": "float", "low": -10.0, "high": 10.0}},
        "objective": {"metric": "loss", "direction": "minimize"},
        "sampler": {"name": "random"},
        "budget": {"trials": trials, "max_failed": 0},
        "execution": {"workers": 1, "cache": "off"},
        "storage": url,
    }
    path = folder / "shared-trivial.json"
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, TUNEDAG_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), env.get("PYTHONPATH", "")])
    return env


def _launch(commands: list[list[str]], cwd: Path) -> float:
    """Start the processes together; the wall time until the last exits."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(c, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in commands
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{proc.args} exited {proc.returncode}:\n{err.decode()[-2000:]}")
    return time.perf_counter() - started


def tunedag_side(folder: Path, url: str, trials: int) -> tuple[float, int, float]:
    """(wall s, complete trials, in-the-loop s); prints how many trials each driver ran."""
    from tunedag.storage import TrialState, open_storage

    spec = trivial_spec(folder, url, trials)
    tunedag = str(Path(sys.executable).with_name("tunedag"))
    wall = _launch([[tunedag, "run", str(spec), "--join"] for _ in range(DRIVERS)], folder)
    with open_storage(url) as store:
        done = [t for t in store.trials("shared-trivial") if t.state == TrialState.COMPLETE]
    loop = max(t.finished_at or 0 for t in done) - min(t.started_at or 0 for t in done)
    per_driver = sorted(Counter(t.owner for t in done).values(), reverse=True)
    print(f"tunedag trials by driver: {per_driver}")
    return wall, len(done), loop


def optuna_child(url: str, trials: int) -> None:
    """One of Optuna's four processes (run as ``shared.py --optuna-child URL N``)."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from trivial_trial import optuna_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=url,
        study_name="shared-trivial",
        sampler=optuna.samplers.RandomSampler(),
        load_if_exists=True,
    )
    callback = MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))
    study.optimize(optuna_objective, n_trials=trials, callbacks=[callback])


def optuna_side(folder: Path, url: str, trials: int) -> tuple[float, int, float]:
    import optuna

    sqlalchemy_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the schema first, so four processes do not race to create Optuna's tables
    optuna.create_study(storage=sqlalchemy_url, study_name="shared-trivial")
    me = [sys.executable, str(Path(__file__).resolve()), "--optuna-child", sqlalchemy_url]
    wall = _launch([[*me, str(trials)] for _ in range(DRIVERS)], folder)
    study = optuna.load_study(study_name="shared-trivial", storage=sqlalchemy_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    starts = [t.datetime_start.timestamp() for t in done if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in done if t.datetime_complete]
    return wall, len(done), max(ends) - min(starts)


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(TESTS_DIR))
    import pg_server

    with pg_server.postgres_server() as found:
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=400, help="the shared budget (N)")
    parser.add_argument("--postgres-url", default=os.environ.get("TUNEDAG_TEST_POSTGRES_URL"))
    parser.add_argument("--optuna-child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.optuna_child:
        optuna_child(args.optuna_child[0], int(args.optuna_child[1]))
        return
    sys.path.insert(0, str(TESTS_DIR))
    import pg_server

    with server(args.postgres_url) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = tunedag_side(folder, pg_server.create_database(url), args.trials)
        theirs = optuna_side(folder, pg_server.create_database(url), args.trials)
    print(f"{DRIVERS} processes x trivial trials on one PostgreSQL study, budget {args.trials}")
    print(f"{'':10} {'trials':>7} {'wall s':>8} {'trials/s':>9} {'in loop s':>10} {'trials/s':>9}")
    for name, (wall, done, loop) in (("tunedag", ours), ("optuna", theirs)):
        print(f"{name:10} {done:7d} {wall:8.2f} {done / wall:9.1f} {loop:10.2f} {done / loop:9.1f}")
    ratio = (ours[1] / ours[0]) / (theirs[1] / theirs[0])
    loop_ratio = (ours[1] / ours[2]) / (theirs[1] / theirs[2])
    print(f"tunedag / optuna throughput: {ratio:.2f}x (whole run), {loop_ratio:.2f}x (in the loop)")


if __name__ == "__main__":
    main()
