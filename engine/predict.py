"""Predictions from a study's saved model on new rows: ``tunedag predict SPEC --data SOURCE``.

The rows must carry the model's training columns: a missing or an unexpected column is
named, and a column whose type differs from training (text where numbers were, numbers
where text was) is explained rather than passed on to fail deep inside scikit-learn. The
target column and the columns the spec drops or splits by are ignored when present.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunedag.artifact import write_atomic
from tunedag.data import _read_frame
from tunedag.errors import DataError, SpecNotFoundError, UsageError, output_path_error
from tunedag.model import load_model, model_path, read_card
from tunedag.spec.models import Spec
from tunedag.text import error_text

OUTPUT_SUFFIXES = (".csv", ".parquet")


@dataclass
class Predictions:
    """What ``predict`` wrote, for the summary line and ``--json``."""

    study: str
    model: str
    trial: int | None
    rows: int
    out: str
    columns: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def predict(
    spec: Spec, source: str, out: Path, *, proba: bool = False, storage: str | None = None
) -> Predictions:
    """Predict ``source``'s rows with ``spec``'s saved model and write them to ``out``."""
    if out.suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"--out {out}: write predictions to a .csv or .parquet file")
    model = load_model(spec, storage=storage)
    path = model_path(spec, storage)
    card = read_card(path)
    frame = read_rows(source)
    with _refused_rows(source):
        X = align(frame, card["data"], source)
        table = pd.DataFrame({"prediction": model.predict(X)})
    if proba:
        if not hasattr(model, "predict_proba"):
            final = getattr(model, "steps", [("", model)])[-1][1]
            raise UsageError(
                f"--proba: the model's final step ({type(final).__name__}) has no "
                "predict_proba (a regressor, or a classifier such as SVC without "
                "probability: true)"
            )
        with _refused_rows(source):
            probabilities = model.predict_proba(X)
        for index, label in enumerate(getattr(model, "classes_", [])):
            table[f"proba_{label}"] = probabilities[:, index]
    write = table.to_parquet if out.suffix == ".parquet" else table.to_csv
    try:  # a reader (the next pipeline step) never sees half a file
        write_atomic(out, lambda path: write(path, index=False))
    except OSError as error:
        raise output_path_error(out, error, "--out") from error
    return Predictions(
        study=spec.name,
        model=str(path),
        trial=card.get("trial"),
        rows=len(table),
        out=str(out),
        columns=list(table.columns),
    )


@contextlib.contextmanager
def _refused_rows(source: str) -> Iterator[None]:
    """The model refusing the rows (a missing value it cannot take, infinity, a number too
    large for its integer column) is the data's problem."""
    try:
        yield
    except (ValueError, TypeError, OverflowError) as error:
        raise DataError(
            f"{source}: the model cannot predict these rows: {error_text(error)}"
        ) from error


def read_rows(source: str) -> pd.DataFrame:
    """``csv:PATH`` or ``parquet:PATH`` (or a path ending in .csv or .parquet), from the cwd."""
    kind, sep, rest = source.partition(":")
    if sep and kind.isalpha() and len(kind) > 1 and kind not in ("csv", "parquet"):
        raise UsageError(
            f"--data {source!r}: {kind}: is no format tunedag reads; give csv:PATH or parquet:PATH"
        )
    if not sep or kind not in ("csv", "parquet"):
        kind, rest = Path(source).suffix.lstrip("."), source
        if kind not in ("csv", "parquet"):
            raise UsageError(f"--data {source!r}: give csv:PATH or parquet:PATH")
    path = Path(rest).expanduser().absolute()
    if path.is_dir():
        raise SpecNotFoundError(f"data file {path} is a folder, not a file (--data {source})")
    if not path.is_file():
        raise SpecNotFoundError(f"data file {path} does not exist (--data {source})")
    return _read_frame(kind, path)


def align(frame: pd.DataFrame, data: dict[str, Any], source: str) -> Any:
    """The model's input from ``frame``: training columns in training order and types."""
    features: list[str] = data["features"]
    dtypes: dict[str, str] = data["dtypes"]
    ignored = {data.get("target"), *data.get("ignored", [])}
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    missing = [name for name in features if name not in columns]
    extra = [name for name in columns if name not in features and name not in ignored]
    if missing or extra:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unexpected {extra}"] if extra else []
        raise DataError(
            f"{source}: the columns differ from the model's training columns: "
            f"{'; '.join(parts)} (the model takes {len(features)} columns; the target "
            f"{data.get('target')!r} may be present and is ignored)"
        )
    X = frame[features]
    for name in features:
        _check_type(X[name], dtypes[name], source)
    if data.get("input") == "array":
        return X.to_numpy(dtype=np.dtype(dtypes[features[0]]))
    # an all-empty text column reads as floats; it goes back to its trained type (NaN in it)
    return X.astype(
        {name: dtypes[name] for name in features if _numeric(dtypes[name]) or X[name].isna().all()}
    )


def _numeric(dtype: str) -> bool:
    try:
        return bool(np.dtype(dtype).kind in "biuf")
    except TypeError:
        return False


def _check_type(column: pd.Series[Any], trained: str, source: str) -> None:
    found = column.dtype
    numeric_now = pd.api.types.is_numeric_dtype(found)
    if _numeric(trained) and not numeric_now:
        converted = pd.to_numeric(column, errors="coerce")
        bad = column[converted.isna() & column.notna()]
        example = f" ({bad.iloc[0]!r} at row {bad.index[0]})" if len(bad) else ""
        raise DataError(
            f"{source}: column {column.name!r} holds text{example} where the model was trained "
            f"on numbers ({trained}); fix or drop those values"
        )
    if not _numeric(trained) and numeric_now and column.notna().any():
        raise DataError(
            f"{source}: column {column.name!r} reads as numbers ({found}) where the model was "
            f"trained on text or categories ({trained}); the values will not match the "
            "categories it learned"
        )
    if _numeric(trained) and np.dtype(trained).kind in "iu" and getattr(found, "kind", "") == "f":
        values = column.dropna()
        fractional = values[values != np.floor(values)]
        if column.isna().any() or len(fractional):
            raise DataError(
                f"{source}: column {column.name!r} holds missing or fractional values where "
                f"the model was trained on integers ({trained})"
            )
    if _numeric(trained) and np.dtype(trained).kind in "iu" and numeric_now:
        limits = np.iinfo(np.dtype(trained))
        values = column.dropna()
        outside = values[(values < limits.min) | (values > limits.max)]
        if len(outside):  # a cast would wrap them around silently
            raise DataError(
                f"{source}: column {column.name!r} holds {outside.iloc[0]!r} (row "
                f"{outside.index[0]}), outside the range of the model's integer type {trained}"
            )
