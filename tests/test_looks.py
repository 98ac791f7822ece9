"""The look ledger on its own: rows by content, and a file that survives concurrent writers
and a SIGKILL in the middle of a write."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunedag.data import Dataset
from tunedag.errors import StorageError, TestSetLockedError
from tunedag.looks import LEDGER_ENV, Look, LookLedger, ledger_path
from tunedag.rows import overlap, rows_fingerprint


def frame_dataset(frame: pd.DataFrame, target: str = "y") -> Dataset:
    return Dataset(
        X=frame.drop(columns=[target]).reset_index(drop=True),
        y=frame[target].to_numpy(),
        columns={},
        task="classification",
        name="rows",
    )


def some_rows(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.integers(0, 100, n),
            "b": rng.normal(size=n),
            "c": rng.choice(["red", "green", "blue"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def a_look(rows: str = "r" * 64, **changes: object) -> Look:
    fields: dict[str, object] = {
        "rows_fingerprint": rows,
        "n_rows": 40,
        "number": 0,
        "study": "s",
        "spec_file": "/x/spec.yaml",
        "spec_digest": "d",
        "storage": "/x/.tunedag/s.sqlite",
        "split_fingerprint": "split",
        "trial": 3,
        "metric": "roc_auc",
        "value": 0.9,
        "cv_value": 0.91,
        "allowed": False,
        "looked_at": time.time(),
    }
    fields.update(changes)
    return Look(**fields)  # type: ignore[arg-type]


# -- rows by content ------------------------------------------------------------------------------


def test_the_fingerprint_ignores_row_and_column_order() -> None:
    frame = some_rows()
    shuffled = frame.sample(frac=1.0, random_state=3)[["c", "y", "b", "a"]]
    assert rows_fingerprint(frame_dataset(frame)) == rows_fingerprint(frame_dataset(shuffled))


def test_the_fingerprint_reads_integers_and_floats_alike_but_sees_one_changed_value() -> None:
    frame = some_rows()
    as_floats = frame.astype({"a": "float64"})
    assert rows_fingerprint(frame_dataset(frame)) == rows_fingerprint(frame_dataset(as_floats))
    changed = frame.copy()
    changed.loc[7, "b"] += 1e-9
    assert rows_fingerprint(frame_dataset(frame)) != rows_fingerprint(frame_dataset(changed))
    relabelled = frame.copy()
    relabelled.loc[7, "y"] = 1 - relabelled.loc[7, "y"]
    assert rows_fingerprint(frame_dataset(frame)) != rows_fingerprint(frame_dataset(relabelled))


def test_overlap_counts_test_rows_that_repeat_a_development_feature_row() -> None:
    dev = some_rows(50, seed=1)
    test = some_rows(20, seed=2)
    test.iloc[[3, 11]] = dev.iloc[[40, 5]].to_numpy()
    test.loc[11, "y"] = 1 - test.loc[11, "y"]  # the same features with another label: still one
    assert overlap(frame_dataset(test), frame_dataset(dev)) == [(3, 40), (11, 5)]


# -- where the ledger lives ----------------------------------------------------------------------


def test_the_environment_wins_over_the_spec_and_the_default_is_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEDGER_ENV, str(tmp_path / "env.sqlite"))
    assert ledger_path("spec.sqlite", tmp_path) == tmp_path / "env.sqlite"
    monkeypatch.delenv(LEDGER_ENV)
    assert ledger_path("looks/spec.sqlite", tmp_path) == tmp_path / "looks" / "spec.sqlite"
    default = ledger_path(None, tmp_path)
    assert default.name == "looks.sqlite" and "tunedag" in default.parts


def test_reading_never_creates_the_ledger_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    with LookLedger(missing, readonly=True) as ledger:
        assert ledger.all_looks() == []
    assert not missing.exists()
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StorageError, match="not a tunedag look ledger") as refused:
        LookLedger(foreign)
    assert refused.value.exit_code == 74  # damaged or foreign storage, never written to


@pytest.mark.parametrize("readonly", [True, False], ids=["read", "write"])
def test_a_ledger_path_that_can_never_be_one_and_an_emptied_ledger_are_refused(
    tmp_path: Path, readonly: bool
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "empty.sqlite").write_bytes(b"")  # truncated: every look would be forgotten
    cases = {
        tmp_path: "is not a file",
        tmp_path / "a-file" / "looks.sqlite": "which is a file",
        tmp_path / "empty.sqlite": "empty file (0 bytes)",
    }
    for path, says in cases.items():
        with pytest.raises(StorageError, match=re.escape(says)) as refused:
            LookLedger(path, readonly=readonly, busy_timeout_s=0.1)
        assert refused.value.exit_code == 74
    assert (tmp_path / "empty.sqlite").read_bytes() == b""  # left as it was


def test_a_second_look_is_refused_unless_allowed_and_numbered(tmp_path: Path) -> None:
    with LookLedger(tmp_path / "l.sqlite") as ledger:
        first = ledger.record(a_look(), allow_second_look=False)
        with pytest.raises(TestSetLockedError, match="already scored once") as refused:
            ledger.record(a_look(study="other"), allow_second_look=False)
        assert "study 's'" in str(refused.value) and "roc_auc=0.9" in str(refused.value)
        second = ledger.record(a_look(study="other"), allow_second_look=True)
        elsewhere = ledger.record(a_look(rows="q" * 64), allow_second_look=False)
        assert (first.number, first.allowed) == (1, False)
        assert (second.number, second.allowed) == (2, True)
        assert elsewhere.number == 1
        assert [look.study for look in ledger.looks("r" * 64)] == ["s", "other"]


# -- concurrent writers and SIGKILL ---------------------------------------------------------------

RECORDER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_looks import a_look
from tunedag.errors import TestSetLockedError
from tunedag.looks import LookLedger

go, allow = sys.argv[1], sys.argv[2] == "allow"
ledger = LookLedger(Path({path!r}))
print("ready", flush=True)
while not os.path.exists(go):  # every writer starts its write at the same instant
    time.sleep(0.001)
try:
    look = ledger.record(a_look(study=f"writer-{{sys.argv[3]}}"), allow_second_look=allow)
    print(look.number)
except TestSetLockedError:
    print("refused")
"""


def record_at_once(path: Path, writers: int, allow: bool) -> list[str]:
    script = RECORDER.format(tests=str(Path(__file__).parent), path=str(path))
    go = path.with_suffix(f".go-{allow}")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(go), "allow" if allow else "no", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    go.touch()
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.slow
def test_writers_at_the_same_instant_get_one_first_look(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    outputs = record_at_once(path, 4, allow=False)
    assert sorted(outputs) == ["1"] + ["refused"] * 3
    allowed = record_at_once(path, 4, allow=True)
    assert sorted(allowed, key=int) == ["2", "3", "4", "5"]
    assert integrity(path) == "ok"
    with LookLedger(path, readonly=True) as ledger:
        assert [look.number for look in ledger.looks("r" * 64)] == [1, 2, 3, 4, 5]


KILLED_MID_WRITE = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_looks import a_look
from tunedag.looks import LookLedger, insert

ledger = LookLedger(Path({path!r}))
with ledger.write() as cur:
    insert(cur, a_look(number=2, study="killed"))
    print("inside", flush=True)
    time.sleep(60)  # SIGKILLed here, the row written but not committed
"""


def test_a_sigkill_inside_the_ledger_write_leaves_it_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with LookLedger(path) as ledger:
        ledger.record(a_look(), allow_second_look=False)
    script = KILLED_MID_WRITE.format(tests=str(Path(__file__).parent), path=str(path))
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "inside", child.stderr and child.stderr.read()
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert integrity(path) == "ok"
    with LookLedger(path, busy_timeout_s=2.0) as ledger:  # the lock died with the writer
        assert [look.study for look in ledger.looks("r" * 64)] == ["s"]
        with pytest.raises(TestSetLockedError):
            ledger.record(a_look(study="after"), allow_second_look=False)
        assert ledger.record(a_look(study="after"), allow_second_look=True).number == 2


WRITE_LOOP = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_looks import a_look
from tunedag.looks import LookLedger

ledger = LookLedger(Path({path!r}))
while True:
    look = ledger.record(a_look(), allow_second_look=True)
    print(look.number, flush=True)
"""


@pytest.mark.slow
def test_sigkills_at_random_moments_lose_no_committed_look(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    script = WRITE_LOOP.format(tests=str(Path(__file__).parent), path=str(path))
    rng = np.random.default_rng(5)
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        child.stdout.readline()  # it is writing
        time.sleep(float(rng.uniform(0.05, 0.3)))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        printed = [int(line) for line in out.split()]
        assert integrity(path) == "ok"
        with LookLedger(path, readonly=True) as ledger:
            numbers = [look.number for look in ledger.looks("r" * 64)]
        assert numbers == list(range(1, len(numbers) + 1))  # no gap, no half row
        if printed:
            assert numbers[-1] >= printed[-1]  # every look reported as written is there
