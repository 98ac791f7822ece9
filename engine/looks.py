"""The look ledger: every score of a test set, keyed by the test rows' content.

A study's storage forgets its test score when `.tunedag/` is deleted, the study renamed,
started `--fresh` or run from another folder. The ledger does not: it is a small SQLite file
outside any study (by default in the user's data directory; `TUNEDAG_LEDGER`, then the
spec's `ledger:`, move it), and each row is one look at the rows whose fingerprint
(`tunedag.rows.rows_fingerprint`) it carries. A look at rows seen before is a second look.

Writes are one `BEGIN IMMEDIATE` transaction each: the check for earlier looks and the new
row commit together, so two runs finishing at once cannot both take "the first look", and a
process killed mid-write leaves the ledger as it was before (SQLite's journal).
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import platformdirs

from tunedag.errors import (
    StorageAccessError,
    StorageBusyError,
    StorageDamagedError,
    StorageError,
    TestSetLockedError,
)
from tunedag.storage_errors import refuse_truncated

#: the environment variable that moves the ledger (it wins over the spec's `ledger:`)
LEDGER_ENV = "TUNEDAG_LEDGER"
LEDGER_VERSION = 1
_APPLICATION_ID = 0x74646C67  # "tdlg": marks the file as a tunedag look ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS looks (
    id INTEGER PRIMARY KEY,
    rows_fingerprint TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    number INTEGER NOT NULL,
    study TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_digest TEXT NOT NULL,
    storage TEXT NOT NULL,
    split_fingerprint TEXT NOT NULL,
    trial INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    cv_value REAL,
    allowed INTEGER NOT NULL,
    looked_at REAL NOT NULL,
    host TEXT NOT NULL,
    user TEXT NOT NULL,
    UNIQUE (rows_fingerprint, number)
);
CREATE INDEX IF NOT EXISTS looks_by_split ON looks (split_fingerprint);
"""

_COLUMNS = (
    "rows_fingerprint, n_rows, number, study, spec_file, spec_digest, storage, "
    "split_fingerprint, trial, metric, value, cv_value, allowed, looked_at, host, user"
)


_FIELDS = [
    "rows_fingerprint",
    "n_rows",
    "number",
    "study",
    "spec_file",
    "spec_digest",
    "storage",
    "split_fingerprint",
    "trial",
    "metric",
    "value",
    "cv_value",
    "allowed",
    "looked_at",
    "host",
    "user",
]


def default_ledger_path() -> Path:
    return Path(platformdirs.user_data_dir("tunedag", appauthor=False)) / "looks.sqlite"


def ledger_path(spec_ledger: str | None = None, base_dir: Path | None = None) -> Path:
    """`TUNEDAG_LEDGER`, else the spec's `ledger:` (relative to the spec file), else the
    user data directory. The environment wins so a team or CI can pin one shared ledger."""
    env = os.environ.get(LEDGER_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if spec_ledger:
        path = Path(spec_ledger).expanduser()
        return (path if path.is_absolute() else (base_dir or Path.cwd()) / path).resolve()
    return default_ledger_path()


@dataclass(frozen=True)
class Look:
    """One score of a test set, with enough to say when, by whom and with what result."""

    rows_fingerprint: str
    n_rows: int
    number: int  # 1 for the first look at these rows, 2 for the second ...
    study: str
    spec_file: str
    spec_digest: str
    storage: str
    split_fingerprint: str
    trial: int
    metric: str
    value: float | None
    cv_value: float | None
    allowed: bool  # asked for with --allow-second-look
    looked_at: float
    host: str = ""
    user: str = ""

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.looked_at))
        score = "no score" if self.value is None else f"{self.metric}={self.value:.5g}"
        who = f"{self.user}@{self.host}" if self.user or self.host else "unknown"
        return (
            f"look {self.number} on {when} by study {self.study!r} (spec {self.spec_file}, "
            f"storage {self.storage}, {who}): {score}"
            + (" [--allow-second-look]" if self.allowed else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "look": self.number,
            "rows": self.rows_fingerprint,
            "n_rows": self.n_rows,
            "study": self.study,
            "spec": self.spec_file,
            "storage": self.storage,
            "trial": self.trial,
            "metric": self.metric,
            "value": self.value,
            "cv_value": self.cv_value,
            "second_look_allowed": self.allowed,
            "looked_at": self.looked_at,
            "host": self.host,
            "user": self.user,
        }


def second_look_message(looks: list[Look], what: str) -> str:
    """Why a look is refused: every earlier look, and the two ways on."""
    earlier = "\n".join(f"  {look.describe()}" for look in looks)
    plural = "once" if len(looks) == 1 else f"{len(looks)} times"
    return (
        f"{what}: these {looks[0].n_rows} test rows (fingerprint {looks[0].rows_fingerprint[:12]}) "
        f"were already scored {plural}:\n{earlier}\n"
        "scoring them again would be a second look at the locked test set; pass "
        "--allow-second-look to record one (it is shown in status and the report), or hold "
        "out rows that were never scored"
    )


def _unusable(path: Path) -> str | None:
    """Why ``path`` can never be a ledger file (a folder, a place under a file), or None."""
    if path.exists():
        return None if path.is_file() else "is not a file"
    for folder in path.parents:
        if folder.exists():
            return None if folder.is_dir() else f"lies under {folder}, which is a file"
    return None


class LookLedger:
    """The ledger file; ``readonly`` never creates it (status, looks, lint only read)."""

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 30.0):
        self.path = path
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        unusable = _unusable(path)
        if unusable:
            raise self._error(OSError(unusable))
        if path.is_file() and path.stat().st_size == 0:
            refuse_truncated(path, f"look ledger {path}", "an empty ledger")
        if readonly and not path.is_file():  # none yet: no look was ever recorded
            return
        try:
            if readonly:
                conn = sqlite3.connect(
                    f"{path.as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s,
                    isolation_level=None,
                )  # fmt: skip
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise self._error(error) from error
        self._conn = conn
        try:
            with self._setting_up():
                self._setup()
        except BaseException:
            conn.close()
            raise

    @contextmanager
    def _setting_up(self) -> Iterator[None]:
        """One process at a time sets a ledger up: two drivers that open a new ledger at once
        would otherwise switch it to WAL while the other holds a write transaction, a lock
        cycle SQLite only breaks by making one wait out its busy timeout."""
        if self.readonly:
            yield
            return
        try:
            lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise self._error(error) from error
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)  # closing releases the lock

    def _error(self, error: BaseException) -> StorageError:
        text = str(error)
        if "locked" in text or "busy" in text:
            return StorageBusyError(
                f"look ledger {self.path} is locked by another writer "
                f"(waited {self.busy_timeout_s:g} s): {text}; retry"
            )
        return StorageAccessError(
            f"look ledger {self.path}: {text} (set {LEDGER_ENV} or the spec's `ledger:` to "
            "a writable path)"
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise self._error(error) from error

    def _setup(self) -> None:
        conn = self._conn
        assert conn is not None
        with self._errors():
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            try:
                app = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            except sqlite3.DatabaseError as error:
                raise StorageDamagedError(
                    f"{self.path} is not a tunedag look ledger ({error})"
                ) from error
            if tables and app != _APPLICATION_ID:
                raise StorageDamagedError(f"{self.path} is not a tunedag look ledger")
            if version > LEDGER_VERSION:
                raise StorageDamagedError(
                    f"look ledger {self.path} was written by a newer tunedag (version {version})"
                )
            if self.readonly:
                if not tables:  # an empty file: nothing was ever recorded
                    conn.close()
                    self._conn = None
                return
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA synchronous = FULL")
            if version < LEDGER_VERSION:
                with self.write() as cur:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            cur.execute(statement)
                    cur.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                    cur.execute(f"PRAGMA user_version = {LEDGER_VERSION}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; IMMEDIATE takes the write lock before the first read."""
        assert self._conn is not None and not self.readonly
        with self._errors():
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise

    # -- reading ---------------------------------------------------------------------------------

    def _select(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Look]:
        if self._conn is None:
            return []
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM looks {where} ORDER BY id", args
            ).fetchall()
        return [_look(row) for row in rows]

    def looks(self, rows_fingerprint: str) -> list[Look]:
        """Every look at these rows, first first."""
        return self._select("WHERE rows_fingerprint = ?", (rows_fingerprint,))

    def all_looks(self) -> list[Look]:
        return self._select()

    def looks_at_split(self, split_fingerprint: str) -> list[Look]:
        """Every look at the rows that a study with this split scored (for status)."""
        own = self._select("WHERE split_fingerprint = ?", (split_fingerprint,))
        return self.looks(own[0].rows_fingerprint) if own else []

    # -- writing ---------------------------------------------------------------------------------

    def record(self, look: Look, *, allow_second_look: bool) -> Look:
        """Add ``look`` as the next look at its rows, or refuse (exit 3) when rows were seen
        and a second look was not allowed; check and insert are one transaction."""
        with self.write() as cur:
            earlier = [
                _look(row)
                for row in cur.execute(
                    f"SELECT {_COLUMNS} FROM looks WHERE rows_fingerprint = ? ORDER BY number",
                    (look.rows_fingerprint,),
                ).fetchall()
            ]
            if earlier and not allow_second_look:
                raise TestSetLockedError(
                    second_look_message(earlier, f"study {look.study!r}: score withheld")
                )
            number = max((e.number for e in earlier), default=0) + 1
            looked = _replace(look, number=number, allowed=bool(earlier))
            insert(cur, looked)
        return looked

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def insert(cur: sqlite3.Cursor, look: Look) -> None:
    """The row of one look (inside a write transaction)."""
    cur.execute(
        f"INSERT INTO looks ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        (
            look.rows_fingerprint,
            look.n_rows,
            look.number,
            look.study,
            look.spec_file,
            look.spec_digest,
            look.storage,
            look.split_fingerprint,
            look.trial,
            look.metric,
            look.value,
            look.cv_value,
            int(look.allowed),
            look.looked_at,
            look.host,
            look.user,
        ),
    )


def _look(row: tuple[Any, ...]) -> Look:
    values = list(row)
    values[12] = bool(values[12])
    return Look(**dict(zip(_FIELDS, values, strict=True)))


def _replace(look: Look, **changes: Any) -> Look:
    fields = {**look.__dict__, **changes}
    return Look(**fields)


def who() -> tuple[str, str]:
    """(host, user) for a look's row; empty strings where the system will not say."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return socket.gethostname(), user


__all__ = [
    "LEDGER_ENV",
    "Look",
    "LookLedger",
    "default_ledger_path",
    "ledger_path",
    "second_look_message",
    "who",
]
