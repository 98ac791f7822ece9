"""PostgreSQL under the storage: one connection, SQLite's guarantees on a server.

``tunedag.storage`` writes its SQL once, in the dialect both databases share (``?``
placeholders, ``ON CONFLICT`` upserts); this module is the small difference:

- placeholders become psycopg's ``%s``; the schema's SQLite types become PostgreSQL's
  (``REAL`` is ``DOUBLE PRECISION``, ``BLOB`` is ``BYTEA``, a ``PRIMARY KEY`` id is ``SERIAL``);
- a write transaction first takes a transaction-level advisory lock, so writers take turns
  exactly as SQLite's ``BEGIN IMMEDIATE`` makes them: a trial number, a claim of a waiting
  trial, the budget check and a grid point's uniqueness are each decided by one writer
  with the latest committed state in view (``READ COMMITTED`` takes a fresh snapshot per
  statement, after the lock is held). Reads run in a ``REPEATABLE READ`` snapshot;
- errors map to the same exit codes: a lock wait past the busy timeout, a lost or refused
  connection, a full disk are transient (75); a refused login or privilege is 74.

Install with ``pip install 'tunedag[postgres]'`` (psycopg 3). URLs are libpq's:
``postgresql://user:password@host:5432/dbname`` (or ``?host=/socket/dir``); the password
never appears in a message.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tunedag.errors import (
    StorageAccessError,
    StorageBusyError,
    StorageError,
    StorageFullError,
    UnknownNameError,
)

SCHEMES = ("postgresql://", "postgres://")
#: the advisory lock every write transaction takes ("tunedag" in ASCII)
WRITE_LOCK = 0x74756E65646167


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and the stored look ledger."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


_DDL = [
    (re.compile(r"\bid INTEGER PRIMARY KEY\b"), "id SERIAL PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
]


def ddl(sql: str) -> str:
    """A schema statement written for SQLite, in PostgreSQL's types."""
    for pattern, replacement in _DDL:
        sql = pattern.sub(replacement, sql)
    return sql


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


#: what a server says, on connecting, when it will answer later (75) rather than never (74)
_TRANSIENT_FATAL = ("too many clients", "starting up", "shutting down", "recovery mode")


def _fatal(text: str) -> str:
    return text[text.index("FATAL:") :].strip() if "FATAL:" in text else text


def _refused(text: str) -> bool:
    """The server answered and turned the connection down for good (login, database)."""
    return "FATAL:" in text and not any(word in text for word in _TRANSIENT_FATAL)


class Cursor:
    """A psycopg cursor that takes the storage's ``?`` placeholders."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._cursor.execute(_placeholders(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor:
        rows = [tuple(row) for row in rows]
        if rows:
            self._cursor.executemany(_placeholders(sql), rows)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class PostgresDatabase:
    """One psycopg connection, shared by the threads of a process under a lock."""

    dialect = "postgresql"
    kind = "PostgreSQL"
    path = None

    def __init__(self, url: str, busy_timeout_s: float) -> None:
        try:  # imported here: SQLite users never pay for it, and it is an optional extra
            import psycopg
        except ImportError as error:
            raise UnknownNameError(
                f"storage {redact(url)} needs PostgreSQL support, which is not installed: "
                "pip install 'tunedag[postgres]'"
            ) from error
        self._pg = psycopg
        self.url = redact(url)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        with self.errors():
            self._conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(busy_timeout_s))
            )
            self._conn.execute(f"SET lock_timeout = {int(busy_timeout_s * 1000)}")

    def prepare(self) -> None:
        """Nothing to set once the schema is known (SQLite sets its journal here)."""

    def ddl(self, sql: str) -> str:
        return ddl(sql)

    def tables(self, cur: Cursor) -> set[str]:
        rows = cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(row[0]) for row in rows}

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except self._pg.Error as error:
            raise self.map_error(error) from error

    def map_error(self, error: Exception) -> StorageError:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        pg_errors = self._pg.errors
        if isinstance(
            error,
            pg_errors.LockNotAvailable
            | pg_errors.DeadlockDetected
            | pg_errors.SerializationFailure
            | pg_errors.QueryCanceled,
        ):
            return StorageBusyError(
                f"storage {self.url} is locked by another writer "
                f"(waited {self.busy_timeout_s:g} s): {text}; retry"
            )
        if isinstance(error, pg_errors.DiskFull | pg_errors.OutOfMemory):
            return StorageFullError(
                f"storage {self.url}: the server has no room to write ({text}); free space "
                "and run again, which resumes the study where it stopped"
            )
        if isinstance(
            error,
            pg_errors.InvalidAuthorizationSpecification
            | pg_errors.InvalidPassword
            | pg_errors.InsufficientPrivilege
            | pg_errors.InvalidCatalogName
            | pg_errors.ReadOnlySqlTransaction,
        ):
            return StorageAccessError(
                f"storage {self.url} refuses tunedag ({text}): check the user, its password "
                "and its privileges (CREATE and write on the database), and that the "
                "database exists"
            )
        if isinstance(error, self._pg.OperationalError) and _refused(str(error)):
            return StorageAccessError(
                f"storage {self.url} refuses tunedag ({_fatal(str(error))}): check the user, "
                "its password and privileges, and that the database exists"
            )
        if isinstance(error, self._pg.OperationalError):
            return StorageBusyError(
                f"storage {self.url} cannot be reached ({text}); retry once the server "
                "answers, which resumes the study where it stopped"
            )
        return StorageError(f"storage {self.url}: {type(error).__name__}: {text}")

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        """One write transaction, holding the database's tunedag write lock until it ends."""
        with self._lock, self.errors():
            cur = Cursor(self._conn.cursor())
            cur.execute("BEGIN")
            try:
                cur.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """One read transaction on one snapshot."""
        with self._lock, self.errors():
            cur = Cursor(self._conn.cursor())
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield cur
            finally:
                self._rollback()

    def _rollback(self) -> None:
        if self._conn.closed:
            return
        # nothing open, or the connection broke: the server discards the transaction
        with contextlib.suppress(self._pg.Error):
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
