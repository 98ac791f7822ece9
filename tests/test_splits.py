"""The locked test split and the validation folds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from tunedag.data import Dataset, load_dataset
from tunedag.errors import DataError
from tunedag.spec.models import DataSpec, TestSplitSpec, ValidationSpec
from tunedag.splits import make_folds, split_fingerprint, split_test

IRIS = DataSpec(source="sklearn:iris")


def iris(tmp_path: Path) -> Dataset:
    return load_dataset(IRIS, tmp_path)


def table(n: int = 120, *, seed: int = 0) -> pd.DataFrame:
    """Rows in shuffled time order, 12 groups, an unbalanced binary label, a float target."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    order = rng.permutation(n)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "day": days[order].strftime("%Y-%m-%d"),
            "t": order,
            "patient": [f"p{i % 12:02d}" for i in range(n)],
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 9, size=n),
            "label": (np.arange(n) % 4 == 0).astype(int),  # 25 % positives
            "amount": rng.normal(50, 5, size=n),
        }
    )


def load_table(
    tmp_path: Path, df: pd.DataFrame, target: str, keep: tuple[str, ...] = ()
) -> tuple[Dataset, DataSpec]:
    df.to_csv(tmp_path / "t.csv", index=False)
    spec = DataSpec(source="csv:t.csv", target=target)
    return load_dataset(spec, tmp_path, keep_columns=keep), spec


def row_ids(data: Dataset) -> list[int]:
    assert isinstance(data.X, pd.DataFrame)
    return [int(v) for v in data.X["row"]]


def check_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    for train, val in folds:
        assert train.dtype == np.int64 and val.dtype == np.int64
        assert len(train) and len(val)
        assert not set(train.tolist()) & set(val.tolist())
        assert max(train.max(), val.max()) < n and min(train.min(), val.min()) >= 0


# ------------------------------------------------------------------------------ test split


def test_fraction_split_disjoint_and_deterministic(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "amount")
    test_spec = TestSplitSpec(fraction=0.25)
    dev, test = split_test(data, test_spec, 7, base_dir=tmp_path, data_spec=spec)
    assert len(test) == 30 and len(dev) == 90
    assert not set(row_ids(dev)) & set(row_ids(test))
    assert sorted(row_ids(dev) + row_ids(test)) == list(range(120))
    dev2, test2 = split_test(data, test_spec, 7, base_dir=tmp_path, data_spec=spec)
    assert row_ids(test2) == row_ids(test) and dev2.fingerprint == dev.fingerprint
    _, test3 = split_test(data, test_spec, 8, base_dir=tmp_path, data_spec=spec)
    assert row_ids(test3) != row_ids(test)


def test_fraction_split_on_array_data(tmp_path: Path) -> None:
    data = iris(tmp_path)
    dev, test = split_test(data, TestSplitSpec(fraction=0.2), 0, base_dir=tmp_path, data_spec=IRIS)
    assert len(dev) == 120 and len(test) == 30
    assert isinstance(dev.X, np.ndarray)
    rows = {tuple(r) for r in np.column_stack([data.X, data.y]).tolist()}
    dev_rows = [tuple(r) for r in np.column_stack([dev.X, dev.y]).tolist()]
    test_rows = [tuple(r) for r in np.column_stack([test.X, test.y]).tolist()]
    assert set(dev_rows) | set(test_rows) <= rows


def test_stratified_test_split_keeps_proportions(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "label")
    test_spec = TestSplitSpec(fraction=0.2, stratify=True)
    for seed in range(3):
        dev, test = split_test(data, test_spec, seed, base_dir=tmp_path, data_spec=spec)
        assert int(test.y.sum()) == 6 and len(test) == 24  # 25 % of 24
        assert int(dev.y.sum()) == 24 and len(dev) == 96


def test_stratify_errors(tmp_path: Path) -> None:
    df = table()
    df.loc[5, "label"] = 2  # a class of one row
    data, spec = load_table(tmp_path, df, "label")
    with pytest.raises(DataError, match=r"class 2 has only 1 row"):
        split_test(
            data, TestSplitSpec(fraction=0.2, stratify=True), 0, base_dir=tmp_path, data_spec=spec
        )
    data, spec = load_table(tmp_path, table(), "amount")
    with pytest.raises(DataError, match="needs a classification target"):
        split_test(
            data, TestSplitSpec(fraction=0.2, stratify=True), 0, base_dir=tmp_path, data_spec=spec
        )


def test_order_by_holds_out_latest_rows(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "amount", keep=("day",))
    test_spec = TestSplitSpec(fraction=0.2, order_by="day")
    dev, test = split_test(data, test_spec, 0, base_dir=tmp_path, data_spec=spec)
    assert len(test) == 24 and len(dev) == 96
    dev_days = pd.to_datetime(pd.Series(dev.columns["day"]))
    test_days = pd.to_datetime(pd.Series(test.columns["day"]))
    assert dev_days.max() < test_days.min()
    assert dev_days.is_monotonic_increasing  # dev comes back in time order
    assert test_days.max() == pd.Timestamp("2024-04-29")
    # the seed does not matter for an ordered split
    _, other = split_test(data, test_spec, 99, base_dir=tmp_path, data_spec=spec)
    assert row_ids(other) == row_ids(test)


def test_order_by_sorts_dates_not_text(tmp_path: Path) -> None:
    df = table(30)
    df["day"] = pd.to_datetime(df["day"]).dt.strftime("%m/%d/%Y").str.lstrip("0")
    data, spec = load_table(tmp_path, df, "amount", keep=("day",))
    test_spec = TestSplitSpec(fraction=0.1, order_by="day")
    _, test = split_test(data, test_spec, 0, base_dir=tmp_path, data_spec=spec)
    assert test.columns["day"].tolist() == ["1/28/2024", "1/29/2024", "1/30/2024"]


def test_order_by_numeric_feature_and_missing_column(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "amount")
    _, test = split_test(
        data, TestSplitSpec(fraction=0.25, order_by="t"), 0, base_dir=tmp_path, data_spec=spec
    )
    assert isinstance(test.X, pd.DataFrame)
    assert sorted(test.X["t"].tolist()) == list(range(90, 120))
    with pytest.raises(DataError, match=r"no column 'when' for split.test.order_by"):
        split_test(
            data, TestSplitSpec(fraction=0.2, order_by="when"), 0, base_dir=tmp_path, data_spec=spec
        )


def test_separate_test_file(tmp_path: Path) -> None:
    df = table()
    data, spec = load_table(tmp_path, df.iloc[:100], "label", keep=("patient",))
    df.iloc[100:].to_csv(tmp_path / "holdout.csv", index=False)
    dev, test = split_test(
        data,
        TestSplitSpec(source="csv:holdout.csv"),
        0,
        base_dir=tmp_path,
        data_spec=spec,
    )
    assert dev is data
    assert row_ids(test) == list(range(100, 120))
    assert list(test.columns) == ["patient"]
    assert test.task == "classification"


def test_test_fraction_too_small(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "amount")
    two = data.take(np.array([0, 1]))
    with pytest.raises(DataError, match="both need at least one"):
        split_test(two, TestSplitSpec(fraction=0.9), 0, base_dir=tmp_path, data_spec=spec)


# ------------------------------------------------------------------------------ folds


def test_kfold(tmp_path: Path) -> None:
    data = iris(tmp_path)
    spec = ValidationSpec(method="kfold", folds=5)
    folds = make_folds(data, spec, 3)
    assert len(folds) == 5
    check_partition(folds, 150)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(150))
    again = make_folds(data, spec, 3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = make_folds(data, spec, 4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_unshuffled_kfold_is_contiguous(tmp_path: Path) -> None:
    data = iris(tmp_path)
    folds = make_folds(data, ValidationSpec(method="kfold", folds=4, shuffle=False), 123)
    expected = list(KFold(n_splits=4).split(np.arange(150)))
    for (train, val), (e_train, e_val) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(train, e_train)
        np.testing.assert_array_equal(val, e_val)
        assert np.array_equal(val, np.arange(val[0], val[-1] + 1))
    assert (
        make_folds(data, ValidationSpec(method="kfold", folds=4, shuffle=False), 9)[0][1].tolist()
        == folds[0][1].tolist()
    )


def test_stratified_kfold(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "label")
    spec = ValidationSpec(method="stratified_kfold", folds=5)
    folds = make_folds(data, spec, 0)
    check_partition(folds, 120)
    for _, val in folds:
        assert len(val) == 24 and int(data.y[val].sum()) == 6
    assert any(
        not np.array_equal(a[1], b[1])
        for a, b in zip(folds, make_folds(data, spec, 1), strict=True)
    )
    unshuffled = make_folds(data, ValidationSpec(method="stratified_kfold", shuffle=False), 5)
    expected = StratifiedKFold(n_splits=5).split(np.arange(120), data.y)
    for (_, val), (_, e_val) in zip(unshuffled, expected, strict=True):
        np.testing.assert_array_equal(val, e_val)


def test_stratified_kfold_errors(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "amount")
    with pytest.raises(DataError, match="needs a classification target"):
        make_folds(data, ValidationSpec(method="stratified_kfold"), 0)
    df = table()
    df.loc[[1, 2, 3], "label"] = 7
    data, _ = load_table(tmp_path, df, "label")
    with pytest.raises(DataError, match=r"class 7 has 3"):
        make_folds(data, ValidationSpec(method="stratified_kfold", folds=5), 0)


def test_group_kfold_keeps_groups_apart(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "label", keep=("patient",))
    groups = data.columns["patient"]
    spec = ValidationSpec(method="group_kfold", folds=4, groups="patient")
    folds = make_folds(data, spec, 0)
    assert len(folds) == 4
    check_partition(folds, 120)
    for train, val in folds:
        assert not set(groups[train].tolist()) & set(groups[val].tolist())
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(120))
    same = make_folds(data, spec, 0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, same, strict=True))
    other = make_folds(data, spec, 1)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_group_kfold_errors(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "label", keep=("patient",))
    with pytest.raises(DataError, match=r"no column 'subject' for validation.groups"):
        make_folds(data, ValidationSpec(method="group_kfold", groups="subject"), 0)
    with pytest.raises(DataError, match=r"at least 20 groups.*'patient' has 12"):
        make_folds(data, ValidationSpec(method="group_kfold", folds=20, groups="patient"), 0)


def test_group_kfold_on_example_file() -> None:
    examples = Path(__file__).resolve().parents[1] / "specs" / "data"
    spec = DataSpec(source="csv:patients.csv", target="outcome")
    data = load_dataset(spec, examples, keep_columns=["patient_id"])
    dev, _ = split_test(data, TestSplitSpec(fraction=0.2), 0, base_dir=examples, data_spec=spec)
    folds = make_folds(dev, ValidationSpec(method="group_kfold", groups="patient_id"), 0)
    groups = dev.columns["patient_id"]
    for train, val in folds:
        assert not set(groups[train].tolist()) & set(groups[val].tolist())


def test_timeseries_respects_order_and_gap(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "amount", keep=("day",))
    dev, _ = split_test(
        data, TestSplitSpec(fraction=0.2, order_by="day"), 0, base_dir=tmp_path, data_spec=spec
    )
    folds = make_folds(dev, ValidationSpec(method="timeseries", folds=4, gap=3), 0)
    assert len(folds) == 4
    check_partition(folds, 96)
    days = pd.to_datetime(pd.Series(dev.columns["day"])).to_numpy()
    for train, val in folds:
        assert train.max() + 3 < val.min()  # a gap of 3 rows
        assert days[train].max() < days[val].min()
        assert (days[val].min() - days[train].max()) / np.timedelta64(1, "D") == 4
    assert (
        make_folds(dev, ValidationSpec(method="timeseries", folds=4, gap=3), 9)[0][1].tolist()
        == folds[0][1].tolist()
    )


def test_timeseries_sorts_by_order_by_column(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "amount", keep=("day",))  # rows out of time order
    folds = make_folds(data, ValidationSpec(method="timeseries", folds=3), 0, order_by="day")
    days = pd.to_datetime(pd.Series(data.columns["day"])).to_numpy()
    for train, val in folds:
        assert days[train].max() < days[val].min()
    plain = make_folds(data, ValidationSpec(method="timeseries", folds=3), 0)
    assert plain[0][0].tolist() == list(range(len(plain[0][0])))  # file order


def test_holdout(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(), "label")
    folds = make_folds(data, ValidationSpec(method="holdout"), 0)
    assert len(folds) == 1
    (train, val) = folds[0]
    check_partition(folds, 120)
    assert len(val) == 24 and len(train) == 96
    assert int(data.y[val].sum()) == 6  # stratified for classification
    assert make_folds(data, ValidationSpec(method="holdout"), 0)[0][1].tolist() == val.tolist()
    assert make_folds(data, ValidationSpec(method="holdout"), 1)[0][1].tolist() != val.tolist()
    half = make_folds(data, ValidationSpec(method="holdout", fraction=0.5), 0)
    assert len(half[0][1]) == 60
    contiguous = make_folds(data, ValidationSpec(method="holdout", shuffle=False), 0)
    assert contiguous[0][1].tolist() == list(range(96, 120))
    regression, _ = load_table(tmp_path, table(), "amount")
    (r_train, r_val) = make_folds(regression, ValidationSpec(method="holdout", fraction=0.3), 0)[0]
    assert len(r_val) == math.ceil(0.3 * 120) and len(r_train) == 120 - len(r_val)


def test_more_folds_than_rows(tmp_path: Path) -> None:
    data, _ = load_table(tmp_path, table(6), "amount")
    with pytest.raises(DataError, match="10 folds need at least 10 rows"):
        make_folds(data, ValidationSpec(folds=10), 0)
    with pytest.raises(DataError, match="cannot make timeseries folds"):
        make_folds(data, ValidationSpec(method="timeseries", folds=5, gap=3), 0)


def test_split_fingerprint(tmp_path: Path) -> None:
    data = iris(tmp_path)
    dev, test = split_test(data, TestSplitSpec(fraction=0.2), 0, base_dir=tmp_path, data_spec=IRIS)
    folds = make_folds(dev, ValidationSpec(), 0)
    first = split_fingerprint(dev, test, folds)
    assert len(first) == 64
    assert split_fingerprint(dev, test, make_folds(dev, ValidationSpec(), 0)) == first
    assert split_fingerprint(dev, test, make_folds(dev, ValidationSpec(), 1)) != first
    dev2, test2 = split_test(
        data, TestSplitSpec(fraction=0.2), 1, base_dir=tmp_path, data_spec=IRIS
    )
    assert split_fingerprint(dev2, test2, folds) != first
    assert split_fingerprint(test, dev, folds) != first


def test_a_group_test_split_holds_out_whole_groups(tmp_path: Path) -> None:
    data, spec = load_table(tmp_path, table(), "label", keep=("patient",))
    test_spec = TestSplitSpec(fraction=0.25, groups="patient")
    dev, test = split_test(data, test_spec, 3, base_dir=tmp_path, data_spec=spec)
    dev_groups = set(dev.columns["patient"].tolist())
    test_groups = set(test.columns["patient"].tolist())
    assert test_groups and not dev_groups & test_groups
    assert len(dev) + len(test) == len(data)
    again, _ = split_test(data, test_spec, 3, base_dir=tmp_path, data_spec=spec)
    assert row_ids(again) == row_ids(dev)
