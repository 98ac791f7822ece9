"""What `tunedag run` promises: a total budget, slices, a test set scored once, refusals.

Most tests drive the real command in this process (Click's runner) for its exit codes, or the
Python API; one runs the installed `tunedag` command to read its event stream as an
orchestrator would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    base_spec,
    cli,
    open_store,
    read_events,
    recorder,
    run_process,
    stored_trials,
    write_spec,
)

import tunedag
from tunedag.errors import SpecChangedError, TestSetLockedError
from tunedag.storage import TrialState

STATUS_KEYS = {"study", "finished", "reason", "counts", "cache", "best", "test"}
COUNT_KEYS = {"complete", "pruned", "failed", "running", "waiting"}


def status(path: Path, cwd: Path) -> dict[str, Any]:
    result = cli(["status", path, "--json"], cwd)
    assert result.exit_code == 0, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def events_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_python_api_runs_a_study_to_its_budget(tmp_path: Path) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 5})))
    result = tunedag.run(spec)
    assert result.finished and result.reason == "budget"
    assert [t.number for t in result.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in result.trials)
    best = max(result.trials, key=lambda t: (t.value, -t.number))
    assert result.best_params == best.params and result.best_value == best.value
    assert isinstance(result.test_value, float) and 0.0 <= result.test_value <= 1.0
    assert result.test is not None and result.test.trial_number == best.number
    assert result.test.cv_value == best.value
    assert result.test.gap == pytest.approx(best.value - result.test_value)
    assert tunedag.status(spec).to_dict() == result.to_dict()


@pytest.mark.parametrize(
    "keywords",
    [
        {"workers": 1.5},
        {"workers": "2"},
        {"workers": True},
        {"max_new_trials": 1.5},
        {"max_new_trials": -1},
        {"storage": " "},
    ],
    ids=repr,
)
def test_python_api_arguments_of_the_wrong_kind_are_usage_errors(
    tmp_path: Path, keywords: dict[str, Any]
) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path)))
    with pytest.raises(tunedag.errors.UsageError) as refused:
        tunedag.run(spec, **keywords)
    assert refused.value.exit_code == 2
    assert not (tmp_path / "studies.sqlite").exists()  # refused before anything is stored


def test_a_finished_study_run_again_adds_nothing(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 3})
    path = write_spec(tmp_path, spec_dict)
    first = cli(["run", path], tmp_path)
    assert first.exit_code == 0, first.stderr
    before = stored_trials(spec_dict)

    again = cli(["run", path, "--json"], tmp_path)
    assert again.exit_code == 0, again.stderr
    assert stored_trials(spec_dict) == before
    with open_store(spec_dict) as store:
        assert len(store.test_evaluations(spec_dict["name"])) == 1
    events = events_of(again.stdout)
    assert events[0] == {"event": "version", "schema": 1}
    assert not [e for e in events if e["event"].startswith("trial_")]
    assert events[-1]["event"] == "study_finished"  # nothing ran, and the last event says so
    assert events[-1]["reason"] == "budget" and events[-1]["counts"]["complete"] == 3
    assert status(path, tmp_path)["counts"]["complete"] == 3


def test_max_new_trials_runs_a_study_in_slices(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 5})
    path = write_spec(tmp_path, spec_dict)
    looks = []
    for expected in (2, 4, 5, 5):
        result = cli(["run", path, "--max-new-trials", 2, "--json"], tmp_path)
        assert result.exit_code == 0, result.stderr
        events = events_of(result.stdout)
        looks.append([e for e in events if e["event"] == "test_evaluated"])
        now = status(path, tmp_path)
        assert now["counts"]["complete"] == expected
        assert now["finished"] is (expected == 5)
        assert (now["test"] is None) is (expected < 5)  # no look before the budget is reached
    assert [len(found) for found in looks] == [0, 0, 1, 0]
    assert [t.number for t in stored_trials(spec_dict)] == [0, 1, 2, 3, 4]

    zero = cli(["run", path, "--max-new-trials", 0], tmp_path)
    assert zero.exit_code == 0


def test_a_slice_of_zero_new_trials_runs_nothing(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 3})
    path = write_spec(tmp_path, spec_dict)
    result = cli(["run", path, "--max-new-trials", 0], tmp_path)
    assert result.exit_code == 0, result.stderr
    now = status(path, tmp_path)
    assert now["finished"] is False and now["test"] is None
    # nothing ran; the baseline (trial 0) is queued with the study and waits
    assert now["counts"]["waiting"] == 1 and sum(now["counts"].values()) == 1


def test_raising_the_budget_after_the_test_look_is_a_second_look(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 3})
    path = write_spec(tmp_path, spec_dict)
    assert cli(["run", path], tmp_path).exit_code == 0
    first_look = status(path, tmp_path)["test"]

    spec_dict["budget"] = {"trials": 5}
    write_spec(tmp_path, spec_dict)
    refused = cli(["run", path], tmp_path)
    assert refused.exit_code == 3
    assert "second look" in refused.stderr and "--allow-second-look" in refused.stderr
    assert len(stored_trials(spec_dict)) == 3  # refused before any new trial ran
    with pytest.raises(TestSetLockedError):
        tunedag.run(tunedag.load_spec(path))

    allowed = cli(["run", path, "--allow-second-look", "--json"], tmp_path)
    assert allowed.exit_code == 0, allowed.stderr
    assert len(stored_trials(spec_dict)) == 5
    (looked,) = [e for e in events_of(allowed.stdout) if e["event"] == "test_evaluated"]
    assert looked["second_look"] is True
    with open_store(spec_dict) as store:
        looks = store.test_evaluations(spec_dict["name"])
    assert [e.second_look for e in looks] == [False, True]
    assert looks[0].value == first_look["value"]
    now = status(path, tmp_path)
    assert now["test"]["second_looks"] == 1 and now["counts"]["complete"] == 5

    # and once more, without the flag, a finished study stays finished
    assert cli(["run", path], tmp_path).exit_code == 0


@pytest.mark.parametrize(
    ("section", "changed"),
    [
        ("space", {"model__n_neighbors": {"type": "int", "low": 1, "high": 10}}),
        ("objective", {"metric": "balanced_accuracy"}),
        ("data", {"source": "sklearn:wine"}),
    ],
)
def test_a_changed_study_is_refused_unless_fresh(
    tmp_path: Path, section: str, changed: dict[str, Any]
) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 2})
    path = write_spec(tmp_path, spec_dict)
    assert cli(["run", path], tmp_path).exit_code == 0
    old = stored_trials(spec_dict)

    spec_dict[section] = changed
    write_spec(tmp_path, spec_dict)
    refused = cli(["run", path], tmp_path)
    assert refused.exit_code == 65
    assert f"the {section} of study 'study' changed" in refused.stderr
    assert "--fresh" in refused.stderr
    assert stored_trials(spec_dict) == old
    with pytest.raises(SpecChangedError):
        tunedag.run(tunedag.load_spec(path))

    fresh = cli(["run", path, "--fresh"], tmp_path)
    if section != "data":  # the same test rows: a fresh start would be a second look at them
        assert fresh.exit_code == 3, fresh.stderr
        assert "already scored once" in fresh.stderr and "study 'study'" in fresh.stderr
        assert stored_trials(spec_dict) == old  # refused before anything was archived
        fresh = cli(["run", path, "--fresh", "--allow-second-look"], tmp_path)
    assert fresh.exit_code == 0, fresh.stderr
    assert len(stored_trials(spec_dict)) == 2
    assert stored_trials(spec_dict, "study~1") == old  # the old study is kept, archived
    with open_store(spec_dict) as store:
        assert len(store.test_evaluations("study")) == 1
        assert len(store.test_evaluations("study~1")) == 1


def test_budget_and_execution_may_change_under_a_study(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 4})
    path = write_spec(tmp_path, spec_dict)
    assert cli(["run", path, "--max-new-trials", 2], tmp_path).exit_code == 0
    spec_dict["budget"] = {"trials": 4, "max_failed": 0, "trial_timeout": "30s"}
    spec_dict["execution"] = {"workers": 2}
    write_spec(tmp_path, spec_dict)
    result = cli(["run", path], tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [t.number for t in stored_trials(spec_dict)] == [0, 1, 2, 3]


def test_json_events_and_status_from_the_installed_command(tmp_path: Path) -> None:
    spec_dict = base_spec(tmp_path, budget={"trials": 3})
    path = write_spec(tmp_path, spec_dict)
    events_file = tmp_path / "events" / "run.jsonl"
    done = run_process(["run", path, "--json", "--events-file", events_file], tmp_path)
    assert done.returncode == 0, done.stderr
    events = events_of(done.stdout)  # stdout holds events only; progress went to stderr
    assert "trial" in done.stderr and "best trial" in done.stderr
    assert events[0] == {"event": "version", "schema": 1}
    for event in events[1:]:
        assert {"event", "study", "ts"} <= set(event), event
        assert event["study"] == "study"
    kinds = [e["event"] for e in events[1:]]
    assert kinds[0] == "study_started"
    assert kinds.count("trial_started") == kinds.count("trial_completed") == 3
    assert kinds[-2:] == ["study_finished", "test_evaluated"]
    completed = [e for e in events if e["event"] == "trial_completed"]
    assert {"number", "params", "value", "fold_values", "duration_s"} <= set(completed[0])
    assert len(completed[0]["fold_values"]) == 3
    finished = events[-2]
    assert finished["reason"] == "budget" and finished["counts"]["complete"] == 3
    assert {"best_number", "best_params", "best_value"} <= set(finished)
    assert {"value", "cv_value", "gap"} <= set(events[-1])
    assert read_events(events_file) == events  # the events file gets the same stream

    payload = status(path, tmp_path)
    assert set(payload) >= STATUS_KEYS
    assert payload["study"] == "study" and payload["finished"] is True
    assert payload["reason"] == "budget"
    assert set(payload["counts"]) >= COUNT_KEYS and payload["counts"]["complete"] == 3
    assert {"number", "params", "value"} <= set(payload["best"])
    assert payload["best"]["number"] == finished["best_number"]
    assert payload["best"]["value"] == finished["best_value"]
    assert {"value", "cv_value", "gap"} <= set(payload["test"])
    assert payload["test"]["value"] == events[-1]["value"]


def test_status_of_a_study_that_never_ran(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    payload = status(path, tmp_path)
    assert set(payload) >= STATUS_KEYS
    assert payload["finished"] is False and payload["best"] is None and payload["test"] is None
    states = ["waiting", "running", "complete", "pruned", "failed"]
    assert payload["counts"] == dict.fromkeys(states, 0)
    assert not (tmp_path / "studies.sqlite").exists()  # asking created no storage


def test_events_in_process_follow_the_contract(tmp_path: Path) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 2})))
    events, seen = recorder()
    tunedag.run(spec, events=events)
    started = [e for e in seen if e["event"] == "trial_started"]
    completed = [e for e in seen if e["event"] == "trial_completed"]
    assert [e["number"] for e in started] == [e["number"] for e in completed] == [0, 1]
    assert all(e["attempt"] == 1 for e in started)
    reported = [e for e in seen if e["event"] == "trial_reported"]
    assert [(e["number"], e["step"]) for e in reported] == [
        (n, s) for n in (0, 1) for s in range(3)
    ]
    # the last report of a trial is its running mean over every fold: its value
    assert reported[2]["value"] == pytest.approx(completed[0]["value"])
    assert seen[-1]["event"] == "test_evaluated"
