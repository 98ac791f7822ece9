"""The `local` executor's pool of forked workers: reuse, data shipped once, worker death.

Trials here are the custom function ``tdpar:sleepy``: it appends one line (its ``x``, its
pid, the largest native thread pool it sees) to ``$TDPAR_LOG`` and sleeps, so a test knows
which process runs which trial, and can kill it mid-trial. The same module serves
tests/test_dask.py.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from helpers import base_spec, recorder, stored_trials, write_spec

import tunedag
from tunedag.errors import InterruptedStudy
from tunedag.executor import Task, TrialOutcome
from tunedag.plugins.local_executor import LocalExecutor, _Worker
from tunedag.storage import TrialState

TRIAL_MODULE = "tdpar"

TRIAL_SOURCE = '''
"""Trial functions for tunedag's parallel tests (written by tests/test_parallel.py)."""
import json
import os
import time

from threadpoolctl import threadpool_info


def _log(record):
    line = (json.dumps(record) + "\\n").encode()
    fd = os.open(os.environ["TDPAR_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: lines from several workers never mix
    finally:
        os.close(fd)


def sleepy(context):
    """Logs (x, pid, native threads), sleeps $TDPAR_NAP seconds, returns x."""
    x = context.params["x"]
    threads = max([info["num_threads"] for info in threadpool_info()] or [1])
    _log({"x": x, "pid": os.getpid(), "threads": threads, "rows": len(context.y)})
    time.sleep(float(os.environ.get("TDPAR_NAP", "0.3")))
    return float(x)
'''


def install_trials(directory: Path) -> None:
    (directory / f"{TRIAL_MODULE}.py").write_text(TRIAL_SOURCE, encoding="utf-8")


def sleepy_spec(tmp_path: Path, trials: int, **sections: Any) -> dict[str, Any]:
    """A grid over x = 0 .. trials-1 of ``tdpar:sleepy``: each x runs once, in order."""
    sections.setdefault("budget", {"trials": trials, "max_failed": 0})
    return base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": f"{TRIAL_MODULE}:sleepy"},
        allow_imports=[TRIAL_MODULE],
        space={"x": {"type": "int", "values": list(range(trials))}},
        sampler={"name": "grid"},
        **sections,
    )


def read_starts(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


@pytest.fixture
def trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tdpar`` importable, ``$TDPAR_LOG`` set; returns the log's path."""
    install_trials(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, TRIAL_MODULE, raising=False)  # another test's copy
    log = tmp_path / "starts.jsonl"
    monkeypatch.setenv("TDPAR_LOG", str(log))
    monkeypatch.setenv("TDPAR_NAP", "0.3")
    return log


def kill_when_started(
    log: Path, x: int, kill: Callable[[int], None], timeout: float = 60
) -> tuple[threading.Thread, list[int]]:
    """A thread that waits for trial ``x`` to start, then kills its process; gives the pid."""
    killed: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            starts = [s for s in read_starts(log) if s["x"] == x]
            if starts:
                kill(starts[0]["pid"])
                killed.append(starts[0]["pid"])
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def check_recorded_once(trials: list[Any], budget: int, killed_x: int) -> None:
    """Completed == budget, every configuration once, the killed one on attempt 2."""
    assert [t.state for t in trials] == [TrialState.COMPLETE] * budget
    assert sorted(t.params["x"] for t in trials) == list(range(budget))
    assert len({t.number for t in trials}) == budget
    attempts = {t.params["x"]: t.attempt for t in trials}
    assert attempts == {x: 2 if x == killed_x else 1 for x in range(budget)}
    assert {t.params["x"]: t.value for t in trials} == {x: float(x) for x in range(budget)}


# -- the pool ----------------------------------------------------------------------------------


def test_a_pool_of_two_reuses_its_workers_and_limits_their_threads(
    trials: Path, tmp_path: Path
) -> None:
    spec = tunedag.load_spec(
        write_spec(tmp_path, sleepy_spec(tmp_path, 6, execution={"workers": 2}))
    )
    result = tunedag.run(spec)
    assert result.counts["complete"] == 6
    starts = read_starts(trials)
    pids = {s["pid"] for s in starts}
    # two processes served the six trials: forked once each, the data inherited once each
    assert len(pids) == 2 and os.getpid() not in pids
    assert {s["threads"] for s in starts} == {1}  # one BLAS/OpenMP thread per worker
    assert len(starts) == 6


def test_trials_run_two_at_a_time(
    trials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TDPAR_NAP", "1.0")
    spec = tunedag.load_spec(
        write_spec(tmp_path, sleepy_spec(tmp_path, 4, execution={"workers": 2}))
    )
    events, seen = recorder()
    tunedag.run(spec, events=events)
    done = [e for e in seen if e["event"] == "trial_completed"]
    started = {e["number"]: e["ts"] for e in seen if e["event"] == "trial_started"}
    # the first two trials were both handed out before either finished
    assert started[1] < min(e["ts"] for e in done)
    first, second = sorted(e["ts"] for e in done)[:2]
    assert second - first < 0.6  # they ran side by side, not one after the other


def test_a_killed_worker_loses_only_its_trial_which_runs_again_as_attempt_2(
    trials: Path, tmp_path: Path
) -> None:
    budget, victim = 6, 2
    spec = tunedag.load_spec(
        write_spec(tmp_path, sleepy_spec(tmp_path, budget, execution={"workers": 2}))
    )
    watcher, killed = kill_when_started(trials, victim, lambda pid: os.kill(pid, signal.SIGKILL))
    events, seen = recorder()
    result = tunedag.run(spec, events=events)
    watcher.join(timeout=5)

    assert killed and killed[0] != os.getpid()
    assert result.finished and result.reason == "budget"
    check_recorded_once(stored_trials(sleepy_spec(tmp_path, budget)), budget, victim)
    runs = [s for s in read_starts(trials) if s["x"] == victim]
    assert len(runs) == 2 and runs[0]["pid"] == killed[0] and runs[1]["pid"] != killed[0]
    (requeued,) = [e for e in seen if e["event"] == "trial_requeued"]
    assert "exited with code -9" in requeued["reason"]
    (victim_trial,) = [t for t in result.trials if t.params["x"] == victim]
    assert requeued["number"] == victim_trial.number
    started = [
        e for e in seen if e["event"] == "trial_started" and e["number"] == victim_trial.number
    ]
    assert [e["attempt"] for e in started] == [1, 2]


def test_a_trial_that_kills_its_worker_every_time_fails_after_three_attempts(
    trials: Path, tmp_path: Path
) -> None:
    """A configuration that always takes its worker down (say, out of memory) fails."""
    budget, victim = 3, 1
    spec_dict = sleepy_spec(
        tmp_path, budget, execution={"workers": 2}, budget={"trials": budget, "max_failed": 1}
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    stop = threading.Event()
    seen_pids: set[int] = set()

    def keep_killing() -> None:
        while not stop.is_set():
            for start in read_starts(trials):
                if start["x"] == victim and start["pid"] not in seen_pids:
                    seen_pids.add(start["pid"])
                    os.kill(start["pid"], signal.SIGKILL)
            time.sleep(0.01)

    killer = threading.Thread(target=keep_killing, daemon=True)
    killer.start()
    try:
        result = tunedag.run(spec)
    finally:
        stop.set()
        killer.join(timeout=5)
    by_x = {t.params["x"]: t for t in result.trials}
    assert by_x[victim].state == TrialState.FAILED and by_x[victim].attempt == 3
    assert by_x[victim].error is not None and by_x[victim].error.startswith("WorkerLost")
    assert by_x[0].state == by_x[2].state == TrialState.COMPLETE
    assert len(seen_pids) == 3


def test_workers_exit_when_the_driver_is_killed(trials: Path, tmp_path: Path) -> None:
    """A persistent worker must not outlive a SIGKILLed driver (no orphans left behind)."""
    path = write_spec(tmp_path, sleepy_spec(tmp_path, 40, execution={"workers": 2}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    tunedag_cli = Path(sys.executable).with_name("tunedag")
    with (tmp_path / "run.log").open("wb") as out:
        driver = subprocess.Popen(
            [str(tunedag_cli), "run", str(path)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while len({s["pid"] for s in read_starts(trials)}) < 2:
            assert time.monotonic() < deadline and driver.poll() is None
            time.sleep(0.02)
        workers = {s["pid"] for s in read_starts(trials)}
        driver.kill()
        driver.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its driver"
            time.sleep(0.05)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_trial_past_its_timeout_is_killed_and_its_worker_replaced(
    trials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TDPAR_NAP", "30")
    spec_dict = sleepy_spec(
        tmp_path,
        2,
        execution={"workers": 2},
        budget={"trials": 2, "max_failed": 2, "trial_timeout": "1s"},
    )
    started = time.monotonic()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    assert time.monotonic() - started < 20
    assert [t.state for t in result.trials] == [TrialState.FAILED] * 2
    assert all((t.error or "").startswith("TrialTimeout") for t in result.trials)
    assert not any(_alive(s["pid"]) for s in read_starts(trials))


def _submit_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Submit a task to a fresh one-worker executor (the patches in ``monkeypatch`` make it
    raise InterruptedStudy), then close it: the one output file it made is closed and no
    worker process is left."""
    created: list[IO[bytes]] = []
    temporary_file = tempfile.TemporaryFile

    def recorded(*args: Any, **kwargs: Any) -> IO[bytes]:
        created.append(temporary_file(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(tempfile, "TemporaryFile", recorded)
    before = set(multiprocessing.active_children())
    executor = LocalExecutor(workers=1)
    executor.start(workload=None, on_report=lambda number, step, value: False)
    try:
        with pytest.raises(InterruptedStudy):
            executor.submit(Task(number=0, params={}))
    finally:
        monkeypatch.undo()
        executor.close()
    assert len(created) == 1 and created[0].closed
    assert set(multiprocessing.active_children()) <= before


def test_a_stop_signal_raised_just_after_a_fork_leaves_no_file_pipe_or_worker_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver's SIGINT/SIGTERM handler raises wherever the main thread is: blocking the
    signals around a fork holds them for that thread only, and another thread (the lease's
    heartbeat) may take one. Raised before the new worker is tracked, it still leaves the
    worker's output file and pipe closed at once, not to the garbage collector, and no worker
    process behind."""
    unfreeze = gc.unfreeze

    def unfreeze_then_stop() -> None:
        unfreeze()
        raise InterruptedStudy(signal.SIGTERM)

    monkeypatch.setattr(gc, "unfreeze", unfreeze_then_stop)
    _submit_until_stopped(monkeypatch)


class _Instant:
    """A workload whose every task completes at once."""

    def run(self, task: Task, report: Callable[[int, float], bool]) -> TrialOutcome:
        return TrialOutcome(task.number, TrialState.COMPLETE, value=0.0)


def _stop_at_send(self: _Worker, task: Task) -> bool:
    raise InterruptedStudy(signal.SIGTERM)


def test_a_stop_signal_raised_while_a_fresh_worker_gets_its_task_leaves_no_worker_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Raised after the fork returned but before the task reached the worker, the signal's
    exception still finds the worker tracked: closing the executor kills it and closes its
    file at once."""
    monkeypatch.setattr(_Worker, "send", _stop_at_send)
    _submit_until_stopped(monkeypatch)


def test_a_stop_signal_raised_while_an_idle_worker_gets_its_task_leaves_no_worker_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same for a worker taken from the idle ones: it is never in neither list."""
    executor = LocalExecutor(workers=1)
    executor.start(workload=_Instant(), on_report=lambda number, step, value: False)
    try:
        executor.submit(Task(number=0, params={}))
        assert [o.number for o in executor.wait(timeout=30)] == [0]
        [worker] = executor.idle
        monkeypatch.setattr(_Worker, "send", _stop_at_send)
        with pytest.raises(InterruptedStudy):
            executor.submit(Task(number=1, params={}))
        assert executor.busy == [worker] and executor.idle == []
    finally:
        monkeypatch.undo()
        executor.close()
    assert worker.output.closed and worker.connection.closed
    assert not worker.process.is_alive()


@pytest.mark.parametrize("pruner", ["none", "median"])
def test_every_fold_report_reaches_the_driver_before_its_trials_outcome(
    tmp_path: Path, pruner: str
) -> None:
    """With ``none`` a worker does not wait for answers, yet nothing it reports is lost."""
    options = {"n_startup_trials": 10} if pruner == "median" else {}
    spec_dict = base_spec(
        tmp_path,
        execution={"workers": 2},
        budget={"trials": 6, "max_failed": 0},
        pruner={"name": pruner, "options": options},
    )
    events, seen = recorder()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), events=events)
    assert result.counts["complete"] == 6
    for trial in result.trials:
        mine = [e for e in seen if e.get("number") == trial.number]
        kinds = [e["event"] for e in mine]
        assert kinds == ["trial_started", *["trial_reported"] * 3, "trial_completed"]
        reported = {e["step"]: e["value"] for e in mine if e["event"] == "trial_reported"}
        assert reported == trial.intermediate and reported[2] == pytest.approx(trial.value)
