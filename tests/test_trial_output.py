"""Trial output (prints, warnings, C libraries on fd 1 and 2) never reaches the event stream.

It is captured per task at the file-descriptor level, kept (its tail) with the trial, shown
by ``status --trial N`` and, for failed trials, by the report; ``--verbose`` copies it to
stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import TUNEDAG, base_spec, cli_env, open_store, run_process, write_spec

from tunedag.capture import OUTPUT_LIMIT, bounded, captured_output

#: a custom trial that writes every way a trial can: Python, warnings, raw fds, no newline
NOISY_SOURCE = """
import os
import sys
import warnings


def noisy(context):
    x = context.params["x"]
    print(f"python print {x}", end="")
    sys.stderr.write("python stderr\\n")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a warning from the trial", stacklevel=1)
    os.write(1, b"raw fd 1\\n")
    os.write(2, b"raw fd 2\\n")
    if x > 0.5:
        raise ValueError("too big")
    return float(x)
"""


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    assert lines, "no output on stdout"
    return [json.loads(line) for line in lines]  # every line parses, or the test fails here


def test_svc_verbose_writes_only_events_to_stdout_and_keeps_its_output(tmp_path: Path) -> None:
    spec = base_spec(
        tmp_path,
        data={"source": "sklearn:breast_cancer"},
        pipeline=[
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.svm.SVC", "params": {"verbose": True}},
        ],
        space={"model__C": {"type": "float", "low": 0.01, "high": 100.0, "log": True}},
        objective={"metric": "roc_auc"},
        budget={"trials": 3},
    )
    path = write_spec(tmp_path, spec)
    done = run_process(["run", path, "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    events = _json_lines(done.stdout)
    assert events[0] == {"event": "version", "schema": 1}
    assert "LibSVM" not in done.stdout
    shown = run_process(["status", path, "--trial", "1", "--json"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    trial = json.loads(shown.stdout)
    assert trial["number"] == 1 and trial["state"] == "complete"
    assert trial["output"].count("[LibSVM]") == 3  # one fit per fold
    assert "--- fold 2 ---" in trial["output"]
    human = run_process(["status", path, "--trial", "1"], tmp_path)
    assert human.stdout == "" and "[LibSVM]" in human.stderr


@pytest.mark.parametrize("inline", [False, True], ids=["worker", "inline"])
def test_every_kind_of_trial_output_is_captured_and_stored(tmp_path: Path, inline: bool) -> None:
    (tmp_path / "noisy.py").write_text(NOISY_SOURCE, encoding="utf-8")
    spec = base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": "noisy:noisy"},
        allow_imports=["noisy"],
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        budget={"trials": 6, "max_failed": 6},
    )
    path = write_spec(tmp_path, spec)
    env = cli_env(tmp_path)
    env.pop("PYTHONWARNINGS")  # the warning is part of the output
    if inline:
        env["TUNEDAG_INLINE"] = "1"
    done = subprocess.run(
        [TUNEDAG, "run", str(path), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    events = _json_lines(done.stdout)
    assert not any(word in done.stdout for word in ("python print", "raw fd", "warning from"))
    assert "raw fd 1" not in done.stderr  # captured, not passed through without --verbose
    with open_store(spec) as store:
        trials = store.trials("study")
        outputs = store.trial_outputs("study", [t.number for t in trials])
    assert len(outputs) == len(trials) == 6
    for trial in trials:
        output = outputs[trial.number]
        for part in ("python print", "python stderr", "a warning from the trial", "raw fd 1"):
            assert part in output, (part, output)
    failed = [e for e in events if e["event"] == "trial_failed"]
    assert failed, "the space makes some trials fail"


def test_verbose_passes_trial_output_through_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text(NOISY_SOURCE, encoding="utf-8")
    spec = base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": "noisy:noisy"},
        allow_imports=["noisy"],
        space={"x": {"type": "float", "low": 0.0, "high": 0.5}},
        budget={"trials": 2},
    )
    path = write_spec(tmp_path, spec)
    done = run_process(["run", path, "--json", "--verbose"], tmp_path)
    assert done.returncode == 0, done.stderr
    _json_lines(done.stdout)
    assert done.stderr.count("raw fd 1") == 2
    assert "python print" not in done.stdout


def test_a_failed_trials_output_is_in_the_report(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text(NOISY_SOURCE, encoding="utf-8")
    spec = base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": "noisy:noisy"},
        allow_imports=["noisy"],
        space={"x": {"type": "float", "low": 0.6, "high": 1.0}},
        budget={"trials": 2, "max_failed": 5},
    )
    path = write_spec(tmp_path, spec)
    assert run_process(["run", path], tmp_path).returncode == 0
    made = run_process(["report", path, "--out", tmp_path / "report"], tmp_path)
    assert made.returncode == 0, made.stderr
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "output of trial 0" in html and "raw fd 2" in html


def test_a_worker_that_dies_keeps_the_output_it_wrote(tmp_path: Path) -> None:
    (tmp_path / "dying.py").write_text(
        "import os\n\ndef die(context):\n    os.write(1, b'last words\\n')\n    os._exit(0)\n",
        encoding="utf-8",
    )
    spec = base_spec(
        tmp_path,
        pipeline=None,
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        trial={"function": "dying:die"},
        allow_imports=["dying"],
        budget={"trials": 1, "max_failed": 5},
    )
    path = write_spec(tmp_path, spec)
    done = run_process(["run", path, "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    _json_lines(done.stdout)
    with open_store(spec) as store:
        (trial,) = store.trials("study")
        assert trial.state == "failed" and "WorkerLost" in (trial.error or "")
        assert store.trial_output("study", 0) == "last words\n"


def test_the_capture_keeps_the_last_64_kib(tmp_path: Path) -> None:
    with captured_output() as captured:
        for k in range(20_000):
            os.write(1, f"line {k:05d}\n".encode())
    assert "line 19999" in captured.output and "line 00000" not in captured.output
    assert captured.output.startswith("[... ") and len(captured.output) < OUTPUT_LIMIT + 100
    assert bounded("x" * (OUTPUT_LIMIT + 10)).endswith("x" * OUTPUT_LIMIT)
