"""Storage round-trips, state rules, durability across reopen, schema guards and lock mapping."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunedag.errors import StorageBusyError, StorageError
from tunedag.storage import (
    FINISHED_STATES,
    MIGRATIONS,
    SCHEMA_VERSION,
    Storage,
    StudyRecord,
    TestEvaluation,
    TrialState,
    open_storage,
)

FP = {"space": "s1", "objective": "o1", "data": "d1", "split": "k1"}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'study.sqlite'}"  # absolute path: sqlite:////...


@pytest.fixture
def any_url(backend_url: str) -> str:
    """A new storage on each backend: an SQLite file, a PostgreSQL database."""
    return backend_url


@pytest.fixture
def store(any_url: str) -> Iterator[Storage]:
    with open_storage(any_url) as s:
        s.create_study("s", FP, '{"budget": 10}')
        yield s


# -- URLs and opening ------------------------------------------------------------------------


def test_relative_url_resolves_against_base_dir(tmp_path: Path) -> None:
    with open_storage("sqlite:///sub/dir/x.sqlite", base_dir=tmp_path) as s:
        assert s.path == tmp_path / "sub" / "dir" / "x.sqlite"
        s.create_study("a", FP, "{}")
    assert (tmp_path / "sub" / "dir" / "x.sqlite").is_file()


def test_absolute_url_and_parent_dirs_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.sqlite"
    url = "sqlite:///" + str(target)
    assert url.startswith("sqlite:////")
    with open_storage(url, base_dir=tmp_path / "elsewhere") as s:
        assert s.path == target
    assert target.is_file()


def test_memory_url() -> None:
    with open_storage("sqlite:///:memory:") as s:
        assert s.path is None
        s.create_study("m", FP, "{}")
        t = s.create_trial("m", {"x": 1})
        s.finish_trial("m", t.number, TrialState.COMPLETE, value=0.5)
        assert s.get_trial("m", 0).value == 0.5


@pytest.mark.parametrize(
    "bad", ["mysql://host/db", "sqlite://x.sqlite", "sqlite:///", "x.sqlite", ""]
)
def test_bad_url_refused(bad: str) -> None:
    with pytest.raises(StorageError, match="accepted forms") as info:
        open_storage(bad)
    assert repr(bad) in str(info.value)


def test_wal_and_pragmas(url: str) -> None:
    with open_storage(url) as s:
        conn = s._db._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10000


def test_schema_version_recorded(url: str) -> None:
    open_storage(url).close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert int(row[0]) == SCHEMA_VERSION == 7
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


def test_newer_schema_refused(url: str) -> None:
    open_storage(url).close()
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    conn.close()
    newer = rf"newer tunedag \(schema {SCHEMA_VERSION + 1}\); upgrade tunedag"
    with pytest.raises(StorageError, match=newer):
        open_storage(url)


def test_garbage_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    data = b"this is certainly not an sqlite database\n" * 100
    path.write_bytes(data)
    with pytest.raises(StorageError, match="not a tunedag storage"):
        open_storage(f"sqlite:///{path}")
    assert path.read_bytes() == data  # left untouched


def test_foreign_sqlite_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(StorageError, match="not a tunedag storage"):
        open_storage(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]
    conn.close()


def test_directory_as_db_is_storage_error(tmp_path: Path) -> None:
    (tmp_path / "d.sqlite").mkdir()
    with pytest.raises(StorageError, match=r"d\.sqlite"):
        open_storage(f"sqlite:///{tmp_path / 'd.sqlite'}")


def test_locked_database_raises_busy(url: str) -> None:
    open_storage(url).close()
    with open_storage(url) as s:
        s.create_study("s", FP, "{}")
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with open_storage(url, busy_timeout_s=0.05) as s:
            t0 = time.monotonic()
            with pytest.raises(StorageBusyError) as info:
                s.create_trial("s", {"x": 1})
            assert time.monotonic() - t0 < 5
            assert info.value.exit_code == 75
            assert url in str(info.value)
            # reads still work under WAL while another process writes
            assert s.count_trials("s")[TrialState.RUNNING] == 0
    finally:
        other.rollback()
        other.close()
    with open_storage(url) as s:  # and the lock going away makes it usable again
        assert s.create_trial("s", {"x": 1}).number == 0


def _open_when_released(url: str, go: Any, results: Any) -> None:
    go.wait()
    try:
        open_storage(url).close()
        results.put("ok")
    except StorageError as exc:
        results.put(str(exc))


def test_drivers_opening_a_new_storage_file_together_all_get_it(tmp_path: Path) -> None:
    """The first open switches the file to WAL, which SQLite refuses at once (no busy
    handler) to a second connection in the middle of its own open: each waits its turn."""
    context = multiprocessing.get_context("fork")
    failures = []
    for attempt in range(25):
        url = f"sqlite:///{tmp_path / str(attempt) / 'study.sqlite'}"
        go, results = context.Event(), context.Queue()
        openers = [
            context.Process(target=_open_when_released, args=(url, go, results)) for _ in range(4)
        ]
        for process in openers:
            process.start()
        go.set()
        outcomes = [results.get(timeout=60) for _ in openers]
        for process in openers:
            process.join(timeout=60)
        failures += [outcome for outcome in outcomes if outcome != "ok"]
    assert failures == []


def test_other_sqlite_errors_are_storage_error(url: str) -> None:
    s = open_storage(url)
    s.close()
    with pytest.raises(StorageError) as info:
        s.get_study("s")
    assert not isinstance(info.value, StorageBusyError)
    assert url in str(info.value)


def test_reopen_existing_db(url: str) -> None:
    with open_storage(url) as s:
        s.create_study("s", FP, "{}")
    with open_storage(url) as s:
        assert s.get_study("s") is not None


# -- studies -----------------------------------------------------------------------------------


def test_study_round_trip(store: Storage) -> None:
    rec = store.get_study("s")
    assert isinstance(rec, StudyRecord)
    assert rec.name == "s" and rec.fingerprint == FP and rec.spec_json == '{"budget": 10}'
    assert rec.finished_reason is None
    assert abs(rec.created_at - time.time()) < 60
    assert store.get_study("nope") is None


def test_create_existing_study_refused(store: Storage) -> None:
    with pytest.raises(StorageError, match="already exists"):
        store.create_study("s", FP, "{}")


def test_unknown_study_is_storage_error(store: Storage) -> None:
    with pytest.raises(StorageError, match="no study named 'zz'"):
        store.create_trial("zz", {})
    with pytest.raises(StorageError, match="no study"):
        store.trials("zz")


def test_update_spec_and_set_finished(store: Storage) -> None:
    store.update_spec("s", '{"budget": 20}')
    store.set_finished("s", "budget exhausted")
    rec = store.get_study("s")
    assert rec is not None
    assert rec.spec_json == '{"budget": 20}' and rec.finished_reason == "budget exhausted"
    store.set_finished("s", None)
    rec = store.get_study("s")
    assert rec is not None and rec.finished_reason is None


def test_archive_keeps_rows_under_new_name(store: Storage, any_url: str) -> None:
    t = store.create_trial("s", {"x": 1})
    store.finish_trial("s", t.number, TrialState.COMPLETE, value=1.0)
    store.save_folds("s", [(np.array([0, 1]), np.array([2]))])
    store.record_test_evaluation("s", TestEvaluation(0, 1.0, 1.0, 0.0, False, "k", 1.0))
    assert store.archive_study("s") == "s~1"
    assert store.get_study("s") is None
    assert [t.value for t in store.trials("s~1")] == [1.0]
    folds = store.load_folds("s~1")
    assert folds is not None and folds[0][0].tolist() == [0, 1]
    assert len(store.test_evaluations("s~1")) == 1
    # a fresh study under the old name starts from zero
    store.create_study("s", FP, "{}")
    assert store.create_trial("s", {}).number == 0
    assert store.load_folds("s") is None
    assert store.archive_study("s") == "s~2"
    with open_storage(any_url) as again:
        assert again.get_study("s~1") is not None and again.get_study("s~2") is not None
        assert len(again.trials("s~2")) == 1


# -- folds -------------------------------------------------------------------------------------


def test_folds_round_trip_exactly(store: Storage) -> None:
    rng = np.random.default_rng(0)
    folds: list[tuple[np.ndarray, np.ndarray]] = [
        (rng.permutation(10_000)[:7000].astype(np.int32), np.arange(3000, dtype=np.int64)),
        (np.array([2**40, -1, 0], dtype=np.int64), np.array([], dtype=np.int64)),
        (np.array([5, 3, 1]), np.array([4, 2], dtype=np.uint16)),
    ]
    assert store.load_folds("s") is None
    store.save_folds("s", folds)
    loaded = store.load_folds("s")
    assert loaded is not None and len(loaded) == len(folds)
    for (tr, te), (ltr, lte) in zip(folds, loaded, strict=True):
        assert ltr.dtype == np.int64 and lte.dtype == np.int64
        np.testing.assert_array_equal(ltr, tr)
        np.testing.assert_array_equal(lte, te)
        ltr[0:1] = 0  # writable copies, not views of a bytes buffer
    store.save_folds("s", folds[:1])  # saving again replaces
    loaded = store.load_folds("s")
    assert loaded is not None and len(loaded) == 1


def test_empty_fold_list_is_not_none(store: Storage) -> None:
    store.save_folds("s", [])
    assert store.load_folds("s") == []


def test_non_integer_folds_refused(store: Storage) -> None:
    with pytest.raises(ValueError, match="integer"):
        store.save_folds("s", [(np.array([0.5, 1.0]), np.array([2]))])


# -- trials ------------------------------------------------------------------------------------


def test_numbers_unique_and_sequential(store: Storage) -> None:
    nums = [store.create_trial("s", {"i": i}).number for i in range(20)]
    assert nums == list(range(20))
    store.create_study("other", FP, "{}")
    assert store.create_trial("other", {}).number == 0
    assert [t.params["i"] for t in store.trials("s")] == list(range(20))


def test_numbers_unique_across_connections(any_url: str) -> None:
    a = open_storage(any_url)
    b = open_storage(any_url)
    a.create_study("s", FP, "{}")
    nums = []
    for _ in range(10):
        nums.append(a.create_trial("s", {}).number)
        nums.append(b.create_trial("s", {}).number)
    assert nums == list(range(20))
    a.close()
    b.close()


def test_create_trial_states(store: Storage) -> None:
    before = time.time()
    running = store.create_trial("s", {"x": np.float64(0.5), "n": np.int64(3), "b": np.bool_(1)})
    assert running.state is TrialState.RUNNING
    assert running.started_at is not None and running.started_at >= before - 1
    assert running.params == {"x": 0.5, "n": 3, "b": True}
    assert type(running.params["n"]) is int
    waiting = store.create_trial("s", {"x": 1}, TrialState.WAITING)
    assert waiting.state is TrialState.WAITING and waiting.started_at is None
    with pytest.raises(ValueError):
        store.create_trial("s", {}, TrialState.COMPLETE)
    with pytest.raises(TypeError, match="not JSON"):
        store.create_trial("s", {"f": object()})


def test_start_trial(store: Storage) -> None:
    t = store.create_trial("s", {"x": 1}, TrialState.WAITING)
    started = store.start_trial("s", t.number)
    assert started.state is TrialState.RUNNING and started.started_at is not None
    with pytest.raises(StorageError, match="is running, not waiting"):
        store.start_trial("s", t.number)
    with pytest.raises(StorageError, match="no trial 99"):
        store.start_trial("s", 99)


def test_full_trial_round_trip(store: Storage) -> None:
    t = store.create_trial("s", {"lr": 0.1, "depth": 3, "kind": "gbm", "nested": {"a": [1, 2]}})
    store.report("s", t.number, 0, 0.9)
    store.report("s", t.number, 1, 0.8)
    store.report("s", t.number, 1, 0.7)  # overwrite
    assert store.get_trial("s", t.number).intermediate == {0: 0.9, 1: 0.7}
    done = store.finish_trial(
        "s",
        t.number,
        TrialState.COMPLETE,
        value=0.75,
        fold_values=[0.7, 0.8],
        fold_durations=[0.01, 0.02],
        duration_s=0.5,
    )
    got = store.get_trial("s", t.number)
    assert got == done
    assert got.state is TrialState.COMPLETE and got.value == 0.75
    assert got.fold_values == [0.7, 0.8] and got.fold_durations == [0.01, 0.02]
    assert got.intermediate == {0: 0.9, 1: 0.7}  # kept: intermediate=None
    assert got.duration_s == 0.5 and got.error is None and got.attempt == 1
    assert got.finished_at is not None and got.started_at is not None
    assert got.finished_at >= got.started_at
    assert got.params == {"lr": 0.1, "depth": 3, "kind": "gbm", "nested": {"a": [1, 2]}}
    assert store.trials("s") == [got]


def test_finish_replaces_intermediate_and_defaults_duration(store: Storage) -> None:
    t = store.create_trial("s", {})
    store.report("s", t.number, 0, 1.0)
    done = store.finish_trial("s", t.number, TrialState.PRUNED, intermediate={3: 0.5, 7: 0.25})
    assert done.intermediate == {3: 0.5, 7: 0.25}
    assert done.value is None
    assert done.duration_s is not None and done.started_at is not None
    assert done.finished_at is not None
    assert done.duration_s == pytest.approx(done.finished_at - done.started_at)


def test_failed_trial_keeps_error(store: Storage) -> None:
    t = store.create_trial("s", {})
    done = store.finish_trial("s", t.number, TrialState.FAILED, error="ValueError: boom")
    assert store.get_trial("s", done.number).error == "ValueError: boom"


def test_finish_only_from_running(store: Storage) -> None:
    t = store.create_trial("s", {}, TrialState.WAITING)
    with pytest.raises(StorageError, match="is waiting, not running"):
        store.finish_trial("s", t.number, TrialState.COMPLETE, value=1.0)
    store.start_trial("s", t.number)
    store.finish_trial("s", t.number, TrialState.COMPLETE, value=1.0)
    with pytest.raises(StorageError, match="is complete, not running"):
        store.finish_trial("s", t.number, TrialState.FAILED)
    with pytest.raises(ValueError):
        store.finish_trial("s", t.number, TrialState.RUNNING)
    with pytest.raises(StorageError, match="not running"):
        store.report("s", t.number, 0, 1.0)
    assert store.get_trial("s", t.number).value == 1.0


def test_nan_and_inf_round_trip(store: Storage) -> None:
    t = store.create_trial("s", {"x": 1})
    store.report("s", t.number, 0, math.nan)
    store.report("s", t.number, 1, math.inf)
    store.finish_trial(
        "s",
        t.number,
        TrialState.COMPLETE,
        value=math.nan,
        fold_values=[1.0, math.nan, math.inf, -math.inf],
    )
    got = store.get_trial("s", t.number)
    assert got.value is not None and math.isnan(got.value)
    assert got.fold_values[0] == 1.0 and math.isnan(got.fold_values[1])
    assert got.fold_values[2:] == [math.inf, -math.inf]
    assert math.isnan(got.intermediate[0]) and got.intermediate[1] == math.inf
    t2 = store.create_trial("s", {})
    store.finish_trial("s", t2.number, TrialState.COMPLETE, value=-math.inf)
    assert store.get_trial("s", t2.number).value == -math.inf


def test_requeue_increments_attempt_and_keeps_params(store: Storage) -> None:
    t = store.create_trial("s", {"x": 42})
    store.report("s", t.number, 0, 1.0)
    store.requeue("s", t.number)
    got = store.get_trial("s", t.number)
    assert got.state is TrialState.WAITING and got.attempt == 2
    assert got.params == {"x": 42} and got.number == t.number
    assert got.started_at is None and got.intermediate == {}
    with pytest.raises(StorageError, match="not running"):
        store.requeue("s", t.number)
    store.start_trial("s", t.number)
    store.requeue("s", t.number)
    assert store.get_trial("s", t.number).attempt == 3


def test_requeue_running(store: Storage) -> None:
    a = store.create_trial("s", {"i": 0})
    b = store.create_trial("s", {"i": 1}, TrialState.WAITING)
    c = store.create_trial("s", {"i": 2})
    d = store.create_trial("s", {"i": 3})
    store.finish_trial("s", d.number, TrialState.COMPLETE, value=1.0)
    assert store.requeue_running("s") == [a.number, c.number]
    states = {t.number: (t.state, t.attempt) for t in store.trials("s")}
    assert states == {
        a.number: (TrialState.WAITING, 2),
        b.number: (TrialState.WAITING, 1),
        c.number: (TrialState.WAITING, 2),
        d.number: (TrialState.COMPLETE, 1),
    }
    assert store.requeue_running("s") == []


def test_trials_filter_and_counts(store: Storage) -> None:
    for i, state in enumerate(
        [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED, TrialState.COMPLETE]
    ):
        t = store.create_trial("s", {"i": i})
        store.report("s", t.number, 0, float(i))
        store.finish_trial("s", t.number, state, value=float(i))
    store.create_trial("s", {"i": 4})
    store.create_trial("s", {"i": 5}, TrialState.WAITING)
    assert [t.number for t in store.trials("s", [TrialState.COMPLETE])] == [0, 3]
    assert [t.number for t in store.trials("s", FINISHED_STATES)] == [0, 1, 2, 3]
    assert [t.intermediate for t in store.trials("s", {TrialState.COMPLETE})] == [
        {0: 0.0},
        {0: 3.0},
    ]
    assert store.trials("s", []) == []
    counts = store.count_trials("s")
    assert counts == {
        TrialState.WAITING: 1,
        TrialState.RUNNING: 1,
        TrialState.COMPLETE: 2,
        TrialState.PRUNED: 1,
        TrialState.FAILED: 1,
    }
    store.create_study("empty", FP, "{}")
    assert store.count_trials("empty") == dict.fromkeys(TrialState, 0)
    assert store.trials("empty") == []


def test_get_trial_missing(store: Storage) -> None:
    with pytest.raises(StorageError, match="no trial 5"):
        store.get_trial("s", 5)


def test_finished_state_and_value_committed_together(any_url: str) -> None:
    with open_storage(any_url) as s:
        s.create_study("s", FP, "{}")
        t = s.create_trial("s", {"x": 1})
        s.report("s", t.number, 2, 0.3)
        s.finish_trial("s", t.number, TrialState.COMPLETE, value=0.25, fold_values=[0.2, 0.3])
        # visible to a second connection before this one closes
        with open_storage(any_url) as other:
            seen = other.get_trial("s", t.number)
            assert seen.state is TrialState.COMPLETE and seen.value == 0.25
    with open_storage(any_url) as s:
        got = s.get_trial("s", t.number)
        assert (got.state, got.value, got.fold_values) == (TrialState.COMPLETE, 0.25, [0.2, 0.3])
        assert got.intermediate == {2: 0.3}


def test_failed_write_rolls_back(store: Storage) -> None:
    t = store.create_trial("s", {})
    with pytest.raises(ValueError):
        store.finish_trial("s", t.number, TrialState.COMPLETE, value="x")  # type: ignore[arg-type]
    got = store.get_trial("s", t.number)
    assert got.state is TrialState.RUNNING and got.value is None
    assert store.create_trial("s", {}).number == t.number + 1  # no transaction left open


# -- test-set evaluations ----------------------------------------------------------------------


def test_test_evaluations_in_order(store: Storage) -> None:
    first = TestEvaluation(3, 0.81, 0.84, -0.03, False, "split-abc", 1000.0)
    second = TestEvaluation(5, 0.70, 0.9, -0.2, True, "split-abc", 2000.0, second_look=True)
    nan_eval = TestEvaluation(6, math.nan, 0.5, math.nan, False, "split-abc", 3000.0)
    assert store.test_evaluations("s") == []
    for e in (first, second, nan_eval):
        store.record_test_evaluation("s", e)
    got = store.test_evaluations("s")
    assert got[:2] == [first, second]
    assert math.isnan(got[2].value) and math.isnan(got[2].gap) and got[2].cv_value == 0.5


# -- throughput --------------------------------------------------------------------------------


def test_throughput_sanity(any_url: str) -> None:
    with open_storage(any_url) as s:
        s.create_study("s", FP, "{}")
        for i in range(1000):
            t = s.create_trial("s", {"x": i})
            s.finish_trial("s", t.number, TrialState.COMPLETE, value=float(i), fold_values=[i])
        counts = s.count_trials("s")
    assert counts[TrialState.COMPLETE] == 1000


def test_a_version_1_file_is_migrated_with_its_trials(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        for sql in MIGRATIONS[1]:
            conn.execute(sql)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO studies (id, name, fingerprint, spec_json, created_at) "
            "VALUES (1, 'old', '{}', '{}', 0)"
        )
        conn.execute(
            "INSERT INTO trials (study_id, number, state, params, value, fold_values) "
            "VALUES (1, 0, 'complete', '{\"a\": 1}', 0.5, '[0.5]')"
        )
    conn.close()
    with open_storage(f"sqlite:///{path}") as store:
        (trial,) = store.trials("old")
    assert (trial.value, trial.params) == (0.5, {"a": 1})
    assert (trial.cache_hits, trial.cache_misses) == (0, 0)
