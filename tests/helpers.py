"""Helpers for the end-to-end tests: spec files in tmp_path, test plugins, the CLI, storage peeks.

Specs are written as JSON (which is YAML 1.2) with an absolute ``sqlite:////...`` storage
URL, so a study lands in tmp_path whatever the current directory is. Test plugins (a
transformer that sleeps, a spy that records every row it sees, trial functions that sleep,
fail or return NaN) are written as the module ``tdplug`` into tmp_path; a spec reaches them
through ``allow_imports: [tdplug]`` or ``trial: {function: "tdplug:..."}``, a subprocess
through ``PYTHONPATH`` (see ``cli_env``) and the test process through
``monkeypatch.syspath_prepend``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result

from tunedag.cli import main
from tunedag.events import Events
from tunedag.storage import Storage, TrialRecord, open_storage

#: the console script of the venv the tests run in
TUNEDAG = str(Path(sys.executable).with_name("tunedag"))

PLUGIN_MODULE = "tdplug"

#: third-party plugins installed in the environment stay out of the tests
QUIET_ENV = {"TUNEDAG_DISABLE_PLUGIN_AUTOLOAD": "1"}

PLUGIN_SOURCE = '''
"""Plugins for tunedag's end-to-end tests (written by tests/helpers.py)."""
import hashlib
import json
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def row_keys(X):
    """One short fingerprint per row: the row's float64 bytes, hashed."""
    rows = np.ascontiguousarray(np.asarray(X, dtype="<f8"))
    return [hashlib.sha1(row.tobytes()).hexdigest()[:16] for row in rows]


def _log(path, record):
    line = json.dumps(record) + "\\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one O_APPEND write: lines from forked workers never mix
    finally:
        os.close(fd)


class Sleep(BaseEstimator, TransformerMixin):
    """Passes rows through; sleeps in fit, so a trial takes a predictable while."""

    def __init__(self, seconds=0.0):
        self.seconds = seconds

    def fit(self, X, y=None):
        time.sleep(self.seconds)
        return self

    def transform(self, X):
        return X


class PacedSpy(BaseEstimator, TransformerMixin):
    """Passes rows through; sleeps `seconds` in fit and logs the worker's pid and the rows."""

    def __init__(self, seconds=0.0, log=""):
        self.seconds = seconds
        self.log = log

    def fit(self, X, y=None):
        time.sleep(self.seconds)
        _log(self.log, {"pid": os.getpid(), "seconds": self.seconds, "rows": len(X)})
        return self

    def transform(self, X):
        return X


class RowSpy(BaseEstimator, TransformerMixin):
    """Passes rows through; appends the fingerprint of every row it is fitted or applied on."""

    def __init__(self, log=""):
        self.log = log

    def fit(self, X, y=None):
        _log(self.log, {"call": "fit", "pid": os.getpid(), "rows": row_keys(X)})
        return self

    def transform(self, X):
        _log(self.log, {"call": "transform", "pid": os.getpid(), "rows": row_keys(X)})
        return X


class Interrupting(BaseEstimator, TransformerMixin):
    """Passes rows through; its fit raises KeyboardInterrupt when `interrupt` is set."""

    def __init__(self, interrupt=False):
        self.interrupt = interrupt

    def fit(self, X, y=None):
        if self.interrupt:
            raise KeyboardInterrupt
        return self

    def transform(self, X):
        return X


def nap(context):
    """Sleeps `nap` seconds, then scores `x` (or 1 - nap when there is no x)."""
    time.sleep(context.params["nap"])
    return float(context.params.get("x", 1.0 - context.params["nap"]))


def crash(context):
    """Dies as the `how` parameter says: a segfault, abort, os._exit or sys.exit, or raises
    KeyboardInterrupt, a BaseException of its own or an error of a million characters; else
    0.5."""
    import ctypes
    import signal
    import sys

    import faulthandler

    faulthandler.disable()  # pytest's handler would dump every thread into the log
    how = context.params["how"]
    if how == "segfault":
        ctypes.string_at(0)
    elif how == "abort":
        os.abort()
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "os_exit":
        os._exit(0)
    elif how == "sys_exit_0":
        sys.exit(0)
    elif how == "sys_exit_3":
        sys.exit(3)
    elif how == "keyboard_interrupt":
        raise KeyboardInterrupt
    elif how == "base_exception":

        class Escape(BaseException):
            pass

        raise Escape("out of the trial")
    elif how == "huge_message":
        raise ValueError("x" * 1_000_000)
    return 0.5


def nan_above_half(context):
    """NaN for x > 0.5, else x: a broken metric for part of the space."""
    x = context.params["x"]
    return float("nan") if x > 0.5 else float(x)


def peek(context):
    """Records every row the trial context hands out (log file from $TDPLUG_LOG)."""
    path = os.environ["TDPLUG_LOG"]
    _log(path, {"call": "context.X", "rows": row_keys(context.X)})
    for X_train, _, X_valid, _ in context.folds():
        _log(path, {"call": "train", "rows": row_keys(X_train)})
        _log(path, {"call": "valid", "rows": row_keys(X_valid)})
    return float(context.params["x"])
'''


def row_keys(X: Any) -> list[str]:
    """The same row fingerprints as ``tdplug.row_keys``."""
    rows = np.ascontiguousarray(np.asarray(X, dtype="<f8"))
    return [hashlib.sha1(row.tobytes()).hexdigest()[:16] for row in rows]


def install_plugins(directory: Path) -> Path:
    """Write the ``tdplug`` module into ``directory``; returns its path."""
    path = directory / f"{PLUGIN_MODULE}.py"
    path.write_text(PLUGIN_SOURCE, encoding="utf-8")
    return path


# -- specs -------------------------------------------------------------------------------------


def storage_url(path: Path) -> str:
    """``sqlite:////abs/path``: absolute, so it does not depend on the current directory."""
    return f"sqlite:///{path.resolve()}"


def base_spec(tmp_path: Path, name: str = "study", **sections: Any) -> dict[str, Any]:
    """A small, fast spec (iris, scaled k-NN, random search, 4 trials) with sections replaced.

    A section given as None is removed (e.g. ``pipeline=None`` with ``trial=...``).
    """
    spec: dict[str, Any] = {
        "name": name,
        "seed": 7,
        "data": {"source": "sklearn:iris"},
        "split": {
            "test": {"fraction": 0.25, "stratify": True},
            "validation": {"method": "stratified_kfold", "folds": 3},
        },
        "pipeline": [
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        "space": {"model__n_neighbors": {"type": "int", "low": 1, "high": 30}},
        "objective": {"metric": "accuracy"},
        "sampler": {"name": "random"},
        "budget": {"trials": 4, "max_failed": 2},
        "storage": storage_url(tmp_path / "studies.sqlite"),
    }
    for key, value in sections.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = copy.deepcopy(value)
    return spec


def trial_spec(tmp_path: Path, function: str, space: dict[str, Any], **sections: Any) -> dict:
    """A spec whose trials are the custom function ``tdplug:<function>``."""
    return base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": f"{PLUGIN_MODULE}:{function}"},
        space=space,
        **{"allow_imports": [PLUGIN_MODULE], **sections},
    )


def write_spec(directory: Path, spec: dict[str, Any], filename: str = "spec.json") -> Path:
    path = directory / filename
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


def db_file(spec: dict[str, Any]) -> Path:
    url: str = spec["storage"]
    return Path(url.removeprefix("sqlite:///"))


# -- running -----------------------------------------------------------------------------------


def cli(args: Iterable[str], cwd: Path) -> Result:
    """``tunedag ARGS`` in this process (Click's runner): exit code, stdout and stderr apart."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        runner = CliRunner(env=QUIET_ENV)
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(previous)


def cli_env(*paths: Path) -> dict[str, str]:
    """The environment for a ``tunedag`` subprocess, with ``paths`` importable."""
    env = dict(os.environ)
    extra = [str(p) for p in paths]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    env["PYTHONWARNINGS"] = "ignore"
    env.update(QUIET_ENV)
    return env


def popen(
    args: Iterable[str], cwd: Path, *, log: Path, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """A real ``tunedag ARGS`` process, ``cwd`` on its PYTHONPATH, stdout and stderr to ``log``.

    A file rather than a pipe: a run that is never read from can never block on a full pipe,
    and forked workers that outlive a killed run hold no pipe open.
    """
    with log.open("ab") as out:
        return subprocess.Popen(
            [TUNEDAG, *(str(a) for a in args)],
            cwd=cwd,
            env=cli_env(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def run_process(
    args: Iterable[str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TUNEDAG, *(str(a) for a in args)],
        cwd=cwd,
        env=cli_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recorder() -> tuple[Events, list[dict[str, Any]]]:
    """An event stream for ``tunedag.run`` and the list it records into."""
    events = Events()
    seen: list[dict[str, Any]] = []
    events.add(seen.append)
    return events, seen


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- storage -----------------------------------------------------------------------------------


def stored_trials(spec: dict[str, Any], study: str | None = None) -> list[TrialRecord]:
    with open_storage(spec["storage"]) as store:
        return store.trials(study or spec["name"])


def open_store(spec: dict[str, Any]) -> Storage:
    return open_storage(spec["storage"])


def peek_trials(db: Path) -> list[dict[str, Any]]:
    """Every trial as a plain row, read-only, while a run may be writing; [] before it starts."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT number, state, params, value, started_at, finished_at, attempt "
                "FROM trials ORDER BY number"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # no tables yet
        return []
    return [dict(row) for row in rows]


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> Any:
    """Poll ``condition`` every 10 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            output = log.read_text(errors="replace") if log is not None else ""
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}:\n{output}")
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting until {what}")


def fresh_running_trial(db: Path, min_complete: int, max_age: float = 0.05) -> int | None:
    """The number of a trial that started under ``max_age`` s ago, once enough completed.

    Signalling right then hits a trial in flight: the test trials take far longer than that.
    """
    rows = peek_trials(db)
    if sum(1 for row in rows if row["state"] == "complete") < min_complete:
        return None
    now = time.time()
    for row in rows:
        started = row["started_at"]
        if row["state"] == "running" and started is not None and now - started < max_age:
            return int(row["number"])
    return None


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a run and its forked workers (a whole-container crash)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
