"""The five ways a careless user got past the locked test set, each replayed: refused, or
recorded and shown everywhere. Real CLI, real SQLite, real data files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import TUNEDAG, base_spec, cli, cli_env, write_spec

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def csv_files(directory: Path, n_dev: int = 120, n_test: int = 40) -> tuple[Path, Path]:
    """train.csv and test.csv of one synthetic classification problem, disjoint rows."""
    rng = np.random.default_rng(0)
    n = n_dev + n_test
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["label"] = (frame["a"] + 0.5 * rng.normal(size=n) > 0).astype(int)
    train, test = directory / "train.csv", directory / "test.csv"
    frame.iloc[:n_dev].to_csv(train, index=False)
    frame.iloc[n_dev:].to_csv(test, index=False)
    return train, test


def file_spec(tmp_path: Path, test_file: str, **sections: Any) -> dict[str, Any]:
    return base_spec(
        tmp_path,
        data={"source": "csv:train.csv", "target": "label"},
        split={"test": {"source": f"csv:{test_file}"}, "validation": {"method": "kfold"}},
        budget={"trials": 2},
        **sections,
    )


def events_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def status_json(path: Path, cwd: Path) -> dict[str, Any]:
    result = cli(["status", path, "--json"], cwd)
    assert result.exit_code == 0, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


# -- 1. the test file is the training file, or inside it -----------------------------------------


def test_a_test_file_that_is_the_data_file_is_refused_at_validate(tmp_path: Path) -> None:
    csv_files(tmp_path)
    path = write_spec(tmp_path, file_spec(tmp_path, "train.csv"), "spec.yaml")
    for command in ("validate", "run"):
        result = cli([command, path], tmp_path)
        assert result.exit_code == 65, result.stderr
        assert "split.test.source: the test file is the training file" in result.stderr
        assert str(tmp_path / "train.csv") in result.stderr
    assert not (tmp_path / "studies.sqlite").exists()  # refused before anything was stored


def test_a_data_file_holding_the_test_rows_is_refused_before_fitting(tmp_path: Path) -> None:
    train, test = csv_files(tmp_path)
    both = pd.concat([pd.read_csv(train), pd.read_csv(test).iloc[:7]])
    both.to_csv(train, index=False)  # 7 test rows copied into the training data
    path = write_spec(tmp_path, file_spec(tmp_path, "test.csv"))
    result = cli(["run", path], tmp_path)
    assert result.exit_code == 65, result.stderr
    message = result.stderr
    assert "split.test.source: 7 of the 40 test rows in" in message
    assert str(test) in message and str(train) in message
    assert "allow_overlap: 7" in message
    assert status_json(path, tmp_path)["counts"]["complete"] == 0  # nothing fitted or stored

    lint = cli(["lint", path], tmp_path)
    assert lint.exit_code == 65 and "7 of the 40 test rows" in lint.stderr

    spec = file_spec(tmp_path, "test.csv")
    spec["split"]["test"]["allow_overlap"] = 7  # the user says these 7 are legitimate
    assert cli(["run", write_spec(tmp_path, spec)], tmp_path).exit_code == 0


# -- 2. --fresh ----------------------------------------------------------------------------------


def test_fresh_after_a_test_look_is_refused_and_an_allowed_one_shows_everywhere(
    tmp_path: Path,
) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 2}))
    first = cli(["run", path, "--json"], tmp_path)
    assert first.exit_code == 0, first.stderr
    (look,) = [e for e in events_of(first.stdout) if e["event"] == "test_evaluated"]
    assert (look["look"], look["of"], look["second_look"]) == (1, 1, False)
    score = f"accuracy={look['value']:.5g}"

    refused = cli(["run", path, "--fresh"], tmp_path)
    assert refused.exit_code == 3
    assert "already scored once" in refused.stderr and "look 1 on" in refused.stderr
    assert "by study 'study'" in refused.stderr and score in refused.stderr
    assert "--allow-second-look" in refused.stderr

    allowed = cli(["run", path, "--fresh", "--allow-second-look", "--json"], tmp_path)
    assert allowed.exit_code == 0, allowed.stderr
    (again,) = [e for e in events_of(allowed.stdout) if e["event"] == "test_evaluated"]
    assert (again["look"], again["of"], again["second_look"]) == (2, 2, True)
    assert "SECOND LOOK: the test rows were scored 2 times" in allowed.stderr  # the terminal

    plain = cli(["status", path], tmp_path)
    assert "SECOND LOOK" in plain.stderr and "look 2 on" in plain.stderr
    assert "[--allow-second-look]" in plain.stderr
    test = status_json(path, tmp_path)["test"]
    assert (test["looks"], test["second_looks"]) == (2, 1)

    listed = cli(["looks", path, "--json"], tmp_path)
    assert [row["look"] for row in json.loads(listed.stdout)["looks"]] == [1, 2]

    report = cli(["report", path, "--out", tmp_path / "report"], tmp_path)
    assert report.exit_code == 0, report.stderr
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert (results["test"]["looks"], results["test"]["second_looks"]) == (2, 1)
    html = (tmp_path / "report" / "report.html").read_text()
    assert "The test set was evaluated 2 times" in html


def test_a_run_stopped_between_the_ledger_and_the_storage_finishes_on_retry_with_one_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunedag.errors import StorageBusyError
    from tunedag.storage import Storage

    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 2}))
    record = Storage.record_test_evaluation

    def locked(self: Storage, name: str, evaluation: Any) -> None:
        raise StorageBusyError("the storage is locked by another writer; retry")

    monkeypatch.setattr(Storage, "record_test_evaluation", locked)
    stopped = cli(["run", path], tmp_path)
    assert stopped.exit_code == 75, stopped.stderr  # the look is in the ledger already
    monkeypatch.setattr(Storage, "record_test_evaluation", record)

    retried = cli(["run", path, "--json"], tmp_path)
    assert retried.exit_code == 0, retried.stderr
    (look,) = [e for e in events_of(retried.stdout) if e["event"] == "test_evaluated"]
    assert (look["look"], look["of"], look["second_look"]) == (1, 1, False)
    test = status_json(path, tmp_path)["test"]
    assert (test["looks"], test["second_looks"]) == (1, 0)
    assert test["value"] == look["value"]
    assert cli(["run", path], tmp_path).exit_code == 0  # and it stays finished
    refused = cli(["run", path, "--fresh"], tmp_path)  # a new start is still a second look
    assert refused.exit_code == 3, refused.stderr


# -- 3. deleting .tunedag/, another folder, another name -----------------------------------------


def test_run_after_deleting_the_storage_is_refused_and_names_the_earlier_look(
    tmp_path: Path,
) -> None:
    spec = base_spec(tmp_path, budget={"trials": 2}, storage=None)  # .tunedag/ in the cwd
    path = write_spec(tmp_path, spec, "spec.yaml")
    env = cli_env(tmp_path)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TUNEDAG, "run", str(path)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    first = run()
    assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / ".tunedag")
    again = run()
    assert again.returncode == 3, again.stderr
    assert "these 38 test rows" in again.stderr and "were already scored once" in again.stderr
    assert "look 1 on" in again.stderr and "by study 'study'" in again.stderr
    assert f"spec {path}" in again.stderr and "accuracy=" in again.stderr


def test_another_folder_and_another_name_find_the_earlier_look(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    spec = base_spec(first, budget={"trials": 2})
    assert cli(["run", write_spec(first, spec)], first).exit_code == 0

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    renamed = base_spec(elsewhere, name="renamed", budget={"trials": 3})
    refused = cli(["run", write_spec(elsewhere, renamed)], elsewhere)
    assert refused.exit_code == 3
    assert "study 'renamed': these 38 test rows" in refused.stderr
    assert "by study 'study'" in refused.stderr and str(first) in refused.stderr


# -- 5. folds that leak across the test split's reason to exist -----------------------------------


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        (
            {
                "test": {"fraction": 0.2, "order_by": "date"},
                "validation": {"method": "kfold", "folds": 3},
            },
            "split.validation.method: the test split holds out the latest rows by `date`, but "
            "shuffled kfold folds",
        ),
        (
            {
                "test": {"fraction": 0.2, "groups": "patient_id"},
                "validation": {"method": "stratified_kfold", "folds": 3},
            },
            "split.validation.method: the test split holds out whole `patient_id` groups, but "
            "stratified_kfold folds",
        ),
        (
            {
                "test": {"fraction": 0.2, "groups": "patient_id"},
                "validation": {"method": "group_kfold", "folds": 3, "groups": "patient"},
            },
            "split.validation.groups: the test split holds out whole `patient_id` groups, but "
            "the folds group by `patient`",
        ),
        (
            {
                "test": {"fraction": 0.2, "stratify": True},
                "validation": {"method": "group_kfold", "folds": 3, "groups": "patient"},
            },
            "split.validation.groups: no column 'patient' in csv:data.csv; did you mean "
            "'patient_id'?",
        ),
    ],
    ids=["order_by-kfold", "groups-stratified", "groups-other-column", "groups-missing"],
)
def test_folds_that_leak_are_refused_at_validate_with_a_location(
    tmp_path: Path, split: dict[str, Any], expected: str
) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=60).astype(str),
            "patient_id": np.repeat(np.arange(12), 5),
            "x": rng.normal(size=60),
            "label": rng.integers(0, 2, 60),
        }
    ).to_csv(tmp_path / "data.csv", index=False)
    spec = base_spec(tmp_path, data={"source": "csv:data.csv", "target": "label"}, split=split)
    path = write_spec(tmp_path, spec, "spec.yaml")
    for command in ("validate", "lint"):
        result = cli([command, path], tmp_path)
        assert result.exit_code == 65, result.stderr
        assert expected in result.stderr
        assert f"{path}:" in result.stderr  # located: file:line:col


# -- lint ----------------------------------------------------------------------------------------


def test_lint_passes_a_clean_spec_and_warns_of_a_feature_that_is_the_target(
    tmp_path: Path,
) -> None:
    csv_files(tmp_path)
    clean = write_spec(tmp_path, file_spec(tmp_path, "test.csv"), "clean.json")
    frame = pd.read_csv(tmp_path / "train.csv")
    frame["outcome_code"] = frame["label"] * 10 + 3  # recorded after the outcome: a leak
    frame.to_csv(tmp_path / "leaky.csv", index=False)
    leaky_spec = base_spec(
        tmp_path,
        data={"source": "csv:leaky.csv", "target": "label"},
        split={"test": {"fraction": 0.25, "stratify": True}},
    )
    leaky = write_spec(tmp_path, leaky_spec, "leaky.json")
    result = cli(["lint", clean, leaky], tmp_path)
    assert result.exit_code == 0, result.stderr
    assert f"{clean}: ok" in result.stderr and f"{leaky}: ok" in result.stderr
    assert "warning:" in result.stderr
    assert "feature 'outcome_code' alone predicts the target" in result.stderr
    assert "'a' alone" not in result.stderr  # a real but imperfect signal is no leak


def test_lint_fails_a_spec_whose_test_set_another_spec_scored(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 2}))
    before = cli(["lint", path], tmp_path)
    assert before.exit_code == 0 and f"{path}: ok" in before.stderr
    assert cli(["run", path], tmp_path).exit_code == 0
    same = cli(["lint", path], tmp_path)  # scored once, by exactly this spec: fine
    assert same.exit_code == 0, same.stderr

    edited = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 9}), "edited.json")
    result = cli(["lint", edited, "--json"], tmp_path)
    assert result.exit_code == 65
    assert "running this spec would be a second look" in result.stderr
    (payload,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert payload["ok"] is False and payload["looks"][0]["study"] == "study"
    assert payload["problems"][0]["field"] == "split.test"


def test_lint_of_a_spec_file_that_is_missing_is_an_error_of_lint_itself(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    result = cli(["lint", path, str(tmp_path / "missing.yaml"), "--json"], tmp_path)
    assert result.exit_code == 66, result.stderr
    first, version, error = (json.loads(line) for line in result.stdout.splitlines())
    assert first["ok"] is True and version["event"] == "version"
    assert error["event"] == "error" and error["kind"] == "SpecNotFoundError"
    assert error["exit_code"] == 66 and error["file"].endswith("missing.yaml")


# -- test rows the trials never saw ----------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    # text, infinity, a class never seen, a single class (roc_auc undefined)
    [("a", "hello"), ("a", "inf"), ("label", 2), ("label", "all 1")],
)
def test_test_rows_that_cannot_be_scored_exit_65_and_spend_no_look(
    tmp_path: Path, column: str, value: Any
) -> None:
    _, test = csv_files(tmp_path)
    frame = pd.read_csv(test).astype(object)
    if value == "all 1":
        frame[column] = 1
    else:
        frame.loc[3, column] = value
    frame.to_csv(test, index=False)
    spec = file_spec(tmp_path, "test.csv", objective={"metric": "roc_auc"})
    path = write_spec(tmp_path, spec, "spec.yaml")
    result = cli(["run", path, "--json"], tmp_path)
    assert result.exit_code == 65, result.output
    error = events_of(result.stdout)[-1]
    assert error["kind"] == "TestRowsError" and "no look was recorded" in error["message"]
    status = status_json(path, tmp_path)
    assert status["test"] is None and status["counts"]["complete"] == 2
