"""Spec values for real tabular work: estimator choices, column selectors, `**kwargs`
estimators and functions, and the example specs of docs/writing-specs.md run end to end."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import Result

import tunedag
from tunedag.errors import SpecError
from tunedag.estimators import SpecPipeline, pipeline_of
from tunedag.prepare import prepare
from tunedag.space import SearchSpace
from tunedag.spec.loader import read_document
from tunedag.spec.validate import base_dir_of
from tunedag.storage import TrialState

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


def tiny(name: str, tmp_path: Path, **changes: Any) -> Path:
    """specs/NAME as a JSON spec in tmp_path: data paths absolute, storage there, ``changes``
    replacing whole sections (a tiny budget)."""
    data = read_document(SPECS / name).data
    for section in (data["data"], data["split"]["test"]):
        source = section.get("source", "")
        if source.startswith(("csv:", "parquet:")):
            kind, _, path = source.partition(":")
            section["source"] = f"{kind}:{(SPECS / path).resolve()}"
    data.update(changes)
    data["storage"] = f"sqlite:///{tmp_path / 'study.sqlite'}"
    path = tmp_path / f"{Path(name).stem}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def problems(text: str, spec_file: Callable[..., Path]) -> str:
    with pytest.raises(SpecError) as error:
        tunedag.load_spec(spec_file(text))
    return str(error.value)


# -- choosing between estimators ------------------------------------------------------------


def test_estimator_choices_are_stored_by_name() -> None:
    spec = tunedag.load_spec(SPECS / "model-choice.yaml")
    space = SearchSpace(spec.space)
    assert space.finite_values("model") == ["SVC", "RandomForestClassifier", "logreg"]
    grid = list(space.grid())
    assert len(grid) == 9
    assert {"model": "RandomForestClassifier", "model__n_estimators": 50} in grid
    assert all(isinstance(p["model"], str) for p in grid)
    json.dumps(grid)  # plain JSON in storage


def test_setting_a_name_builds_that_estimator_with_its_fixed_params() -> None:
    from sklearn.base import clone

    pipeline = pipeline_of(tunedag.load_spec(SPECS / "model-choice.yaml"))
    assert isinstance(pipeline, SpecPipeline)
    model = clone(pipeline).set_params(model="logreg", model__C=0.5)
    final = model.steps[-1][1]
    assert type(final).__name__ == "LogisticRegression"
    assert (final.C, final.max_iter) == (0.5, 1000)
    forest = clone(pipeline).set_params(model="RandomForestClassifier", model__n_estimators=20)
    assert forest.steps[-1][1].get_params()["random_state"] == 0
    assert type(pipeline.steps[-1][1]).__name__ == "SVC"  # the original is untouched


@pytest.mark.parametrize(
    ("sampler", "trials"),
    [
        ({"name": "grid"}, 9),
        ({"name": "random"}, 4),
        ({"name": "skopt-gp", "options": {"n_initial_points": 2}}, 4),
    ],
    ids=["grid", "random", "skopt-gp"],
)
def test_every_sampler_searches_the_model_choice(
    sampler: dict[str, Any], trials: int, tmp_path: Path
) -> None:
    path = tiny("model-choice.yaml", tmp_path, sampler=sampler, budget={"trials": trials})
    result = tunedag.run(tunedag.load_spec(path))
    assert result.counts["complete"] == trials, [t.error for t in result.trials]
    for trial in result.trials:
        model = trial.params["model"]
        assert model in ("SVC", "RandomForestClassifier", "logreg")
        assert ("model__C" in trial.params) == (model != "RandomForestClassifier")
        assert ("model__n_estimators" in trial.params) == (model == "RandomForestClassifier")
    if sampler["name"] == "grid":
        assert {t.params["model"] for t in result.trials} == {
            "SVC",
            "RandomForestClassifier",
            "logreg",
        }
    assert result.test is not None and result.best_params is not None
    assert isinstance(result.best_params["model"], str)
    saved = result.best_estimator  # saved as scikit-learn's own Pipeline, loaded back
    assert type(saved).__name__ == "Pipeline"
    assert (
        type(saved.steps[-1][1]).__name__
        == {
            "SVC": "SVC",
            "RandomForestClassifier": "RandomForestClassifier",
            "logreg": "LogisticRegression",
        }[result.best_params["model"]]
    )


def test_trials_csv_and_plan_name_the_chosen_estimator(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    path = tiny("model-choice.yaml", tmp_path, sampler={"name": "grid"}, budget={"trials": 3})
    assert run_cli("run", path).exit_code == 0
    assert run_cli("report", path, "--out", tmp_path / "out").exit_code == 0
    with (tmp_path / "out" / "trials.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["params.model"] for row in rows] == ["SVC"] * 3
    plan = run_cli("plan", path)
    assert "SVC | RandomForestClassifier | logreg" in plan.stdout


def test_a_parameter_of_one_choice_needs_when(spec_file: Callable[..., Path]) -> None:
    text = (SPECS / "model-choice.yaml").read_text(encoding="utf-8")
    text = text.replace(", grid_points: 3, when: {model: [SVC, logreg]}}", "}")
    message = problems(text, spec_file)
    assert "space.model__C: 'C' is not a parameter of RandomForestClassifier" in message
    assert "add `when: {model: ['SVC', 'logreg']}`" in message


def test_a_choice_s_own_parameters_are_checked(spec_file: Callable[..., Path]) -> None:
    text = (SPECS / "model-choice.yaml").read_text(encoding="utf-8")
    text = text.replace("params: {cache_size: 500}", "params: {cache_sise: 500}")
    message = problems(text, spec_file)
    assert "space.model.choices[0].params.cache_sise: SVC has no parameter 'cache_sise'" in message
    assert "did you mean 'cache_size'?" in message


def test_when_names_a_choice_by_its_stored_name(spec_file: Callable[..., Path]) -> None:
    text = (SPECS / "model-choice.yaml").read_text(encoding="utf-8")
    text = text.replace("when: {model: RandomForestClassifier}", "when: {model: RandomForest}")
    message = problems(text, spec_file)
    assert "'RandomForest' is not one of model's choices" in message


def test_bare_names_choose_a_step(spec_file: Callable[..., Path], base_spec_yaml: str) -> None:
    text = base_spec_yaml.replace(
        "  model__kernel: {type: categorical, choices: [rbf, poly]}\n"
        "  model__degree: {type: int, low: 2, high: 4, when: {model__kernel: poly}}\n",
        "  model: {type: categorical, choices: [sklearn.svm.SVC, sklearn.svm.LinearSVC]}\n",
    )
    spec = tunedag.load_spec(spec_file(text))
    model = pipeline_of(spec).set_params(model="sklearn.svm.LinearSVC", model__C=2.0)
    assert type(model.steps[-1][1]).__name__ == "LinearSVC"


# -- functions ----------------------------------------------------------------------------


def test_functions_as_parameter_values(tmp_path: Path) -> None:
    path = tiny("target-transform.yaml", tmp_path, budget={"trials": 2})
    spec = tunedag.load_spec(path)
    final = pipeline_of(spec).steps[-1][1]
    import numpy as np

    assert final.func is np.log and final.inverse_func is np.exp
    result = tunedag.run(spec)
    assert result.counts["complete"] == 2 and result.test is not None


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("os.system", "function 'os.system' is outside numpy, sklearn and `allow_imports`"),
        ("numpy._core.umath.log", "has a private segment"),
        ("numpy.ndarray", "'numpy.ndarray' is not a function"),
        ("numpy.no_such_thing", "unknown function 'numpy.no_such_thing'"),
    ],
)
def test_functions_follow_the_import_rules(
    function: str, says: str, spec_file: Callable[..., Path]
) -> None:
    text = (SPECS / "target-transform.yaml").read_text(encoding="utf-8")
    text = text.replace("func: {function: numpy.log}", f"func: {{function: {function}}}")
    message = problems(text, spec_file)
    assert "pipeline[1].params.func.function: " in message and says in message


def test_a_mapping_where_an_estimator_belongs_is_a_spec_error(
    spec_file: Callable[..., Path],
) -> None:
    text = (SPECS / "target-transform.yaml").read_text(encoding="utf-8")
    text = text.replace("{estimator: sklearn.linear_model.Ridge}", "{estimtor: Ridge}")
    message = problems(text, spec_file)
    assert "pipeline[1].estimator: TransformedTargetRegressor cannot describe itself" in message
    assert "its parameter 'regressor' is a plain mapping" in message


def test_an_estimator_outside_scikit_learn_s_hierarchy_is_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec_file: Callable[..., Path]
) -> None:
    """A class with fit and get_params but no scikit-learn tags fails every trial."""
    (tmp_path / "duckmodels.py").write_text(
        "class Duck:\n"
        "    def __init__(self, alpha=1.0):\n"
        "        self.alpha = alpha\n"
        "    def get_params(self, deep=True):\n"
        "        return {'alpha': self.alpha}\n"
        "    def fit(self, X, y):\n"
        "        return self\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = (SPECS / "target-transform.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "estimator: sklearn.compose.TransformedTargetRegressor", "estimator: duckmodels.Duck"
    )
    text = text.replace(
        "    params:\n      regressor: {estimator: sklearn.linear_model.Ridge}\n", ""
    )
    text = text.replace(
        "      func: {function: numpy.log}\n      inverse_func: {function: numpy.exp}\n", ""
    )
    text = text.replace("model__regressor__alpha", "model__alpha") + "allow_imports: [duckmodels]\n"
    message = problems(text, spec_file)
    assert "pipeline[1].estimator: Duck cannot describe itself to scikit-learn" in message
    assert "inherit sklearn.base.BaseEstimator" in message


# -- estimators that take **kwargs ----------------------------------------------------------


def test_kwargs_estimators_take_unknown_names_and_run_quietly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tiny("mixed-lightgbm.yaml", tmp_path, budget={"trials": 2})
    result = tunedag.run(tunedag.load_spec(path))
    assert result.counts["complete"] == 2, [t.error for t in result.trials]
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err


def test_xgboost_parameters_pass_through(tmp_path: Path) -> None:
    path = tiny("xgboost.yaml", tmp_path, budget={"trials": 2})
    spec = tunedag.load_spec(path)
    model = pipeline_of(spec).set_params(model__n_estimators=20)
    assert model.steps[-1][1].get_params()["n_estimators"] == 20
    result = tunedag.run(spec)
    assert result.counts["complete"] == 2, [t.error for t in result.trials]


# -- column selectors -----------------------------------------------------------------------


def test_column_selectors_and_nested_parameters(tmp_path: Path) -> None:
    path = tiny("columns.yaml", tmp_path, budget={"trials": 2})
    result = tunedag.run(tunedag.load_spec(path))
    assert result.counts["complete"] == 2, [t.error for t in result.trials]
    assert {t.state for t in result.trials} == {TrialState.COMPLETE}
    assert "prep__num__impute__strategy" in result.trials[0].params


def test_a_bad_selector_pattern_is_a_spec_error(spec_file: Callable[..., Path]) -> None:
    text = (SPECS / "columns.yaml").read_text(encoding="utf-8")
    text = text.replace("{dtype_exclude: number}", "{pattern: '(unclosed'}")
    text = text.replace("csv:data/customers.csv", f"csv:{SPECS / 'data' / 'customers.csv'}")
    message = problems(text, spec_file)
    assert (
        "pipeline[0].params.transformers[1][2].pattern: not a valid regular expression" in message
    )


@pytest.mark.parametrize(
    ("selector", "says"),
    [
        ("{dtype_exclude: abc}", "data type 'abc' not understood"),
        ("{dtype_include: []}", "at least one of include or exclude must be nonempty"),
        ("{dtype_include: number, dtype_exclude: number}", "include and exclude overlap"),
    ],
)
def test_a_selector_pandas_refuses_is_a_spec_error(
    selector: str, says: str, spec_file: Callable[..., Path]
) -> None:
    text = (SPECS / "columns.yaml").read_text(encoding="utf-8")
    text = text.replace("{dtype_exclude: number}", selector)
    text = text.replace("csv:data/customers.csv", f"csv:{SPECS / 'data' / 'customers.csv'}")
    message = problems(text, spec_file)
    assert "pipeline[0].params.transformers[1][2]: not a column selector pandas accepts" in message
    assert says in message


# -- every example spec, as CI runs it -----------------------------------------------------

EXAMPLES = sorted(
    path.name for pattern in ("*.yaml", "*.toml", "*.json") for path in SPECS.glob(pattern)
)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_spec_runs_with_a_tiny_budget(name: str, tmp_path: Path) -> None:
    """Each spec of docs/writing-specs.md (and every other example) runs as written, with
    2 trials, to a scored test set and a saved model that loads and predicts."""
    path = tiny(name, tmp_path, budget={"trials": 2})
    spec = tunedag.load_spec(path)
    result = tunedag.run(spec)
    assert result.counts["complete"] + result.counts["pruned"] == 2, [
        t.error for t in result.trials
    ]
    assert result.finished and result.test is not None
    if spec.trial is None:
        test = prepare(spec, base_dir_of(spec)).test
        rows = test.X.iloc[:5] if isinstance(test.X, pd.DataFrame) else test.X[:5]
        assert len(tunedag.load_model(spec).predict(rows)) == 5
