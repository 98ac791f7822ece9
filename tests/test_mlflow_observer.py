"""The mlflow observer against a real MLflow tracking store (SQLite, in tmp_path).

A study is one parent run, each trial one run nested under it, logged exactly once however
the study is run: in slices, after a run killed with SIGKILL, or with the observer added to
a study that already has trials.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PLUGIN_MODULE,
    base_spec,
    db_file,
    fresh_running_trial,
    install_plugins,
    kill_group,
    peek_trials,
    popen,
    run_process,
    stored_trials,
    wait_until,
    write_spec,
)

import tunedag
from tunedag.storage import TrialState

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient

FOLDS = 3


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables made (that takes seconds), copied per test."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, empty_store: Path) -> str:
    path = tmp_path / "mlflow.db"
    shutil.copy(empty_store, path)
    return f"sqlite:///{path}"


def observed_spec(tmp_path: Path, tracking_uri: str, **sections: Any) -> dict[str, Any]:
    options = {"tracking_uri": tracking_uri, "artifact_location": str(tmp_path / "artifacts")}
    sections.setdefault("observers", [{"name": "mlflow", "options": options}])
    sections.setdefault("pruner", {"name": "median"})  # fold scores reported as steps
    sections.setdefault("budget", {"trials": 6, "max_failed": 0})
    return base_spec(tmp_path, name="tracked", **sections)


def runs(tracking_uri: str) -> tuple[list[Any], list[Any]]:
    """(parent runs, trial runs) of every experiment in the store."""
    client = MlflowClient(tracking_uri=tracking_uri)
    every = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
    ]
    parents = [r for r in every if r.data.tags.get("tunedag.role") == "study"]
    trials = [r for r in every if r.data.tags.get("tunedag.role") == "trial"]
    assert len(parents) + len(trials) == len(every)
    return parents, trials


def check_logged_once(spec: dict[str, Any], tracking_uri: str) -> tuple[Any, dict[int, Any]]:
    """One parent; one finished run per stored trial, matching it; the parent's run."""
    parents, trial_runs = runs(tracking_uri)
    assert len(parents) == 1, [p.info.run_id for p in parents]
    parent = parents[0]
    numbers = [int(r.data.tags["tunedag.trial"]) for r in trial_runs]
    stored = stored_trials(spec)
    assert sorted(numbers) == [t.number for t in stored]  # every trial, none twice
    by_number = {int(r.data.tags["tunedag.trial"]): r for r in trial_runs}
    for trial in stored:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["tunedag.state"] == trial.state.value
        assert run.data.tags["tunedag.attempt"] == str(trial.attempt)
        assert run.info.status == {"complete": "FINISHED", "pruned": "KILLED"}[trial.state.value]
        assert run.data.params == {k: json.dumps(v) for k, v in trial.params.items()}
        folds = [run.data.metrics[f"fold_{i}"] for i in range(len(trial.fold_values))]
        assert folds == pytest.approx(trial.fold_values)
        if trial.state == TrialState.COMPLETE:
            assert run.data.metrics["accuracy"] == pytest.approx(trial.value)
    return parent, by_number


def test_a_study_run_in_slices_is_one_parent_run_with_each_trial_once(
    tmp_path: Path, tracking_uri: str
) -> None:
    spec = observed_spec(tmp_path, tracking_uri)
    loaded = tunedag.load_spec(write_spec(tmp_path, spec))
    tunedag.run(loaded, max_new_trials=2)
    parents, trial_runs = runs(tracking_uri)
    assert len(parents) == 1 and len(trial_runs) == 2
    assert parents[0].data.tags["tunedag.reason"] == "paused"
    result = tunedag.run(loaded, max_new_trials=2)
    result = tunedag.run(loaded)
    assert result.finished and result.test_value is not None

    parent, by_number = check_logged_once(spec, tracking_uri)
    tags, metrics = parent.data.tags, parent.data.metrics
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tracked"
    assert tags["tunedag.sampler"] == "random" and len(tags["tunedag.fingerprint"]) == 16
    assert tags["tunedag.reason"] == "budget"
    assert tags["tunedag.best_trial"] == str(result.best.number)  # type: ignore[union-attr]
    assert metrics["best_accuracy"] == pytest.approx(result.best_value)
    assert metrics["test_accuracy"] == pytest.approx(result.test_value)
    assert parent.data.params["objective.metric"] == "accuracy"

    client = MlflowClient(tracking_uri=tracking_uri)
    steps = client.get_metric_history(by_number[1].info.run_id, "intermediate")
    assert [m.step for m in steps] == sorted(stored_trials(spec)[1].intermediate)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_trial.json", "results.json", "spec.json", "report", "model"} <= artifacts
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/trials.csv"} <= report
    card = {a.path for a in client.list_artifacts(parent.info.run_id, "model")}
    assert card == {"model/model.card.json"}
    best = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, "best_trial.json", str(tmp_path))
        ).read_text()
    )
    assert best["number"] == result.best.number and best["params"] == result.best_params  # type: ignore[union-attr]
    assert best["metrics"] == result.best.metric_means()  # type: ignore[union-attr]


def test_trials_finished_without_the_observer_are_logged_when_it_joins(
    tmp_path: Path, tracking_uri: str
) -> None:
    spec = observed_spec(tmp_path, tracking_uri)
    tunedag.run(
        tunedag.load_spec(write_spec(tmp_path, {**spec, "observers": []})), max_new_trials=3
    )
    assert runs(tracking_uri) == ([], [])
    tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec)))
    check_logged_once(spec, tracking_uri)


def test_a_fresh_study_under_the_same_name_gets_its_own_parent_run(
    tmp_path: Path, tracking_uri: str
) -> None:
    spec = observed_spec(tmp_path, tracking_uri, budget={"trials": 2})
    loaded = tunedag.load_spec(write_spec(tmp_path, spec))
    tunedag.run(loaded)
    tunedag.run(loaded, fresh=True, allow_second_look=True)
    parents, trial_runs = runs(tracking_uri)
    assert len(parents) == 2 and len(trial_runs) == 4
    assert len({p.data.tags["tunedag.study_key"] for p in parents}) == 2


def test_an_unreachable_tracking_store_warns_and_the_study_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    spec = observed_spec(tmp_path, f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    with caplog.at_level(logging.WARNING, logger="tunedag"):
        result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec)))
    assert result.finished and result.counts["complete"] + result.counts["pruned"] == 6
    assert "observer 'mlflow' raised in hook 'before_study'" in caplog.text
    assert "left out for the rest of this run" in caplog.text


def test_a_spec_naming_mlflow_without_mlflow_installed_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    path = write_spec(tmp_path, observed_spec(tmp_path, "sqlite:///mlflow.db"))
    with pytest.raises(tunedag.SpecError) as caught:
        tunedag.load_spec(path)
    assert caught.value.exit_code == 78
    problem = caught.value.problems[0]
    assert problem.path == "observers[0].name" and problem.line is not None
    assert "pip install 'tunedag[mlflow]'" in problem.message


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_same_parent_run_with_no_trial_twice(
    tmp_path: Path, tracking_uri: str
) -> None:
    install_plugins(tmp_path)
    nap = {"name": "nap", "estimator": f"{PLUGIN_MODULE}.Sleep", "params": {"seconds": 0.2}}
    spec = observed_spec(
        tmp_path,
        tracking_uri,
        pipeline=[nap, *base_spec(tmp_path)["pipeline"]],
        budget={"trials": 8, "max_failed": 0},
        execution={"cache": "off"},
        allow_imports=[PLUGIN_MODULE],
    )
    path = write_spec(tmp_path, spec)
    log = tmp_path / "killed.log"
    proc = popen(["run", path, "--json"], tmp_path, log=log)
    try:
        inside_a_trial = functools.partial(fresh_running_trial, db_file(spec), 3, 0.1)
        wait_until(inside_a_trial, 180, "3 trials completed and another began", proc, log)
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    left_running = {t.number for t in stored_trials(spec) if t.state == TrialState.RUNNING}
    assert left_running, "the kill did not land inside a trial"
    parents, before = runs(tracking_uri)
    assert len(parents) == 1 and parents[0].info.status == "RUNNING"  # SIGKILL ends nothing

    done = run_process(["run", path, "--json"], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # stdout: events only
    assert events[-1]["event"] == "test_evaluated"
    parent, by_number = check_logged_once(spec, tracking_uri)
    assert parent.info.run_id == parents[0].info.run_id and parent.info.status == "FINISHED"
    for number in left_running:  # re-run in the run it started in, on its second attempt
        assert by_number[number].data.tags["tunedag.attempt"] == "2"
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in by_number.values()}


@pytest.mark.slow
def test_drivers_sharing_a_study_log_into_one_parent_run_each_trial_once(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugins(tmp_path)
    monkeypatch.setenv("TUNEDAG_LEASE_TIMEOUT", "900")  # the paused driver keeps its lease
    nap = {"name": "nap", "estimator": f"{PLUGIN_MODULE}.Sleep", "params": {"seconds": 0.1}}
    spec = observed_spec(
        tmp_path,
        tracking_uri,
        pipeline=[nap, *base_spec(tmp_path)["pipeline"]],
        budget={"trials": 10, "max_failed": 0},
        execution={"cache": "off"},
        allow_imports=[PLUGIN_MODULE],
    )
    path = write_spec(tmp_path, spec)
    db = db_file(spec)

    def complete() -> int:
        return sum(1 for row in peek_trials(db) if row["state"] in ("complete", "pruned"))

    logs = [tmp_path / f"driver-{k}.log" for k in range(2)]
    first = popen(["run", path, "--join"], tmp_path, log=logs[0], new_session=True)
    drivers = [first]
    try:
        wait_until(lambda: complete() >= 1, 300, "the first driver finished a trial", first)
        os.killpg(first.pid, signal.SIGSTOP)  # paused, so the second driver surely joins
        done = complete()
        drivers.append(popen(["run", path, "--join"], tmp_path, log=logs[1], new_session=True))
        wait_until(lambda: complete() > done, 300, "the second driver finished a trial")
        os.killpg(first.pid, signal.SIGCONT)
        for driver, log in zip(drivers, logs, strict=True):
            assert driver.wait(timeout=600) == 0, log.read_text()
    finally:
        for driver in drivers:
            kill_group(driver)
    assert len({t.owner for t in stored_trials(spec)}) == 2  # both drivers ran trials
    parent, _ = check_logged_once(spec, tracking_uri)
    assert parent.info.status == "FINISHED" and "test_accuracy" in parent.data.metrics
