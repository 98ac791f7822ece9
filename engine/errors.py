"""The one error tree of tunedag; each error carries the exit code an orchestrator acts on.

TunedagError                    exit 70 unless a subclass says otherwise
├── SpecError                   65  the spec is invalid (carries every problem found)
│   └── SpecChangedError        65  the spec changed under an existing study
├── UsageError                   2  options that do not fit the command or the model
├── SpecNotFoundError           66  the spec or a data file does not exist
├── DataError                   65  the data cannot serve this spec (no target column, ...)
│   └── TestRowsError           65  the best configuration cannot be scored on the test rows
├── UnknownNameError            78  unknown sampler, pruner, executor or estimator
├── PluginError                 70  a plugin broke its contract or raised
├── StudyFailedError             1  more failed trials than budget.max_failed
├── TestSetLockedError           3  the test set of this study was already evaluated
├── ModelNotFoundError          66  no saved model where the study keeps it
├── ModelRefusedError           65  a model file that is not a trusted skops file of this study
├── StorageError                70  a storage operation tunedag itself got wrong (a bug)
│   ├── StorageURLError          2  a storage URL of no supported form
│   ├── StorageDamagedError     74  damaged, truncated or foreign storage file, or bad rows
│   ├── StorageAccessError      74  the storage cannot be opened or written (read-only, ...)
│   ├── StorageBusyError        75  the storage is locked by another writer: retry
│   └── StorageFullError        75  the disk (or the database's size limit) is full: retry
├── OutputError            74/75  stdout's event stream or the events file cannot be written
├── ExecutorUnreachableError    75  the executor's scheduler or cluster is gone: retry
├── StudyBusyError              75  another live driver holds the study (use --join): retry
├── LeaseLostError              75  this driver's lease was taken over while it was paused
└── InterruptedStudy       130/143  SIGINT or SIGTERM; in-flight trials were re-queued

An OSError that is the machine's condition rather than tunedag's mistake (a full disk, a
closed pipe, no permission) exits 75 or 74 too, as ``os_exit_code`` says, never 70.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path


class TunedagError(Exception):
    """Base of every error tunedag raises on purpose; printed as one line, no traceback."""

    exit_code = 70
    #: the trials a run stopped by this error put back in the queue (its ``study_stopped``)
    requeued: tuple[int, ...] = ()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located in its file."""

    path: str
    message: str
    file: str = "<spec>"
    line: int | None = None
    column: int | None = None
    code: int = 65

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column or 1}"
        field = f"{self.path}: " if self.path else ""
        located = "" if where == "<spec>" else f"{where}: "  # no file known: no placeholder
        return f"{located}{field}{self.message}"


class SpecError(TunedagError):
    """The spec is invalid; carries every problem found, not only the first."""

    exit_code = 65

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(path="", message=problems)]
        self.problems = problems
        codes = {problem.code for problem in problems}
        self.exit_code = codes.pop() if len(codes) == 1 else 65
        super().__init__("\n".join(str(p) for p in problems))


class SpecChangedError(SpecError):
    """The study in storage was made from a different space, objective, data or split."""


class UsageError(TunedagError):
    """Options that cannot work together, or with this study's model (as Click's usage errors)."""

    exit_code = 2


class SpecNotFoundError(TunedagError):
    """A spec or data file that does not exist; ``path`` names it when known."""

    exit_code = 66

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DataError(TunedagError):
    exit_code = 65


class TestRowsError(DataError):
    """The best configuration cannot be refit or scored on the test rows (values or classes
    the development rows do not have); no look is recorded."""


class UnknownNameError(SpecError):
    """A sampler, pruner, executor or estimator that no installed plugin provides."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem(path="", message=message, code=78)])


class PluginError(TunedagError):
    exit_code = 70


class StudyFailedError(TunedagError):
    exit_code = 1


class TestSetLockedError(TunedagError):
    exit_code = 3
    __test__ = False  # not a pytest test class


class ModelNotFoundError(TunedagError):
    """No saved model at the path: the study has not been scored on its test set yet."""

    exit_code = 66


class ModelRefusedError(TunedagError):
    """A model file that is damaged, foreign, or holds types this study does not trust.

    Nothing in such a file is executed: it is refused before any object is built.
    """

    exit_code = 65


class StorageError(TunedagError):
    exit_code = 70


class StorageURLError(StorageError):
    """A storage URL that is neither ``sqlite:///PATH`` nor ``postgresql://...``."""

    exit_code = 2


class StorageDamagedError(StorageError):
    """The storage file is damaged, truncated, foreign or holds rows tunedag cannot read.

    tunedag never writes to such a file; the message says what is wrong and how to
    recover (``tunedag status SPEC --check`` lists every problem).
    """

    exit_code = 74


class StorageAccessError(StorageError):
    """The storage cannot be opened or written: a read-only file or folder, no permission."""

    exit_code = 74


class StorageBusyError(StorageError):
    exit_code = 75


class StorageFullError(StorageError):
    """No room to write: free disk space (or raise the limit) and run again to resume."""

    exit_code = 75


_CANNOT_WRITE = {
    errno.EPIPE,
    errno.EIO,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EISDIR,
    errno.ENOTDIR,
}


def os_exit_code(error: OSError) -> int | None:
    """The exit code of an OSError that is the machine's condition, not tunedag's mistake:
    75 for a full disk (free space and run again: the study resumes), 74 for a reader that
    went away, an I/O error, no permission, a read-only file system or a folder where a file
    is written (or a file where a folder is); None for the rest."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return 75
    if error.errno in _CANNOT_WRITE:
        return 74
    return None


class OutputError(TunedagError):
    """stdout's JSON lines or the events file cannot be written (exit as ``os_exit_code``
    says, else 74). Stored results are untouched."""

    def __init__(self, where: str, error: OSError) -> None:
        self.exit_code = os_exit_code(error) or 74
        super().__init__(f"cannot write {where}: {error.strerror or error}")


def output_path_error(path: Path, error: OSError, option: str) -> OutputError | UsageError:
    """A path given for output whose folder cannot be created: no permission, a read-only or
    full disk exit 74 or 75 (``OutputError``); a path that cannot be one (under a file) is a
    usage error."""
    if os_exit_code(error) is not None and error.errno not in (errno.EISDIR, errno.ENOTDIR):
        return OutputError(repr(str(path)), error)
    return UsageError(f"{option} {str(path)!r}: cannot create it: {error.strerror or error}")


class ExecutorUnreachableError(TunedagError):
    """The executor lost its workers' scheduler (or never reached it); safe to retry.

    Trials in flight were re-queued, so running the study again resumes it.
    """

    exit_code = 75


class StudyBusyError(TunedagError):
    """Another driver holds a live lease on the study; `--join` helps it instead.

    Nothing was changed: the running driver goes on undisturbed, and a retry once it is
    done (or with ``--join``) resumes the study.
    """

    exit_code = 75


class LeaseLostError(TunedagError):
    """This driver's lease went stale (it was paused past the lease timeout) and another
    driver took the study over; this driver stopped without writing over its results."""

    exit_code = 75


class InterruptedStudy(TunedagError):
    """Raised out of a run when SIGINT (130) or SIGTERM (143) arrived."""

    def __init__(self, signal_number: int) -> None:
        self.exit_code = 128 + signal_number
        super().__init__(f"interrupted by signal {signal_number}; in-flight trials re-queued")
