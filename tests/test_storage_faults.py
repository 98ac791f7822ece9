"""Storage trouble gets its own exit code and a message saying how to recover, never a
traceback, and tunedag never writes to a storage file it found damaged: nothing stored is lost.

Damaged (bad rows, a gap, a 0-byte or foreign file): 74. Read-only: 74 with a clear
message. Full or locked: 75 (retry). `status --check` lists every problem (74) or says ok (0).
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import tunedag
from tests.helpers import base_spec, cli, db_file, write_spec
from tunedag.errors import StorageAccessError, StorageDamagedError, StorageFullError
from tunedag.storage import open_storage
from tunedag.storage_errors import classify

DAMAGED = 74


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    """A finished study (4 trials, test set scored) and its storage file's bytes."""
    root = tmp_path_factory.mktemp("finished")
    spec = base_spec(root, name="faults")
    tunedag.run(tunedag.load_spec(write_spec(root, spec)))
    return spec, db_file(spec).read_bytes()


@pytest.fixture
def study(
    finished: tuple[dict[str, Any], bytes], tmp_path: Path
) -> tuple[Path, Path, Callable[[str], None]]:
    """(spec path, storage file, corrupt(sql)): a copy of the finished study to damage."""
    spec, data = finished
    spec = {**spec, "storage": f"sqlite:///{tmp_path / 'study.sqlite'}"}
    db = tmp_path / "study.sqlite"
    db.write_bytes(data)

    def corrupt(sql: str) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(sql)
        conn.close()

    return write_spec(tmp_path, spec), db, corrupt


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == DAMAGED, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert "tunedag has not changed it" in result.stderr or "will not take it" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path) -> list[Any]:
    """Every stored trial, intermediate value and test evaluation, as SQLite holds them."""
    with sqlite3.connect(path) as conn:
        found = [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("trials", "intermediate", "test_evaluations", "folds")
        ]
    conn.close()
    return found


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("UPDATE trials SET params = '{not json' WHERE number = 2", ("trial", "JSONDecodeError")),
        ("UPDATE trials SET state = 'exploded' WHERE number = 1", ("'exploded' is not a valid",)),
        ("UPDATE trials SET number = 7 WHERE number = 3", ("has no trial 3 but has trial 7",)),
        ("UPDATE trials SET fold_values = '12' WHERE number = 0", ("TypeError",)),
        ("UPDATE studies SET fingerprint = 'x'", ("the record of study 'faults'",)),
        ("UPDATE test_evaluations SET metrics = '[1]'", ("the test evaluations of study",)),
        ("UPDATE baselines SET params = 'nope'", ("the baseline of study 'faults'",)),
    ],
    ids=[
        "bad-json",
        "unknown-state",
        "gap",
        "bad-folds-json",
        "bad-fingerprint",
        "bad-metrics",
        "bad-baseline",
    ],
)
def test_damaged_rows_are_exit_74_in_status_report_and_run_and_nothing_changes(
    sql: str, words: tuple[str, ...], study: tuple[Path, Path, Callable[[str], None]]
) -> None:
    spec, db, corrupt = study
    corrupt(sql)
    before = rows(db)
    folder = spec.parent
    refused(cli(["status", spec], folder), *words)
    refused(cli(["report", spec, "--out", folder / "report"], folder), *words)
    refused(cli(["run", spec], folder), *words)
    assert rows(db) == before  # nothing lost, nothing rewritten
    check = cli(["status", spec, "--check"], folder)
    assert check.exit_code == DAMAGED and "fails its check" in check.stderr


def test_a_zero_byte_storage_is_not_taken_for_a_new_study(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, name="truncated")
    path = write_spec(tmp_path, spec)
    db_file(spec).write_bytes(b"")
    for command in (["run", path], ["status", path]):
        result = cli(command, tmp_path)
        assert result.exit_code == DAMAGED and "empty file (0 bytes)" in result.stderr
        assert "the test set would be scored again" in result.stderr
    assert db_file(spec).stat().st_size == 0  # still empty: no study was created in it


def test_a_foreign_sqlite_file_is_exit_74(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, name="foreign")
    path = write_spec(tmp_path, spec)
    with sqlite3.connect(db_file(spec)) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, blob BLOB)")
    conn.close()
    before = digest(db_file(spec))
    refused(cli(["run", path], tmp_path), "not a tunedag storage (SQLite, but no meta table)")
    assert digest(db_file(spec)) == before


def test_a_corrupted_page_is_found_by_status_check(
    study: tuple[Path, Path, Callable[[str], None]],
) -> None:
    spec, db, _ = study
    healthy = cli(["status", spec, "--check"], spec.parent)
    assert healthy.exit_code == 0 and "ok (1 studies, 4 trials" in healthy.stderr
    with sqlite3.connect(db) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()
    conn.close()
    data = bytearray(db.read_bytes())
    start = (root[0] - 1) * size  # the trials table's b-tree page: its header bytes
    data[start : start + 12] = b"\xff" * 12
    db.write_bytes(bytes(data))
    result = cli(["status", spec, "--check"], spec.parent)
    assert result.exit_code == DAMAGED, result.stderr
    assert "Traceback" not in result.stderr and "fails its check" in result.stderr


def test_a_full_disk_is_exit_75_and_keeps_what_was_stored(tmp_path: Path) -> None:
    """SQLite's own SQLITE_FULL, from a page limit on the connection."""
    store = open_storage(f"sqlite:///{tmp_path / 'full.sqlite'}")
    store.create_study("full", {"space": "x"}, "{}")
    (pages,) = store._db._conn.execute("PRAGMA page_count").fetchone()
    store._db._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # room for a few trials only
    made = 0
    with pytest.raises(StorageFullError) as caught:
        for _ in range(10_000):
            store.create_trial("full", {"x": "y" * 2000})
            made += 1
    assert caught.value.exit_code == 75 and "free disk space and run again" in str(caught.value)
    store.close()
    with open_storage(f"sqlite:///{tmp_path / 'full.sqlite'}") as again:
        assert len(again.trials("full")) == made > 0


def test_a_read_only_storage_says_so(tmp_path: Path) -> None:
    """A real SQLITE_READONLY (root ignores file modes, so the connection is read-only)."""
    path = tmp_path / "ro.sqlite"
    open_storage(f"sqlite:///{path}").close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    error = classify(raised.value, "sqlite:///ro.sqlite", 10)
    assert isinstance(error, StorageAccessError) and error.exit_code == 74
    assert "is read-only" in str(error) and "make the file and its folder writable" in str(error)


def test_a_garbage_file_is_damaged_not_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"not sqlite\n" * 1000)
    with pytest.raises(StorageDamagedError) as caught:
        open_storage(f"sqlite:///{path}")
    assert caught.value.exit_code == 74 and "sqlite3 FILE .recover" in str(caught.value)


WAL_DELETED_MID_RUN = """
import os, sys
from tunedag.storage import open_storage

storage = open_storage(sys.argv[1])
storage.create_study("wal", {"spec": "x"}, "{}")
for i in range(3):
    storage.create_trial("wal", {"i": i})
os.remove(sys.argv[2])  # a cleanup job deletes the log while the study runs
for i in range(3, 6):
    storage.create_trial("wal", {"i": i})
os._exit(0)  # dies without closing: no checkpoint on the way out
"""


def test_a_log_deleted_mid_run_loses_nothing_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    wal = tmp_path / "study.sqlite-wal"
    run = subprocess.run(
        [sys.executable, "-c", WAL_DELETED_MID_RUN, f"sqlite:///{path}", str(wal)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"write-ahead log {wal} was deleted" in run.stderr
    assert "nothing is lost" in run.stderr
    assert "Traceback" not in run.stderr
    with open_storage(f"sqlite:///{path}") as storage:
        assert [t.params["i"] for t in storage.trials("wal")] == list(range(6))
