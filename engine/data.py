"""Load the data a spec names: a bundled scikit-learn dataset, or a csv or parquet file.

Every problem with the data itself is a `DataError` (exit 65) whose message names the file and
what is wrong; a data file that does not exist is a `SpecNotFoundError` (exit 66).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tunedag.errors import DataError, SpecNotFoundError

if TYPE_CHECKING:  # the spec package imports this module: no import cycle at run time
    from tunedag.spec.models import DataSpec

Task = Literal["classification", "regression"]

#: bundled scikit-learn datasets (no download): name -> (loader function, task)
SKLEARN_DATASETS: dict[str, tuple[str, Task]] = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}

#: an integer target with at most this many distinct values is taken as class labels
MAX_INTEGER_CLASSES = 20

_FILE_KINDS = ("csv", "parquet")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features, target and the non-feature columns kept for splitting, row-aligned."""

    X: np.ndarray[Any, Any] | pd.DataFrame
    y: np.ndarray[Any, Any]
    columns: dict[str, np.ndarray[Any, Any]]
    task: Task
    name: str
    #: column names of an array's features (a bundled dataset's); a DataFrame has its own
    names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray[Any, Any] | Sequence[int]) -> Dataset:
        """The subset of these rows, in this order (a boolean mask is accepted too)."""
        index = np.asarray(rows)
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        index = index.astype(np.intp, copy=False)
        X: np.ndarray[Any, Any] | pd.DataFrame
        if isinstance(self.X, pd.DataFrame):
            X = self.X.iloc[index].reset_index(drop=True)
        else:
            X = self.X[index]
        return Dataset(
            X=X,
            y=self.y[index],
            columns={name: values[index] for name, values in self.columns.items()},
            task=self.task,
            name=self.name,
            names=self.names,
        )

    @property
    def feature_names(self) -> list[str]:
        """Column names of a DataFrame, `x0`, `x1`, ... for an array."""
        if isinstance(self.X, pd.DataFrame):
            return [str(c) for c in self.X.columns]
        if self.names is not None:
            return list(self.names)
        return [f"x{i}" for i in range(self.X.shape[1])]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the features, the target and the kept columns; stable across processes."""
        digest = hashlib.sha256()
        digest.update(b"X:")
        if isinstance(self.X, pd.DataFrame):
            digest.update(repr([(str(c), str(t)) for c, t in self.X.dtypes.items()]).encode())
            if len(self.X.columns):
                hashed = pd.util.hash_pandas_object(self.X, index=False)
                digest.update(np.asarray(hashed, dtype="<u8").tobytes())
            digest.update(str(len(self.X)).encode())
        else:
            _digest_array(digest, self.X)
        digest.update(b"y:")
        _digest_array(digest, self.y)
        for name in sorted(self.columns):
            digest.update(f"column:{name}:".encode())
            _digest_array(digest, self.columns[name])
        return digest.hexdigest()


def _digest_array(digest: Any, values: np.ndarray[Any, Any]) -> None:
    array = np.asarray(values)
    digest.update(f"{array.shape}".encode())
    if array.dtype.kind in "OUS":
        digest.update(f"{array.dtype.kind}:".encode())
        hashed = pd.util.hash_pandas_object(pd.Series(array.ravel()), index=False)
        digest.update(np.asarray(hashed, dtype="<u8").tobytes())
    else:
        normalized = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(normalized.dtype.str.encode())
        digest.update(np.ascontiguousarray(normalized).tobytes())


# ---------------------------------------------------------------------------------- sources


def _split_source(source: str) -> tuple[str, str]:
    kind, sep, rest = source.partition(":")
    if not sep or not rest or kind not in ("sklearn", *_FILE_KINDS):
        raise DataError(f"data source {source!r} is not sklearn:NAME, csv:PATH or parquet:PATH")
    return kind, rest


def resolve_path(path: str, base_dir: Path) -> Path:
    """A data path as the spec means it: relative to the spec file's folder."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir) / candidate
    try:
        return candidate.resolve()
    except (RuntimeError, OSError):  # a symlink loop: reported as a file that does not exist
        return candidate.absolute()


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _listing(names: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown}, ... ({more} more)" if more > 0 else shown


def _unknown_dataset_message(name: str) -> str:
    return (
        f"unknown scikit-learn dataset {name!r}{_did_you_mean(name, SKLEARN_DATASETS)} "
        f"available: {', '.join(SKLEARN_DATASETS)}"
    )


def _missing_file_message(source: str, path: Path, base_dir: Path) -> str | None:
    if path.is_file():
        return None
    what = "is not a file" if path.exists() else "does not exist"
    return f"data file {path} {what} (source {source!r}, relative to {Path(base_dir).resolve()})"


def _pyarrow_missing() -> bool:
    try:
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return True
    return False


_NO_PYARROW = "reading parquet files needs pyarrow: pip install tunedag[parquet]"


def check_source(spec: DataSpec, base_dir: Path) -> str | None:
    """Why the data source cannot be read, or None; never reads the data (for `validate`)."""
    try:
        kind, rest = _split_source(spec.source)
    except DataError as error:
        return str(error)
    if kind == "sklearn":
        return None if rest in SKLEARN_DATASETS else _unknown_dataset_message(rest)
    missing = _missing_file_message(spec.source, resolve_path(rest, base_dir), base_dir)
    if missing is not None:
        return missing
    if kind == "parquet" and _pyarrow_missing():
        return _NO_PYARROW
    return None


def column_names(spec: DataSpec, base_dir: Path) -> list[str] | None:
    """The data's column names from its header alone; None when it cannot be read cheaply."""
    try:
        kind, rest = _split_source(spec.source)
    except DataError:
        return None
    if kind == "sklearn":
        if rest not in SKLEARN_DATASETS:
            return None
        from sklearn import datasets

        bunch = getattr(datasets, SKLEARN_DATASETS[rest][0])()
        names = [str(f) for f in getattr(bunch, "feature_names", [])]
        return names or [f"x{i}" for i in range(np.asarray(bunch.data).shape[1])]
    path = resolve_path(rest, base_dir)
    if not path.is_file():
        return None
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return [str(name) for name in pq.read_schema(path).names]
        return _names(pd.read_csv(path, nrows=0))
    except Exception:  # an unreadable file is reported when it is read for real
        return None


def _read_frame(kind: str, path: Path) -> pd.DataFrame:
    frame: pd.DataFrame
    if path.stat().st_size == 0:
        # also what /proc and /sys files report: their contents (an environment, say)
        # must never be parsed into a message
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    if kind == "parquet":
        if _pyarrow_missing():
            raise DataError(f"{path}: {_NO_PYARROW}")
        try:
            import pyarrow.parquet as pq

            _check_unique(path, [str(name) for name in pq.read_schema(path).names])
            frame = pd.read_parquet(path, engine="pyarrow")
        except (ValueError, OSError, TypeError) as error:
            raise DataError(f"{path}: cannot be read as parquet: {error}") from error
    else:
        try:
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            # empty header cells are left to pandas, which names them "Unnamed: N"
            _check_unique(path, [name for name in header.iloc[0] if name] if len(header) else [])
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError as error:
            raise DataError(f"{path}: the file is empty (no header, no rows)") from error
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise DataError(f"{path}: cannot be parsed as csv: {first_line}") from error
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no rows (columns: {_listing(_names(frame))})")
    return frame


def _check_unique(path: Path, names: list[str]) -> None:
    """Refuse repeated column names: a reader would rename one (``a.1``) or fail on both."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path}: column names appear more than once: {_listing(repeated)}; give each "
            "column its own name"
        )


def _separator_hint(names: list[str]) -> str:
    """A hint when one column's name holds what looks like the file's real separator."""
    if len(names) != 1:
        return ""
    for separator, word in ((";", "semicolons"), ("\t", "tabs")):
        if separator in names[0]:
            return (
                f" (one column: the file seems to separate its values with {word}; "
                "tunedag reads comma-separated files)"
            )
    return ""


def _names(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _infer_task(target: pd.Series[Any], where: str) -> Task:
    dtype = target.dtype
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    ):
        return "classification"
    if pd.api.types.is_integer_dtype(dtype):
        return "classification" if target.nunique() <= MAX_INTEGER_CLASSES else "regression"
    if pd.api.types.is_float_dtype(dtype):
        return "regression"
    raise DataError(
        f"{where}: target column {target.name!r} has dtype {dtype}; "
        "expected numbers (regression) or labels (classification)"
    )


def _frame_dataset(
    frame: pd.DataFrame,
    spec: DataSpec,
    where: str,
    keep_columns: Sequence[str],
    *,
    check_classes: bool = True,
) -> Dataset:
    names = _names(frame)
    frame = frame.set_axis(names, axis=1)
    target = spec.target
    if target is None:  # the spec model requires it for files; kept for direct callers
        raise DataError(f"{where}: a csv or parquet source needs `target: COLUMN`")
    if target not in names:
        raise DataError(
            f"{where}: no target column {target!r}{_did_you_mean(target, names)}; "
            f"columns: {_listing(names)}{_separator_hint(names)}"
        )
    for role, wanted in (("drop", spec.drop), ("split", keep_columns)):
        for name in wanted:
            if name not in names:
                raise DataError(
                    f"{where}: no column {name!r} (named in {role} columns)"
                    f"{_did_you_mean(name, names)}; columns: {_listing(names)}"
                )
    y_series = frame[target]
    missing = int(y_series.isna().sum())
    if missing:
        rows = np.flatnonzero(y_series.isna().to_numpy())[:5].tolist()
        raise DataError(
            f"{where}: target column {target!r} has missing values in {missing} of "
            f"{len(frame)} rows (first at row indexes {rows}); drop or fill those rows"
        )
    try:
        task = _infer_task(y_series, where)
        distinct = y_series.nunique()
    except TypeError as error:  # unhashable cells: lists, arrays, mappings
        raise DataError(
            f"{where}: target column {target!r} holds {type(y_series.iloc[0]).__name__} "
            "values, not labels or numbers"
        ) from error
    if check_classes and distinct < 2:
        first = y_series.iloc[0]
        only = first.item() if isinstance(first, np.generic) else first
        kind = "a single class" if task == "classification" else "a single value"
        raise DataError(
            f"{where}: target column {target!r} has {kind} ({only!r}); nothing to learn"
        )
    keep = _unique(keep_columns)
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for name in keep:
        values = frame[name]
        holes = int(values.isna().sum())
        if holes:
            raise DataError(f"{where}: column {name!r} has missing values in {holes} rows")
        columns[name] = values.to_numpy()
    removed = _unique([target, *spec.drop, *keep])
    X = frame.drop(columns=removed).reset_index(drop=True)
    if X.shape[1] == 0:
        raise DataError(f"{where}: no feature columns remain after removing {removed}")
    return Dataset(X=X, y=y_series.to_numpy(), columns=columns, task=task, name=where)


def _sklearn_dataset(name: str, spec: DataSpec, keep_columns: Sequence[str]) -> Dataset:
    if name not in SKLEARN_DATASETS:
        raise DataError(_unknown_dataset_message(name))
    loader_name, task = SKLEARN_DATASETS[name]
    from sklearn import datasets

    loader: Callable[..., Any] = getattr(datasets, loader_name)
    bunch = loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    features = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"x{i}" for i in range(X.shape[1])
    ]
    where = f"sklearn:{name}"
    for role, wanted in (("drop", spec.drop), ("split", keep_columns)):
        for column in wanted:
            if column not in features:
                raise DataError(
                    f"{where}: no column {column!r} (named in {role} columns)"
                    f"{_did_you_mean(column, features)} columns: {_listing(features)}"
                )
    keep = _unique(keep_columns)
    columns = {column: X[:, features.index(column)].copy() for column in keep}
    removed = set(spec.drop) | set(keep)
    selected = [i for i, f in enumerate(features) if f not in removed]
    if not selected:
        raise DataError(f"{where}: no feature columns remain after removing {sorted(removed)}")
    if len(selected) < len(features):
        X = np.ascontiguousarray(X[:, selected])
    names = tuple(features[i] for i in selected)
    return Dataset(X=X, y=y, columns=columns, task=task, name=where, names=names)


def load_dataset(spec: DataSpec, base_dir: Path, *, keep_columns: Sequence[str] = ()) -> Dataset:
    """The data of a spec; `keep_columns` (groups, order_by) move out of the features."""
    kind, rest = _split_source(spec.source)
    if kind == "sklearn":
        return _sklearn_dataset(rest, spec, keep_columns)
    path = resolve_path(rest, base_dir)
    missing = _missing_file_message(spec.source, path, base_dir)
    if missing is not None:
        raise SpecNotFoundError(missing)
    return _frame_dataset(_read_frame(kind, path), spec, str(path), keep_columns)


def load_test_file(
    source: str,
    spec: DataSpec,
    base_dir: Path,
    *,
    keep_columns: Sequence[str] = (),
    like: Dataset | None = None,
) -> Dataset:
    """The separate test file of `split.test.source`, read like the training data.

    With `like` (the training data), the feature columns must be the same names (they are put
    in the training order) and the task is taken from the training data.
    """
    kind, rest = _split_source(source)
    if kind not in _FILE_KINDS:
        raise DataError(f"test source {source!r} must be csv:PATH or parquet:PATH")
    if spec.target is None:
        raise DataError(
            f"a separate test file ({source}) needs a csv or parquet data source with a target"
        )
    path = resolve_path(rest, base_dir)
    missing = _missing_file_message(source, path, base_dir)
    if missing is not None:
        raise SpecNotFoundError(f"test {missing}")
    where = str(path)
    test = _frame_dataset(_read_frame(kind, path), spec, where, keep_columns, check_classes=False)
    if like is None:
        return test
    if not isinstance(like.X, pd.DataFrame):
        raise DataError(f"{where}: a separate test file needs training data from a file")
    expected = like.feature_names
    assert isinstance(test.X, pd.DataFrame)
    found = test.feature_names
    if found != expected:
        absent = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        if absent or extra:
            parts = []
            if absent:
                parts.append(f"missing {absent}")
            if extra:
                parts.append(f"unexpected {extra}")
            raise DataError(
                f"{where}: the test file's feature columns differ from the training data "
                f"({like.name}): {'; '.join(parts)}"
            )
        test = Dataset(
            X=test.X[expected], y=test.y, columns=test.columns, task=like.task, name=where
        )
    elif test.task != like.task:
        test = Dataset(X=test.X, y=test.y, columns=test.columns, task=like.task, name=where)
    return test


__all__ = [
    "MAX_INTEGER_CLASSES",
    "SKLEARN_DATASETS",
    "Dataset",
    "check_source",
    "column_names",
    "load_dataset",
    "load_test_file",
    "resolve_path",
]
