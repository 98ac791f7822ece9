"""The storage of studies and trials: the one durable record a study resumes from.

SQLite by default (one file, no server, safe for several processes on one machine;
``tunedag.storage_sqlite``), PostgreSQL for drivers on several machines
(``tunedag.storage_postgres``). The SQL here is written once, in the dialect both share;
the schema, its migrations and every guarantee below hold on either. Why no pickles: a
storage must be safe to open and stable across Python and library versions, so every
column is plain SQL types, JSON text, or raw little-endian int64 bytes (fold indices).

URL forms::

    sqlite:///relative/path.sqlite    relative to ``base_dir`` (normally the current directory)
    sqlite:////absolute/path.sqlite
    sqlite:///:memory:
    postgresql://user:password@host:5432/dbname     (pip install 'tunedag[postgres]')

Every state change is one write transaction, and writers take turns (SQLite's ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock), so a trial's result is committed together with
its state, and two processes never race for the same trial number, the same waiting trial,
the last trial of a budget or the same grid point.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import socket
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, overload

from tunedag.errors import (
    LeaseLostError,
    StorageError,
    StorageURLError,
    StudyBusyError,
    TestSetLockedError,
)
from tunedag.looks import Look, second_look_message
from tunedag.storage_errors import damaged, decoding
from tunedag.storage_postgres import is_postgres_url
from tunedag.storage_sqlite import SqliteDatabase

if TYPE_CHECKING:  # numpy is imported where folds are read or written, not to read trials
    import numpy as np

__all__ = [
    "FINISHED_STATES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "LeaseRecord",
    "Storage",
    "StudyRecord",
    "Takeover",
    "TestEvaluation",
    "TrialRecord",
    "TrialState",
    "open_storage",
]


class TrialState(enum.StrEnum):
    """Life cycle of a trial: WAITING -> RUNNING -> one of the finished states."""

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


FINISHED_STATES: frozenset[TrialState] = frozenset(
    {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED}
)


@dataclass
class TrialRecord:
    """One trial as stored; ``number`` is 0-based and unique within its study."""

    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    fold_values: list[float] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    fold_durations: list[float] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    error: str | None = None
    attempt: int = 1
    cache_hits: int = 0
    cache_misses: int = 0
    #: the extra metrics of ``objective.report``: name -> one value per fold
    metrics: dict[str, list[float]] = field(default_factory=dict)
    #: the lease owner of the driver that runs (or last ran) the trial
    owner: str | None = None

    def metric_means(self) -> dict[str, float]:
        """Each extra metric's mean over the folds (NaN folds left out; NaN if none)."""
        return {name: _mean(values) for name, values in self.metrics.items()}


@dataclass
class StudyRecord:
    """A study's identity: the fingerprint decides whether a resumed spec still matches."""

    name: str
    fingerprint: dict[str, str]
    spec_json: str
    created_at: float
    finished_reason: str | None = None
    elapsed_s: float = 0.0


@dataclass
class TestEvaluation:
    """One look at the locked test set; kept so a second look is visible, never silent."""

    __test__ = False  # not a pytest test class

    trial_number: int
    value: float
    cv_value: float
    gap: float
    flagged: bool
    split_fingerprint: str
    evaluated_at: float
    second_look: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaseRecord:
    """A driver's claim on a study, kept alive by its heartbeat."""

    owner: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    timeout_s: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.pid}"

    def stale(self, now: float, this_host: str) -> bool:
        """No heartbeat within its timeout, or its process is gone from this very host."""
        if now - self.heartbeat_at > self.timeout_s:
            return True
        return self.host == this_host and not _pid_alive(self.pid)


@dataclass
class Takeover:
    """What a driver found when it took its lease: stale leases removed, trials re-queued."""

    stale: list[tuple[LeaseRecord, list[int]]] = field(default_factory=list)
    #: running trials no lease owned (left by a run that stopped before leases, or released)
    orphans: list[int] = field(default_factory=list)


SCHEMA_VERSION = 7

# version -> SQL that brings a database from version-1 to version. A fresh database applies
# them all in order; an older one applies those above its version. Append, never edit.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            fingerprint TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            finished_reason TEXT,
            elapsed_s REAL NOT NULL DEFAULT 0,
            n_folds INTEGER
        )""",
        """CREATE TABLE trials (
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            state TEXT NOT NULL,
            params TEXT NOT NULL,
            value REAL,
            fold_values TEXT NOT NULL DEFAULT '[]',
            fold_durations TEXT NOT NULL DEFAULT '[]',
            started_at REAL,
            finished_at REAL,
            duration_s REAL,
            error TEXT,
            attempt INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (study_id, number)
        ) WITHOUT ROWID""",
        "CREATE INDEX trials_by_state ON trials (study_id, state)",
        """CREATE TABLE intermediate (
            study_id INTEGER NOT NULL,
            number INTEGER NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            PRIMARY KEY (study_id, number, step),
            FOREIGN KEY (study_id, number) REFERENCES trials(study_id, number)
                ON DELETE CASCADE
        ) WITHOUT ROWID""",
        """CREATE TABLE folds (
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            fold INTEGER NOT NULL,
            train BLOB NOT NULL,
            test BLOB NOT NULL,
            PRIMARY KEY (study_id, fold)
        ) WITHOUT ROWID""",
        """CREATE TABLE test_evaluations (
            id INTEGER PRIMARY KEY,
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            trial_number INTEGER NOT NULL,
            value REAL,
            cv_value REAL,
            gap REAL,
            flagged INTEGER NOT NULL,
            split_fingerprint TEXT NOT NULL,
            evaluated_at REAL NOT NULL,
            second_look INTEGER NOT NULL
        )""",
        "CREATE INDEX test_evaluations_by_study ON test_evaluations (study_id, id)",
    ],
    # fitted-preprocessing cache: how many fit nodes of a trial were reused or computed
    2: [
        "ALTER TABLE trials ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE trials ADD COLUMN cache_misses INTEGER NOT NULL DEFAULT 0",
    ],
    # extra metrics (objective.report): per fold for a trial, one value for a test evaluation
    3: [
        "ALTER TABLE trials ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE test_evaluations ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}'",
    ],
    # the baseline: the estimators' defaults, trial 0 of the study or a record of its own
    4: [
        """CREATE TABLE baselines (
            study_id INTEGER PRIMARY KEY REFERENCES studies(id) ON DELETE CASCADE,
            params TEXT NOT NULL,
            trial_number INTEGER,
            scored INTEGER NOT NULL DEFAULT 0,
            value REAL,
            fold_values TEXT NOT NULL DEFAULT '[]',
            error TEXT
        )""",
    ],
    # a trial's output (the tail of what it wrote to fds 1 and 2), apart from the trials
    # table so that reading every trial never reads their outputs
    5: [
        """CREATE TABLE trial_outputs (
            study_id INTEGER NOT NULL,
            number INTEGER NOT NULL,
            output TEXT NOT NULL,
            PRIMARY KEY (study_id, number),
            FOREIGN KEY (study_id, number) REFERENCES trials(study_id, number)
                ON DELETE CASCADE
        ) WITHOUT ROWID""",
    ],
    # shared studies: the drivers' leases, the owner of each trial, who scores the test set
    6: [
        """CREATE TABLE leases (
            study TEXT NOT NULL,
            owner TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            timeout_s REAL NOT NULL,
            PRIMARY KEY (study, owner)
        )""",
        "ALTER TABLE trials ADD COLUMN owner TEXT",
        "ALTER TABLE studies ADD COLUMN evaluator TEXT",
    ],
    # the look ledger of a storage on a server (``tunedag.looks_shared``), so drivers on
    # several machines see the same looks; an SQLite storage keeps it empty
    7: [
        """CREATE TABLE looks (
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
            user_name TEXT NOT NULL,
            UNIQUE (rows_fingerprint, number)
        )""",
        "CREATE INDEX looks_by_split ON looks (split_fingerprint)",
    ],
}

_URL_PREFIX = "sqlite:///"
_ACCEPTED = (
    "sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite, sqlite:///:memory:, "
    "postgresql://user:password@host:5432/dbname"
)

_TRIAL_COLUMNS = (
    "number, state, params, value, fold_values, fold_durations, started_at, finished_at, "
    "duration_s, error, attempt, cache_hits, cache_misses, metrics, owner"
)
_LEASE_COLUMNS = "owner, host, pid, started_at, heartbeat_at, timeout_s"
_LOOK_COLUMNS = (
    "rows_fingerprint, n_rows, number, study, spec_file, spec_digest, storage, "
    "split_fingerprint, trial, metric, value, cv_value, allowed, looked_at, host, user_name"
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but not ours to signal
        return True
    return True


def parse_url(url: str, base_dir: Path | None = None) -> Path | None:
    """The database file a URL names, or None for ``sqlite:///:memory:`` and a server."""
    if is_postgres_url(url):
        return None
    if not url.startswith(_URL_PREFIX) or len(url) == len(_URL_PREFIX):
        raise StorageURLError(f"unsupported storage URL {url!r}; accepted forms: {_ACCEPTED}")
    rest = url[len(_URL_PREFIX) :]
    if "?" in rest:  # a file named "x.sqlite?mode=ro" is never what was meant
        raise StorageURLError(
            f"storage URL {url!r}: tunedag takes no ?options on a sqlite URL; name the file alone"
        )
    if rest == ":memory:":
        return None
    path = Path(rest)
    if path.is_absolute():
        return path
    return (base_dir if base_dir is not None else Path.cwd()) / path


def storage_exists(url: str, base_dir: Path | None = None) -> bool:
    """Whether the database a URL names is there, so read-only commands never create one."""
    path = parse_url(url, base_dir)
    return path is None or path.exists()  # a server's database: tables are made on first use


# SQLite turns a bound NaN into NULL, which would read back as "no value"; NaN is stored as
# the text 'nan' instead (a REAL column keeps text that is not a number). inf is a real REAL.
def _enc_float(x: float | None) -> float | str | None:
    if x is None:
        return None
    x = float(x)
    return "nan" if math.isnan(x) else x


def _dec_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _dec_float_req(x: Any) -> float:
    return math.nan if x is None else float(x)


def _enc_float_list(values: Sequence[float]) -> str:
    """JSON list with NaN as null (inf uses Python's Infinity token, which json reads back)."""
    return json.dumps([None if math.isnan(v) else v for v in map(float, values)])


def _dec_float_list(text: str) -> list[float]:
    return [math.nan if v is None else float(v) for v in json.loads(text)]


def _json_default(obj: Any) -> Any:
    # Samplers often hand back numpy scalars; store them as the plain JSON value they stand for.
    np = sys.modules.get("numpy")  # a numpy value means numpy is imported already
    if np is None:
        raise TypeError(f"{type(obj).__name__} value {obj!r} is not JSON-serialisable")
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} value {obj!r} is not JSON-serialisable")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _index_bytes(arr: Any, what: str) -> bytes:
    import numpy as np

    a = np.asarray(arr)
    if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{what} must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype="<i8").tobytes()


def _index_array(blob: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(blob, dtype="<i8").astype(np.int64)


class Storage:
    """A study store on one database connection; safe to share between threads of a process.

    SQLite (``tunedag.storage_sqlite``) or PostgreSQL (``tunedag.storage_postgres``) lies
    beneath; the SQL here is the dialect both share, so every guarantee holds on either.
    """

    def __init__(
        self, url: str, base_dir: Path | None = None, *, busy_timeout_s: float = 10.0
    ) -> None:
        self.busy_timeout_s = busy_timeout_s
        self._db: Any
        if is_postgres_url(url):
            from tunedag.storage_postgres import PostgresDatabase

            self._db = PostgresDatabase(url, busy_timeout_s)
        else:
            self._db = SqliteDatabase(url, parse_url(url, base_dir), busy_timeout_s)
        self.url: str = self._db.url  # a PostgreSQL URL without its password
        self.path: Path | None = self._db.path
        self.dialect: str = self._db.dialect
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    # -- schema --------------------------------------------------------------------------------

    def _setup(self) -> None:
        # Look before touching anything: a foreign or newer file must be left as it was.
        version = self._read_version()
        self._db.prepare()
        if version != SCHEMA_VERSION:
            with self._write() as cur:
                version = self._read_version(cur)  # again, now that we hold the write lock
                for v in range(version + 1, SCHEMA_VERSION + 1):
                    for sql in MIGRATIONS[v]:
                        cur.execute(self._db.ddl(sql))
                if version < SCHEMA_VERSION:
                    cur.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(SCHEMA_VERSION),),
                    )

    def _read_version(self, cur: Any = None) -> int:
        """0 for an empty database; StorageError for a foreign, broken or newer one."""
        if cur is None:
            with self._read() as fresh:
                return self._read_version(fresh)
        where = self.url
        with self._db.errors():
            tables = self._db.tables(cur)
            if not tables:
                return 0
            if "meta" not in tables:
                raise damaged(
                    where, f"is not a tunedag storage ({self._db.kind}, but no meta table)"
                )
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else -1
        except (TypeError, ValueError):
            version = -1
        if version < 1:
            raise damaged(where, "is not a tunedag storage (no valid schema_version)")
        if version > SCHEMA_VERSION:
            raise damaged(
                where, f"was written by a newer tunedag (schema {version}); upgrade tunedag"
            )
        return version

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction: one writer at a time, the latest commit in view."""
        with self._db.write() as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """One read transaction, so multi-statement reads see one consistent snapshot."""
        with self._db.read() as cur:
            yield cur

    def _study_id(self, cur: Any, name: str) -> int:
        row = cur.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StorageError(f"no study named {name!r} in {self.url}")
        return int(row[0])

    def _fetch_trial(self, cur: Any, sid: int, name: str, number: int) -> TrialRecord:
        row = cur.execute(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND number = ?",
            (sid, number),
        ).fetchone()
        if row is None:
            raise StorageError(f"study {name!r} has no trial {number}")
        with decoding(self.url, f"trial {number} of study {name!r}"):
            trial = _trial_from_row(row)
            trial.intermediate = {
                int(step): _dec_float_req(v)
                for step, v in cur.execute(
                    "SELECT step, value FROM intermediate WHERE study_id = ? AND number = ? "
                    "ORDER BY step",
                    (sid, number),
                )
            }
        return trial

    def _wrong_state(
        self,
        cur: Any,
        sid: int,
        name: str,
        number: int,
        expected: TrialState,
        owner: str | None = None,
    ) -> StorageError | LeaseLostError:
        row = cur.execute(
            "SELECT state, owner FROM trials WHERE study_id = ? AND number = ?", (sid, number)
        ).fetchone()
        if row is None:
            return StorageError(f"study {name!r} has no trial {number}")
        if owner is not None and (row[1] != owner or row[0] != expected):
            return LeaseLostError(
                f"trial {number} of study {name!r} was re-queued by another driver, which took "
                "over this driver's lease after it missed its heartbeats; this driver stops "
                "here, and every result it stored is kept"
            )
        return StorageError(f"trial {number} of study {name!r} is {row[0]}, not {expected}")

    # -- studies --------------------------------------------------------------------------------

    def get_study(self, name: str) -> StudyRecord | None:
        """The study of that name, or None so the caller can decide to create it."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT name, fingerprint, spec_json, created_at, finished_reason, elapsed_s "
                "FROM studies WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            return None
        with decoding(self.url, f"the record of study {name!r}"):
            fingerprint = json.loads(row[1])
            if not isinstance(fingerprint, dict):
                raise TypeError(f"fingerprint is {type(fingerprint).__name__}, not an object")
            return StudyRecord(
                name=row[0],
                fingerprint=fingerprint,
                spec_json=str(row[2]),
                created_at=float(row[3]),
                finished_reason=row[4],
                elapsed_s=float(row[5]),
            )

    @overload
    def create_study(
        self, name: str, fingerprint: dict[str, str], spec_json: str
    ) -> StudyRecord: ...

    @overload
    def create_study(
        self, name: str, fingerprint: dict[str, str], spec_json: str, *, exist_ok: bool
    ) -> StudyRecord | None: ...

    def create_study(
        self, name: str, fingerprint: dict[str, str], spec_json: str, *, exist_ok: bool = False
    ) -> StudyRecord | None:
        """A new study; refuses an existing name so two runs never share one by accident
        (``exist_ok``: None instead, for drivers that join a study as it is created)."""
        record = StudyRecord(name, dict(fingerprint), spec_json, time.time())
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM studies WHERE name = ?", (name,)).fetchone():
                if exist_ok:
                    return None
                raise StorageError(f"study {name!r} already exists in {self.url}")
            cur.execute(
                "INSERT INTO studies (name, fingerprint, spec_json, created_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    name,
                    json.dumps(record.fingerprint, sort_keys=True),
                    spec_json,
                    record.created_at,
                ),
            )
        return record

    def archive_study(self, name: str) -> str:
        """Move a study aside under ``name~k`` (for --fresh); nothing is ever deleted."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            k = 1
            while cur.execute("SELECT 1 FROM studies WHERE name = ?", (f"{name}~{k}",)).fetchone():
                k += 1
            new_name = f"{name}~{k}"
            cur.execute("UPDATE studies SET name = ? WHERE id = ?", (new_name, sid))
        return new_name

    def update_spec(self, name: str, spec_json: str) -> None:
        """Replace the stored spec, e.g. when a resumed run raises the budget."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute("UPDATE studies SET spec_json = ? WHERE id = ?", (spec_json, sid))

    def set_finished(self, name: str, reason: str | None) -> None:
        """Record why the study stopped (None clears it, e.g. when it resumes)."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute("UPDATE studies SET finished_reason = ? WHERE id = ?", (reason, sid))

    def add_elapsed(self, name: str, seconds: float) -> None:
        """Add a run's wall-clock time, so `budget.time` is a total across runs."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute("UPDATE studies SET elapsed_s = elapsed_s + ? WHERE id = ?", (seconds, sid))

    def save_folds(self, name: str, folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Pin the CV split, so a resumed study scores every trial on the same folds."""
        rows = [
            (i, _index_bytes(train, f"fold {i} train"), _index_bytes(test, f"fold {i} test"))
            for i, (train, test) in enumerate(folds)
        ]
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute("DELETE FROM folds WHERE study_id = ?", (sid,))
            cur.executemany(
                "INSERT INTO folds (study_id, fold, train, test) VALUES (?, ?, ?, ?)",
                [(sid, i, tr, te) for i, tr, te in rows],
            )
            cur.execute("UPDATE studies SET n_folds = ? WHERE id = ?", (len(rows), sid))

    def load_folds(self, name: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The saved folds as int64 arrays in saved order, or None if none were saved."""
        with self._read() as cur:
            sid = self._study_id(cur, name)
            n = cur.execute("SELECT n_folds FROM studies WHERE id = ?", (sid,)).fetchone()[0]
            if n is None:
                return None
            rows = cur.execute(
                "SELECT train, test FROM folds WHERE study_id = ? ORDER BY fold", (sid,)
            ).fetchall()
        with decoding(self.url, f"the folds of study {name!r}"):
            if len(rows) != n:
                raise ValueError(f"{len(rows)} fold rows, but the study records {n}")
            return [(_index_array(tr), _index_array(te)) for tr, te in rows]

    # -- trials ---------------------------------------------------------------------------------

    def create_trial(
        self,
        name: str,
        params: dict[str, Any],
        state: TrialState = TrialState.RUNNING,
        *,
        owner: str | None = None,
    ) -> TrialRecord:
        """A new trial with the next number, assigned under the write lock so it is unique."""
        trial = self.add_trial(name, params, state, owner=owner)
        assert trial is not None  # no budget, no distinctness: always added
        return trial

    def add_trial(
        self,
        name: str,
        params: dict[str, Any],
        state: TrialState = TrialState.RUNNING,
        *,
        owner: str | None = None,
        budget: int | None = None,
        distinct: bool = False,
    ) -> TrialRecord | None:
        """A new trial, or None when the study already has ``budget`` trials or (``distinct``)
        one with these very parameters: checked and written in one transaction, so several
        drivers never overshoot a budget nor run a grid point twice."""
        state = TrialState(state)
        if state not in (TrialState.WAITING, TrialState.RUNNING):
            raise ValueError(f"a trial is created waiting or running, not {state}")
        params_json = _dumps(params)
        started_at = time.time() if state is TrialState.RUNNING else None
        with self._write() as cur:
            sid = self._study_id(cur, name)
            self._check_lease(cur, name, owner)
            number = int(
                cur.execute(
                    "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?", (sid,)
                ).fetchone()[0]
            )
            if budget is not None and number >= budget:
                return None
            if distinct:
                wanted = json.loads(params_json)
                rows = cur.execute("SELECT params FROM trials WHERE study_id = ?", (sid,))
                if any(json.loads(row[0]) == wanted for row in rows.fetchall()):
                    return None
            cur.execute(
                "INSERT INTO trials (study_id, number, state, params, started_at, owner) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (sid, number, state.value, params_json, started_at, owner),
            )
        return TrialRecord(
            number=number,
            state=state,
            params=json.loads(params_json),
            started_at=started_at,
            owner=owner,
        )

    def start_trial(self, name: str, number: int, *, owner: str | None = None) -> TrialRecord:
        """WAITING -> RUNNING; refuses any other state so a trial never runs twice at once."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            trial = self._start(cur, sid, name, number, owner)
            if trial is None:
                raise self._wrong_state(cur, sid, name, number, TrialState.WAITING)
            return trial

    def claim_trial(self, name: str, number: int, owner: str) -> TrialRecord | None:
        """WAITING -> RUNNING for ``owner``; None when another driver claimed it first."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            self._check_lease(cur, name, owner)
            return self._start(cur, sid, name, number, owner)

    def _check_lease(self, cur: Any, name: str, owner: str | None) -> None:
        """A driver whose lease was taken over starts no trial (LeaseLostError)."""
        if owner is None:
            return
        if cur.execute(
            "SELECT 1 FROM leases WHERE study = ? AND owner = ?", (name, owner)
        ).fetchone():
            return
        raise LeaseLostError(
            f"this driver's lease on study {name!r} was taken over by another driver after "
            "it missed its heartbeats; this driver stops here, and every result it stored is kept"
        )

    def _start(
        self, cur: Any, sid: int, name: str, number: int, owner: str | None
    ) -> TrialRecord | None:
        cur.execute(
            "UPDATE trials SET state = 'running', started_at = ?, owner = ? "
            "WHERE study_id = ? AND number = ? AND state = 'waiting'",
            (time.time(), owner, sid, number),
        )
        if cur.rowcount != 1:
            return None
        return self._fetch_trial(cur, sid, name, number)

    def report(self, name: str, number: int, step: int, value: float) -> None:
        """Add (or overwrite) the intermediate value of a running trial at ``step``."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            running = cur.execute(
                "SELECT 1 FROM trials WHERE study_id = ? AND number = ? AND state = 'running'",
                (sid, number),
            ).fetchone()
            if running is None:
                raise self._wrong_state(cur, sid, name, number, TrialState.RUNNING)
            cur.execute(
                "INSERT INTO intermediate (study_id, number, step, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (study_id, number, step) DO UPDATE SET value = excluded.value",
                (sid, number, int(step), _enc_float(value)),
            )

    def finish_trial(
        self,
        name: str,
        number: int,
        state: TrialState,
        *,
        value: float | None = None,
        fold_values: Sequence[float] = (),
        intermediate: Mapping[int, float] | None = None,
        fold_durations: Sequence[float] = (),
        duration_s: float | None = None,
        error: str | None = None,
        cache_hits: int = 0,
        cache_misses: int = 0,
        metrics: Mapping[str, Sequence[float]] | None = None,
        output: str | None = None,
        owner: str | None = None,
    ) -> TrialRecord:
        """RUNNING -> a finished state, with its result, in one commit (never half-written).

        ``duration_s`` defaults to finished_at - started_at; ``intermediate=None`` keeps the
        reported values, a mapping replaces them; ``output`` (the trial's captured output)
        replaces an earlier attempt's. With ``owner``, only a trial that owner runs is
        finished: LeaseLostError when another driver took it over.
        """
        state = TrialState(state)
        if state not in FINISHED_STATES:
            raise ValueError(f"finish_trial needs a finished state, not {state}")
        now = time.time()
        folds_json = _enc_float_list(fold_values)
        durations_json = _enc_float_list(fold_durations)
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute(
                "UPDATE trials SET state = ?, value = ?, fold_values = ?, fold_durations = ?, "
                "finished_at = ?, duration_s = COALESCE(?, ? - started_at), error = ?, "
                "cache_hits = ?, cache_misses = ?, metrics = ? "
                "WHERE study_id = ? AND number = ? AND state = 'running'" + _owned(owner),
                (
                    state.value,
                    _enc_float(value),
                    folds_json,
                    durations_json,
                    now,
                    _enc_float(duration_s),
                    now,
                    error,
                    int(cache_hits),
                    int(cache_misses),
                    _enc_metrics(metrics or {}),
                    sid,
                    number,
                    *_owner_args(owner),
                ),
            )
            if cur.rowcount != 1:
                raise self._wrong_state(cur, sid, name, number, TrialState.RUNNING, owner)
            if intermediate is not None:
                cur.execute(
                    "DELETE FROM intermediate WHERE study_id = ? AND number = ?", (sid, number)
                )
                cur.executemany(
                    "INSERT INTO intermediate (study_id, number, step, value) VALUES (?, ?, ?, ?)",
                    [(sid, number, int(s), _enc_float(v)) for s, v in intermediate.items()],
                )
            if output is not None:
                cur.execute(
                    "INSERT INTO trial_outputs (study_id, number, output) VALUES (?, ?, ?) "
                    "ON CONFLICT (study_id, number) DO UPDATE SET output = excluded.output",
                    (sid, number, output),
                )
            return self._fetch_trial(cur, sid, name, number)

    def requeue(self, name: str, number: int, *, owner: str | None = None) -> None:
        """RUNNING -> WAITING for a retry: same number and params, attempt + 1.

        The previous attempt's intermediate values are dropped, since the retry starts over.
        With ``owner``, only a trial that owner runs (LeaseLostError otherwise).
        """
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute(
                "UPDATE trials SET state = 'waiting', attempt = attempt + 1, started_at = NULL "
                "WHERE study_id = ? AND number = ? AND state = 'running'" + _owned(owner),
                (sid, number, *_owner_args(owner)),
            )
            if cur.rowcount != 1:
                raise self._wrong_state(cur, sid, name, number, TrialState.RUNNING, owner)
            cur.execute("DELETE FROM intermediate WHERE study_id = ? AND number = ?", (sid, number))

    def requeue_running(self, name: str, *, owner: str | None = None) -> list[int]:
        """Re-queue the RUNNING trials (after an interrupt or crash); returns their numbers.

        With ``owner``, only that driver's, so a stopping driver leaves the others' alone.
        """
        with self._write() as cur:
            sid = self._study_id(cur, name)
            return self._requeue_where(cur, sid, _owned(owner), _owner_args(owner))

    def _requeue_where(self, cur: Any, sid: int, where: str, args: Sequence[Any]) -> list[int]:
        numbers = [
            int(r[0])
            for r in cur.execute(
                "SELECT number FROM trials WHERE study_id = ? AND state = 'running'"
                + where
                + " ORDER BY number",
                (sid, *args),
            ).fetchall()
        ]
        if numbers:
            cur.executemany(
                "UPDATE trials SET state = 'waiting', attempt = attempt + 1, started_at = NULL "
                "WHERE study_id = ? AND number = ?",
                [(sid, n) for n in numbers],
            )
            cur.executemany(
                "DELETE FROM intermediate WHERE study_id = ? AND number = ?",
                [(sid, n) for n in numbers],
            )
        return numbers

    # -- leases ---------------------------------------------------------------------------------

    def acquire_lease(self, name: str, lease: LeaseRecord, *, join: bool) -> Takeover:
        """Take a lease on the study (existing or not yet created) in one transaction.

        Stale leases are removed and their running trials re-queued, as are running trials
        that no lease owns. A live lease of another driver refuses the study (StudyBusyError)
        unless ``join``; nothing is changed then.
        """
        with self._write() as cur:
            now = time.time()
            live = [
                other
                for other in self._leases(cur, name)
                if other.owner != lease.owner and not other.stale(now, socket.gethostname())
            ]
            if live and not join:
                first = min(live, key=lambda other: other.started_at)
                raise StudyBusyError(
                    f"study {name!r} is being run by {first.where} since "
                    f"{_when(first.started_at)} (last heartbeat {now - first.heartbeat_at:.0f} s "
                    f"ago) in {self.url}; use --join to help it"
                )
            takeover = self._reap(cur, name, now)
            cur.execute(
                f"INSERT INTO leases (study, {_LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    lease.owner,
                    lease.host,
                    lease.pid,
                    lease.started_at,
                    lease.heartbeat_at,
                    lease.timeout_s,
                ),
            )
            return takeover

    def reap_stale_leases(self, name: str) -> Takeover:
        """Remove stale leases and re-queue the trials no live lease owns."""
        with self._write() as cur:
            return self._reap(cur, name, time.time())

    def _reap(self, cur: Any, name: str, now: float) -> Takeover:
        takeover = Takeover()
        host = socket.gethostname()
        stale = [lease for lease in self._leases(cur, name) if lease.stale(now, host)]
        for lease in stale:
            cur.execute("DELETE FROM leases WHERE study = ? AND owner = ?", (name, lease.owner))
        row = cur.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            takeover.stale = [(lease, []) for lease in stale]
            return takeover
        sid = int(row[0])
        for lease in stale:
            numbers = self._requeue_where(cur, sid, " AND owner = ?", (lease.owner,))
            takeover.stale.append((lease, numbers))
        takeover.orphans = self._requeue_where(
            cur,
            sid,
            " AND (owner IS NULL OR owner NOT IN (SELECT owner FROM leases WHERE study = ?))",
            (name,),
        )
        return takeover

    def heartbeat(self, name: str, owner: str) -> bool:
        """Renew the lease; False when it is gone (another driver took it over)."""
        with self._write() as cur:
            cur.execute(
                "UPDATE leases SET heartbeat_at = ? WHERE study = ? AND owner = ?",
                (time.time(), name, owner),
            )
            return bool(cur.rowcount == 1)

    def release_lease(self, name: str, owner: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM leases WHERE study = ? AND owner = ?", (name, owner))

    def leases(self, name: str) -> list[LeaseRecord]:
        """The drivers holding (or having held, if stale) a lease on the study, oldest first."""
        with self._read() as cur:
            return self._leases(cur, name)

    def _leases(self, cur: Any, name: str) -> list[LeaseRecord]:
        rows = cur.execute(
            f"SELECT {_LEASE_COLUMNS} FROM leases WHERE study = ? ORDER BY started_at", (name,)
        ).fetchall()
        with decoding(self.url, f"the leases of study {name!r}"):
            return [
                LeaseRecord(str(r[0]), str(r[1]), int(r[2]), float(r[3]), float(r[4]), float(r[5]))
                for r in rows
            ]

    def claim_evaluation(self, name: str, owner: str, looks: int) -> bool:
        """Whether ``owner`` is the one driver to score the test set, which has ``looks``
        evaluations so far: False when another look was recorded since, or another live
        driver claimed it (the claim of a driver whose lease is gone passes on)."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            recorded = cur.execute(
                "SELECT COUNT(*) FROM test_evaluations WHERE study_id = ?", (sid,)
            ).fetchone()[0]
            if int(recorded) != looks:
                return False
            current = cur.execute("SELECT evaluator FROM studies WHERE id = ?", (sid,)).fetchone()
            holders = {lease.owner for lease in self._leases(cur, name)}
            if current[0] is not None and current[0] != owner and current[0] in holders:
                return False
            cur.execute("UPDATE studies SET evaluator = ? WHERE id = ?", (owner, sid))
            return True

    def trials(self, name: str, states: Collection[TrialState] | None = None) -> list[TrialRecord]:
        """The study's trials ordered by number, optionally only those in ``states``."""
        with self._read() as cur:
            sid = self._study_id(cur, name)
            sql = f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id = ?"
            args: list[Any] = [sid]
            if states is not None:
                wanted = sorted({TrialState(s).value for s in states})
                if not wanted:
                    return []
                sql += f" AND state IN ({', '.join('?' * len(wanted))})"
                args.extend(wanted)
            with decoding(self.url, f"the trials of study {name!r}"):
                rows = cur.execute(sql + " ORDER BY number", args)
                records = [_trial_from_row(r) for r in rows]
                if records:
                    by_number = {t.number: t for t in records}
                    for number, step, v in cur.execute(
                        "SELECT number, step, value FROM intermediate WHERE study_id = ? "
                        "ORDER BY number, step",
                        (sid,),
                    ):
                        trial = by_number.get(number)
                        if trial is not None:
                            trial.intermediate[int(step)] = _dec_float_req(v)
        if states is None:
            _check_numbering(records, self.url, name)
        return records

    def get_trial(self, name: str, number: int) -> TrialRecord:
        """One trial; StorageError if the study or the trial does not exist."""
        with self._read() as cur:
            return self._fetch_trial(cur, self._study_id(cur, name), name, number)

    def trial_output(self, name: str, number: int) -> str | None:
        """What trial ``number`` wrote to fds 1 and 2 (its tail); None if nothing was kept."""
        with self._read() as cur:
            sid = self._study_id(cur, name)
            row = cur.execute(
                "SELECT output FROM trial_outputs WHERE study_id = ? AND number = ?",
                (sid, number),
            ).fetchone()
        return None if row is None else str(row[0])

    def trial_outputs(self, name: str, numbers: Collection[int]) -> dict[int, str]:
        """The kept outputs of the trials ``numbers`` (those that have one)."""
        wanted = sorted({int(n) for n in numbers})
        found: dict[int, str] = {}
        with self._read() as cur:
            sid = self._study_id(cur, name)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = cur.execute(
                    "SELECT number, output FROM trial_outputs WHERE study_id = ? "
                    f"AND number IN ({', '.join('?' * len(chunk))})",
                    (sid, *chunk),
                )
                found.update((int(number), str(output)) for number, output in rows)
        return found

    def count_trials(self, name: str) -> dict[TrialState, int]:
        """How many trials are in each state; every state is a key (0 if none)."""
        counts = dict.fromkeys(TrialState, 0)
        with self._read() as cur:
            sid = self._study_id(cur, name)
            with decoding(self.url, f"the trial states of study {name!r}"):
                for state, n in cur.execute(
                    "SELECT state, COUNT(*) FROM trials WHERE study_id = ? GROUP BY state", (sid,)
                ):
                    counts[TrialState(state)] = int(n)
        return counts

    # -- the baseline ---------------------------------------------------------------------------

    def add_baseline(self, name: str, params: dict[str, Any], *, as_trial: bool) -> None:
        """Record the defaults' baseline; ``as_trial`` also queues them as the next trial.

        One transaction, so a run killed here leaves both or neither.
        """
        params_json = _dumps(params)
        with self._write() as cur:
            sid = self._study_id(cur, name)
            if cur.execute("SELECT 1 FROM baselines WHERE study_id = ?", (sid,)).fetchone():
                return  # another driver of the study planned it first
            number = None
            if as_trial:
                number = int(
                    cur.execute(
                        "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?",
                        (sid,),
                    ).fetchone()[0]
                )
                cur.execute(
                    "INSERT INTO trials (study_id, number, state, params) VALUES (?, ?, ?, ?)",
                    (sid, number, TrialState.WAITING.value, params_json),
                )
            cur.execute(
                "INSERT INTO baselines (study_id, params, trial_number) VALUES (?, ?, ?)",
                (sid, params_json, number),
            )

    def set_baseline_score(
        self, name: str, *, value: float | None, fold_values: Sequence[float], error: str | None
    ) -> None:
        """The score of a baseline that is not a trial (its defaults lie outside the space)."""
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute(
                "UPDATE baselines SET scored = 1, value = ?, fold_values = ?, error = ? "
                "WHERE study_id = ?",
                (_enc_float(value), _enc_float_list(fold_values), error, sid),
            )

    def baseline(self, name: str) -> dict[str, Any] | None:
        """The study's baseline record (params, trial, scored, value, fold_values, error)."""
        with self._read() as cur:
            sid = self._study_id(cur, name)
            row = cur.execute(
                f"SELECT {_BASELINE_COLUMNS} FROM baselines WHERE study_id = ?", (sid,)
            ).fetchone()
        if row is None:
            return None
        with decoding(self.url, f"the baseline of study {name!r}"):
            return _baseline_from_row(row)

    # -- the locked test set --------------------------------------------------------------------

    def record_test_evaluation(self, name: str, evaluation: TestEvaluation) -> None:
        """Append a test-set evaluation; the log is what makes the test set 'locked'."""
        e = evaluation
        with self._write() as cur:
            sid = self._study_id(cur, name)
            cur.execute(
                "INSERT INTO test_evaluations (study_id, trial_number, value, cv_value, gap, "
                "flagged, split_fingerprint, evaluated_at, second_look, metrics) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    int(e.trial_number),
                    _enc_float(e.value),
                    _enc_float(e.cv_value),
                    _enc_float(e.gap),
                    int(bool(e.flagged)),
                    e.split_fingerprint,
                    float(e.evaluated_at),
                    int(bool(e.second_look)),
                    json.dumps({k: None if math.isnan(v) else v for k, v in e.metrics.items()}),
                ),
            )

    def test_evaluations(self, name: str) -> list[TestEvaluation]:
        """Every test-set evaluation of the study, in the order recorded."""
        with self._read() as cur:
            sid = self._study_id(cur, name)
            rows = cur.execute(
                f"SELECT {_EVALUATION_COLUMNS} FROM test_evaluations WHERE study_id = ? "
                "ORDER BY id",
                (sid,),
            ).fetchall()
        with decoding(self.url, f"the test evaluations of study {name!r}"):
            return [_evaluation_from_row(r) for r in rows]

    # -- the look ledger on a server ------------------------------------------------------------

    def looks(
        self, *, rows_fingerprint: str | None = None, split_fingerprint: str | None = None
    ) -> list[Look]:
        """The looks in this storage's ``looks`` table, first first, optionally only those
        at these rows or of this split."""
        sql, args = f"SELECT {_LOOK_COLUMNS} FROM looks", tuple[str, ...]()
        if rows_fingerprint is not None:
            sql, args = sql + " WHERE rows_fingerprint = ?", (rows_fingerprint,)
        elif split_fingerprint is not None:
            sql, args = sql + " WHERE split_fingerprint = ?", (split_fingerprint,)
        with self._read() as cur:
            rows = cur.execute(sql + " ORDER BY id", args).fetchall()
        with decoding(self.url, "the look ledger"):
            return [_look_from_row(row) for row in rows]

    def record_look(self, look: Look, *, allow_second_look: bool) -> Look:
        """Add ``look`` as the next look at its rows, or refuse (TestSetLockedError) when the
        rows were seen and a second look was not allowed; check and insert are one commit."""
        with self._write() as cur:
            rows = cur.execute(
                f"SELECT {_LOOK_COLUMNS} FROM looks WHERE rows_fingerprint = ? ORDER BY number",
                (look.rows_fingerprint,),
            ).fetchall()
            with decoding(self.url, "the look ledger"):
                earlier = [_look_from_row(row) for row in rows]
            if earlier and not allow_second_look:
                raise TestSetLockedError(
                    second_look_message(earlier, f"study {look.study!r}: score withheld")
                )
            number = max((e.number for e in earlier), default=0) + 1
            looked = dataclasses.replace(look, number=number, allowed=bool(earlier))
            cur.execute(
                f"INSERT INTO looks ({_LOOK_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                (
                    looked.rows_fingerprint,
                    looked.n_rows,
                    looked.number,
                    looked.study,
                    looked.spec_file,
                    looked.spec_digest,
                    looked.storage,
                    looked.split_fingerprint,
                    looked.trial,
                    looked.metric,
                    _enc_float(looked.value),
                    _enc_float(looked.cv_value),
                    int(looked.allowed),
                    looked.looked_at,
                    looked.host,
                    looked.user,
                ),
            )
        return looked

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"


def _look_from_row(row: Sequence[Any]) -> Look:
    values = list(row)
    return Look(
        rows_fingerprint=str(values[0]),
        n_rows=int(values[1]),
        number=int(values[2]),
        study=str(values[3]),
        spec_file=str(values[4]),
        spec_digest=str(values[5]),
        storage=str(values[6]),
        split_fingerprint=str(values[7]),
        trial=int(values[8]),
        metric=str(values[9]),
        value=_dec_float_req(values[10]),
        cv_value=_dec_float_req(values[11]),
        allowed=bool(values[12]),
        looked_at=float(values[13]),
        host=str(values[14]),
        user=str(values[15]),
    )


def _owned(owner: str | None) -> str:
    return "" if owner is None else " AND owner = ?"


def _owner_args(owner: str | None) -> tuple[str, ...]:
    return () if owner is None else (owner,)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _check_numbering(records: Sequence[TrialRecord], url: str, name: str) -> None:
    """Trials are numbered 0, 1, 2, ... with no gap: the driver's bookkeeping relies on it."""
    for expected, trial in enumerate(records):
        if trial.number != expected:
            what = f"study {name!r} has no trial {expected} but has trial {trial.number}"
            raise damaged(url, f"{what} (trial numbers must run 0, 1, 2, ... without a gap)")


_BASELINE_COLUMNS = "params, trial_number, scored, value, fold_values, error"
_EVALUATION_COLUMNS = (
    "trial_number, value, cv_value, gap, flagged, split_fingerprint, evaluated_at, "
    "second_look, metrics"
)


def _baseline_from_row(row: Sequence[Any]) -> dict[str, Any]:
    params = json.loads(row[0])
    if not isinstance(params, dict):
        raise TypeError(f"baseline params are {type(params).__name__}, not an object")
    return {
        "params": params,
        "trial": None if row[1] is None else int(row[1]),
        "scored": bool(row[2]),
        "value": _dec_float(row[3]),
        "fold_values": _dec_float_list(row[4]),
        "error": row[5],
    }


def _evaluation_from_row(r: Sequence[Any]) -> TestEvaluation:
    metrics = json.loads(r[8])
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics are {type(metrics).__name__}, not an object")
    return TestEvaluation(
        trial_number=int(r[0]),
        value=_dec_float_req(r[1]),
        cv_value=_dec_float_req(r[2]),
        gap=_dec_float_req(r[3]),
        flagged=bool(r[4]),
        split_fingerprint=str(r[5]),
        evaluated_at=float(r[6]),
        second_look=bool(r[7]),
        metrics={str(k): _dec_float_req(v) for k, v in metrics.items()},
    )


def _trial_from_row(row: Sequence[Any]) -> TrialRecord:
    """One stored trial; a row that does not decode raises ValueError or TypeError."""
    params = json.loads(row[2])
    if not isinstance(params, dict):
        raise TypeError(f"trial {row[0]}: params are {type(params).__name__}, not an object")
    return TrialRecord(
        number=int(row[0]),
        state=TrialState(row[1]),
        params=params,
        value=_dec_float(row[3]),
        fold_values=_dec_float_list(row[4]),
        fold_durations=_dec_float_list(row[5]),
        started_at=_dec_float(row[6]),
        finished_at=_dec_float(row[7]),
        duration_s=_dec_float(row[8]),
        error=row[9],
        attempt=int(row[10]),
        cache_hits=int(row[11]),
        cache_misses=int(row[12]),
        metrics={name: _dec_float_list(json.dumps(v)) for name, v in json.loads(row[13]).items()},
        owner=row[14],
    )


def _enc_metrics(metrics: Mapping[str, Sequence[float]]) -> str:
    """name -> fold values as JSON, NaN as null (like fold_values)."""
    return json.dumps({name: json.loads(_enc_float_list(v)) for name, v in metrics.items()})


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    import numpy as np

    return float(np.mean(finite))


def open_storage(
    url: str, base_dir: Path | None = None, *, busy_timeout_s: float = 10.0
) -> Storage:
    """Open (creating if needed) the storage a URL names; see the module doc for URL forms."""
    return Storage(url, base_dir, busy_timeout_s=busy_timeout_s)
