"""The dry run: values that validate but would fail every trial are caught before any trial
is stored, each at the file:line:col of the key that caused it, in a few seconds."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import tunedag
from tunedag.dryrun import dry_run_spec
from tunedag.errors import SpecError

REPO = Path(__file__).resolve().parents[1]

SVC_SPEC = """\
name: dry
seed: 1
data: {source: sklearn:breast_cancer}
split:
  test: {fraction: 0.2, stratify: true}
  validation: {method: stratified_kfold, folds: 3}
pipeline:
  - {name: scale, estimator: sklearn.preprocessing.StandardScaler}
  - name: model
    estimator: sklearn.svm.SVC
    params: {random_state: 0}
space:
  model__C: {type: float, low: 1.0e-3, high: 1.0e+3, log: true}
objective: {metric: roc_auc}
budget: {trials: 2}
"""

CSV_SPEC = """\
name: dry-csv
seed: 1
data:
  source: csv:customers.csv
  target: churned
  drop: [customer_id]
split:
  test: {fraction: 0.2, stratify: true}
  validation: {method: stratified_kfold, folds: 3}
pipeline:
  - name: prep
    estimator: sklearn.compose.ColumnTransformer
    params:
      transformers:
        - [num, {estimator: sklearn.impute.SimpleImputer}, {dtype_include: number}]
        - [cat, {estimator: sklearn.preprocessing.OneHotEncoder}, {dtype_exclude: number}]
  - {name: model, estimator: sklearn.linear_model.LogisticRegression}
space:
  model__C: {type: float, low: 1.0e-3, high: 1.0e+3, log: true}
objective: {metric: f1}
budget: {trials: 2}
"""


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "specs" / "data" / "customers.csv", tmp_path / "customers.csv")
    return tmp_path


def caught(path: Path) -> tuple[str, float]:
    """The dry run's message for the spec at ``path``, and how long it took to say it."""
    started = time.perf_counter()
    spec = tunedag.load_spec(path)
    with pytest.raises(SpecError) as error:
        dry_run_spec(spec)
    seconds = time.perf_counter() - started
    assert error.value.exit_code == 65
    return str(error.value), seconds


def position(text: str, needle: str, occurrence: int = 1) -> str:
    """line:col of the n-th ``needle`` in ``text`` (1-based), as a Problem prints it."""
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{line}:{column}"


def test_a_string_random_state_is_caught_at_its_key(spec_file: Callable[..., Path]) -> None:
    text = SVC_SPEC.replace("random_state: 0", "random_state: zero")
    message, seconds = caught(spec_file(text))
    where = position(text, "random_state")
    assert f"spec.yaml:{where}: pipeline[1].params.random_state: dry run: " in message
    assert "The 'random_state' parameter of SVC must be an int" in message
    assert "Got 'zero' instead" in message
    assert seconds < 5


def test_class_weight_none_as_a_string_is_caught(spec_file: Callable[..., Path]) -> None:
    text = SVC_SPEC.replace(
        "estimator: sklearn.svm.SVC\n    params: {random_state: 0}",
        "estimator: sklearn.linear_model.LogisticRegression\n    params: {class_weight: 'None'}",
    )
    message, seconds = caught(spec_file(text))
    where = position(text, "class_weight")
    assert f"spec.yaml:{where}: pipeline[1].params.class_weight: " in message
    assert "Got 'None' instead" in message
    assert seconds < 5


def test_roc_auc_on_a_three_class_target_is_caught_at_the_metric(
    spec_file: Callable[..., Path],
) -> None:
    text = SVC_SPEC.replace("sklearn:breast_cancer", "sklearn:iris")
    message, seconds = caught(spec_file(text))
    where = position(text, "metric")
    assert f"spec.yaml:{where}: objective.metric: dry run: scoring 'roc_auc' failed" in message
    assert "the target has 3 classes: write roc_auc_ovr or roc_auc_ovo" in message
    assert seconds < 5


def test_string_columns_into_a_scaler_are_caught_at_the_step(
    csv_dir: Path, spec_file: Callable[..., Path]
) -> None:
    text = CSV_SPEC.replace(
        "estimator: sklearn.compose.ColumnTransformer\n    params:\n      transformers:\n"
        "        - [num, {estimator: sklearn.impute.SimpleImputer}, {dtype_include: number}]\n"
        "        - [cat, {estimator: sklearn.preprocessing.OneHotEncoder}, "
        "{dtype_exclude: number}]",
        "estimator: sklearn.preprocessing.StandardScaler",
    )
    message, seconds = caught(spec_file(text))
    where = position(text, "estimator: sklearn.preprocessing.StandardScaler")
    assert f"spec.yaml:{where}: pipeline[0].estimator: dry run: fitting step 'prep'" in message
    assert "could not convert string to float" in message
    assert seconds < 5


def test_a_corner_of_the_space_that_breaks_a_constraint_is_caught_at_its_bound(
    spec_file: Callable[..., Path],
) -> None:
    text = SVC_SPEC.replace(
        "model__C: {type: float, low: 1.0e-3, high: 1.0e+3, log: true}",
        "model__C: {type: float, low: -1.0, high: 10.0}",
    )
    message, seconds = caught(spec_file(text))
    where = position(text, "low: -1.0")
    assert f"spec.yaml:{where}: space.model__C.low: dry run: The 'C' parameter of SVC" in message
    assert "Got -1.0 instead" in message
    assert seconds < 5


def test_a_column_selector_that_picks_nothing_names_the_columns(
    csv_dir: Path, spec_file: Callable[..., Path]
) -> None:
    text = CSV_SPEC.replace("{dtype_exclude: number}", "{dtype_include: datetime}")
    message, seconds = caught(spec_file(text))
    where = position(text, "{dtype_include: datetime}")
    assert f"spec.yaml:{where}: pipeline[0].params.transformers[1][2]: dry run: " in message
    assert "the selector dtype_include='datetime' picks no column" in message
    assert "region (" in message and "tenure_months (int64)" in message
    assert seconds < 5


def test_a_good_spec_passes_the_dry_run(csv_dir: Path, spec_file: Callable[..., Path]) -> None:
    summary = dry_run_spec(tunedag.load_spec(spec_file(CSV_SPEC)))
    assert summary.fitted == 1 and summary.configurations == 3
    assert "dry run ok" in str(summary)


def test_validate_dry_run_on_the_command_line(
    run_cli: Callable[..., Result], spec_file: Callable[..., Path]
) -> None:
    good = run_cli("validate", "--dry-run", spec_file(SVC_SPEC))
    assert good.exit_code == 0, good.stderr
    assert "dry run ok: 3 configurations built and validated" in good.stderr
    bad = spec_file(SVC_SPEC.replace("random_state: 0", "random_state: zero"), "bad.yaml")
    assert run_cli("validate", bad).exit_code == 0  # types alone cannot see it
    result = run_cli("validate", "--dry-run", bad)
    assert result.exit_code == 65
    assert "pipeline[1].params.random_state" in result.stderr


def test_run_stops_before_storing_any_trial(
    run_cli: Callable[..., Result], spec_file: Callable[..., Path], tmp_path: Path
) -> None:
    db = tmp_path / "dry.sqlite"
    text = SVC_SPEC.replace("random_state: 0", "random_state: zero") + f"storage: sqlite:///{db}\n"
    result = run_cli("run", spec_file(text))
    assert result.exit_code == 65
    assert "pipeline[1].params.random_state: dry run:" in result.stderr
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "trials" in tables:
                assert conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 0


def test_a_run_whose_dry_run_starts_native_threads_does_not_hang_its_workers(
    tmp_path: Path,
) -> None:
    """LightGBM with n_jobs -1 starts OpenMP threads when the dry run fits it; a worker forked
    from a driver holding them hung on its first trial. The dry run has a process of its own."""
    pytest.importorskip("lightgbm")
    from helpers import run_process
    from test_spec_values import tiny

    path = tiny("mixed-lightgbm.yaml", tmp_path, budget={"trials": 2})
    path.write_text(path.read_text().replace('"n_jobs": 1', '"n_jobs": -1'), encoding="utf-8")
    assert '"n_jobs": -1' in path.read_text()
    done = run_process(["run", path], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr


CRASHING_MODULE = """\
import os
import sys

from sklearn.base import BaseEstimator, ClassifierMixin

{on_import}


class Crashing(ClassifierMixin, BaseEstimator):
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y):
        {in_fit}
"""


def crashing_spec(tmp_path: Path, in_fit: str = "return self", on_import: str = "") -> Path:
    """SVC_SPEC with its model from a module of the test's own, whose fit does ``in_fit``."""
    module = CRASHING_MODULE.format(in_fit=in_fit, on_import=on_import)
    (tmp_path / "crashmodels.py").write_text(module, encoding="utf-8")
    text = SVC_SPEC.replace("sklearn.svm.SVC", "crashmodels.Crashing").replace(
        "    params: {random_state: 0}\n", ""
    )
    text = text.replace("model__C:", "model__alpha:")
    path = tmp_path / "spec.yaml"
    path.write_text(text + f"allow_imports: [crashmodels]\nstorage: sqlite:///{tmp_path}/s.db\n")
    return path


@pytest.mark.parametrize(
    ("in_fit", "said"),
    [
        ("os._exit(3)", "pipeline: dry run: fitting the pipeline ended its process (exit code 3)"),
        (
            "sys.exit(4)",
            "fitting step 'model' (Crashing) on 300 development rows failed: SystemExit: 4",
        ),
        (
            "raise KeyboardInterrupt",
            "pipeline: dry run: fitting the pipeline raised KeyboardInterrupt",
        ),
    ],
)
def test_a_fit_that_exits_or_ends_the_dry_run_s_process_is_a_located_spec_error(
    tmp_path: Path, in_fit: str, said: str
) -> None:
    from helpers import run_process

    done = run_process(["run", crashing_spec(tmp_path, in_fit)], tmp_path)
    assert done.returncode == 65, done.stderr
    assert said in done.stderr and f"{tmp_path / 'spec.yaml'}:" in done.stderr


def test_a_fit_that_calls_sys_exit_in_validate_dry_run_is_a_spec_error(tmp_path: Path) -> None:
    """validate --dry-run fits in its own process: sys.exit there must not become its exit."""
    from helpers import run_process

    path = crashing_spec(tmp_path, "sys.exit(0)")
    done = run_process(["validate", path, "--dry-run"], tmp_path)
    assert done.returncode == 65, done.stderr
    assert "failed: SystemExit: 0" in done.stderr


@pytest.mark.parametrize(
    ("on_import", "said"),
    [
        ('raise RuntimeError("boom")', "importing 'crashmodels' raised RuntimeError: boom"),
        ("sys.exit(0)", "importing 'crashmodels' raised SystemExit: 0"),
    ],
)
def test_a_module_that_fails_on_import_is_located_at_the_estimator(
    tmp_path: Path, on_import: str, said: str
) -> None:
    from helpers import run_process

    done = run_process(["validate", crashing_spec(tmp_path, on_import=on_import)], tmp_path)
    assert done.returncode == 78, done.stderr
    assert said in done.stderr and "spec.yaml:" in done.stderr
    assert "Traceback" not in done.stderr
