"""SIGINT or SIGTERM before a run installs its own handlers (while a command imports or
checks its spec) exits 130 or 143 with one line on stderr and no traceback; with --json the
stream ends with the error event. Real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import TUNEDAG, cli_env, wait_until

#: a module whose import takes long: it says so in a file, then sleeps
SLOW_IMPORT = """\
import os
import time

from sklearn.base import BaseEstimator, ClassifierMixin

with open(os.environ["SLOW_IMPORT_MARKER"], "w") as marker:
    marker.write("importing")
time.sleep(120)


class Model(BaseEstimator, ClassifierMixin):
    pass
"""

SPEC = """\
name: interrupted
data: {{source: "sklearn:iris"}}
split:
  test: {{fraction: 0.2}}
  validation: {{method: kfold, folds: 3}}
allow_imports: [slowimport]
pipeline:
  - {{name: model, estimator: {estimator}}}
space:
{space}
objective: {{metric: accuracy}}
sampler: {{name: random}}
"""


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TUNEDAG, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_interrupted(proc: subprocess.Popen[str], code: int) -> None:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Aborted" not in err
    assert err.strip().splitlines()[-1] == f"interrupted (exit {code})"
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"event": "version", "schema": 1}
    assert lines[-1]["event"] == "error" and lines[-1]["exit_code"] == code
    assert lines[-1]["kind"] == "Interrupted"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_importing_exits_with_one_line(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    (tmp_path / "slowimport.py").write_text(SLOW_IMPORT, encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        SPEC.format(
            estimator="slowimport.Model",
            space="  model__C: {type: float, low: 0.1, high: 1.0}",
        ),
        encoding="utf-8",
    )
    marker = tmp_path / "marker"
    env = {**cli_env(tmp_path), "SLOW_IMPORT_MARKER": str(marker)}
    proc = start(["validate", str(spec), "--json"], tmp_path, env)
    try:
        wait_until(marker.exists, 120, "the slow module is being imported")
        proc.send_signal(sig)
        assert_interrupted(proc, code)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_sigint_while_checking_a_large_spec_exits_130(tmp_path: Path) -> None:
    space = "\n".join(f"  p{i}: {{type: float, low: 0.0, high: 1.0}}" for i in range(6000))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        SPEC.format(estimator="sklearn.linear_model.LogisticRegression", space=space).replace(
            "allow_imports: [slowimport]\n", ""
        ),
        encoding="utf-8",
    )
    proc = start(["validate", str(spec), "--json"], tmp_path, cli_env(tmp_path))
    try:
        # well past the interpreter's start: reading and checking the spec (many seconds)
        wait_until(lambda: cpu_seconds(proc.pid) > 1.5, 120, "the spec is being checked")
        assert proc.poll() is None, "the spec was checked before the signal could land"
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert_interrupted(proc, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
