"""The Prefect 3 flow of docs/orchestration.md, run for real (a temporary local Prefect
server, no network): slices to the budget, a retry after exit 75, a fast fail on exit 78,
tunedag's events in the flow's log, the report at the end."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import base_spec, db_file, run_process, wait_until, write_spec

pytest.importorskip("prefect")

ROOT = Path(__file__).resolve().parents[1]
FLOW = ROOT / "examples" / "orchestration" / "prefect_flow.py"


def prefect_env(tmp_path: Path) -> dict[str, str]:
    """Prefect with a home of its own and a temporary server it starts itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_REQUEST_TIMEOUT="300",
        TUNEDAG_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def start_flow(tmp_path: Path, spec: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "flow.log"
    with log.open("ab") as err, (tmp_path / "flow.out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(FLOW), str(spec), *args],
            cwd=tmp_path,
            env=prefect_env(tmp_path),
            stdout=out,
            stderr=err,
        )
    return process, log


def study_spec(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    model = "sklearn.linear_model.LogisticRegression"
    return base_spec(
        tmp_path,
        name="orchestrated",
        pipeline=[{"name": "model", "estimator": model, "params": {"max_iter": 300}}],
        space={"model__C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
        budget={"trials": 7, "max_failed": 0},
        **sections,
    )


@pytest.mark.slow
def test_the_prefect_flow_runs_the_study_in_slices_and_retries_a_locked_storage(
    tmp_path: Path,
) -> None:
    spec = study_spec(tmp_path)
    path = write_spec(tmp_path, spec)
    first = run_process(["run", path, "--max-new-trials", "1"], tmp_path)
    assert first.returncode == 0, first.stderr
    lock = sqlite3.connect(db_file(spec), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the storage: tunedag exits 75
    process, log = start_flow(tmp_path, path, "--slice", "3", "--retry-delay", "1")
    try:
        wait_until(
            lambda: "TransientTunedagError" in log.read_text(errors="replace"),
            400,
            "the first slice exited 75",
            process,  # type: ignore[arg-type]
            log,
        )
    finally:
        lock.rollback()
        lock.close()
    assert process.wait(timeout=600) == 0, log.read_text(errors="replace")

    text = log.read_text(errors="replace")
    assert "tunedag run exited 75" in text and "Retry 1/3" in text
    assert text.count("study_paused") == 1  # slices of 3 after a first trial: 1 + 3 + 3
    assert text.count("trial_completed") + text.count("trial_pruned") == 6
    assert "test_evaluated" in text and "Flow run" in text
    status = json.loads((tmp_path / "flow.out").read_text().splitlines()[-1])
    assert status["finished"] and status["reason"] == "budget"
    assert status["test"]["value"] is not None
    assert sum(status["counts"].values()) == 7
    assert (tmp_path / "report" / "report.html").is_file()


@pytest.mark.slow
def test_the_prefect_flow_fails_at_once_on_an_unknown_sampler(tmp_path: Path) -> None:
    path = write_spec(tmp_path, study_spec(tmp_path, sampler={"name": "sobol"}))
    process, log = start_flow(tmp_path, path, "--retry-delay", "1")
    assert process.wait(timeout=600) != 0
    text = log.read_text(errors="replace")
    assert "tunedag run exited 78: " in text and "unknown sampler 'sobol'" in text
    assert '"exit_code": 78' in text and "Retry 1/" not in text
    assert not (tmp_path / "report").exists()
