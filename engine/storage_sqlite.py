"""SQLite under the storage: one file, no server, safe for several processes on one machine.

The WAL journal lets readers run beside the one writer, a busy timeout makes a writer wait
its turn (and the switch to WAL on opening, which SQLite refuses at once while another
connection holds a lock, is retried as long), and every write transaction is ``BEGIN
IMMEDIATE``, so the write lock is taken up front and two processes never race for the same
trial number. A write-ahead log deleted under a running study is saved into the file at the
next commit (``tunedag.wal_guard``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunedag.errors import StorageAccessError, StorageBusyError, StorageError
from tunedag.storage_errors import classify, refuse_truncated
from tunedag.wal_guard import WalGuard


class SqliteDatabase:
    """One SQLite connection, shared by the threads of a process under a lock."""

    dialect = "sqlite"
    kind = "SQLite"

    def __init__(self, url: str, path: Path | None, busy_timeout_s: float) -> None:
        self.url = url
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageAccessError(
                    f"storage {url}: cannot create {path.parent}: {exc.strerror or exc}"
                ) from exc
            if path.is_file() and path.stat().st_size == 0:
                refuse_truncated(path, f"storage {url}", "a new study")
        self._wal = WalGuard(path) if path is not None else None
        self._connect()

    def _connect(self) -> None:
        target = ":memory:" if self.path is None else str(self.path)
        try:
            self._conn = sqlite3.connect(
                target, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self.map_error(exc) from exc
        try:
            with self.errors():
                self._conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                self._conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn.close()
            raise

    def prepare(self) -> None:
        """Once the file is known to be a tunedag storage (a foreign file is left as it was):
        the WAL journal."""
        with self.errors():
            if self.path is not None:
                mode = self._while_busy("PRAGMA journal_mode = WAL")
                if mode is None or str(mode[0]).lower() != "wal":
                    self._wal = None  # a file system without WAL support: no log to guard
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def _while_busy(self, statement: str) -> tuple[object, ...] | None:
        """Run ``statement`` (its first row), retried until the busy timeout while another
        connection holds a lock: SQLite refuses a journal mode change at once then, without
        its busy handler, as when several drivers open a new storage file together."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.005
        while True:
            try:
                row: tuple[object, ...] | None = self._conn.execute(statement).fetchone()
                return row
            except sqlite3.OperationalError as exc:
                busy = isinstance(self.map_error(exc), StorageBusyError)
                if not busy or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.1)

    def ddl(self, sql: str) -> str:
        return sql

    def tables(self, cur: sqlite3.Cursor) -> set[str]:
        return {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def map_error(self, exc: Exception) -> StorageError:
        assert isinstance(exc, sqlite3.Error)
        return classify(exc, self.url, self.busy_timeout_s)

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self.map_error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; IMMEDIATE takes the write lock up front, so no upgrade race."""
        with self._lock, self.errors():
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise
            self._keep_wal()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """One read transaction, so multi-statement reads see one consistent snapshot."""
        with self._lock, self.errors():
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                if self._conn.in_transaction:
                    self._conn.rollback()

    def _keep_wal(self) -> None:
        """After a commit: if the log was deleted under us, save it and start a new one."""
        if self._wal is None or not self._wal.lost():
            return
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self._conn.close()
        self._wal.reset()
        self._connect()
        self.prepare()
        self._wal.warn(self.url)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
