"""Shared fixtures: a valid base spec, writing specs into tmp_path, and running the CLI.

Fixtures only; helpers that one test module needs live in that module.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg_server
import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[1]

#: The `tunedag` console script of the interpreter running the tests.
TUNEDAG = Path(sys.executable).with_name("tunedag")

#: Plugins installed in the environment by third parties stay out of the tests.
QUIET_ENV = {"TUNEDAG_DISABLE_PLUGIN_AUTOLOAD": "1", "TUNEDAG_DISABLED_PLUGINS": ""}

#: A small valid spec; broken specs in the tests are edits of this text.
BASE_SPEC = """\
name: base
seed: 1
data:
  source: sklearn:breast_cancer
split:
  test: {fraction: 0.2, stratify: true}
  validation: {method: stratified_kfold, folds: 3}
pipeline:
  - {name: scale, estimator: sklearn.preprocessing.StandardScaler}
  - {name: model, estimator: sklearn.svm.SVC}
space:
  model__C: {type: float, low: 1.0e-3, high: 1.0e+3, log: true}
  model__kernel: {type: categorical, choices: [rbf, poly]}
  model__degree: {type: int, low: 2, high: 4, when: {model__kernel: poly}}
objective: {metric: roc_auc}
sampler: {name: random}
budget: {trials: 5, max_failed: 1}
"""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL (``TUNEDAG_TEST_POSTGRES_URL``, or a throwaway cluster);
    the tests that need one are skipped, saying why, when there is none."""
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(pg_server.postgres_server())
    except RuntimeError as error:
        pytest.skip(f"PostgreSQL tests skipped: {error}")
    with stack:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty storage on each backend: an SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'study.sqlite'}"
    return pg_server.create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="session", autouse=True)
def _session_look_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module and session fixtures that run studies record their looks here, never in the
    user's data directory (the ledger's default)."""
    path = tmp_path_factory.mktemp("session-ledger") / "looks.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEDAG_LEDGER", str(path))
        yield path


@pytest.fixture(scope="module", autouse=True)
def _module_look_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module's shared fixtures (one study for many tests) get a ledger of their own, so
    two modules that score the same rows never see each other's look."""
    path = tmp_path_factory.mktemp("module-ledger") / "looks.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEDAG_LEDGER", str(path))
        yield path


@pytest.fixture(autouse=True)
def look_ledger(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records its test-set looks in a ledger of its own (TUNEDAG_LEDGER)."""
    path = tmp_path_factory.mktemp("ledger") / "looks.sqlite"
    monkeypatch.setenv("TUNEDAG_LEDGER", str(path))
    return path


@pytest.fixture(autouse=True)
def events_match_their_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every event a test emits in this process matches docs/events.md's schema."""
    from event_schema import problems_with

    from tunedag.events import Events, JsonLines
    from tunedag.stdout import MachineOutput

    found: list[str] = []

    def check(record: Any) -> None:
        found.extend(problems_with(record))

    events_init = Events.__init__

    def checked_events(self: Events, *args: Any, **kwargs: Any) -> None:
        events_init(self, *args, **kwargs)
        self.add(check)

    def checked_writer(original: Callable[..., None]) -> Callable[..., None]:
        def write(self: Any, record: dict[str, Any]) -> None:
            check(record)
            original(self, record)

        return write

    monkeypatch.setattr(Events, "__init__", checked_events)
    monkeypatch.setattr(JsonLines, "_write", checked_writer(JsonLines._write))
    monkeypatch.setattr(MachineOutput, "_write", checked_writer(MachineOutput._write))
    yield
    assert not found, "events that do not match tunedag/events.schema.json:\n" + "\n".join(
        dict.fromkeys(found)
    )


@pytest.fixture(scope="session")
def base_spec_yaml() -> str:
    """The text of a valid spec (YAML) that needs no data file."""
    return BASE_SPEC


@pytest.fixture
def spec_file(tmp_path: Path) -> Callable[..., Path]:
    """spec_file(text, name="spec.yaml") -> the path of a spec file in tmp_path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """run_cli("validate", path) -> click's Result (exit_code, stdout, stderr), run in-process."""
    runner = CliRunner(env=QUIET_ENV)

    def invoke(*args: str | os.PathLike[str]) -> Result:
        from tunedag.cli import main

        return runner.invoke(main, [str(arg) for arg in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def start_cli() -> Callable[..., subprocess.Popen[str]]:
    """start_cli(*args, cwd=...) -> a started `tunedag` process; call .communicate()."""

    def start(*args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(TUNEDAG), *(str(arg) for arg in args)],
            cwd=cwd,
            env={**os.environ, **QUIET_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start
