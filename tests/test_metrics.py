"""Extra metrics (`objective.report`): computed per fold for every trial and once on the test
set, stored, and shown in events, `status --json`, trials.csv and the report."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tunedag.errors import SpecError
from tunedag.spec.loader import read_document
from tunedag.spec.validate import load_spec
from tunedag.storage import (
    MIGRATIONS,
    TestEvaluation,
    TrialState,
    open_storage,
)

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


def test_metrics_are_stored_per_fold_and_read_back(tmp_path: Path) -> None:
    with open_storage(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        store.create_study("s", {"space": "x"}, "{}")
        trial = store.create_trial("s", {"a": 1})
        metrics = {"precision": [0.5, math.nan, 0.7], "recall": [0.1, 0.2, 0.3]}
        store.finish_trial(
            "s",
            trial.number,
            TrialState.COMPLETE,
            value=1.0,
            fold_values=[1, 1, 1],
            metrics=metrics,
        )
        (stored,) = store.trials("s")
        assert stored.metrics["recall"] == [0.1, 0.2, 0.3]
        assert stored.metrics["precision"][0] == 0.5 and math.isnan(stored.metrics["precision"][1])
        assert stored.metric_means() == pytest.approx({"precision": 0.6, "recall": 0.2})
        evaluation = TestEvaluation(0, 0.9, 1.0, 0.1, False, "fp", 0.0, metrics={"recall": 0.4})
        store.record_test_evaluation("s", evaluation)
        assert store.test_evaluations("s")[0].metrics == {"recall": 0.4}


def test_a_version_2_file_gains_empty_metrics(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        for version in (1, 2):
            for sql in MIGRATIONS[version]:
                conn.execute(sql)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
        conn.execute(
            "INSERT INTO studies (id, name, fingerprint, spec_json, created_at) "
            "VALUES (1, 'old', '{}', '{}', 0)"
        )
        conn.execute(
            "INSERT INTO trials (study_id, number, state, params, value, fold_values) "
            "VALUES (1, 0, 'complete', '{\"a\": 1}', 0.5, '[0.5]')"
        )
    conn.close()
    with open_storage(f"sqlite:///{path}") as store:
        (trial,) = store.trials("old")
    assert trial.value == 0.5 and trial.metrics == {} and trial.metric_means() == {}


@pytest.mark.parametrize(
    ("report", "says"),
    [
        ("[precison]", "objective.report[0]: unknown scorer 'precison'; did you mean 'precision'"),
        ("[r2]", "objective.report[0]: 'r2' scores regressors, but the model is a classifier"),
        ("[f1, recall]", "objective.report[0]: 'f1' is already reported"),
    ],
)
def test_report_names_are_checked(
    report: str, says: str, spec_file: Callable[..., Path], base_spec_yaml: str
) -> None:
    text = base_spec_yaml.replace(
        "objective: {metric: roc_auc}", f"objective: {{metric: f1, report: {report}}}"
    )
    with pytest.raises(SpecError) as error:
        load_spec(spec_file(text))
    assert says in str(error.value)


def test_a_report_metric_does_not_change_the_study(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    """Adding a report metric to a stored study is no change of its objective."""
    data = read_document(SPECS / "quickstart.yaml").data
    data.update(budget={"trials": 1}, storage=f"sqlite:///{tmp_path / 'q.sqlite'}")
    path = tmp_path / "q.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert run_cli("run", path, "--max-new-trials", "1").exit_code == 0
    data["objective"]["report"] = ["accuracy"]
    path.write_text(json.dumps(data), encoding="utf-8")
    result = run_cli("run", path)
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def columns_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """specs/columns.yaml run with 2 trials: its events, status --json and report files."""
    from click.testing import CliRunner

    from tunedag.cli import main

    tmp_path = tmp_path_factory.mktemp("columns")
    data = read_document(SPECS / "columns.yaml").data
    data["data"]["source"] = f"csv:{SPECS / 'data' / 'customers.csv'}"
    data.update(budget={"trials": 2}, storage=f"sqlite:///{tmp_path / 'c.sqlite'}")
    path = tmp_path / "columns.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    runner = CliRunner(env={"TUNEDAG_DISABLE_PLUGIN_AUTOLOAD": "1"})
    run = runner.invoke(main, ["run", str(path), "--json"])
    assert run.exit_code == 0, run.stderr
    status = runner.invoke(main, ["status", str(path), "--json"])
    out = tmp_path / "out"
    assert runner.invoke(main, ["report", str(path), "--out", str(out)]).exit_code == 0
    with (out / "trials.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return {
        "events": [json.loads(line) for line in run.stdout.splitlines()],
        "status": json.loads(status.stdout),
        "rows": rows,
        "html": (out / "report.html").read_text(encoding="utf-8"),
        "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
    }


NAMES = ["precision", "recall", "roc_auc"]


def test_test_set_metrics_in_events_status_and_report(columns_study: dict[str, Any]) -> None:
    (tested,) = [e for e in columns_study["events"] if e["event"] == "test_evaluated"]
    assert sorted(tested["metrics"]) == NAMES
    assert all(0.0 <= v <= 1.0 for v in tested["metrics"].values())
    assert columns_study["status"]["test"]["metrics"] == tested["metrics"]
    assert columns_study["results"]["test"]["metrics"] == tested["metrics"]
    assert "roc_auc" in columns_study["html"]


def test_fold_metrics_in_events_status_trials_csv_and_report(
    columns_study: dict[str, Any],
) -> None:
    completed = [e for e in columns_study["events"] if e["event"] == "trial_completed"]
    assert len(completed) == 2
    for event in completed:
        assert sorted(event["metrics"]) == NAMES
        assert all(0.0 <= v <= 1.0 for v in event["metrics"].values())
    assert sorted(columns_study["status"]["best"]["metrics"]) == NAMES
    rows = columns_study["rows"]
    header = list(rows[0])
    assert header[header.index("params.model__C") + 1 : header.index("fold_0")] == [
        f"metric.{n}" for n in NAMES
    ]
    assert all(0.0 <= float(row["metric.recall"]) <= 1.0 for row in rows)
    assert "<th>precision</th>" in columns_study["html"]
