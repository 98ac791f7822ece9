"""Trials that fail, hang or return garbage: each is recorded and the study goes on, to a point.

A trial that raises, returns NaN or outlives `budget.trial_timeout` is stored as failed with
its reason; more failures than `budget.max_failed` fail the study (exit 1, no test score);
`budget.time` ends a study early, and a study out of time stays finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import (
    PLUGIN_MODULE,
    base_spec,
    cli,
    install_plugins,
    recorder,
    stored_trials,
    trial_spec,
    write_spec,
)

import tunedag
from tunedag.errors import StudyFailedError
from tunedag.storage import TrialState


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def knn_grid(tmp_path: Path, neighbors: list[int], max_failed: int, workers: int = 1) -> dict:
    """k-NN on iris: more neighbours than a training fold has rows raises in predict."""
    return base_spec(
        tmp_path,
        space={"model__n_neighbors": {"type": "int", "values": neighbors}},
        sampler={"name": "grid"},
        budget={"trials": len(neighbors), "max_failed": max_failed},
        execution={"workers": workers},
    )


@pytest.mark.parametrize("workers", [1, 2], ids=["inline", "forked-workers"])
def test_a_trial_whose_estimator_raises_fails_and_the_study_goes_on(
    tmp_path: Path, workers: int
) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path, knn_grid(tmp_path, [3, 500, 5], 1, workers)))
    events, seen = recorder()
    result = tunedag.run(spec, events=events)

    states = {t.params["model__n_neighbors"]: t for t in result.trials}
    assert states[3].state == states[5].state == TrialState.COMPLETE
    failed = states[500]
    assert failed.state == TrialState.FAILED and failed.value is None
    assert failed.error is not None
    assert failed.error.startswith("ValueError: ")
    assert "n_neighbors" in failed.error and "Traceback" in failed.error  # the error is kept
    assert result.finished and result.reason == "budget"
    assert result.best_params is not None and result.best_params["model__n_neighbors"] != 500
    assert result.test_value is not None

    (event,) = [e for e in seen if e["event"] == "trial_failed"]
    assert event["number"] == failed.number
    assert event["reason"] == failed.error.splitlines()[0]
    assert event["error"] == failed.error
    # stored as it happened, across a reopen
    stored = {t.number: t for t in stored_trials(knn_grid(tmp_path, [3], 1))}
    assert stored[failed.number].error == failed.error


def test_more_failures_than_max_failed_fail_the_study(tmp_path: Path) -> None:
    spec_dict = knn_grid(tmp_path, [500, 3, 600, 700, 4], max_failed=1)
    path = write_spec(tmp_path, spec_dict)
    run = cli(["run", path], tmp_path)
    assert run.exit_code == 1, run.stderr
    assert "failed: 2 failed trials, more than budget.max_failed=1" in run.stderr
    trials = stored_trials(spec_dict)
    # the study stopped at the second failure; what ran is kept, nothing after it started
    assert [t.state for t in trials] == [TrialState.FAILED, TrialState.COMPLETE, TrialState.FAILED]
    status = cli(["status", path, "--json"], tmp_path)
    payload = json.loads(status.stdout)
    assert payload["finished"] is True and payload["reason"] == "failed"
    assert payload["test"] is None  # a failed study never looks at its test set

    again = cli(["run", path], tmp_path)
    assert again.exit_code == 1  # still failed: resuming runs nothing more
    assert len(stored_trials(spec_dict)) == 3

    with pytest.raises(StudyFailedError) as error:
        tunedag.run(tunedag.load_spec(path))
    assert error.value.exit_code == 1


def test_a_nan_score_fails_the_trial(plugins: Path, tmp_path: Path) -> None:
    spec_dict = trial_spec(
        tmp_path,
        "nan_above_half",
        {"x": {"type": "float", "values": [0.2, 0.9, 0.4]}},
        sampler={"name": "grid"},
        budget={"trials": 3, "max_failed": 1},
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    by_x = {t.params["x"]: t for t in result.trials}
    assert by_x[0.9].state == TrialState.FAILED
    assert by_x[0.9].error == "the objective is nan (not a finite number)"
    assert by_x[0.2].state == by_x[0.4].state == TrialState.COMPLETE
    assert result.best_value == 0.4 and result.reason == "budget"


def test_trial_timeout_stops_a_trial_that_sleeps(plugins: Path, tmp_path: Path) -> None:
    spec_dict = trial_spec(
        tmp_path,
        "nap",
        {"nap": {"type": "float", "values": [0.0, 60.0, 0.1]}},
        sampler={"name": "grid"},
        budget={"trials": 3, "max_failed": 1, "trial_timeout": "1s"},
    )
    events, seen = recorder()
    started = time.monotonic()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), events=events)
    assert time.monotonic() - started < 20
    by_nap = {t.params["nap"]: t for t in result.trials}
    stuck = by_nap[60.0]
    assert stuck.state == TrialState.FAILED
    assert stuck.error is not None and stuck.error.startswith("TrialTimeout")
    assert "1s" in stuck.error
    assert stuck.duration_s is not None and 1.0 <= stuck.duration_s < 10
    assert by_nap[0.0].state == by_nap[0.1].state == TrialState.COMPLETE
    assert result.reason == "budget" and result.best_value == 1.0
    failed = [e for e in seen if e["event"] == "trial_failed"]
    assert [e["number"] for e in failed] == [stuck.number]
    assert failed[0]["reason"].startswith("TrialTimeout")


def test_budget_time_stops_the_study(plugins: Path, tmp_path: Path) -> None:
    spec_dict = trial_spec(
        tmp_path,
        "nap",
        {"nap": {"type": "float", "values": [0.25]}, "x": {"type": "float", "low": 0, "high": 1}},
        budget={"trials": 100, "time": "1s", "max_failed": 0},
    )
    path = write_spec(tmp_path, spec_dict)
    started = time.monotonic()
    result = tunedag.run(tunedag.load_spec(path))
    assert time.monotonic() - started < 10
    assert result.finished and result.reason == "time"
    assert result.counts["complete"] < 100 and result.counts["running"] == 0
    assert result.counts["waiting"] <= 1  # the trial running when time ran out, re-queued

    # the time budget is a total: out of time stays out of time, and that is success
    again = cli(["run", path], tmp_path)
    assert again.exit_code == 0, again.stderr
    assert len(stored_trials(spec_dict)) == sum(result.counts.values())


def test_budget_time_stops_a_trial_that_hangs(plugins: Path, tmp_path: Path) -> None:
    spec_dict = trial_spec(
        tmp_path,
        "nap",
        {"nap": {"type": "float", "values": [600.0]}},
        budget={"trials": 3, "time": "1s", "max_failed": 0},
    )
    events, seen = recorder()
    started = time.monotonic()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), events=events)
    assert time.monotonic() - started < 60  # not 600: the running trial was stopped
    assert result.reason == "time" and result.counts["waiting"] == 1
    requeued = [e for e in seen if e["event"] == "trial_requeued"]
    assert [e["reason"] for e in requeued] == ["budget.time ran out"]


RAISES = {  # how -> what the stored error starts with
    "sys_exit_0": "SystemExit",
    "sys_exit_3": "SystemExit",
    "keyboard_interrupt": "KeyboardInterrupt",
    "base_exception": "Escape: out of the trial",
    "huge_message": "ValueError: xxx",
}


@pytest.mark.parametrize("how", ["segfault", "abort", "kill", "os_exit", *RAISES])
def test_a_trial_that_kills_its_process_fails_alone_with_one_worker(
    plugins: Path, tmp_path: Path, how: str
) -> None:
    """workers: 1 runs its trial in a worker process too: the driver outlives any crash."""
    spec_dict = trial_spec(
        tmp_path,
        "crash",
        {"how": {"type": "categorical", "choices": [how, "fine"]}},
        sampler={"name": "grid"},
        budget={"trials": 2, "max_failed": 1},
        execution={"workers": 1},
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    assert result.reason in {"budget", "exhausted"} and result.counts["complete"] == 1
    (failed,) = [t for t in result.trials if t.state == TrialState.FAILED]
    assert failed.params == {"how": how}
    if how in RAISES:  # any exception, BaseExceptions too, fails the trial at once
        assert failed.attempt == 1 and (failed.error or "").startswith(RAISES[how])
        assert len(failed.error or "") < 10_000  # a huge message is clipped
    else:  # the worker died: re-queued until its last attempt, then failed
        assert failed.attempt == 3 and "WorkerLost" in (failed.error or "")


def test_a_pipeline_step_raising_keyboard_interrupt_fails_its_trial_at_once(
    plugins: Path, tmp_path: Path
) -> None:
    spec_dict = base_spec(
        tmp_path,
        pipeline=[
            {"name": "odd", "estimator": f"{PLUGIN_MODULE}.Interrupting"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        space={"odd__interrupt": {"type": "categorical", "choices": [False, True]}},
        sampler={"name": "grid"},
        budget={"trials": 2, "max_failed": 1},
        execution={"workers": 1},
        allow_imports=[PLUGIN_MODULE],
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    assert result.counts["complete"] == 1
    (failed,) = [t for t in result.trials if t.state == TrialState.FAILED]
    assert failed.attempt == 1 and (failed.error or "").startswith("KeyboardInterrupt")


def test_a_spec_without_trial_timeout_gets_the_safety_net(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tunedag.spec.models.DEFAULT_TRIAL_TIMEOUT_S", 1.0)  # a day, in a test
    spec_dict = trial_spec(
        tmp_path,
        "nap",
        {"nap": {"type": "float", "values": [0.0, 60.0]}},
        sampler={"name": "grid"},
        budget={"trials": 2, "max_failed": 1},
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    assert spec.budget.trial_timeout is None
    started = time.monotonic()
    result = tunedag.run(spec)
    assert time.monotonic() - started < 30
    hung = next(t for t in result.trials if t.params["nap"] == 60.0)
    assert hung.state == TrialState.FAILED
    assert hung.error is not None and hung.error.startswith("TrialTimeout")
    assert result.reason == "budget"
