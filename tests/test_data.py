"""Loading data: scikit-learn datasets, csv and parquet files, and every way they can be wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunedag.data import Dataset, check_source, load_dataset, load_test_file
from tunedag.errors import DataError, SpecNotFoundError
from tunedag.spec.models import DataSpec

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "data"


def frame(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "day": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n),
            "color": np.array(["red", "green", "blue"])[np.arange(n) % 3],
            "label": np.array(["yes", "no"])[np.arange(n) % 2],
            "amount": rng.normal(100, 10, size=n),
        }
    )


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "data.csv") -> str:
    df.to_csv(tmp_path / name, index=False)
    return f"csv:{name}"


# ------------------------------------------------------------------------------ sklearn


@pytest.mark.parametrize(
    ("name", "task", "rows"),
    [
        ("iris", "classification", 150),
        ("wine", "classification", 178),
        ("breast_cancer", "classification", 569),
        ("digits", "classification", 1797),
        ("diabetes", "regression", 442),
    ],
)
def test_sklearn_datasets(name: str, task: str, rows: int, tmp_path: Path) -> None:
    data = load_dataset(DataSpec(source=f"sklearn:{name}"), tmp_path)
    assert data.task == task
    assert len(data) == rows
    assert isinstance(data.X, np.ndarray)
    assert data.X.dtype == np.float64
    assert data.name == f"sklearn:{name}"
    assert check_source(DataSpec(source=f"sklearn:{name}"), tmp_path) is None


def test_sklearn_drop_and_keep_columns(tmp_path: Path) -> None:
    spec = DataSpec(source="sklearn:iris", drop=["petal width (cm)"])
    data = load_dataset(spec, tmp_path, keep_columns=["sepal length (cm)"])
    assert isinstance(data.X, np.ndarray)
    assert data.X.shape == (150, 2)
    assert data.columns["sepal length (cm)"].shape == (150,)
    with pytest.raises(DataError, match=r"no column 'petal widht \(cm\)'.*did you mean"):
        load_dataset(DataSpec(source="sklearn:iris", drop=["petal widht (cm)"]), tmp_path)


def test_unknown_sklearn_dataset(tmp_path: Path) -> None:
    spec = DataSpec(source="sklearn:irsi")
    with pytest.raises(DataError, match=r"unknown scikit-learn dataset 'irsi'") as info:
        load_dataset(spec, tmp_path)
    message = str(info.value)
    assert "did you mean 'iris'" in message
    assert "breast_cancer" in message and "diabetes" in message
    assert info.value.exit_code == 65
    checked = check_source(spec, tmp_path)
    assert checked is not None and "did you mean 'iris'" in checked


# ------------------------------------------------------------------------------ files


def test_csv_classification_keeps_mixed_columns(tmp_path: Path) -> None:
    source = write_csv(tmp_path, frame())
    spec = DataSpec(source=source, target="label", drop=["id"])
    data = load_dataset(spec, tmp_path, keep_columns=["day"])
    assert data.task == "classification"
    assert isinstance(data.X, pd.DataFrame)
    assert list(data.X.columns) == ["a", "b", "color", "amount"]
    assert data.X["color"].iloc[0] == "red"
    assert data.X["b"].dtype.kind == "i"
    assert list(data.columns) == ["day"]
    assert data.columns["day"][0] == "2024-01-01"
    assert set(data.y.tolist()) == {"yes", "no"}
    assert data.name == str((tmp_path / "data.csv").resolve())
    assert check_source(spec, tmp_path) is None


def test_path_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    frame().to_csv(tmp_path / "sub" / "d.csv", index=False)
    data = load_dataset(DataSpec(source="csv:sub/d.csv", target="amount"), tmp_path)
    assert len(data) == 30
    absolute = DataSpec(source=f"csv:{tmp_path / 'sub' / 'd.csv'}", target="amount")
    assert len(load_dataset(absolute, Path("/nonexistent"))) == 30


def test_task_inference(tmp_path: Path) -> None:
    df = frame()
    df["flag"] = np.arange(30) % 2 == 0
    df["few"] = np.arange(30) % 3
    df["many"] = np.arange(30)
    df["cat"] = pd.Categorical(df["color"])
    source = write_csv(tmp_path, df)
    expected = {
        "amount": "regression",
        "label": "classification",
        "flag": "classification",
        "few": "classification",
        "many": "regression",
    }
    for target, task in expected.items():
        spec = DataSpec(source=source, target=target)
        assert load_dataset(spec, tmp_path).task == task, target
    df.to_parquet(tmp_path / "d.parquet")
    spec = DataSpec(source="parquet:d.parquet", target="cat")
    assert load_dataset(spec, tmp_path).task == "classification"


def test_parquet(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet")
    spec = DataSpec(source="parquet:d.parquet", target="amount", drop=["id"])
    data = load_dataset(spec, tmp_path)
    assert data.task == "regression"
    assert isinstance(data.X, pd.DataFrame)
    assert list(data.X.columns) == ["day", "a", "b", "color", "label"]
    np.testing.assert_allclose(data.y, df["amount"].to_numpy())
    csv = load_dataset(
        DataSpec(source=write_csv(tmp_path, df), target="amount", drop=["id"]), tmp_path
    )
    assert csv.fingerprint == data.fingerprint


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame().to_parquet(tmp_path / "d.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    spec = DataSpec(source="parquet:d.parquet", target="amount")
    with pytest.raises(DataError, match=r"pip install tunedag\[parquet\]"):
        load_dataset(spec, tmp_path)
    checked = check_source(spec, tmp_path)
    assert checked is not None and "tunedag[parquet]" in checked


def test_example_files() -> None:
    sales = load_dataset(
        DataSpec(source="csv:sales.csv", target="sales"), EXAMPLES, keep_columns=["date"]
    )
    assert sales.task == "regression"
    assert 250 <= len(sales) <= 350
    assert list(sales.columns) == ["date"]
    patients = load_dataset(
        DataSpec(source="csv:patients.csv", target="outcome"),
        EXAMPLES,
        keep_columns=["patient_id"],
    )
    assert patients.task == "classification"
    assert 350 <= len(patients) <= 450
    assert len(set(patients.columns["patient_id"].tolist())) == 40
    assert set(patients.y.tolist()) == {0, 1}


# ------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path: Path) -> None:
    spec = DataSpec(source="csv:nope/missing.csv", target="y")
    resolved = str((tmp_path / "nope" / "missing.csv").resolve())
    with pytest.raises(SpecNotFoundError, match="does not exist") as info:
        load_dataset(spec, tmp_path)
    assert resolved in str(info.value)
    assert info.value.exit_code == 66
    checked = check_source(spec, tmp_path)
    assert checked is not None and resolved in checked
    (tmp_path / "folder.csv").mkdir()
    spec = DataSpec(source="csv:folder.csv", target="y")
    with pytest.raises(SpecNotFoundError, match="is not a file"):
        load_dataset(spec, tmp_path)
    (tmp_path / "loop1.csv").symlink_to("loop2.csv")
    (tmp_path / "loop2.csv").symlink_to("loop1.csv")
    spec = DataSpec(source="csv:loop1.csv", target="y")
    with pytest.raises(SpecNotFoundError, match=r"loop1\.csv does not exist"):
        load_dataset(spec, tmp_path)
    assert check_source(spec, tmp_path) is not None


def test_missing_target_column(tmp_path: Path) -> None:
    spec = DataSpec(source=write_csv(tmp_path, frame()), target="lable")
    with pytest.raises(DataError) as info:
        load_dataset(spec, tmp_path)
    message = str(info.value)
    assert "data.csv" in message
    assert "no target column 'lable'" in message
    assert "did you mean 'label'" in message
    assert "amount" in message and "color" in message  # the columns are listed


def test_missing_drop_and_keep_columns(tmp_path: Path) -> None:
    source = write_csv(tmp_path, frame())
    with pytest.raises(DataError, match=r"no column 'colour' \(named in drop.*'color'"):
        load_dataset(DataSpec(source=source, target="label", drop=["colour"]), tmp_path)
    with pytest.raises(DataError, match=r"no column 'patient' \(named in split"):
        load_dataset(DataSpec(source=source, target="label"), tmp_path, keep_columns=["patient"])


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match=r"blank\.csv.*empty"):
        load_dataset(DataSpec(source="csv:blank.csv", target="y"), tmp_path)
    (tmp_path / "header.csv").write_text("a,b,y\n")
    with pytest.raises(DataError, match=r"header\.csv.*no rows"):
        load_dataset(DataSpec(source="csv:header.csv", target="y"), tmp_path)
    frame().iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"empty\.parquet.*no rows"):
        load_dataset(DataSpec(source="parquet:empty.parquet", target="label"), tmp_path)


def test_unparseable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,3\n4,5,6,7,8\n")
    with pytest.raises(DataError, match=r"bad\.csv.*cannot be parsed"):
        load_dataset(DataSpec(source="csv:bad.csv", target="y"), tmp_path)
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet.*cannot be read as parquet"):
        load_dataset(DataSpec(source="parquet:bad.parquet", target="y"), tmp_path)


def test_single_class_target(tmp_path: Path) -> None:
    df = frame()
    df["label"] = "yes"
    spec = DataSpec(source=write_csv(tmp_path, df), target="label")
    with pytest.raises(DataError, match=r"target column 'label' has a single class \('yes'\)"):
        load_dataset(spec, tmp_path)


def test_missing_target_values(tmp_path: Path) -> None:
    df = frame()
    df.loc[[3, 7, 11], "amount"] = np.nan
    spec = DataSpec(source=write_csv(tmp_path, df), target="amount")
    with pytest.raises(DataError, match=r"missing values in 3 of 30 rows") as info:
        load_dataset(spec, tmp_path)
    assert "data.csv" in str(info.value) and "[3, 7, 11]" in str(info.value)


def test_missing_values_in_kept_column(tmp_path: Path) -> None:
    df = frame()
    df.loc[[2], "day"] = None
    spec = DataSpec(source=write_csv(tmp_path, df), target="label")
    with pytest.raises(DataError, match=r"column 'day' has missing values in 1 rows"):
        load_dataset(spec, tmp_path, keep_columns=["day"])


def test_no_features_left(tmp_path: Path) -> None:
    df = frame()[["id", "label"]]
    spec = DataSpec(source=write_csv(tmp_path, df), target="label", drop=["id"])
    with pytest.raises(DataError, match="no feature columns"):
        load_dataset(spec, tmp_path)


# ------------------------------------------------------------------------------ test file


def test_load_test_file(tmp_path: Path) -> None:
    df = frame()
    source = write_csv(tmp_path, df.iloc[:20])
    spec = DataSpec(source=source, target="label", drop=["id"])
    train = load_dataset(spec, tmp_path, keep_columns=["day"])
    reordered = df.iloc[20:][["label", "amount", "color", "b", "a", "day", "id"]]
    write_csv(tmp_path, reordered, "test.csv")
    test = load_test_file("csv:test.csv", spec, tmp_path, keep_columns=["day"], like=train)
    assert isinstance(test.X, pd.DataFrame)
    assert test.feature_names == train.feature_names
    assert len(test) == 10
    assert test.task == train.task
    assert list(test.columns) == ["day"]


def test_test_file_with_other_columns(tmp_path: Path) -> None:
    df = frame()
    spec = DataSpec(source=write_csv(tmp_path, df), target="label")
    train = load_dataset(spec, tmp_path)
    write_csv(tmp_path, df.drop(columns=["color"]).assign(extra=1), "test.csv")
    with pytest.raises(DataError) as info:
        load_test_file("csv:test.csv", spec, tmp_path, like=train)
    message = str(info.value)
    assert "test.csv" in message and "differ" in message
    assert "missing ['color']" in message and "unexpected ['extra']" in message
    write_csv(tmp_path, df.drop(columns=["label"]), "nolabel.csv")
    with pytest.raises(DataError, match=r"nolabel\.csv: no target column 'label'"):
        load_test_file("csv:nolabel.csv", spec, tmp_path, like=train)
    with pytest.raises(SpecNotFoundError, match=r"absent\.csv"):
        load_test_file("csv:absent.csv", spec, tmp_path, like=train)


# ------------------------------------------------------------------------------ Dataset


def test_take_and_fingerprint(tmp_path: Path) -> None:
    spec = DataSpec(source=write_csv(tmp_path, frame()), target="label")
    data = load_dataset(spec, tmp_path, keep_columns=["day"])
    part = data.take(np.array([5, 1, 2]))
    assert isinstance(part, Dataset) and len(part) == 3
    assert isinstance(part.X, pd.DataFrame)
    assert part.X["id"].tolist() == [5, 1, 2]
    assert part.columns["day"].tolist() == ["2024-01-06", "2024-01-02", "2024-01-03"]
    assert part.y.tolist() == data.y[[5, 1, 2]].tolist()
    assert part.fingerprint != data.fingerprint
    assert data.take(np.arange(30)).fingerprint == data.fingerprint
    assert len(data.fingerprint) == 64
    again = load_dataset(spec, tmp_path, keep_columns=["day"])
    assert again.fingerprint == data.fingerprint
    iris = load_dataset(DataSpec(source="sklearn:iris"), tmp_path)
    assert isinstance(iris.take(np.array([0, 50])).X, np.ndarray)
    assert iris.take(np.array([0, 50])).y.tolist() == [0, 1]


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    df = frame()
    spec = DataSpec(source=write_csv(tmp_path, df), target="label")
    before = load_dataset(spec, tmp_path).fingerprint
    df.loc[4, "color"] = "purple"
    write_csv(tmp_path, df)
    assert load_dataset(spec, tmp_path).fingerprint != before


@pytest.mark.slow  # a fresh interpreter imports all of tunedag (~3 s)
def test_fingerprint_stable_across_processes(tmp_path: Path) -> None:
    # a bare namespace stands in for DataSpec so the child imports only tunedag.data
    code = (
        "from pathlib import Path; from types import SimpleNamespace as S;"
        "from tunedag.data import load_dataset;"
        "spec = S(source='csv:data.csv', target='label', drop=['id']);"
        "print(load_dataset(spec, Path('.'), keep_columns=['day']).fingerprint)"
    )
    write_csv(tmp_path, frame())
    other = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout.strip()
    spec = DataSpec(source="csv:data.csv", target="label", drop=["id"])
    assert other == load_dataset(spec, tmp_path, keep_columns=["day"]).fingerprint


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_repeated_column_names_are_refused_not_renamed(tmp_path: Path, kind: str) -> None:
    data = frame().rename(columns={"b": "a"})
    if kind == "csv":
        data.to_csv(tmp_path / "data.csv", index=False)
    else:
        pytest.importorskip("pyarrow")
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_arrays(
            [pa.array(data.iloc[:, i]) for i in range(data.shape[1])], names=list(data.columns)
        )
        pq.write_table(table, tmp_path / "data.parquet")
    spec = DataSpec(source=f"{kind}:data.{kind}", target="label")
    with pytest.raises(DataError, match="column names appear more than once: a; give each"):
        load_dataset(spec, tmp_path)


def test_a_file_separated_by_semicolons_is_named_as_such(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "data.csv", index=False, sep=";")
    spec = DataSpec(source="csv:data.csv", target="label")
    with pytest.raises(DataError, match="seems to separate its values with semicolons"):
        load_dataset(spec, tmp_path)


def test_a_target_of_lists_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    data = frame().assign(label=[[v] for v in frame()["label"]])
    data.to_parquet(tmp_path / "data.parquet")
    spec = DataSpec(source="parquet:data.parquet", target="label")
    with pytest.raises(DataError, match="target column 'label' holds ndarray values"):
        load_dataset(spec, tmp_path)
