"""`tunedag predict`: new rows through the saved model, with the training columns checked.

Each test runs a small iris study in this process, writes rows as a user would (CSV or
parquet, with or without the target column) and drives the real command for its exit code
and its messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import base_spec, cli, write_spec
from sklearn.datasets import load_iris

import tunedag


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished iris study (k-NN, so it has predict_proba); returns its folder."""
    folder = tmp_path_factory.mktemp("predict")
    path = write_spec(folder, base_spec(folder))
    result = cli(["run", path], folder)
    assert result.exit_code == 0, result.stderr
    return folder


def rows(n: int = 12, *, target: bool = True) -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame.sample(n, random_state=5).reset_index(drop=True)
    return frame if target else frame.drop(columns="target")


def predict(folder: Path, *args: str | Path) -> tuple[int, str, str]:
    result = cli(["predict", folder / "spec.json", *args], folder)
    return result.exit_code, result.stdout, result.stderr


def test_predictions_equal_the_saved_models_and_the_target_is_ignored(study: Path) -> None:
    rows().to_csv(study / "rows.csv", index=False)
    code, stdout, stderr = predict(
        study, "--data", "csv:rows.csv", "--out", "out/preds.csv", "--json"
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["rows"] == 12 and summary["columns"] == ["prediction"]
    assert "wrote 12 predictions" in stderr
    written = pd.read_csv(study / "out" / "preds.csv")
    model = tunedag.load_model(tunedag.load_spec(study / "spec.json"))
    features = rows(target=False).to_numpy()
    np.testing.assert_array_equal(written["prediction"].to_numpy(), model.predict(features))


def test_parquet_in_and_out_with_probabilities(study: Path) -> None:
    rows(target=False).to_parquet(study / "rows.parquet")
    code, _, stderr = predict(
        study, "--data", "parquet:rows.parquet", "--out", "preds.parquet", "--proba"
    )
    assert code == 0, stderr
    written = pd.read_parquet(study / "preds.parquet")
    assert list(written.columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    np.testing.assert_allclose(written.filter(like="proba_").sum(axis=1), 1.0)


def test_missing_and_unexpected_columns_are_named(study: Path) -> None:
    frame = rows().drop(columns="petal width (cm)").assign(colour="red")
    frame.to_csv(study / "bad.csv", index=False)
    code, _, stderr = predict(study, "--data", "csv:bad.csv", "--out", "p.csv")
    assert code == 65
    assert "missing ['petal width (cm)']" in stderr and "unexpected ['colour']" in stderr


def test_text_where_numbers_were_is_explained(study: Path) -> None:
    frame = rows().astype({"sepal length (cm)": object})
    frame.loc[3, "sepal length (cm)"] = "n/a cm"
    frame.to_csv(study / "text.csv", index=False)
    code, _, stderr = predict(study, "--data", "csv:text.csv", "--out", "p.csv")
    assert code == 65
    assert "'sepal length (cm)' holds text ('n/a cm' at row 3)" in stderr
    assert "trained on numbers (float64)" in stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--data", "csv:nowhere.csv", "--out", "p.csv"], 66, "does not exist"),
        (["--data", "csv:rows.csv", "--out", "p.txt"], 2, ".csv or .parquet"),
        (["--data", "rows.json", "--out", "p.csv"], 2, "csv:PATH or parquet:PATH"),
        (["--data", "json:rows.csv", "--out", "p.csv"], 2, "json: is no format tunedag reads"),
        (["--data", "csv:a-folder", "--out", "p.csv"], 66, "is a folder, not a file"),
        (["--data", "csv:rows.csv", "--out", "a" * 300 + ".csv"], 2, "File name too long"),
    ],
)
def test_bad_arguments_exit_with_their_codes(
    study: Path, args: list[str], code: int, message: str
) -> None:
    rows().to_csv(study / "rows.csv", index=False)
    (study / "a-folder").mkdir(exist_ok=True)
    exit_code, _, stderr = predict(study, *args)
    assert exit_code == code and message in stderr


def test_a_study_without_a_model_says_how_to_get_one(tmp_path: Path) -> None:
    write_spec(tmp_path, base_spec(tmp_path))
    rows().to_csv(tmp_path / "rows.csv", index=False)
    code, _, stderr = predict(tmp_path, "--data", "csv:rows.csv", "--out", "p.csv")
    assert code == 66 and "no saved model" in stderr and "tunedag run" in stderr


def test_proba_needs_a_classifier_with_probabilities(tmp_path: Path) -> None:
    spec = base_spec(
        tmp_path,
        pipeline=[{"name": "model", "estimator": "sklearn.svm.SVC"}],
        space={"model__C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
        budget={"trials": 2},
    )
    path = write_spec(tmp_path, spec)
    assert cli(["run", path], tmp_path).exit_code == 0
    rows().to_csv(tmp_path / "rows.csv", index=False)
    code, _, stderr = predict(tmp_path, "--data", "csv:rows.csv", "--out", "p.csv", "--proba")
    assert code == 2 and "SVC" in stderr and "probability: true" in stderr


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_rows_the_model_cannot_take_are_the_data_s_problem(study: Path, value: float) -> None:
    frame = rows()
    frame.loc[2, "sepal width (cm)"] = value
    frame.to_csv(study / "holes.csv", index=False)
    code, _, stderr = predict(study, "--data", "csv:holes.csv", "--out", "p.csv")
    assert code == 65, stderr
    assert "csv:holes.csv: the model cannot predict these rows: ValueError" in stderr


def test_an_integer_beyond_the_trained_type_is_refused_not_wrapped() -> None:
    from tunedag.errors import DataError
    from tunedag.predict import _check_type

    with pytest.raises(DataError, match="outside the range of the model's integer type int64"):
        _check_type(pd.Series([3.0, 1e30], name="tenure"), "int64", "csv:rows.csv")
    with pytest.raises(DataError, match="outside the range"):
        _check_type(pd.Series([2**64 - 1], dtype="uint64", name="tenure"), "int64", "rows")


def test_a_text_column_empty_in_every_row_is_text_with_missing_values() -> None:
    from tunedag.predict import align

    frame = pd.DataFrame({"x": [1.0, 2.0], "city": [np.nan, np.nan]})  # as read_csv gives it
    data = {"features": ["x", "city"], "dtypes": {"x": "float64", "city": "object"}}
    X = align(frame, data, "csv:rows.csv")
    assert X["city"].dtype == object and X["city"].isna().all()
    frame["city"] = [1.5, np.nan]  # a number where text was is still refused
    with pytest.raises(tunedag.errors.DataError, match="reads as numbers"):
        align(frame, data, "csv:rows.csv")


def test_an_out_folder_that_cannot_be_made_and_a_symlink_loop(study: Path) -> None:
    rows().to_csv(study / "rows.csv", index=False)
    (study / "a-file").write_text("", encoding="utf-8")
    code, _, stderr = predict(study, "--data", "csv:rows.csv", "--out", "a-file/p.csv")
    assert code == 2 and "--out 'a-file/p.csv': cannot create it" in stderr
    (study / "loop1.csv").symlink_to("loop2.csv")
    (study / "loop2.csv").symlink_to("loop1.csv")
    code, _, stderr = predict(study, "--data", "csv:loop1.csv", "--out", "p.csv")
    assert code == 66 and "loop1.csv does not exist" in stderr


@pytest.mark.parametrize(
    "edit", [lambda card: card.pop("data"), lambda card: card.update(fingerprint=[1])]
)
def test_a_card_edited_out_of_shape_is_refused(study: Path, edit: Any) -> None:
    from tunedag.model import card_path, model_path

    spec = tunedag.load_spec(study / "spec.json")
    card = card_path(model_path(spec))
    original = card.read_text(encoding="utf-8")
    try:
        edited = json.loads(original)
        edit(edited)
        card.write_text(json.dumps(edited), encoding="utf-8")
        rows().to_csv(study / "rows.csv", index=False)
        code, _, stderr = predict(study, "--data", "csv:rows.csv", "--out", "p.csv")
        assert code == 65 and "is not a whole tunedag model card" in stderr
    finally:
        card.write_text(original, encoding="utf-8")
