"""What a flow reads off the events and ``status --json``: attempts, the study's best across
runs, the study's direction, metric and budget, and the trials running now."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import base_spec, cli, write_spec

from tunedag.storage import open_storage


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_study_started_says_what_the_study_is_judged_by(tmp_path: Path) -> None:
    spec = base_spec(
        tmp_path,
        budget={"trials": 3, "time": "10m", "max_failed": 1},
        pruner={"name": "median"},
    )
    result = cli(["run", write_spec(tmp_path, spec), "--json"], tmp_path)
    assert result.exit_code == 0, result.stderr
    started = next(e for e in events_of(result.stdout) if e["event"] == "study_started")
    assert started["study"] == "study" and started["direction"] == "maximize"
    assert started["metric"] == "accuracy"
    assert (started["budget"], started["budget_time_s"], started["max_failed"]) == (3, 600.0, 1)
    assert started["sampler"] == {"name": "random", "options": {}}
    assert started["pruner"]["name"] == "median"
    assert started["best"] is None


def test_every_outcome_carries_its_attempt_and_the_studys_best_across_runs(
    tmp_path: Path,
) -> None:
    spec = base_spec(tmp_path, budget={"trials": 6})
    path = write_spec(tmp_path, spec)
    first = cli(["run", path, "--max-new-trials", "3", "--json"], tmp_path)
    assert first.exit_code == 0, first.stderr
    events = events_of(first.stdout)
    complete = [e for e in events if e["event"] == "trial_completed"]
    best_so_far = max(complete, key=lambda e: (e["value"], -e["number"]))
    assert complete[-1]["best"] == {"number": best_so_far["number"], "value": best_so_far["value"]}
    assert all(e["attempt"] == 1 for e in complete)

    second = cli(["run", path, "--json"], tmp_path)
    assert second.exit_code == 0, second.stderr
    events = events_of(second.stdout)
    started = next(e for e in events if e["event"] == "study_started")
    assert started["best"] == complete[-1]["best"]  # the stored best, not a fresh one
    values = [e["value"] for e in complete]
    for event in (e for e in events if e["event"] == "trial_completed"):
        values.append(event["value"])
        assert event["best"]["value"] == max(values)
    # the progress line prints the study's best, never a best of this run alone
    shown = [float(v) for v in re.findall(r"best=([0-9.]+)", second.stderr)]
    assert shown and all(v >= best_so_far["value"] - 5e-5 for v in shown)


def test_status_json_has_direction_metric_budget_and_time(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, budget={"trials": 2, "time": "1h"}, objective={"metric": "f1_macro"})
    path = write_spec(tmp_path, spec)
    before = json.loads(cli(["status", path, "--json"], tmp_path).stdout)
    assert before["budget"] == {"trials": 2, "time": 3600.0, "used_time": 0.0}
    assert before["elapsed_s"] is None and before["running"] == []
    assert cli(["run", path], tmp_path).exit_code == 0
    after = json.loads(cli(["status", path, "--json"], tmp_path).stdout)
    assert (after["direction"], after["metric"]) == ("maximize", "f1_macro")
    assert after["budget"]["trials"] == 2 and after["budget"]["time"] == 3600.0
    assert 0 < after["budget"]["used_time"] <= after["elapsed_s"]
    assert after["running"] == []


def test_a_trial_left_running_is_listed_by_status_then_requeued_with_its_attempt(
    tmp_path: Path,
) -> None:
    spec = base_spec(tmp_path)
    path = write_spec(tmp_path, spec)

    assert cli(["run", path, "--max-new-trials", "1"], tmp_path).exit_code == 0
    with open_storage(spec["storage"]) as store:
        store.create_trial(
            "study", {"model__n_neighbors": 3}
        )  # as a killed driver leaves it: running
    status = json.loads(cli(["status", path, "--json"], tmp_path).stdout)
    (running,) = status["running"]
    assert running["number"] == 1 and running["attempt"] == 1 and running["started_at"] > 0
    resumed = cli(["run", path, "--json"], tmp_path)
    assert resumed.exit_code == 0, resumed.stderr
    requeued = next(e for e in events_of(resumed.stdout) if e["event"] == "trial_requeued")
    assert (requeued["number"], requeued["attempt"]) == (1, 1)
    again = next(
        e for e in events_of(resumed.stdout) if e["event"] == "trial_completed" and e["number"] == 1
    )
    assert again["attempt"] == 2
