"""Custom trial functions and ``trial.fit``: scored once on the test rows, saved, or plainly not.

The trial function cross-validates a logistic regression by hand on the folds it is given;
the fit function fits the same model on every development row. tunedag scores that model
on the test rows with the objective's scorer and saves it like a pipeline's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import base_spec, cli, write_spec
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import tunedag
from tunedag.model import card_path, model_path

MODULE = '''
"""Trial and fit functions for tunedag's trial.fit tests."""
import numpy as np
from sklearn.linear_model import LogisticRegression


def cross_validate(context):
    scores = []
    for X_train, y_train, X_valid, y_valid in context.folds():
        model = LogisticRegression(C=context.params["C"], max_iter=500).fit(X_train, y_train)
        scores.append(model.score(X_valid, y_valid))
    return float(np.mean(scores))


def fit(context):
    return LogisticRegression(C=context.params["C"], max_iter=500).fit(context.X, context.y)


def not_a_model(context):
    return 42
'''


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "fitplug.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def function_spec(folder: Path, fit: str | None) -> Path:
    trial = {"function": "fitplug:cross_validate", **({"fit": f"fitplug:{fit}"} if fit else {})}
    spec = base_spec(
        folder,
        pipeline=None,
        trial=trial,
        space={"C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        budget={"trials": 3},
        allow_imports=["fitplug"],
    )
    return write_spec(folder, spec)


def test_a_fit_function_is_scored_on_the_test_rows_and_saved(folder: Path) -> None:
    spec = tunedag.load_spec(function_spec(folder, "fit"))
    result = tunedag.run(spec)
    assert result.best_params is not None and result.test is not None
    X, y = load_iris(return_X_y=True)
    rows = np.arange(len(y))
    dev, test = train_test_split(rows, test_size=0.25, random_state=7, stratify=y)
    dev, test = np.sort(dev), np.sort(test)
    by_hand = LogisticRegression(C=result.best_params["C"], max_iter=500).fit(X[dev], y[dev])
    assert result.test_value == pytest.approx(by_hand.score(X[test], y[test]), abs=1e-12)
    assert card_path(model_path(spec)).is_file()
    np.testing.assert_array_equal(tunedag.load_model(spec).predict(X), by_hand.predict(X))


def test_without_a_fit_function_the_study_says_it_has_no_test_score(folder: Path) -> None:
    path = function_spec(folder, None)
    result = cli(["run", path], folder)
    assert result.exit_code == 0, result.stderr
    assert "no test score: a custom trial function returns a score" in result.stderr
    assert "trial.fit" in result.stderr
    assert not model_path(tunedag.load_spec(path)).exists()


def test_a_fit_function_that_returns_no_estimator_is_named(folder: Path) -> None:
    result = cli(["run", function_spec(folder, "not_a_model")], folder)
    assert result.exit_code == 70
    assert "trial.fit fitplug:not_a_model returned int, not a fitted estimator" in result.stderr
