"""Intermediate values from training steps: the `fidelity:` section and FidelityWorkload."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import base_spec, cli, recorder, stored_trials, write_spec
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import tunedag
from tunedag.errors import SpecChangedError
from tunedag.executor import Task
from tunedag.fidelity import FidelityWorkload, counts_per_call, levels
from tunedag.spec.models import FidelitySpec
from tunedag.storage import TrialState
from tunedag.trial import PipelineWorkload

# -- the schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"param": "m__n_estimators", "min": 10, "max": 270, "reduction_factor": 3},
            [10, 30, 90, 270],
        ),
        (
            {"param": "m__n_estimators", "min": 10, "max": 300, "reduction_factor": 3},
            [10, 30, 90, 270, 300],
        ),
        ({"param": "m__max_iter", "min": 10, "max": 300, "steps": 5}, [10, 82, 155, 228, 300]),
        ({"param": "m__max_iter", "min": 1, "max": 3, "steps": 5}, [1, 2, 3]),
        (
            {"param": "m__max_iter", "min": 2, "max": 20, "reduction_factor": 1.5},
            [2, 3, 4, 7, 10, 15, 20],
        ),
        ({"partial_fit": True, "epochs": 4}, [1, 2, 3, 4]),
        ({"partial_fit": True, "epochs": 27, "reduction_factor": 3}, [1, 3, 9, 27]),
        ({"partial_fit": True, "epochs": 10, "steps": 4}, [1, 4, 7, 10]),
    ],
)
def test_levels(section: dict[str, Any], expected: list[int]) -> None:
    assert levels(FidelitySpec.model_validate(section)) == expected


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"param": "model__max_iter", "min": 10, "max": 300}, "give `steps: N`"),
        (
            {"param": "model__max_iter", "min": 10, "max": 300, "steps": 3, "reduction_factor": 2},
            "but got steps=3 and reduction_factor=2",
        ),
        (
            {"param": "model__max_iter", "min": 30, "max": 30, "steps": 3},
            "`min` must be below `max`, but got min=30 and max=30",
        ),
        ({"min": 10, "max": 300, "steps": 3}, "missing required key 'param'"),
        ({"partial_fit": True}, "`partial_fit: true` needs `epochs: N`"),
        (
            {"partial_fit": True, "epochs": 9, "steps": 3, "reduction_factor": 3},
            "give either `steps` or `reduction_factor`",
        ),
        (
            {"partial_fit": True, "epochs": 3, "param": "model__max_iter"},
            "`param` does not apply with `partial_fit: true`",
        ),
        (
            {"param": "model__max_iter", "min": 1, "max": 9, "steps": 3, "epochs": 3},
            "`epochs` applies with `partial_fit: true` only",
        ),
        ({"param": "model__max_iter", "min": 0, "max": 9, "steps": 3}, "greater than or equal"),
    ],
)
def test_bad_fidelity_sections_are_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        FidelitySpec.model_validate(section)
    assert message in str(caught.value)


def test_which_parameters_count_per_call() -> None:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    assert counts_per_call(MLPClassifier(), "max_iter")
    assert counts_per_call(SGDClassifier(), "max_iter")
    assert not counts_per_call(HistGradientBoostingClassifier(), "max_iter")
    assert not counts_per_call(GradientBoostingClassifier(), "n_estimators")


# -- validation of a spec --------------------------------------------------------------------------

RF = [
    {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
    {
        "name": "model",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"random_state": 0},
    },
]
RF_SPACE = {"model__max_depth": {"type": "int", "low": 1, "high": 8}}


@pytest.mark.parametrize(
    ("sections", "where", "message"),
    [
        (
            {"fidelity": {"param": "model__n_estimator", "min": 2, "max": 18, "steps": 3}},
            "fidelity.param",
            "did you mean 'model__n_estimators'",
        ),
        (
            {"fidelity": {"param": "scale__with_mean", "min": 2, "max": 18, "steps": 3}},
            "fidelity.param",
            "not a parameter of the final step 'model'",
        ),
        (
            {
                "fidelity": {"param": "model__n_estimators", "min": 2, "max": 18, "steps": 3},
                "space": {"model__n_estimators": {"type": "int", "low": 2, "high": 9}},
            },
            "space.model__n_estimators",
            "is the fidelity resource",
        ),
        (
            {
                "fidelity": {"param": "model__max_iter", "min": 2, "max": 18, "steps": 3},
                "pipeline": [{"name": "model", "estimator": "sklearn.svm.SVC"}],
                "space": {"model__C": {"type": "float", "low": 0.1, "high": 1.0}},
            },
            "fidelity.param",
            "SVC has no warm_start",
        ),
        (
            {"fidelity": {"partial_fit": True, "epochs": 3}},
            "fidelity.partial_fit",
            "RandomForestClassifier has no partial_fit",
        ),
        (
            {
                "fidelity": {"partial_fit": True, "epochs": 3},
                "pipeline": None,
                "trial": {"function": "json:loads"},
                "allow_imports": ["json"],
                "space": {"x": {"type": "float", "low": 0, "high": 1}},
            },
            "fidelity",
            "a custom trial reports with context.report()",
        ),
    ],
)
def test_validate_checks_the_fidelity_resource(
    tmp_path: Path, sections: dict[str, Any], where: str, message: str
) -> None:
    spec = base_spec(tmp_path, **{"pipeline": RF, "space": RF_SPACE, **sections})
    result = cli(["validate", write_spec(tmp_path, spec)], tmp_path)
    assert result.exit_code == 65, result.stderr
    assert where in result.stderr and message in result.stderr, result.stderr


def test_a_valid_fidelity_spec_validates(tmp_path: Path) -> None:
    spec = base_spec(
        tmp_path,
        pipeline=RF,
        space=RF_SPACE,
        fidelity={"param": "model__n_estimators", "min": 2, "max": 18, "reduction_factor": 3},
    )
    result = cli(["validate", write_spec(tmp_path, spec)], tmp_path)
    assert result.exit_code == 0, result.stderr


# -- the workload ----------------------------------------------------------------------------------


class CountingScaler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """StandardScaler that counts its fits (class-wide), to see preprocessing fitted once."""

    fits = 0

    def fit(self, X: Any, y: Any = None) -> CountingScaler:
        type(self).fits += 1
        self.scaler_ = StandardScaler().fit(X)
        return self

    def transform(self, X: Any) -> Any:
        return self.scaler_.transform(X)


def workload(
    final: Any, fidelity: dict[str, Any], data: Any = load_breast_cancer, metric: str = "accuracy"
) -> FidelityWorkload:
    X, y = data(return_X_y=True)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    return FidelityWorkload(
        pipeline=Pipeline([("scale", CountingScaler()), ("model", final)]),
        scorer=get_scorer(metric),
        X=X,
        y=y,
        folds=folds,
        fidelity=FidelitySpec.model_validate(fidelity),
    )


def test_levels_report_the_mean_over_folds_of_a_model_trained_to_that_level() -> None:
    work = workload(
        RandomForestClassifier(random_state=0, max_depth=3),
        {"param": "model__n_estimators", "min": 2, "max": 18, "reduction_factor": 3},
    )
    CountingScaler.fits = 0
    reported: list[tuple[int, float]] = []
    outcome = work.run(
        Task(0, {"model__max_features": 0.5}),
        lambda step, value: reported.append((step, value)) is not None,
    )
    assert outcome.state == TrialState.COMPLETE
    assert CountingScaler.fits == 3  # once per fold, not once per level
    assert [step for step, _ in reported] == [2, 6, 18]  # numbered by the resource
    # warm-started forests are exactly the forests fitted from scratch at each level
    for level, value in reported:
        scores = []
        for train, valid in work.folds:
            model = clone(work.pipeline).set_params(
                model__n_estimators=level, model__max_features=0.5
            )
            model.fit(work.X[train], work.y[train])
            scores.append(work.scorer(model, work.X[valid], work.y[valid]))
        assert value == pytest.approx(np.mean(scores), abs=1e-12)
    assert outcome.value == reported[-1][1] and len(outcome.fold_values) == 3
    assert outcome.intermediate == dict(reported)


def test_a_pruned_trial_stops_after_the_level_the_pruner_rejected() -> None:
    work = workload(
        RandomForestClassifier(random_state=0),
        {"param": "model__n_estimators", "min": 2, "max": 18, "reduction_factor": 3},
    )
    outcome = work.run(Task(4, {}), lambda step, value: step >= 6)
    assert outcome.state == TrialState.PRUNED
    assert sorted(outcome.intermediate) == [2, 6]
    assert outcome.value == outcome.intermediate[6]
    assert len(outcome.fold_values) == 3  # the folds' scores at the last level reached


def test_a_trial_trained_to_max_completes_whatever_the_pruner_says() -> None:
    work = workload(
        RandomForestClassifier(random_state=0),
        {"param": "model__n_estimators", "min": 2, "max": 6, "steps": 2},
    )
    asked: list[int] = []
    outcome = work.run(Task(0, {}), lambda step, value: asked.append(step) is None and step == 6)
    assert asked == [2, 6] and outcome.state == TrialState.COMPLETE


def test_max_iter_counted_per_call_reaches_the_level_in_total() -> None:
    mlp = MLPClassifier((8,), random_state=0, tol=0.0, n_iter_no_change=1000)
    work = workload(mlp, {"param": "model__max_iter", "min": 2, "max": 8, "reduction_factor": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        work.run(Task(0, {}), lambda step, value: False)
        work.refit_and_score({}, work.X[:50], work.y[:50])
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    # silenced at levels 2 and 4; the last level (8) warns as a plain fit would, per fold + refit
    assert len(convergence) == 4
    from tunedag.fidelity import _Incremental

    X, y = work.X, work.y
    learner = _Incremental(clone(work.pipeline), work.fidelity, X, y, None)  # type: ignore[arg-type]
    for level in (2, 4, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            learner.advance(level, last=False)
        assert len(learner.final.loss_curve_) == level  # epochs in all, over every call


def test_partial_fit_reports_each_epoch_with_every_class() -> None:
    work = workload(
        SGDClassifier(random_state=0), {"partial_fit": True, "epochs": 4}, data=load_digits
    )
    reported: list[int] = []
    outcome = work.run(
        Task(0, {"model__alpha": 1e-3}), lambda step, value: reported.append(step) is not None
    )
    assert outcome.state == TrialState.COMPLETE and reported == [1, 2, 3, 4]
    assert 0.8 < outcome.value <= 1.0  # type: ignore[operator]
    assert 0.8 < work.refit_and_score({"model__alpha": 1e-3}, work.X, work.y) <= 1.0


def test_the_workload_is_a_pipeline_workload_for_the_test_node() -> None:
    work = workload(
        RandomForestClassifier(random_state=0),
        {"param": "model__n_estimators", "min": 2, "max": 6, "steps": 2},
    )
    assert isinstance(work, PipelineWorkload)
    fresh = clone(work.pipeline).set_params(model__n_estimators=6).fit(work.X[:400], work.y[:400])
    expected = work.scorer(fresh, work.X[400:], work.y[400:])
    refit = FidelityWorkload(
        pipeline=work.pipeline,
        scorer=work.scorer,
        X=work.X[:400],
        y=work.y[:400],
        folds=work.folds,
        fidelity=work.fidelity,
    )
    assert refit.refit_and_score({}, work.X[400:], work.y[400:]) == pytest.approx(expected)


# -- real studies ----------------------------------------------------------------------------------


def rf_study(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """Random forests on breast cancer, grown 2 -> 6 -> 18 -> 54 trees."""
    return base_spec(
        tmp_path,
        data={"source": "sklearn:breast_cancer"},
        pipeline=RF,
        space={
            "model__max_depth": {"type": "int", "low": 1, "high": 8},
            "model__max_features": {"type": "float", "low": 0.05, "high": 1.0},
            "model__min_samples_leaf": {"type": "int", "low": 1, "high": 150, "log": True},
        },
        objective={"metric": "roc_auc"},
        fidelity={"param": "model__n_estimators", "min": 2, "max": 54, "reduction_factor": 3},
        **sections,
    )


@pytest.mark.parametrize(
    "pruner",
    [
        {"name": "successive_halving", "options": {"min_resource": 2}},
        {"name": "median", "options": {"n_startup_trials": 3}},
    ],
    ids=["successive_halving", "median"],
)
def test_a_fidelity_study_stops_trials_after_fewer_increments(
    tmp_path: Path, pruner: dict[str, Any]
) -> None:
    spec_dict = rf_study(tmp_path, pruner=pruner, budget={"trials": 12})
    events, seen = recorder()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), events=events)
    trials = stored_trials(spec_dict)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert complete and pruned, [(t.number, t.state, t.intermediate) for t in trials]
    for trial in complete:
        assert sorted(trial.intermediate) == [2, 6, 18, 54]
        assert trial.value == pytest.approx(trial.intermediate[54])
        assert len(trial.fold_values) == 3
    for trial in pruned:
        assert max(trial.intermediate) < 54  # fewer increments than a full trial
        assert sorted(trial.intermediate) == [2, 6, 18, 54][: len(trial.intermediate)]
        assert trial.value == pytest.approx(trial.intermediate[max(trial.intermediate)])
    steps = {e["number"]: e["step"] for e in seen if e["event"] == "trial_pruned"}
    assert steps == {t.number: max(t.intermediate) for t in pruned}
    assert result.test is not None and result.best is not None  # refit to max, scored once
    assert result.test.trial_number == result.best.number


def test_changing_the_fidelity_of_a_study_is_refused(tmp_path: Path) -> None:
    spec_dict = rf_study(tmp_path, budget={"trials": 1})
    tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    spec_dict["budget"] = {"trials": 2}
    spec_dict["fidelity"]["max"] = 18
    with pytest.raises(SpecChangedError):
        tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), allow_second_look=True)
