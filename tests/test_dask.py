"""The `dask` executor on real clusters: worker death, a lost scheduler, data shipped once.

Each slow test starts its own Dask cluster on 127.0.0.1 with no dashboard and a temporary
directory: a ``LocalCluster`` the executor starts itself, one the test starts and hands over
as ``execution.address``, or ``dask scheduler`` / ``dask worker`` processes. Trials are
``tdpar`` functions (see tests/test_parallel.py) that log their pid, so the test can kill
the very worker process that runs a given trial.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import base_spec, cli, recorder, stored_trials, write_spec
from test_parallel import (
    TRIAL_MODULE,
    check_recorded_once,
    install_trials,
    kill_when_started,
    read_starts,
    sleepy_spec,
)

import tunedag
from tunedag.storage import TrialState, open_storage

distributed = pytest.importorskip("distributed")

pytestmark = [
    # distributed's own chatter while workers die and schedulers vanish is not ours to fix
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

REPORTER_SOURCE = '''

def declining(context):
    """Reports budget - x at steps 0, 1, 2: each trial is worse than the ones before it."""
    value = float(context.params["budget"] - context.params["x"])
    for step in range(3):
        context.report(step, value)
    return value
'''


@pytest.fixture
def trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tdpar`` importable (here and in spawned workers), ``$TDPAR_LOG`` set."""
    install_trials(tmp_path)
    with (tmp_path / f"{TRIAL_MODULE}.py").open("a", encoding="utf-8") as module:
        module.write(REPORTER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, TRIAL_MODULE, raising=False)  # another test's copy
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # for `tunedag`, `dask worker`
    log = tmp_path / "starts.jsonl"
    monkeypatch.setenv("TDPAR_LOG", str(log))
    monkeypatch.setenv("TDPAR_NAP", "1.0")
    return log


@pytest.fixture
def cluster(trials: Path, tmp_path: Path) -> Iterator[Any]:
    """A LocalCluster of two single-threaded worker processes, and a client to it."""
    local = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        local_directory=str(tmp_path / "dask"),
    )
    client = distributed.Client(local, set_as_default=False)
    try:
        yield client
    finally:
        client.close(timeout=60)
        local.close(timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- fast --------------------------------------------------------------------------------------


def test_the_dask_executor_is_registered_even_without_dask_and_says_how_to_install() -> None:
    code = """
import sys
sys.modules["dask"] = sys.modules["distributed"] = None   # as if not installed
from tunedag.registry import make_plugins
from tunedag.errors import UnknownNameError
executor = make_plugins(autoload=False).get("executor", "dask").cls(workers=2)
try:
    executor.start(None, None)
except UnknownNameError as error:
    print(error.exit_code, error)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.startswith("78 ") and "pip install 'tunedag[dask]'" in done.stdout


def test_a_scheduler_that_cannot_be_reached_exits_75(tmp_path: Path) -> None:
    import dask

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    spec = base_spec(tmp_path, execution={"workers": 2, "executor": "dask", "address": address})
    path = write_spec(tmp_path, spec)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        run = cli(["run", path], tmp_path)
        again = cli(["run", path], tmp_path)
    assert run.exit_code == again.exit_code == 75, run.stderr
    assert f"cannot reach the Dask scheduler at {address}" in run.stderr
    assert "Safe to retry" in run.stderr and "Traceback" not in run.stderr
    # nothing ran, nothing is left running: only the queued baseline (trial 0) waits
    assert [(t.number, t.state) for t in stored_trials(spec)] == [(0, TrialState.WAITING)]


# -- slow: real clusters -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 1], ids=["two-workers", "its-only-worker"])
def test_a_worker_of_the_executors_own_cluster_killed_mid_trial(
    trials: Path, tmp_path: Path, workers: int
) -> None:
    """Killing the only worker also loses the scattered workload: it is scattered again."""
    budget, victim = 6, 2
    spec_dict = sleepy_spec(tmp_path, budget, execution={"workers": workers, "executor": "dask"})
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    watcher, killed = kill_when_started(
        trials, victim, lambda pid: os.kill(pid, signal.SIGKILL), timeout=180
    )
    events, seen = recorder()
    result = tunedag.run(spec, events=events)
    watcher.join(timeout=5)

    assert killed and killed[0] != os.getpid()
    assert result.finished and result.reason == "budget"
    check_recorded_once(stored_trials(spec_dict), budget, victim)
    runs = [s for s in read_starts(trials) if s["x"] == victim]
    assert len(runs) == 2 and runs[1]["pid"] != killed[0]
    (requeued,) = [e for e in seen if e["event"] == "trial_requeued"]
    assert "KilledWorker" in requeued["reason"]
    starts = read_starts(trials)
    assert {s["threads"] for s in starts} == {1}  # threadpool_limits(1) in each worker
    assert os.getpid() not in {s["pid"] for s in starts}


@pytest.mark.slow
def test_a_killed_worker_of_a_cluster_whose_scheduler_retries_tasks(
    trials: Path, tmp_path: Path, cluster: Any
) -> None:
    """This scheduler re-runs a task whose worker died (allowed-failures 3): still once."""
    budget, victim = 6, 2
    worker_pids = set(cluster.run(os.getpid).values())
    spec_dict = sleepy_spec(
        tmp_path,
        budget,
        execution={"workers": 2, "executor": "dask", "address": cluster.scheduler.address},
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))

    def kill(pid: int) -> None:
        assert pid in worker_pids
        time.sleep(0.3)  # let the trial's start reach the driver first
        os.kill(pid, signal.SIGKILL)

    watcher, killed = kill_when_started(trials, victim, kill, timeout=120)
    result = tunedag.run(spec)
    watcher.join(timeout=5)

    assert killed and killed[0] in worker_pids
    assert result.finished and result.reason == "budget"
    check_recorded_once(stored_trials(spec_dict), budget, victim)
    # the workload went to each worker once: at most one incoming transfer of it per worker
    transfers = cluster.run(
        lambda dask_worker: [
            key
            for entry in dask_worker.transfer_incoming_log
            for key in entry["keys"]
            if str(key).startswith("FunctionWorkload-")
        ]
    )
    assert all(len(keys) <= 1 for keys in transfers.values()), transfers


@pytest.mark.slow
def test_pruning_on_dask_answers_each_report_as_the_local_executor_does(
    trials: Path, tmp_path: Path, cluster: Any
) -> None:
    budget = 5

    def spec_for(name: str, execution: dict[str, Any]) -> dict[str, Any]:
        return base_spec(
            tmp_path,
            name=name,
            pipeline=None,
            trial={"function": f"{TRIAL_MODULE}:declining"},
            allow_imports=[TRIAL_MODULE],
            space={
                "x": {"type": "int", "values": list(range(budget))},
                "budget": {"type": "int", "values": [budget]},
            },
            sampler={"name": "grid"},
            budget={"trials": budget, "max_failed": 0},
            pruner={"name": "median", "options": {"n_startup_trials": 2}},
            execution=execution,
        )

    local = tunedag.run(
        tunedag.load_spec(write_spec(tmp_path, spec_for("on-local", {"workers": 1}), "local.json"))
    )
    on_dask = tunedag.run(
        tunedag.load_spec(
            write_spec(
                tmp_path,
                spec_for(
                    "on-dask",
                    {"workers": 1, "executor": "dask", "address": cluster.scheduler.address},
                ),
                "dask.json",
            )
        )
    )

    def summary(result: Any) -> list[tuple[Any, ...]]:
        return [(t.params["x"], t.state, t.value, dict(t.intermediate)) for t in result.trials]

    assert summary(on_dask) == summary(local)
    states = [t.state for t in on_dask.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 3
    assert all(t.intermediate == {0: t.value} for t in on_dask.trials[2:])  # at step 0


@pytest.mark.slow
def test_a_lost_scheduler_exits_75_and_the_study_resumes_on_a_new_one(
    trials: Path, tmp_path: Path
) -> None:
    budget = 8
    address = f"tcp://127.0.0.1:{free_port()}"
    spec_dict = sleepy_spec(
        tmp_path, budget, execution={"workers": 2, "executor": "dask", "address": address}
    )
    path = write_spec(tmp_path, spec_dict)
    dask_cli = str(Path(sys.executable).with_name("dask"))
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, log: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log).open("ab") as out:
            process = subprocess.Popen(
                [*args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(process)
        return process

    def start_cluster() -> subprocess.Popen[bytes]:
        port = address.rsplit(":", 1)[1]
        scheduler = start(
            dask_cli,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--no-dashboard",
            log="scheduler.log",
        )
        start(
            dask_cli,
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--local-directory",
            str(tmp_path / "dask"),
            log="worker.log",
        )
        return scheduler

    try:
        scheduler = start_cluster()
        first = start(
            str(Path(sys.executable).with_name("tunedag")), "run", str(path), log="run1.log"
        )
        deadline = time.monotonic() + 180
        while len(read_starts(trials)) < 3:  # some trials done, two in flight
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        os.killpg(scheduler.pid, signal.SIGKILL)
        assert first.wait(timeout=120) == 75
        output = (tmp_path / "run1.log").read_text()
        assert "lost the connection to the Dask scheduler" in output
        assert "Traceback" not in output
        stored = stored_trials(spec_dict)
        assert TrialState.RUNNING not in {t.state for t in stored}
        requeued = [t for t in stored if t.state == TrialState.WAITING]
        assert requeued and all(t.attempt == 2 for t in requeued)

        for process in started:  # the old workers go with their scheduler
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        start_cluster()
        second = start(
            str(Path(sys.executable).with_name("tunedag")), "run", str(path), log="run2.log"
        )
        assert second.wait(timeout=300) == 0, (tmp_path / "run2.log").read_text()
    finally:
        for process in started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    final = stored_trials(spec_dict)
    assert [t.state for t in final] == [TrialState.COMPLETE] * budget
    assert sorted(t.params["x"] for t in final) == list(range(budget))
    assert {t.number: t.attempt for t in final if t.attempt > 1} == {t.number: 2 for t in requeued}


def test_a_single_threaded_dask_worker_captures_each_trials_output(
    trials: Path, tmp_path: Path, cluster: Any
) -> None:
    (tmp_path / "daskout.py").write_text(
        "import os\n\ndef noisy(context):\n"
        "    x = context.params['x']\n"
        "    print(f'python says {x}')\n"
        "    os.write(1, f'fd 1 says {x}\\n'.encode())\n"
        "    return float(x)\n",
        encoding="utf-8",
    )
    spec = base_spec(
        tmp_path,
        name="noisy-dask",
        pipeline=None,
        trial={"function": "daskout:noisy"},
        allow_imports=["daskout"],
        space={"x": {"type": "int", "values": [1, 2, 3]}},
        sampler={"name": "grid"},
        budget={"trials": 3},
        execution={"workers": 2, "executor": "dask", "address": cluster.scheduler.address},
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec, "noisy.json")))
    assert result.counts["complete"] == 3
    with open_storage(spec["storage"]) as store:
        for trial in result.trials:
            x = trial.params["x"]
            assert store.trial_output("noisy-dask", trial.number) == (
                f"python says {x}\nfd 1 says {x}\n"
            )
