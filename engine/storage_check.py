"""`tunedag status --check`: SQLite's own integrity check, then tunedag's invariants.

The file is opened read-only, so checking never changes it. Every problem found is listed,
not only the first; none means the storage is sound.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

from tunedag.errors import StorageAccessError
from tunedag.storage import (
    _BASELINE_COLUMNS,
    _EVALUATION_COLUMNS,
    _TRIAL_COLUMNS,
    SCHEMA_VERSION,
    TrialState,
    _baseline_from_row,
    _evaluation_from_row,
    _trial_from_row,
    parse_url,
)
from tunedag.storage_errors import DECODING_ERRORS, classify, damaged
from tunedag.storage_postgres import is_postgres_url


def check_storage_file(url: str, base_dir: Path | None = None) -> None:
    """Print the check's result on stderr; StorageDamagedError (74) lists any problem."""
    problems, summary = check_storage(url, base_dir)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise damaged(url, f"fails its check ({len(problems)} problems):\n{listing}\n")
    print(f"storage {url}: ok ({summary})", file=sys.stderr)


def check_storage(url: str, base_dir: Path | None = None) -> tuple[list[str], str]:
    """(problems, summary); StorageError when the file cannot be opened at all."""
    if is_postgres_url(url):
        return [], "a PostgreSQL storage: its server keeps it whole (--check reads SQLite files)"
    path = parse_url(url, base_dir)
    if path is None:
        return [], "an in-memory storage has nothing to check"
    if not path.exists():
        return [], "no storage file yet: the study has not run"
    if not path.is_file():
        raise StorageAccessError(f"storage {url}: {path} is not a file (a folder?)")
    if path.stat().st_size == 0:
        return [f"{path} is an empty file (0 bytes): truncated, or never written"], ""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise classify(error, url, 0) from error
    try:
        return _check(conn)
    except sqlite3.Error as error:
        if classify(error, url, 0).exit_code == 74:
            return [f"SQLite cannot read the file: {error}"], ""
        raise classify(error, url, 0) from error
    finally:
        conn.close()


def _check(conn: sqlite3.Connection) -> tuple[list[str], str]:
    problems = [
        f"SQLite integrity check: {row[0]}"
        for row in conn.execute("PRAGMA integrity_check")
        if row[0] != "ok"
    ]
    problems += [
        f"table {row[0]} row {row[1]} refers to a missing row of {row[2]}"
        for row in conn.execute("PRAGMA foreign_key_check")
    ]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "studies", "trials"} <= tables:
        return [*problems, "not a tunedag storage: the meta, studies and trials tables"], ""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else None
    if version != str(SCHEMA_VERSION):
        problems.append(f"schema version {version!r}; this tunedag reads {SCHEMA_VERSION}")
        return problems, ""
    studies = conn.execute("SELECT id, name, fingerprint, n_folds FROM studies").fetchall()
    trials = 0
    for sid, name, fingerprint, n_folds in studies:
        problems += [f"study {name!r}: {p}" for p in _check_study(conn, sid, fingerprint, n_folds)]
        trials += conn.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?", (sid,)).fetchone()[
            0
        ]
    summary = (
        f"{len(studies)} studies, {trials} trials; SQLite integrity and tunedag invariants hold"
    )
    return problems, summary


def _check_study(
    conn: sqlite3.Connection, sid: int, fingerprint: str, n_folds: int | None
) -> list[str]:
    problems: list[str] = []
    try:
        if not isinstance(json.loads(fingerprint), dict):
            problems.append("its fingerprint is not a JSON object")
    except DECODING_ERRORS as error:
        problems.append(f"its fingerprint does not decode: {error}")
    folds = conn.execute(
        "SELECT fold, length(train), length(test) FROM folds WHERE study_id = ? ORDER BY fold",
        (sid,),
    ).fetchall()
    if n_folds is not None and [f[0] for f in folds] != list(range(n_folds)):
        problems.append(f"it records {n_folds} folds, but the folds table holds {len(folds)}")
    problems += [
        f"fold {fold} is damaged (index bytes not a multiple of 8)"
        for fold, train, test in folds
        if (train or 0) % 8 or (test or 0) % 8
    ]
    complete: set[int] = set()
    expected = 0
    for row in conn.execute(
        f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id = ? ORDER BY number", (sid,)
    ):
        if row[0] != expected:
            problems.append(f"trial numbers jump from {expected - 1} to {row[0]} (a gap)")
        expected = int(row[0]) + 1
        try:
            trial = _trial_from_row(row)
        except DECODING_ERRORS as error:
            problems.append(f"trial {row[0]} does not decode: {type(error).__name__}: {error}")
            continue
        if trial.state == TrialState.COMPLETE:
            complete.add(trial.number)
            if trial.value is None:
                problems.append(f"trial {trial.number} is complete but has no value")
        if n_folds is not None and len(trial.fold_values) > n_folds:
            problems.append(f"trial {trial.number} has more fold values than folds")
    for row in conn.execute(
        f"SELECT {_EVALUATION_COLUMNS} FROM test_evaluations WHERE study_id = ?", (sid,)
    ):
        try:
            evaluation = _evaluation_from_row(row)
        except DECODING_ERRORS as error:
            problems.append(f"a test evaluation does not decode: {type(error).__name__}: {error}")
            continue
        if evaluation.trial_number not in complete:
            problems.append(
                f"the test set was scored for trial {evaluation.trial_number}, which is not "
                "complete"
            )
    for row in conn.execute(
        f"SELECT {_BASELINE_COLUMNS} FROM baselines WHERE study_id = ?", (sid,)
    ):
        try:
            _baseline_from_row(row)
        except DECODING_ERRORS as error:
            problems.append(f"the baseline does not decode: {type(error).__name__}: {error}")
    return problems
