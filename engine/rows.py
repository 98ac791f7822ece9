"""Rows by content: a digest per row, and an order-independent fingerprint of a set of rows.

The look ledger keys every test-set score by the fingerprint of the test rows, so the same
rows are recognised whatever the study, folder, file name or row order; the overlap check
compares feature-row digests of the test and development rows. Values are canonicalised
first, so a column read as integers in one file and as floats in another hashes alike.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from tunedag.data import Dataset

#: the name the target takes among the columns of a row (no data column can be empty)
_TARGET = ""
_NA = "\x00na"


def _columns(data: Dataset, *, features_only: bool) -> dict[str, np.ndarray[Any, Any]]:
    """Name -> values; features, then (for whole rows) the target and the kept columns."""
    if isinstance(data.X, pd.DataFrame):
        columns = {str(name): data.X[name] for name in data.X.columns}
        out = {name: _canonical(series) for name, series in columns.items()}
    else:
        matrix = np.asarray(data.X)
        out = {
            name: _canonical(pd.Series(matrix[:, i])) for i, name in enumerate(data.feature_names)
        }
    if not features_only:
        out[_TARGET] = _canonical(pd.Series(data.y))
        for name, values in data.columns.items():
            out[name] = _canonical(pd.Series(values))
    return out


def _canonical(series: pd.Series[Any]) -> np.ndarray[Any, Any]:
    """float64 for numbers and booleans (-0.0 as 0.0, one NaN); text for everything else."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        values = series.to_numpy(dtype="float64", na_value=np.nan) + 0.0
        values[np.isnan(values)] = np.nan
        return values
    text = series.astype(object).to_numpy()
    return np.array([_NA if _missing(v) else str(v) for v in text], dtype=object)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def row_digests(data: Dataset, *, features_only: bool = False) -> list[bytes]:
    """One 16-byte digest per row; columns are taken in name order, so their order in the
    file does not matter. ``features_only`` leaves out the target and the split columns."""
    columns = _columns(data, features_only=features_only)
    names = sorted(columns)
    numeric = [name for name in names if columns[name].dtype == np.float64]
    text = [name for name in names if columns[name].dtype != np.float64]
    header = ("\x1f".join(numeric) + "\x1e" + "\x1f".join(text)).encode()
    n = len(data)
    matrix = (
        np.ascontiguousarray(np.column_stack([columns[c] for c in numeric]), dtype="<f8")
        if numeric
        else np.zeros((n, 0), dtype="<f8")
    )
    digests = []
    for row in range(n):
        digest = hashlib.blake2b(header, digest_size=16)
        digest.update(matrix[row].tobytes())
        for name in text:
            digest.update(b"\x1f" + str(columns[name][row]).encode("utf-8", "surrogatepass"))
        digests.append(digest.digest())
    return digests


def rows_fingerprint(data: Dataset) -> str:
    """sha256 over the sorted row digests: the same rows give it in any order."""
    digest = hashlib.sha256(b"tunedag-rows-1\n")
    for row in sorted(row_digests(data)):
        digest.update(row)
    return digest.hexdigest()


def overlap(test: Dataset, dev: Dataset) -> list[tuple[int, int]]:
    """(test row, development row) pairs whose feature rows are equal, one per test row."""
    first_dev: dict[bytes, int] = {}
    for index, key in enumerate(row_digests(dev, features_only=True)):
        first_dev.setdefault(key, index)
    return [
        (index, first_dev[key])
        for index, key in enumerate(row_digests(test, features_only=True))
        if key in first_dev
    ]


__all__ = ["overlap", "row_digests", "rows_fingerprint"]
