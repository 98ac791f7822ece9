"""Run a tunedag study from a Prefect 3 flow: in slices, retrying only what is transient.

    python examples/orchestration/prefect_flow.py specs/quickstart.yaml --slice 10 --report report/

Each slice is one ``tunedag run SPEC --json --max-new-trials N``: the budget is the
study's total, so slices add up to it and a slice of a finished study adds nothing. Every
event on tunedag's stdout goes to the Prefect run logger as it arrives. The exit code
decides what happens next (docs/events.md):

- 0: the slice is done; the next one runs until the study has finished;
- 75 (storage locked, executor unreachable), 130, 143 (interrupted): retried, as resuming
  a study is idempotent: trials left running are re-queued, none runs twice;
- anything else (1 failed study, 3 test set already scored, 65 invalid spec, 66 file not
  found, 70 bug, 74 damaged storage, 78 unknown plugin): the flow fails at once.

When the study has finished, ``tunedag report`` writes the report and the flow returns the
study's status (``tunedag status --json``), also published as a Prefect artifact.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

#: exit codes after which running the same command again is safe and may succeed
TRANSIENT = frozenset({75, 130, 143})
#: events worth a warning or more in the orchestrator's log, and those that are noise
LEVELS = {
    "version": logging.DEBUG,
    "error": logging.ERROR,
    "study_stopped": logging.WARNING,
    "trial_failed": logging.WARNING,
    "trial_requeued": logging.WARNING,
    "warning": logging.WARNING,
    "trial_reported": logging.DEBUG,
}


class TunedagError(Exception):
    """``tunedag`` exited with an error; ``exit_code`` and the ``error`` event say which."""

    def __init__(self, command: str, exit_code: int, error: dict[str, Any] | None) -> None:
        self.exit_code = exit_code
        message = (error or {}).get("message", "no error event on stdout")
        super().__init__(f"tunedag {command} exited {exit_code}: {message}")


class TransientTunedagError(TunedagError):
    """An exit code worth a retry (75, 130, 143)."""


def tunedag_command() -> str:
    """The ``tunedag`` beside this Python (its virtual environment), else the one on PATH."""
    beside = Path(sys.executable).with_name("tunedag")
    return str(beside) if beside.exists() else shutil.which("tunedag") or "tunedag"


def tunedag(*args: str) -> list[dict[str, Any]]:
    """Run ``tunedag ARGS --json``, forwarding each event to the run logger as it arrives.

    stdout holds JSON lines only (tunedag keeps trial output and its own prose on stderr,
    which is left to this process's stderr). Raises TunedagError on a non-zero exit.
    """
    logger = get_run_logger()
    command = [tunedag_command(), *args, "--json"]
    events: list[dict[str, Any]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                event = json.loads(line)
                events.append(event)
                kind = event.get("event", "document")
                fields = {k: v for k, v in event.items() if k not in ("event", "study", "ts")}
                logger.log(LEVELS.get(kind, logging.INFO), "%s %s", kind, json.dumps(fields))
        except BaseException:  # a timeout or a cancellation of this task
            process.terminate()  # SIGTERM: tunedag re-queues the trials in flight, exits 143
            process.wait()
            raise
    code = process.returncode
    if code != 0:
        error = next((e for e in reversed(events) if e.get("event") == "error"), None)
        kind = TransientTunedagError if code in TRANSIENT else TunedagError
        raise kind(args[0], code, error)
    return events


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: an exit code that says a retry is safe and useful, or a
    slice that ran past the task's timeout (its trials were re-queued)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, TransientTunedagError | TimeoutError)


@task(retries=3, retry_delay_seconds=[10, 30, 60], retry_condition_fn=retry_if_transient)
def run_slice(spec: str, trials: int) -> bool:
    """Run at most ``trials`` new trials; True once the study has finished."""
    events = tunedag("run", spec, "--max-new-trials", str(trials))
    return any(event.get("event") == "study_finished" for event in events)


@task
def write_report(spec: str, out: str) -> dict[str, Any]:
    """The report files of the finished study, and its status."""
    (files,) = tunedag("report", spec, "--out", out)
    (status,) = tunedag("status", spec)
    return {"files": files, "status": status}


@flow(name="tunedag-study")
def tune(
    spec: str,
    slice_trials: int = 10,
    report_dir: str = "report",
    max_slices: int = 1000,
    retry_delays: list[float] | None = None,
) -> dict[str, Any]:
    """Run the study of ``spec`` to its budget in slices, then write its report."""
    slice_task = run_slice
    if retry_delays is not None:
        slice_task = run_slice.with_options(retry_delay_seconds=retry_delays)
    for _ in range(max_slices):
        if slice_task(spec, slice_trials):
            break
    else:
        raise RuntimeError(f"the study of {spec} did not finish in {max_slices} slices")
    report = write_report(spec, report_dir)
    status = report["status"]
    best, test = status.get("best") or {}, status.get("test") or {}
    create_markdown_artifact(
        key="tunedag-study",
        markdown=(
            f"# {status['study']}\n\n"
            f"- finished: {status['reason']}; trials: {status['counts']}\n"
            f"- best trial {best.get('number')}: {best.get('value')} {best.get('params')}\n"
            f"- test: {test.get('value')} (gap {test.get('gap')})\n"
            f"- report: {report['files'].get('html')}\n"
        ),
    )
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("spec")
    parser.add_argument("--slice", type=int, default=10, help="new trials a slice")
    parser.add_argument("--report", default="report", help="the report folder")
    parser.add_argument(
        "--retry-delay", type=float, action="append", help="seconds before retry 1, 2, ..."
    )
    args = parser.parse_args()
    status = tune(args.spec, args.slice, args.report, retry_delays=args.retry_delay)
    print(json.dumps(status))


if __name__ == "__main__":
    main()
