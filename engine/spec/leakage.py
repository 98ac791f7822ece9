"""Spec checks against validation that leaks: folds that do not respect the test split's
reason to exist, a test file that is the training file, split columns that are not there.

Each finding is located at the key to change, and says what to write instead. None of them
reads more than a data file's header.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

from tunedag.data import column_names, resolve_path
from tunedag.spec.loader import Loc
from tunedag.spec.models import Spec

Finding = tuple[Loc, str, int]

_SHUFFLED = ("kfold", "holdout")


def check_fold_leakage(spec: Spec) -> Iterator[Finding]:
    """Folds after an `order_by` test split must respect time; after a `groups` split, groups."""
    validation, test = spec.split.validation, spec.split.test
    method = validation.method
    if test.order_by is not None:
        shuffled = method in _SHUFFLED and validation.shuffle
        if method == "stratified_kfold" or shuffled:
            kind = "stratified" if method == "stratified_kfold" else "shuffled"
            message = (
                f"the test split holds out the latest rows by `{test.order_by}`, but {kind} "
                f"{method} folds train on later rows to score earlier ones, so the CV score "
                "promises more than a forecast delivers; use `method: timeseries` (each fold "
                "trains on the past only)"
            )
            yield ("split", "validation", "method"), message, 65
    if test.groups is not None and method != "group_kfold":
        message = (
            f"the test split holds out whole `{test.groups}` groups, but {method} folds put rows "
            "of one group on both sides of a fold, so the CV score rewards memorising groups; "
            f"use `method: group_kfold` with `groups: {test.groups}`"
        )
        yield ("split", "validation", "method"), message, 65
    if (
        test.groups is not None
        and method == "group_kfold"
        and validation.groups not in (None, test.groups)
    ):
        message = (
            f"the test split holds out whole `{test.groups}` groups, but the folds group by "
            f"`{validation.groups}`; write `groups: {test.groups}`"
        )
        yield ("split", "validation", "groups"), message, 65


def check_test_source(spec: Spec, base_dir: Path) -> Iterator[Finding]:
    """A separate test file must not be the training file itself."""
    source = spec.split.test.source
    if source is None:
        return
    data_kind, _, data_rest = spec.data.source.partition(":")
    test_rest = source.partition(":")[2]
    if data_kind == "sklearn":
        return
    data_path, test_path = resolve_path(data_rest, base_dir), resolve_path(test_rest, base_dir)
    same = data_path == test_path
    if not same and data_path.exists() and test_path.exists():
        same = data_path.samefile(test_path)
    if same:
        message = (
            f"the test file is the training file ({test_path}): every test row is also a "
            "development row, so the test score measures memory; give a file of rows the "
            "study never trains on, or `fraction: 0.2` to split one off"
        )
        yield ("split", "test", "source"), message, 65


def check_split_columns(spec: Spec, base_dir: Path) -> Iterator[Finding]:
    """Group and order columns must be columns of the data (read from its header)."""
    wanted: list[tuple[Loc, str, str]] = []
    if spec.split.validation.groups:
        wanted.append((("split", "validation", "groups"), spec.split.validation.groups, "groups"))
    if spec.split.test.groups:
        wanted.append((("split", "test", "groups"), spec.split.test.groups, "groups"))
    if spec.split.test.order_by:
        wanted.append((("split", "test", "order_by"), spec.split.test.order_by, "order"))
    if not wanted:
        return
    names = column_names(spec.data, base_dir)
    if names is None:
        return
    for loc, column, role in wanted:
        if column == spec.data.target:
            message = f"{column!r} is the target; the {role} column must be another column"
            yield loc, message, 65
        elif column not in names:
            close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            message = (
                f"no column {column!r} in {spec.data.source}{hint} (columns: {shown}); the "
                f"{role} column must be in the data, or the folds cannot keep {role}s apart"
            )
            yield loc, message, 65


__all__ = ["check_fold_leakage", "check_split_columns", "check_test_source"]
