"""The locked test split and the validation folds, deterministic for a seed.

`split_test` returns the development rows in a stable order (file order, or `order_by` order
when the test set is the latest rows), so a later `timeseries` validation sees rows in time.
Fold indices are int64 arrays into the development rows; no row is on both sides of a fold.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from tunedag.data import Dataset, load_test_file
from tunedag.errors import DataError

if TYPE_CHECKING:  # the spec package imports this module: no import cycle at run time
    from tunedag.spec.models import DataSpec, TestSplitSpec, ValidationSpec

Folds = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]

_GROUP_KFOLD_SHUFFLES = "shuffle" in inspect.signature(GroupKFold).parameters


def _random_state(seed: int) -> int:
    """scikit-learn takes seeds in [0, 2**32); any spec seed maps there."""
    return seed % (2**32)


def _column(data: Dataset, name: str, purpose: str) -> np.ndarray[Any, Any]:
    """A kept column, or a feature column of a DataFrame, by name."""
    if name in data.columns:
        return np.asarray(data.columns[name])
    if isinstance(data.X, pd.DataFrame) and name in data.X.columns:
        return data.X[name].to_numpy()
    known = sorted(data.columns) + data.feature_names
    raise DataError(f"{data.name}: no column {name!r} for {purpose}; columns: {', '.join(known)}")


def _sort_order(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Stable ascending order of a column; text that reads as dates sorts as dates."""
    keys: Any = values
    if values.dtype.kind in "OUS":
        keys = values.astype(str)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for date_format in ("ISO8601", "mixed"):
                try:
                    keys = pd.to_datetime(pd.Series(values), format=date_format).to_numpy()
                    break
                except (ValueError, TypeError, OverflowError):
                    continue
    return np.argsort(keys, kind="stable")


def _class_counts(y: np.ndarray[Any, Any]) -> list[tuple[Any, int]]:
    labels, counts = np.unique(y, return_counts=True)
    return sorted(zip(labels.tolist(), counts.tolist(), strict=True), key=lambda lc: lc[1])


def _int64(rows: Any) -> np.ndarray[Any, Any]:
    return np.asarray(rows, dtype=np.int64)


def split_test(
    data: Dataset,
    test: TestSplitSpec,
    seed: int,
    *,
    base_dir: Path,
    data_spec: DataSpec,
    keep_columns: Sequence[str] = (),
) -> tuple[Dataset, Dataset]:
    """(development rows, locked test rows); the same for the same data, spec and seed."""
    if test.source is not None:
        test_data = load_test_file(
            test.source,
            data_spec,
            base_dir,
            keep_columns=tuple(keep_columns) or tuple(data.columns),
            like=data,
        )
        return data, test_data
    fraction = test.fraction
    assert fraction is not None  # the spec model holds fraction xor source
    n = len(data)
    n_test = math.ceil(fraction * n)
    if n < 2 or not 1 <= n_test <= n - 1:
        raise DataError(
            f"{data.name}: a test fraction of {fraction} of {n} rows leaves "
            f"{n_test} test and {n - n_test} development rows; both need at least one"
        )
    if test.order_by is not None:
        order = _sort_order(_column(data, test.order_by, "split.test.order_by"))
        dev_rows, test_rows = order[: n - n_test], order[n - n_test :]
        return data.take(dev_rows), data.take(test_rows)
    if test.groups is not None:
        return _split_groups(data, test.groups, fraction, seed)
    rows = np.arange(n)
    stratify = None
    if test.stratify:
        if data.task != "classification":
            raise DataError(
                f"{data.name}: split.test.stratify needs a classification target, "
                f"but the target is {data.task}"
            )
        label, count = _class_counts(data.y)[0]
        if count < 2:
            raise DataError(
                f"{data.name}: cannot stratify the test split: class {label!r} has only "
                f"{count} row; every class needs at least 2"
            )
        stratify = data.y
    try:
        dev_rows, test_rows = train_test_split(
            rows, test_size=fraction, random_state=_random_state(seed), stratify=stratify
        )
    except ValueError as error:
        raise DataError(f"{data.name}: cannot split off the test set: {error}") from error
    return data.take(np.sort(dev_rows)), data.take(np.sort(test_rows))


def _split_groups(
    data: Dataset, column: str, fraction: float, seed: int
) -> tuple[Dataset, Dataset]:
    """Hold out whole groups, so no group has rows on both sides of the test split."""
    groups = _column(data, column, "split.test.groups")
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=_random_state(seed))
    try:
        dev_rows, test_rows = next(splitter.split(np.zeros(len(data)), groups=groups))
    except ValueError as error:
        raise DataError(f"{data.name}: cannot split off test groups: {error}") from error
    return data.take(np.sort(dev_rows)), data.take(np.sort(test_rows))


def make_folds(
    dev: Dataset, validation: ValidationSpec, seed: int, *, order_by: str | None = None
) -> Folds:
    """(train, validation) index pairs into dev's rows, by `validation.method`.

    `order_by` (optional) sorts the rows for `timeseries`; without it the rows are taken in
    their order, which `split_test` already made the `order_by` order.
    """
    n = len(dev)
    method = validation.method
    k = validation.folds
    shuffle = validation.shuffle
    state = _random_state(seed) if shuffle else None
    rows = np.arange(n)
    splits: Any
    try:
        if method == "holdout":
            return [_holdout(dev, validation.fraction or 0.2, shuffle, seed)]
        if k > n:
            raise DataError(f"{dev.name}: {k} folds need at least {k} rows, but there are {n}")
        if method == "kfold":
            splits = KFold(n_splits=k, shuffle=shuffle, random_state=state).split(rows)
        elif method == "stratified_kfold":
            _require_classes(dev, k, "stratified_kfold")
            splitter = StratifiedKFold(n_splits=k, shuffle=shuffle, random_state=state)
            splits = splitter.split(rows, dev.y)
        elif method == "group_kfold":
            assert validation.groups is not None  # the spec model requires it
            groups = _column(dev, validation.groups, "validation.groups")
            distinct = len(pd.unique(pd.Series(groups)))
            if distinct < k:
                raise DataError(
                    f"{dev.name}: group_kfold with {k} folds needs at least {k} groups, but "
                    f"column {validation.groups!r} has {distinct}"
                )
            if _GROUP_KFOLD_SHUFFLES:
                group_kfold = GroupKFold(n_splits=k, shuffle=shuffle, random_state=state)
            else:  # pragma: no cover - scikit-learn before 1.6
                group_kfold = GroupKFold(n_splits=k)
            splits = group_kfold.split(rows, dev.y, groups)
        else:  # timeseries
            order = rows if order_by is None else _sort_order(_column(dev, order_by, "order_by"))
            tss = TimeSeriesSplit(n_splits=k, gap=validation.gap)
            return [(_int64(order[tr]), _int64(order[va])) for tr, va in tss.split(rows)]
        return [(_int64(tr), _int64(va)) for tr, va in splits]
    except ValueError as error:
        raise DataError(f"{dev.name}: cannot make {method} folds: {error}") from error


def _require_classes(dev: Dataset, k: int, what: str) -> None:
    if dev.task != "classification":
        raise DataError(f"{dev.name}: {what} needs a classification target, not {dev.task}")
    label, count = _class_counts(dev.y)[0]
    if count < k:
        raise DataError(
            f"{dev.name}: {what} with {k} folds needs at least {k} rows of every class, but "
            f"class {label!r} has {count}"
        )


def _holdout(
    dev: Dataset, fraction: float, shuffle: bool, seed: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    n = len(dev)
    n_val = math.ceil(fraction * n)
    if n < 2 or not 1 <= n_val <= n - 1:
        raise DataError(
            f"{dev.name}: a holdout fraction of {fraction} of {n} rows leaves no train or "
            "validation rows"
        )
    rows = np.arange(n)
    if not shuffle:  # contiguous: the last rows validate, as train_test_split(shuffle=False)
        train, val = train_test_split(rows, test_size=fraction, shuffle=False)
        return _int64(train), _int64(val)
    stratify = None
    if dev.task == "classification":
        label, count = _class_counts(dev.y)[0]
        if count < 2:
            raise DataError(
                f"{dev.name}: cannot stratify the holdout split: class {label!r} has only "
                f"{count} row; every class needs at least 2"
            )
        stratify = dev.y
    train, val = train_test_split(
        rows, test_size=fraction, random_state=_random_state(seed), stratify=stratify
    )
    return _int64(np.sort(train)), _int64(np.sort(val))


def split_fingerprint(
    dev: Dataset,
    test: Dataset,
    folds: Sequence[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
) -> str:
    """sha256 over the test rows, the development rows and every fold's indices."""
    digest = hashlib.sha256()
    digest.update(f"test:{test.fingerprint}\ndev:{dev.fingerprint}\n".encode())
    for number, (train, val) in enumerate(folds):
        for side, rows in (("train", train), ("val", val)):
            array = np.asarray(rows, dtype="<i8")
            digest.update(f"fold{number}:{side}:{len(array)}:".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


__all__ = ["Folds", "make_folds", "split_fingerprint", "split_test"]
