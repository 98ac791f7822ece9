"""A grid study scores every configuration exactly as scikit-learn's GridSearchCV does.

Same development rows, same folds, same scorer: the mean CV score of every grid point, the
best configuration and the refit-on-all-development-rows test score all agree with
GridSearchCV to the last bit. The grid is also enumerated in ParameterGrid's order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import base_spec, recorder, storage_url, write_spec
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    StratifiedKFold,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

import tunedag
from tunedag.prepare import prepare
from tunedag.spec.validate import base_dir_of
from tunedag.storage import TrialState, open_storage

CASES: dict[str, dict[str, Any]] = {
    # stratified, shuffled folds; a log-spaced `grid_points` axis and a `values` axis
    "svc-roc_auc": {
        "data": "sklearn:breast_cancer",
        "validation": {"method": "stratified_kfold", "folds": 5},
        "pipeline": [
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.svm.SVC"},
        ],
        "space": {
            "model__C": {"type": "float", "low": 0.1, "high": 10.0, "log": True, "grid_points": 3},
            "model__gamma": {"type": "float", "values": [0.01, 0.1]},
        },
        "metric": "roc_auc",
        "sklearn": lambda: Pipeline([("scale", StandardScaler()), ("model", SVC())]),
        "grid": {"model__C": list(np.geomspace(0.1, 10.0, 3)), "model__gamma": [0.01, 0.1]},
        "splitter": lambda seed: StratifiedKFold(5, shuffle=True, random_state=seed),
    },
    # contiguous (unshuffled) k-fold; ties in accuracy are broken the same way
    "knn-accuracy": {
        "data": "sklearn:wine",
        "validation": {"method": "kfold", "folds": 4, "shuffle": False},
        "pipeline": [
            {"name": "scale", "estimator": "sklearn.preprocessing.MinMaxScaler"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        "space": {
            "model__n_neighbors": {"type": "int", "values": [1, 5, 15, 25]},
            "model__weights": {"type": "categorical", "choices": ["uniform", "distance"]},
        },
        "metric": "accuracy",
        "sklearn": lambda: Pipeline([("scale", MinMaxScaler()), ("model", KNeighborsClassifier())]),
        "grid": {"model__n_neighbors": [1, 5, 15, 25], "model__weights": ["uniform", "distance"]},
        "splitter": lambda seed: KFold(4),
    },
}


def key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_grid_study_equals_gridsearchcv(tmp_path: Path, case: str) -> None:
    c = CASES[case]
    seed = 3
    spec_dict = base_spec(
        tmp_path,
        name=f"grid-{case}",
        seed=seed,
        data={"source": c["data"]},
        split={"test": {"fraction": 0.25, "stratify": True}, "validation": c["validation"]},
        pipeline=c["pipeline"],
        space=c["space"],
        objective={"metric": c["metric"]},
        sampler={"name": "grid"},
        budget={"trials": 100, "max_failed": 0},  # more than the grid: it stops exhausted
        baseline=False,  # trials in ParameterGrid's order (the defaults would come first)
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    events, seen = recorder()
    result = tunedag.run(spec, events=events)

    n_points = len(ParameterGrid(c["grid"]))
    assert result.finished and result.reason == "exhausted"
    assert len(result.trials) == n_points
    assert all(t.state == TrialState.COMPLETE for t in result.trials)

    # the test split is train_test_split's, and the development rows are the rest, in order
    prepared = prepare(spec, base_dir_of(spec))
    from sklearn import datasets

    loader = {
        "sklearn:breast_cancer": datasets.load_breast_cancer,
        "sklearn:wine": datasets.load_wine,
    }[c["data"]]
    X, y = loader(return_X_y=True)
    dev_rows, test_rows = train_test_split(
        np.arange(len(y)), test_size=0.25, random_state=seed, stratify=y
    )
    np.testing.assert_array_equal(prepared.dev.X, X[np.sort(dev_rows)])
    np.testing.assert_array_equal(prepared.test.X, X[np.sort(test_rows)])
    np.testing.assert_array_equal(prepared.test.y, y[np.sort(test_rows)])

    # the stored folds are the splitter's folds of the development rows
    with open_storage(storage_url(tmp_path / "studies.sqlite")) as store:
        folds = store.load_folds(spec.name)
        evaluations = store.test_evaluations(spec.name)
    assert folds is not None
    expected_folds = list(c["splitter"](seed).split(prepared.dev.X, prepared.dev.y))
    assert len(folds) == len(expected_folds)
    for (train, valid), (e_train, e_valid) in zip(folds, expected_folds, strict=True):
        np.testing.assert_array_equal(train, e_train)
        np.testing.assert_array_equal(valid, e_valid)

    search = GridSearchCV(c["sklearn"](), c["grid"], scoring=c["metric"], cv=folds, refit=True)
    search.fit(prepared.dev.X, prepared.dev.y)
    expected = {
        key(params): (
            mean,
            [search.cv_results_[f"split{k}_test_score"][i] for k in range(len(folds))],
        )
        for i, (params, mean) in enumerate(
            zip(search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True)
        )
    }

    # every configuration, once, in ParameterGrid's order, with GridSearchCV's scores
    assert [key(t.params) for t in result.trials] == [key(p) for p in ParameterGrid(c["grid"])]
    for trial in result.trials:
        mean, fold_scores = expected[key(trial.params)]
        assert trial.value == pytest.approx(mean, rel=1e-12, abs=0)
        np.testing.assert_allclose(trial.fold_values, fold_scores, rtol=1e-12, atol=0)

    # the same best, and the same test score for it refit on every development row
    assert result.best_params is not None
    assert key(result.best_params) == key(search.best_params_)
    assert result.best_value == pytest.approx(search.best_score_, rel=1e-12, abs=0)
    test_score = get_scorer(c["metric"])(search.best_estimator_, prepared.test.X, prepared.test.y)
    assert result.test_value == pytest.approx(test_score, rel=1e-12, abs=0)
    assert len(evaluations) == 1 and evaluations[0].trial_number == result.best.number

    # and the events told the same story
    kinds = [e["event"] for e in seen]
    assert kinds.count("trial_completed") == n_points
    assert kinds[-2:] == ["study_finished", "test_evaluated"]
    assert seen[-1]["value"] == result.test_value
