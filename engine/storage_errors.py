"""What went wrong with a storage file, in the words and exit codes an operator acts on.

SQLite reports every fault as one of a few result codes; each maps to one error:

=====================================  ======================  ====
SQLITE_BUSY, SQLITE_LOCKED             StorageBusyError        75   retry
SQLITE_FULL                            StorageFullError        75   free space, retry
SQLITE_READONLY, PERM, CANTOPEN, IOERR StorageAccessError      74   fix permissions
SQLITE_CORRUPT, SQLITE_NOTADB          StorageDamagedError     74   recover from backup
=====================================  ======================  ====

Rows that do not decode (bad JSON, an unknown state, a gap in trial numbers) and a file
truncated to 0 bytes are damage too. tunedag never writes to a damaged file, so nothing
stored is lost by refusing it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunedag.errors import (
    StorageAccessError,
    StorageBusyError,
    StorageDamagedError,
    StorageError,
    StorageFullError,
)

_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_ACCESS = {"SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_AUTH"}
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT"}
#: Decoding errors a damaged row raises (json's error is a ValueError).
DECODING_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


def recovery(url: str) -> str:
    return (
        f"tunedag has not changed it. `tunedag status SPEC --check --storage {url}` lists "
        "every problem; restore the file from a backup, or move it aside and start the study "
        "in a new storage file (--storage URL). `sqlite3 FILE .recover` can save readable rows"
    )


def classify(error: sqlite3.Error, url: str, busy_timeout_s: float) -> StorageError:
    """The storage error an SQLite error stands for."""
    name = _primary(error)
    text = str(error)
    if name in _BUSY or (name is None and ("locked" in text or "busy" in text)):
        return StorageBusyError(
            f"storage {url} is locked by another writer (waited {busy_timeout_s:g} s): "
            f"{text}; retry"
        )
    if name == "SQLITE_FULL":
        return StorageFullError(
            f"storage {url}: no room to write ({text}); free disk space and run again, "
            "which resumes the study where it stopped"
        )
    if name == "SQLITE_READONLY" or "readonly" in text:
        return StorageAccessError(
            f"storage {url} is read-only ({text}): tunedag needs to write the file and create "
            "-wal and -shm files beside it; make the file and its folder writable, or copy "
            "it somewhere writable and pass --storage"
        )
    if name in _ACCESS:
        return StorageAccessError(
            f"storage {url} cannot be opened or written ({text}); check that its folder "
            "exists and is writable and that the disk is healthy"
        )
    if name in _DAMAGED:
        what = f"is not a tunedag storage: damaged, or not SQLite ({text})"
        return StorageDamagedError(f"storage {url} {what}; {recovery(url)}")
    return StorageError(f"storage {url}: {text}")


def _primary(error: sqlite3.Error) -> str | None:
    """SQLITE_IOERR for SQLITE_IOERR_WRITE and the like; None where Python does not say."""
    name = getattr(error, "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    for primary in (*_BUSY, *_ACCESS, *_DAMAGED, "SQLITE_FULL"):
        if name == primary or name.startswith(primary + "_"):
            return primary
    return name


def damaged(url: str, what: str, error: BaseException | None = None) -> StorageDamagedError:
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return StorageDamagedError(f"storage {url}: {what}{detail}; {recovery(url)}")


@contextmanager
def decoding(url: str, what: str) -> Iterator[None]:
    """Rows that do not decode are damage, never a traceback."""
    try:
        yield
    except DECODING_ERRORS as error:
        raise damaged(url, f"{what} cannot be read", error) from error


def refuse_truncated(path: Path, what: str, instead: str, wait_s: float = 1.0) -> None:
    """A 0-byte file is a truncated ``what`` (a storage, the look ledger), not a new one:
    taking it for ``instead`` (a new study, an empty ledger) would score the test set a
    second time. Another process may be creating the file this very moment (SQLite creates
    it empty, then writes its header), so wait a little first."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if path.stat().st_size > 0:
                return
        except FileNotFoundError:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    raise StorageDamagedError(
        f"{what} is an empty file (0 bytes): it was truncated or never written, and "
        f"tunedag will not take it for {instead} (the test set would be scored again). "
        "Restore it from a backup; if what it held is truly lost, delete the file to start "
        "over"
    )
