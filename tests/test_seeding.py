"""The study seed reaches every estimator whose `random_state` the spec leaves unset."""

from __future__ import annotations

from pathlib import Path

import tunedag
from tests.helpers import base_spec, storage_url, write_spec
from tunedag.estimators import build_pipeline, derived_seed
from tunedag.spec.models import StepSpec

RANDOMIZED = [
    {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
    {
        "name": "pca",
        "estimator": "sklearn.decomposition.PCA",
        "params": {"n_components": 5, "svd_solver": "randomized"},
    },
    {"name": "model", "estimator": "sklearn.linear_model.SGDClassifier"},
]


def test_each_unset_random_state_gets_a_seed_from_the_study_seed_and_its_path() -> None:
    steps = [
        StepSpec(name="pca", estimator="sklearn.decomposition.PCA"),
        StepSpec(
            name="model",
            estimator="sklearn.ensemble.BaggingClassifier",
            params={"estimator": {"estimator": "sklearn.tree.DecisionTreeClassifier"}},
        ),
        StepSpec(
            name="fixed", estimator="sklearn.linear_model.SGDClassifier", params={"random_state": 3}
        ),
        StepSpec(
            name="unseeded",
            estimator="sklearn.linear_model.SGDClassifier",
            params={"random_state": None},
        ),
    ]
    params = build_pipeline(steps, seed=42).get_params(deep=True)
    assert params["pca__random_state"] == derived_seed(42, "pca__random_state")
    assert params["model__random_state"] == derived_seed(42, "model__random_state")
    nested = "model__estimator__random_state"
    assert params[nested] == derived_seed(42, nested) != params["model__random_state"]
    assert params["fixed__random_state"] == 3  # written by the spec
    assert params["unseeded__random_state"] is None  # written as null: left unseeded
    assert (
        build_pipeline(steps, seed=43).get_params()["pca__random_state"]
        != params["pca__random_state"]
    )
    assert build_pipeline(steps).get_params()["pca__random_state"] is None  # validate: no seed
    assert 0 <= derived_seed(2**32 - 1, "x__random_state") < 2**32


def test_a_random_state_a_trial_sets_stays_as_set_even_null() -> None:
    steps = [StepSpec(name="model", estimator="sklearn.ensemble.RandomForestClassifier")]
    pipeline = build_pipeline(steps, seed=11)
    assert pipeline.get_params()["model__random_state"] == derived_seed(11, "model__random_state")
    assert pipeline.set_params(model__random_state=None).get_params()["model__random_state"] is None
    assert pipeline.set_params(model__random_state=1).get_params()["model__random_state"] == 1
    # a trial that sets something else leaves the derived seed where the spec leaves it unset
    fresh = build_pipeline(steps, seed=11).set_params(model__n_estimators=5)
    assert fresh.get_params()["model__random_state"] == derived_seed(11, "model__random_state")


def test_two_studies_with_the_same_seed_score_every_trial_the_same(tmp_path: Path) -> None:
    """The issue's case: SGDClassifier and randomized PCA scored trial 0 differently."""
    spec = base_spec(
        tmp_path,
        data={"source": "sklearn:breast_cancer"},
        pipeline=RANDOMIZED,
        space={"model__alpha": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
        objective={"metric": "roc_auc"},
        budget={"trials": 3, "max_failed": 0},
    )
    loaded = tunedag.load_spec(write_spec(tmp_path, spec))
    # the same test rows scored twice, on purpose: the second is a recorded second look
    runs = [
        tunedag.run(
            loaded, storage=storage_url(tmp_path / f"run{i}.sqlite"), allow_second_look=True
        )
        for i in range(2)
    ]
    first, second = ([(t.params, t.fold_values) for t in run.trials] for run in runs)
    assert first == second
    assert runs[0].test_value == runs[1].test_value


def test_an_estimator_a_trial_chooses_is_seeded_too() -> None:
    steps = [StepSpec(name="model", estimator="sklearn.linear_model.LogisticRegression")]
    choices = {
        "model": {
            "forest": {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {}},
            "trees": {"estimator": "sklearn.ensemble.ExtraTreesClassifier", "params": {}},
        }
    }
    pipeline = build_pipeline(steps, choices=choices, seed=5)
    pipeline.set_params(model="forest")
    assert pipeline.get_params()["model__random_state"] == derived_seed(5, "model__random_state")
    pipeline.set_params(model="trees")
    assert pipeline.get_params()["model__random_state"] == derived_seed(5, "model__random_state")
