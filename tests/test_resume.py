"""A stopped run loses nothing and repeats nothing; the resumed study is the uninterrupted one.

Real `tunedag run` processes are killed with SIGKILL in the middle of a trial (the storage
is polled to pick the moment), or stopped with SIGTERM or SIGINT, then resumed. Every trial
finished before a stop keeps its result, each trial left running is re-run under its own
number and parameters, and the finished study holds the same trials, number for number, as
one that ran without a stop.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PLUGIN_MODULE,
    base_spec,
    cli,
    db_file,
    fresh_running_trial,
    install_plugins,
    kill_group,
    open_store,
    peek_trials,
    popen,
    read_events,
    recorder,
    run_process,
    storage_url,
    stored_trials,
    wait_until,
    write_spec,
)

import tunedag
from tunedag.errors import InterruptedStudy
from tunedag.space import SearchSpace
from tunedag.storage import TrialState

NAP = 0.1  # seconds the Sleep step takes per fold: a trial takes at least 0.3 s (3 folds)

RANDOM_SPACE = {
    "model__n_neighbors": {"type": "int", "low": 1, "high": 40},
    "model__weights": {"type": "categorical", "choices": ["uniform", "distance"]},
    "model__p": {"type": "float", "low": 1.0, "high": 3.0, "when": {"model__weights": "distance"}},
}
GRID_SPACE = {
    "model__n_neighbors": {"type": "int", "values": [1, 4, 9, 16]},
    "model__weights": {"type": "categorical", "choices": ["uniform", "distance"]},
    "model__p": {"type": "int", "values": [1, 2]},
}


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def slow_spec(
    tmp_path: Path,
    *,
    trials: int,
    sampler: str = "random",
    workers: int = 1,
    space: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Iris k-NN behind a step that sleeps, so a kill can land inside a trial (the cache is
    off: a cached nap would make every trial after the first instant)."""
    return base_spec(
        tmp_path,
        name="resume",
        pipeline=[
            {"name": "nap", "estimator": f"{PLUGIN_MODULE}.Sleep", "params": {"seconds": NAP}},
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        space=space or (RANDOM_SPACE if sampler == "random" else GRID_SPACE),
        sampler={"name": sampler},
        budget={"trials": trials, "max_failed": 0},
        execution={"workers": workers, "cache": "off"},
        allow_imports=[PLUGIN_MODULE],
    )


@dataclass
class Kill:
    """What storage held right after one SIGKILL."""

    left_running: set[int]
    complete: dict[int, tuple[float, float]]  # number -> (value, finished_at)


def kill_repeatedly(
    path: Path,
    spec: dict[str, Any],
    cwd: Path,
    kills: int,
    rng: random.Random,
    *,
    group: bool = False,
) -> list[Kill]:
    """Start `tunedag run`, SIGKILL it inside a trial after 1-2 more trials completed; repeat."""
    db = db_file(spec)
    record = []
    for k in range(kills):
        done = sum(1 for row in peek_trials(db) if row["state"] == "complete")
        target = done + rng.randint(1, 2)
        inside_a_trial = functools.partial(fresh_running_trial, db, target)
        log = cwd / f"killed-{k}.log"
        proc = popen(["run", path], cwd, log=log, new_session=True)
        try:
            wait_until(
                inside_a_trial, 90, f"{target} trials completed and another began", proc, log
            )
            time.sleep(rng.uniform(0.0, NAP))  # somewhere inside that trial
        finally:
            if group:
                kill_group(proc)  # the driver and its forked workers, like a lost machine
            else:
                proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        rows = peek_trials(db)
        record.append(
            Kill(
                left_running={row["number"] for row in rows if row["state"] == "running"},
                complete={
                    row["number"]: (row["value"], row["finished_at"])
                    for row in rows
                    if row["state"] == "complete"
                },
            )
        )
    return record


def check_resumed(spec: dict[str, Any], kills: list[Kill], reference: list[Any]) -> None:
    """Nothing lost, nothing run twice, and the same trials as the uninterrupted run."""
    trials = stored_trials(spec)
    budget = spec["budget"]["trials"]
    assert [t.number for t in trials] == list(range(budget))  # no number twice, none missing
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [(t.number, t.params, t.value) for t in trials] == [
        (t.number, t.params, t.value) for t in reference
    ]
    by_number = {t.number: t for t in trials}
    for kill in kills:
        for number, (value, finished_at) in kill.complete.items():  # nothing lost or redone
            assert (by_number[number].value, by_number[number].finished_at) == (value, finished_at)
    assert any(kill.left_running for kill in kills), "no kill landed inside a trial"
    for trial in trials:  # each trial ran once more for every kill that caught it running
        assert trial.attempt == 1 + sum(trial.number in kill.left_running for kill in kills)
    with open_store(spec) as store:
        assert len(store.test_evaluations(spec["name"])) == 1


def resume_to_the_end(path: Path, cwd: Path, kills: list[Kill]) -> None:
    done = run_process(["run", path, "--json"], cwd)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    requeued = {e["number"] for e in events if e["event"] == "trial_requeued"}
    assert requeued == kills[-1].left_running
    assert events[-1]["event"] == "test_evaluated"


def reference_run(path: Path, tmp_path: Path) -> list[Any]:
    """The same spec, uninterrupted, in another storage file."""
    spec = tunedag.load_spec(path)
    reference = storage_url(tmp_path / "reference.sqlite")
    # the same test rows, scored again on purpose: a second look the ledger records
    return tunedag.run(spec, storage=reference, allow_second_look=True).trials


def test_a_killed_run_resumes_to_the_uninterrupted_study(plugins: Path, tmp_path: Path) -> None:
    spec = slow_spec(tmp_path, trials=7)
    path = write_spec(tmp_path, spec)
    kills = kill_repeatedly(path, spec, tmp_path, 1, random.Random(1))
    resume_to_the_end(path, tmp_path, kills)
    check_resumed(spec, kills, reference_run(path, tmp_path))


@pytest.mark.slow
def test_a_run_killed_three_times_resumes_to_the_uninterrupted_study(
    plugins: Path, tmp_path: Path
) -> None:
    spec = slow_spec(tmp_path, trials=25)
    path = write_spec(tmp_path, spec)
    kills = kill_repeatedly(path, spec, tmp_path, 3, random.Random(2))
    resume_to_the_end(path, tmp_path, kills)
    check_resumed(spec, kills, reference_run(path, tmp_path))


@pytest.mark.slow
def test_a_parallel_grid_study_killed_three_times_runs_each_point_once(
    plugins: Path, tmp_path: Path
) -> None:
    spec = slow_spec(tmp_path, trials=16, sampler="grid", workers=2)
    path = write_spec(tmp_path, spec)
    kills = kill_repeatedly(path, spec, tmp_path, 3, random.Random(3), group=True)
    resume_to_the_end(path, tmp_path, kills)
    grid = list(SearchSpace(tunedag.load_spec(path).space).grid())
    trials = stored_trials(spec)
    assert sorted(json.dumps(t.params, sort_keys=True) for t in trials) == sorted(
        json.dumps(p, sort_keys=True) for p in grid
    )  # every grid point once, none twice
    check_resumed(spec, kills, reference_run(path, tmp_path))


# -- SIGTERM and SIGINT -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "code", "workers"),
    [(signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 2)],
    ids=["SIGTERM-inline", "SIGINT-forked-workers"],
)
def test_a_signal_requeues_the_trials_in_flight(
    plugins: Path, tmp_path: Path, sig: int, code: int, workers: int
) -> None:
    spec = slow_spec(tmp_path, trials=4, workers=workers)
    path = write_spec(tmp_path, spec)
    db = db_file(spec)
    events_file = tmp_path / "events.jsonl"
    log = tmp_path / "run.log"
    proc = popen(["run", path, "--events-file", events_file], tmp_path, log=log, new_session=True)
    try:
        wait_until(
            lambda: fresh_running_trial(db, 1), 90, "a trial completed and another began", proc, log
        )
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole foreground process group
        else:
            proc.send_signal(sig)  # what `kill`, systemd or Kubernetes sends to the process
        assert proc.wait(timeout=30) == code, log.read_text()
    finally:
        if proc.poll() is None:
            kill_group(proc)
            proc.wait()
    assert "interrupted by signal" in log.read_text()

    rows = peek_trials(db)
    assert not [row for row in rows if row["state"] == "running"]
    requeued = [row for row in rows if row["state"] == "waiting"]
    assert requeued, "the trial in flight was not re-queued"
    assert all(row["attempt"] == 2 for row in requeued)
    events = read_events(events_file)
    assert events[0] == {"event": "version", "schema": 1}
    said = [e for e in events if e["event"] == "trial_requeued"]
    assert sorted(e["number"] for e in said) == [row["number"] for row in requeued]
    assert all(e["reason"] == "InterruptedStudy" for e in said)
    assert not [e for e in events if e["event"] in ("study_finished", "test_evaluated")]
    before = {row["number"]: row for row in rows if row["state"] == "complete"}

    # the next run picks the re-queued trials up and finishes the study
    events, seen = recorder()
    result = tunedag.run(tunedag.load_spec(path), events=events)
    assert result.finished and result.counts["complete"] == 4
    assert [t.number for t in result.trials] == [0, 1, 2, 3]
    for trial in result.trials:
        if trial.number in before:
            assert trial.finished_at == before[trial.number]["finished_at"]
    for row in requeued:
        trial = result.trials[row["number"]]
        assert trial.params == json.loads(row["params"]) and trial.attempt == 2
    restarted = [e["number"] for e in seen if e["event"] == "trial_started" and e["attempt"] == 2]
    assert sorted(restarted) == [row["number"] for row in requeued]


_ARMED: list[int] = []


def _signal_self_after_fork() -> None:
    if _ARMED:
        os.kill(os.getpid(), _ARMED.pop())


os.register_at_fork(after_in_parent=_signal_self_after_fork)  # a no-op unless armed


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_that_lands_inside_a_fork_still_stops_the_run(
    plugins: Path, tmp_path: Path
) -> None:
    """SIGTERM delivered while a worker is forked: Python runs handlers in at-fork hooks, where
    an exception is swallowed, so the executor holds the signal until the worker is tracked."""
    spec = slow_spec(tmp_path, trials=3, workers=2)
    path = write_spec(tmp_path, spec)
    events, seen = recorder()
    _ARMED.append(signal.SIGTERM)
    try:
        with pytest.raises(InterruptedStudy) as stopped:
            tunedag.run(tunedag.load_spec(path), events=events)
    finally:
        _ARMED.clear()
    assert stopped.value.exit_code == 143
    # the pool's workers fork before or while the first trials start, so the signal may find
    # one or two trials in flight: each is back to waiting, and each is announced. On a loaded
    # machine a trial may also finish before the held signal is acted on: it stays complete.
    trials = stored_trials(spec)
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state in (TrialState.WAITING, TrialState.COMPLETE) for t in trials), [
        (t.number, t.state, t.attempt) for t in trials
    ]
    back = [t.number for t in trials if (t.state, t.attempt) == (TrialState.WAITING, 2)]
    requeued = sorted(e["number"] for e in seen if e["event"] == "trial_requeued")
    assert requeued == back, [(t.number, t.state, t.attempt) for t in trials]


# -- slices -------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["sequential", "parallel"])
def test_random_search_in_slices_proposes_what_one_run_does(tmp_path: Path, workers: int) -> None:
    spec_dict = base_spec(
        tmp_path,
        space=RANDOM_SPACE,
        budget={"trials": 7, "max_failed": 0},
        execution={"workers": workers},
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    whole = tunedag.run(spec, storage=storage_url(tmp_path / "whole.sqlite"))
    sliced_url = storage_url(tmp_path / "sliced.sqlite")
    for size in (1, 2, 3, 5):
        # the same test rows as `whole`: scoring them again is a second look, asked for
        sliced = tunedag.run(spec, storage=sliced_url, max_new_trials=size, allow_second_look=True)
    assert sliced.finished and len(sliced.trials) == 7
    assert [(t.number, t.params, t.value) for t in sliced.trials] == [
        (t.number, t.params, t.value) for t in whole.trials
    ]
    assert sliced.best_params == whole.best_params and sliced.test_value == whole.test_value
    assert any("model__p" in t.params for t in whole.trials)  # the condition was exercised


def test_a_grid_study_in_slices_runs_each_point_once(tmp_path: Path) -> None:
    spec_dict = base_spec(
        tmp_path,
        space=GRID_SPACE,
        sampler={"name": "grid"},
        budget={"trials": 100, "max_failed": 0},
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    grid = list(SearchSpace(spec.space).grid())
    for _ in range(3):
        partial = tunedag.run(spec, max_new_trials=5)
        assert not partial.finished
    result = tunedag.run(spec)
    assert result.finished and result.reason == "exhausted"
    assert [t.params for t in result.trials] == grid  # each point once, in the grid's order
    assert tunedag.run(spec).trials == result.trials  # exhausted stays exhausted


def test_progress_counts_a_requeued_trial_once(tmp_path: Path) -> None:
    # no baseline: the slice of 3 then leaves exactly 3 of 5 done
    spec_dict = base_spec(tmp_path, budget={"trials": 5, "max_failed": 0}, baseline=False)
    path = write_spec(tmp_path, spec_dict)
    assert cli(["run", path, "--max-new-trials", 3], tmp_path).exit_code == 0
    store = open_store(spec_dict)
    store.create_trial("study", {"model__n_neighbors": 5}, state=TrialState.WAITING)

    result = cli(["run", path], tmp_path)

    assert result.exit_code == 0, result.stderr
    counters = [line.rsplit("[", 1)[1] for line in result.stderr.splitlines() if "complete" in line]
    assert counters == ["4/5]", "5/5]"]
