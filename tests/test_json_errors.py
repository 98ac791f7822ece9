"""With --json, every failed command ends stdout with an ``error`` event after the version line.

A run stopped with 75, 130 or 143 ends with ``study_stopped`` (its reason and the trials it
re-queued) right after the error. The exit codes are the documented ones.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
from click.testing import Result
from helpers import (
    TUNEDAG,
    base_spec,
    cli,
    cli_env,
    db_file,
    install_plugins,
    peek_trials,
    run_process,
    trial_spec,
    wait_until,
    write_spec,
)

from tunedag import StorageURLError, load_spec, run

VERSION = {"event": "version", "schema": 1}


def lines_of(stdout: str) -> list[dict[str, Any]]:
    """stdout as JSON lines: every line parses, the first is the version line."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert lines and lines[0] == VERSION, stdout
    return lines


def error_of(stdout: str, code: int) -> dict[str, Any]:
    """The error event that ends stdout, checked for the envelope's fields."""
    last = lines_of(stdout)[-1]
    assert last["event"] == "error", last
    assert last["exit_code"] == code
    assert {"kind", "message", "file", "line", "column", "field"} <= set(last)
    return last


def test_an_invalid_spec_exits_65_with_every_problem_located(
    spec_file: Callable[..., Path], base_spec_yaml: str, run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("seed: 1", "seed: one\ncolour: blue")
    path = spec_file(text)
    for command in (["run", path, "--json"], ["validate", path, "--json"]):
        result = run_cli(*command)
        assert result.exit_code == 65
        error = error_of(result.stdout, 65)
        assert error["kind"] == "SpecError"
        fields = {problem["field"] for problem in error["errors"]}
        assert {"seed", "colour"} <= fields
        first = error["errors"][0]
        assert (error["file"], error["line"], error["field"]) == (
            first["file"],
            first["line"],
            first["field"],
        )
        assert error["file"] == str(path) and isinstance(error["line"], int)
        assert isinstance(error["column"], int)


def test_a_missing_spec_exits_66(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    for command in ("run", "validate", "status", "plan"):
        result = run_cli(command, tmp_path / "nowhere.yaml", "--json")
        assert result.exit_code == 66, (command, result.output)
        error = error_of(result.stdout, 66)
        assert error["kind"] == "SpecNotFoundError"
        assert error["file"] == str(tmp_path / "nowhere.yaml")


def test_an_unknown_sampler_exits_78_located(
    spec_file: Callable[..., Path], base_spec_yaml: str, run_cli: Callable[..., Result]
) -> None:
    path = spec_file(base_spec_yaml.replace("sampler: {name: random}", "sampler: {name: sobol}"))
    result = run_cli("run", path, "--json")
    assert result.exit_code == 78
    error = error_of(result.stdout, 78)
    assert error["field"] == "sampler.name" and "sobol" in error["message"]
    assert error["line"] is not None


def test_plan_format_json_shares_the_envelope(
    spec_file: Callable[..., Path], base_spec_yaml: str, run_cli: Callable[..., Result]
) -> None:
    path = spec_file(base_spec_yaml.replace("seed: 1", "seed: one"))
    result = run_cli("plan", path, "--format", "json")
    assert result.exit_code == 65
    assert error_of(result.stdout, 65)["field"] == "seed"


def test_validate_json_says_ok_as_an_event(
    spec_file: Callable[..., Path], base_spec_yaml: str, run_cli: Callable[..., Result]
) -> None:
    path = spec_file(base_spec_yaml)
    result = run_cli("validate", path, "--json")
    assert result.exit_code == 0, result.output
    _, validated = lines_of(result.stdout)
    assert validated.pop("ts") > 0
    assert validated == {
        "event": "validated",
        "study": "base",
        "file": str(path),
        "parameters": 3,
        "dry_run": False,
    }


def test_a_usage_error_exits_2_with_the_envelope(
    spec_file: Callable[..., Path], base_spec_yaml: str, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("run", spec_file(base_spec_yaml), "--workers", "0", "--json")
    assert result.exit_code == 2
    assert error_of(result.stdout, 2)["kind"] == "UsageError"


def test_an_unreachable_executor_exits_75_and_ends_with_study_stopped(tmp_path: Path) -> None:
    import dask
    from test_dask import free_port

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    spec = base_spec(tmp_path, execution={"workers": 2, "executor": "dask", "address": address})
    path = write_spec(tmp_path, spec)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = cli(["run", path, "--json"], tmp_path)
    assert result.exit_code == 75, result.stderr
    lines = lines_of(result.stdout)
    error, stopped = lines[-2], lines[-1]
    assert error["event"] == "error" and error["exit_code"] == 75
    assert error["kind"] == "ExecutorUnreachableError" and address in error["message"]
    assert stopped["ts"] >= error["ts"]
    assert {key: stopped[key] for key in ("event", "study", "exit_code", "reason", "requeued")} == {
        "event": "study_stopped",
        "study": "study",
        "exit_code": 75,
        "reason": error["message"],
        "requeued": [],
    }


def test_sigterm_exits_143_and_ends_with_study_stopped_naming_the_requeued_trials(
    tmp_path: Path,
) -> None:
    install_plugins(tmp_path)
    spec = trial_spec(
        tmp_path,
        "nap",
        {"nap": {"type": "float", "low": 1.0, "high": 1.5}},
        budget={"trials": 20},
    )
    path = write_spec(tmp_path, spec)
    db = db_file(spec)
    out, err = tmp_path / "stdout.jsonl", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [TUNEDAG, "run", str(path), "--json"],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until(
            lambda: any(row["state"] == "running" for row in peek_trials(db)),
            120,
            "a trial is running",
            proc,
            err,
        )
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = lines_of(out.read_text())
    error, stopped = lines[-2], lines[-1]
    assert error["event"] == "error" and error["kind"] == "InterruptedStudy"
    assert error["exit_code"] == 143
    assert stopped["event"] == "study_stopped" and stopped["exit_code"] == 143
    requeued = [e["number"] for e in lines if e["event"] == "trial_requeued"]
    assert stopped["requeued"] == requeued and requeued
    waiting = [row["number"] for row in peek_trials(db) if row["state"] == "waiting"]
    assert waiting == requeued
    assert "Traceback" not in err.read_text()


@pytest.mark.parametrize("command", ["status", "report"])
def test_read_only_commands_with_bad_storage_exit_74_with_the_envelope(
    tmp_path: Path, command: str
) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database, just text" * 100)
    spec = base_spec(tmp_path, storage=f"sqlite:///{bad}")
    path = write_spec(tmp_path, spec)
    extra = ["--out", str(tmp_path / "out")] if command == "report" else []
    result = cli([command, path, *extra, "--json"], tmp_path)
    assert result.exit_code == 74, result.output
    assert error_of(result.stdout, 74)["kind"] == "StorageDamagedError"


def test_a_report_file_name_taken_by_a_folder_exits_74(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, budget={"trials": 1})
    path = write_spec(tmp_path, spec)
    assert cli(["run", path], tmp_path).exit_code == 0
    (tmp_path / "out" / "report.html").mkdir(parents=True)
    result = cli(["report", path, "--out", tmp_path / "out", "--json"], tmp_path)
    assert result.exit_code == 74, result.output
    assert "report.html" in error_of(result.stdout, 74)["message"]


def test_status_check_of_a_folder_named_as_storage_exits_74(tmp_path: Path) -> None:
    (tmp_path / "folder.sqlite").mkdir()
    path = write_spec(tmp_path, base_spec(tmp_path, storage="sqlite:///folder.sqlite"))
    result = cli(["status", path, "--check", "--json"], tmp_path)
    assert result.exit_code == 74, result.output
    error = error_of(result.stdout, 74)
    assert error["kind"] == "StorageAccessError" and "not a file" in error["message"]


def test_the_python_api_refuses_a_storage_url_of_no_known_form(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, base_spec(tmp_path)))
    with pytest.raises(StorageURLError, match="unsupported storage URL") as caught:
        run(spec, storage="mysql://db/study")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("command", ["run", "status"])
def test_a_storage_url_of_no_known_form_is_a_usage_error(
    tmp_path: Path, command: str, run_cli: Callable[..., Result]
) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    for url, said in (
        ("mysql://db/study", "unsupported storage URL"),
        ("sqlite:///", "unsupported storage URL"),
        ("", "unsupported storage URL"),
        ("sqlite:///s.sqlite?mode=ro", "takes no ?options"),
    ):
        result = run_cli(command, path, "--storage", url, "--json")
        assert result.exit_code == 2, result.output
        error = error_of(result.stdout, 2)
        assert error["kind"] == "UsageError" and said in error["message"]
    assert not (tmp_path / "studies.sqlite").exists()


def test_an_events_file_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    path = write_spec(tmp_path, base_spec(tmp_path))
    result = cli(["run", path, "--events-file", tmp_path / "a-file" / "events.jsonl"], tmp_path)
    assert result.exit_code == 2, result.output
    assert (
        "error: --events-file " in result.stderr
        and "cannot create it: File exists" in result.stderr
    )


def test_the_events_file_ends_with_the_error_as_stdout_does(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 2}))
    assert cli(["run", path], tmp_path).exit_code == 0
    edited = base_spec(
        tmp_path,
        budget={"trials": 2},
        space={"model__n_neighbors": {"type": "int", "low": 2, "high": 9}},
    )
    write_spec(tmp_path, edited)  # the space changed under the stored study: 65
    events = tmp_path / "events.jsonl"
    result = cli(["run", path, "--json", "--events-file", events], tmp_path)
    assert result.exit_code == 65, result.output
    written = [json.loads(line) for line in events.read_text().splitlines()]
    assert written[0]["event"] == "version"
    error = {**written[-1], "ts": None}
    assert error == {**lines_of(result.stdout)[-1], "ts": None}
    assert error["event"] == "error" and error["exit_code"] == 65


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs")
@pytest.mark.parametrize("command", ["run", "report"])
def test_an_output_path_the_system_refuses_exits_74(tmp_path: Path, command: str) -> None:
    """sysfs refuses new folders to anyone, root included: no permission, not a bad path."""
    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 1}))
    option = "--events-file" if command == "run" else "--out"
    result = cli([command, path, option, "/sys/kernel/tunedag-test/out", "--json"], tmp_path)
    assert result.exit_code == 74, result.output
    assert error_of(result.stdout, 74)["kind"] == "OutputError"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_under_the_events_file_exits_75(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    result = cli(["run", path, "--events-file", "/dev/full", "--json"], tmp_path)
    assert result.exit_code == 75, result.output
    error = error_of(lines_and_stopped(result.stdout), 75)
    assert error["kind"] == "OutputError" and "No space left on device" in error["message"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("output", [[], ["--format", "json"]], ids=["text", "json"])
def test_a_full_disk_under_stdout_exits_75(tmp_path: Path, output: list[str]) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    with open("/dev/full", "wb") as full:
        done = tunedag_process(["plan", path, *output], tmp_path, stdout=full, stderr=PIPE)
    assert done.returncode == 75, done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_under_stderr_still_ends_stdout_with_the_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    with open("/dev/full", "wb") as full:
        done = tunedag_process(["run", path, "--json"], tmp_path, stdout=PIPE, stderr=full)
    assert done.returncode == 75, done.stdout  # the progress line could not be written
    error = error_of(lines_and_stopped(done.stdout), 75)
    assert "No space left on device" in error["message"]


def test_a_closed_stdout_is_an_output_error_for_json_and_no_error_for_text(
    tmp_path: Path,
) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path, budget={"trials": 1}))

    def closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
        command = shlex.join([TUNEDAG, *args, str(path)]) + " >&-"
        return subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )

    ran = closed_stdout("run")  # its summary is on stderr: nothing was lost
    assert ran.returncode == 0, ran.stderr
    status = closed_stdout("status", "--json")
    assert status.returncode == 74, status.stderr
    assert "stdout is closed" in status.stderr and "Traceback" not in status.stderr


def tunedag_process(
    args: list[str | Path], cwd: Path, **streams: Any
) -> subprocess.CompletedProcess[str]:
    """The command in its own process (its real fds 1 and 2 are what these tests are about)."""
    return subprocess.run(
        [TUNEDAG, *map(str, args)],
        cwd=cwd,
        env=cli_env(cwd),
        text=True,
        timeout=300,
        check=False,
        **streams,
    )


def lines_and_stopped(stdout: str) -> str:
    """stdout without its closing ``study_stopped`` line, so the error is the last line."""
    lines = stdout.splitlines()
    assert json.loads(lines[-1])["event"] == "study_stopped"
    return "\n".join(lines[:-1])


def test_a_reader_that_goes_away_mid_run_exits_74_and_the_study_resumes(tmp_path: Path) -> None:
    """An orchestrator reading the JSON lines dies: the run stops on its next event (the
    in-flight trial re-queued), and running again finishes the study."""
    install_plugins(tmp_path)
    # ten naps of 0.3 s or more: the reader closes long before the run could end, even when
    # a loaded machine keeps this test process waiting for a second or two
    space = {"nap": {"type": "float", "low": 0.3, "high": 0.5}}
    spec = trial_spec(tmp_path, "nap", space, budget={"trials": 10})
    path = write_spec(tmp_path, spec)
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [TUNEDAG, "run", str(path), "--json"],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "trial_started":
                break
        proc.stdout.close()
        assert proc.wait(timeout=120) == 74, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = err.read_text()
    assert "cannot write JSON lines to stdout: Broken pipe" in said and "Traceback" not in said
    assert "running" not in {row["state"] for row in peek_trials(db_file(spec))}
    again = run_process(["run", path], tmp_path)
    assert again.returncode == 0, again.stderr
    assert [row["state"] for row in peek_trials(db_file(spec))] == ["complete"] * 10


FLAKY_PLUGIN = """\
from tunedag import Sampler, hookimpl


class Flaky(Sampler):
    name = "flaky"

    def ask(self, history, n):
        if len(history) >= 2:
            raise RuntimeError("lost my random state")
        return [{"model__C": 0.5 + len(history) + i} for i in range(n)]


@hookimpl
def register_samplers(register):
    register(Flaky)
"""


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        ('RuntimeError("lost my random state")', "RuntimeError: lost my random state"),
        ("SystemExit(0)", "SystemExit: 0"),  # never a silent exit 0
    ],
)
def test_a_sampler_that_raises_ends_the_stream_with_its_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    base_spec_yaml: str,
    raised: str,
    shown: str,
) -> None:
    from click.testing import CliRunner
    from test_plugin_failures import install

    from tunedag.cli import main

    site = tmp_path / "site"
    site.mkdir()
    package = f"flakyplug{len(raised)}"  # a module of its own for each case
    install(
        site, package, "flaky", FLAKY_PLUGIN.replace('RuntimeError("lost my random state")', raised)
    )
    monkeypatch.syspath_prepend(str(site))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        base_spec_yaml.replace("name: random}", "name: flaky}").replace(
            "  model__kernel: {type: categorical, choices: [rbf, poly]}\n"
            "  model__degree: {type: int, low: 2, high: 4, when: {model__kernel: poly}}\n",
            "",
        )
        + f"storage: sqlite:///{tmp_path / 'study.sqlite'}\n",
        encoding="utf-8",
    )
    runner = CliRunner(env={"TUNEDAG_DISABLE_PLUGIN_AUTOLOAD": "", "TUNEDAG_DEBUG": ""})
    result = runner.invoke(main, ["run", str(spec), "--json"], catch_exceptions=False)
    assert result.exit_code == 70, result.output
    error = error_of(result.stdout, 70)
    assert error["kind"] == "PluginError" and "sampler 'flaky'" in error["message"]
    assert shown in error["message"] and shown in error["traceback"]
    assert "Traceback (most recent call last)" in error["traceback"]
    assert "Traceback" not in result.stderr  # stderr keeps one line without --debug
