"""The baseline: the estimators' defaults scored on the same folds as every trial.

Inside the space the defaults are trial 0 (queued before the sampler's first proposal and
counted in the budget); outside it they are a separate record scored once the search ends.
The scores are checked against scikit-learn's own ``cross_val_score`` on the stored folds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import base_spec, cli, install_plugins, open_store, trial_spec, write_spec
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tunedag


def run(tmp_path: Path, **sections: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run a base-spec study through the CLI; (spec, status --json, the run's stderr)."""
    spec = base_spec(tmp_path, **sections)
    path = write_spec(tmp_path, spec)
    result = cli(["run", path], tmp_path)
    assert result.exit_code == 0, result.stderr
    status = cli(["status", path, "--json"], tmp_path)
    return spec, json.loads(status.stdout), result.stderr


def defaults_by_hand(spec: dict[str, Any]) -> list[float]:
    """Fold scores of the default k-NN pipeline, by scikit-learn, on the study's stored folds."""
    X, y = load_iris(return_X_y=True)
    dev, _ = train_test_split(np.arange(len(y)), test_size=0.25, random_state=7, stratify=y)
    dev = np.sort(dev)
    with open_store(spec) as store:
        folds = store.load_folds(spec["name"])
    assert folds is not None
    pipeline = make_pipeline(StandardScaler(), KNeighborsClassifier())
    scores = cross_val_score(pipeline, X[dev], y[dev], cv=folds, scoring="accuracy")
    return [float(s) for s in scores]


def test_defaults_inside_the_space_are_trial_0(tmp_path: Path) -> None:
    spec, status, stderr = run(tmp_path)
    with open_store(spec) as store:
        trials = store.trials("study")
    assert len(trials) == 4  # the baseline counts toward the budget
    assert trials[0].params == {"model__n_neighbors": 5}
    baseline = status["baseline"]
    assert baseline["trial"] == 0 and baseline["inside_space"] is True
    assert baseline["fold_values"] == pytest.approx(defaults_by_hand(spec), abs=1e-12)
    assert baseline["value"] == trials[0].value
    assert baseline["gain"] == pytest.approx(status["best"]["value"] - baseline["value"])
    assert f"baseline (defaults, trial 0): accuracy={baseline['value']:.5g}" in stderr


def test_defaults_outside_the_space_are_a_separate_labelled_baseline(tmp_path: Path) -> None:
    space = {"model__n_neighbors": {"type": "int", "low": 20, "high": 40}}
    spec, status, stderr = run(tmp_path, space=space)
    with open_store(spec) as store:
        trials = store.trials("study")
    assert len(trials) == 4 and all(t.params["model__n_neighbors"] >= 20 for t in trials)
    baseline = status["baseline"]
    assert baseline["trial"] is None and baseline["inside_space"] is False
    assert baseline["params"] == {"model__n_neighbors": 5}
    expected = defaults_by_hand(spec)
    assert baseline["fold_values"] == pytest.approx(expected, abs=1e-12)
    assert baseline["value"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert "baseline (defaults, outside the space)" in stderr


def test_a_best_trial_not_above_the_defaults_is_warned_about(tmp_path: Path) -> None:
    space = {"model__n_neighbors": {"type": "int", "values": [60, 70]}}
    _, status, stderr = run(tmp_path, space=space, sampler={"name": "grid"})
    assert status["baseline"]["beaten"] is False and status["baseline"]["gain"] < 0
    assert "warning: the best trial is not above the estimators' defaults" in stderr


def test_the_defaults_as_the_best_trial_are_warned_about(tmp_path: Path) -> None:
    space = {"model__n_neighbors": {"type": "int", "values": [5, 60]}}
    _, status, stderr = run(tmp_path, space=space, sampler={"name": "grid"})
    assert status["counts"]["complete"] == 2  # the grid never repeats the defaults' point
    assert status["best"]["number"] == 0 and status["baseline"]["trial"] == 0
    assert "warning: the best trial is the defaults (trial 0)" in stderr


def test_defaults_off_a_grid_are_not_a_grid_trial(tmp_path: Path) -> None:
    space = {"model__n_neighbors": {"type": "int", "low": 2, "high": 30, "grid_points": 3}}
    spec, status, _ = run(tmp_path, space=space, sampler={"name": "grid"})
    with open_store(spec) as store:
        trials = store.trials("study")
    assert sorted(t.params["model__n_neighbors"] for t in trials) == [2, 16, 30]
    assert status["baseline"]["inside_space"] is False


def test_baseline_false_runs_only_the_samplers_trials(tmp_path: Path) -> None:
    spec, status, stderr = run(tmp_path, baseline=False)
    assert status["baseline"] is None and "baseline (defaults" not in stderr
    with open_store(spec) as store:
        assert store.baseline("study") is None


def test_a_custom_trial_function_has_no_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = trial_spec(tmp_path, "nan_above_half", {"x": {"type": "float", "low": 0.0, "high": 0.5}})
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec)))
    assert result.baseline is None


def test_the_report_and_results_json_show_the_baseline(tmp_path: Path) -> None:
    space = {"model__n_neighbors": {"type": "int", "values": [60, 70]}}
    _, status, _ = run(tmp_path, space=space, sampler={"name": "grid"})
    result = cli(["report", tmp_path / "spec.json", "--out", tmp_path / "report"], tmp_path)
    assert result.exit_code == 0, result.stderr
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["baseline"] == status["baseline"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Against the defaults" in html and "outside the space" in html
    assert "the best trial is not above the estimators&#39; defaults" in html
