"""The ``error`` event: how a failed ``--json`` command tells an orchestrator what went wrong.

It is the last line on stdout of any failed ``--json`` command (after the version line),
except that a run stopped with exit 75, 130 or 143 ends with ``study_stopped`` right after
it. ``file``, ``line``, ``column`` and ``field`` locate a spec problem (null otherwise);
with several spec problems they are the first one's and ``errors`` lists them all.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from tunedag.errors import Problem, SpecError, SpecNotFoundError, TunedagError

#: exit codes after which a run ends its stream with ``study_stopped`` (safe to retry)
STOPPED_CODES = frozenset({75, 130, 143})


def error_event(
    error: BaseException,
    exit_code: int,
    *,
    study: str | None = None,
    with_traceback: bool = False,
) -> dict[str, Any]:
    """The ``error`` event for ``error``; ``with_traceback`` adds its full traceback."""
    problems = error.problems if isinstance(error, SpecError) else []
    first = _problem(problems[0]) if problems else _unlocated(str(error) or type(error).__name__)
    if isinstance(error, SpecNotFoundError):
        first["file"] = error.path
    if not isinstance(error, TunedagError) and exit_code == 70:
        first["message"] = f"{type(error).__name__}: {error}"
    event: dict[str, Any] = {
        "event": "error",
        "study": study,
        "ts": round(time.time(), 6),
        "exit_code": exit_code,
        "kind": kind_of(error, exit_code),
        **first,
    }
    if len(problems) > 1:
        event["errors"] = [_problem(problem) for problem in problems]
    if with_traceback:
        event["traceback"] = "".join(traceback.format_exception(error)).rstrip()
    return event


def stopped_event(
    error: BaseException, exit_code: int, *, study: str | None = None
) -> dict[str, Any]:
    """``study_stopped``: why a run stopped early, and the trials it put back in the queue."""
    requeued = list(error.requeued) if isinstance(error, TunedagError) else []
    return {
        "event": "study_stopped",
        "study": study,
        "ts": round(time.time(), 6),
        "exit_code": exit_code,
        "reason": str(error) or kind_of(error, exit_code),
        "requeued": requeued,
    }


def kind_of(error: BaseException, exit_code: int) -> str:
    """The error's class name; ``InternalError`` for a bug (an error tunedag did not expect)."""
    if isinstance(error, TunedagError | KeyboardInterrupt):
        return type(error).__name__
    if exit_code == 70:
        return "InternalError"
    return type(error).__name__


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "message": problem.message,
        "file": None if problem.file == "<spec>" else problem.file,
        "line": problem.line,
        "column": problem.column,
        "field": problem.path or None,
    }


def _unlocated(message: str) -> dict[str, Any]:
    return {"message": message, "file": None, "line": None, "column": None, "field": None}
