"""The lease on a study: one live driver at a time unless others join, stale leases taken over.

Storage-level rules first (on real SQLite files), then real `tunedag run` processes: two
overlapping runs, a driver killed with SIGKILL, and one paused with SIGSTOP past its lease
timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from event_schema import check_event
from helpers import (
    PLUGIN_MODULE,
    base_spec,
    install_plugins,
    kill_group,
    open_store,
    popen,
    read_events,
    run_process,
    storage_url,
    stored_trials,
    wait_until,
    write_spec,
)

from tunedag.errors import LeaseLostError, StudyBusyError
from tunedag.lease import Lease
from tunedag.stopsignals import STOP_SIGNALS, driver_thread
from tunedag.storage import LeaseRecord, Storage, Takeover, TrialRecord, TrialState, open_storage

HOST = socket.gethostname()


def lease(owner: str, *, pid: int | None = None, age: float = 0.0, timeout: float = 60.0) -> Any:
    now = time.time()
    return LeaseRecord(owner, HOST, pid or os.getpid(), now - age, now - age, timeout)


@pytest.fixture
def store(backend_url: str) -> Iterator[Storage]:
    with open_storage(backend_url) as storage:
        storage.create_study("s", {"space": "x"}, "{}")
        yield storage


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- storage rules -------------------------------------------------------------------------------


def test_a_live_lease_refuses_a_second_driver_and_changes_nothing(store: Storage) -> None:
    store.acquire_lease("s", lease("a"), join=False)
    running = store.add_trial("s", {"x": 1}, owner="a")
    assert running is not None
    busy = rf"is being run by {HOST}:{os.getpid()} since .*--join"
    with pytest.raises(StudyBusyError, match=busy):
        store.acquire_lease("s", lease("b"), join=False)
    assert [x.owner for x in store.leases("s")] == ["a"]
    assert store.get_trial("s", 0).state == TrialState.RUNNING
    assert StudyBusyError.exit_code == 75


def test_join_shares_the_study_and_leaves_the_others_trials_alone(store: Storage) -> None:
    store.acquire_lease("s", lease("a"), join=False)
    store.add_trial("s", {"x": 1}, owner="a")
    takeover = store.acquire_lease("s", lease("b"), join=True)
    assert takeover.stale == [] and takeover.orphans == []
    assert store.get_trial("s", 0).state == TrialState.RUNNING
    assert store.requeue_running("s", owner="b") == []
    assert {x.owner for x in store.leases("s")} == {"a", "b"}


def test_a_stale_lease_is_taken_over_and_its_trials_requeued(store: Storage) -> None:
    store.acquire_lease("s", lease("old", age=10, timeout=2), join=False)
    store.add_trial("s", {"x": 1}, owner="old")
    store.add_trial("s", {"x": 2}, owner="old")
    store.finish_trial("s", 1, TrialState.COMPLETE, value=0.5, owner="old")
    takeover = store.acquire_lease("s", lease("new"), join=False)
    [(gone, requeued)] = takeover.stale
    assert gone.owner == "old" and requeued == [0]
    trial = store.get_trial("s", 0)
    assert trial.state == TrialState.WAITING and trial.attempt == 2
    assert store.get_trial("s", 1).value == 0.5  # a finished result is never touched
    assert [x.owner for x in store.leases("s")] == ["new"]


def test_a_lease_of_a_process_gone_from_this_host_is_stale_at_once(store: Storage) -> None:
    store.acquire_lease("s", lease("dead", pid=dead_pid()), join=False)
    store.add_trial("s", {"x": 1}, owner="dead")
    takeover = store.acquire_lease("s", lease("next"), join=False)
    assert [(x.owner, numbers) for x, numbers in takeover.stale] == [("dead", [0])]


def test_running_trials_no_lease_owns_are_requeued_as_orphans(store: Storage) -> None:
    store.create_trial("s", {"x": 1})  # as a run from before leases left it
    takeover = store.acquire_lease("s", lease("a"), join=False)
    assert takeover.orphans == [0]
    assert store.get_trial("s", 0).state == TrialState.WAITING


def test_a_driver_whose_lease_was_taken_over_writes_nothing(store: Storage) -> None:
    store.acquire_lease("s", lease("paused", age=10, timeout=2), join=False)
    store.add_trial("s", {"x": 1}, owner="paused")
    store.acquire_lease("s", lease("taker"), join=False)
    assert store.claim_trial("s", 0, "taker") is not None
    assert not store.heartbeat("s", "paused")
    with pytest.raises(LeaseLostError, match="re-queued by another driver"):
        store.finish_trial("s", 0, TrialState.COMPLETE, value=0.1, owner="paused")
    with pytest.raises(LeaseLostError):
        store.add_trial("s", {"x": 2}, owner="paused")
    assert store.requeue_running("s", owner="paused") == []
    store.finish_trial("s", 0, TrialState.COMPLETE, value=0.9, owner="taker")
    assert store.get_trial("s", 0).value == 0.9 and store.get_trial("s", 0).owner == "taker"


def test_the_budget_and_the_grid_hold_across_drivers(store: Storage) -> None:
    for owner in ("a", "b"):
        store.acquire_lease("s", lease(owner), join=True)
    assert store.add_trial("s", {"x": 1}, owner="a", budget=2, distinct=True) is not None
    assert store.add_trial("s", {"x": 1}, owner="b", budget=2, distinct=True) is None
    assert store.add_trial("s", {"x": 2}, owner="b", budget=2, distinct=True) is not None
    assert store.add_trial("s", {"x": 3}, owner="a", budget=2, distinct=True) is None
    assert [t.owner for t in store.trials("s")] == ["a", "b"]


def test_one_driver_claims_the_test_evaluation(store: Storage) -> None:
    store.acquire_lease("s", lease("a"), join=False)
    store.acquire_lease("s", lease("b"), join=True)
    assert store.claim_evaluation("s", "a", 0)
    assert not store.claim_evaluation("s", "b", 0)
    store.release_lease("s", "a")  # it stopped without scoring: the claim passes on
    assert store.claim_evaluation("s", "b", 0)
    assert not store.claim_evaluation("s", "b", 1)  # a look the caller did not know of


# -- the heartbeat thread ------------------------------------------------------------------------


class _MaskRecorder:
    """Just enough of a Storage for a Lease: each heartbeat records its thread's signal mask."""

    url = "memory://"

    def __init__(self) -> None:
        self.masks: list[set[int]] = []
        self.beat = threading.Event()

    def acquire_lease(self, study: str, record: LeaseRecord, *, join: bool) -> Takeover:
        return Takeover()

    def heartbeat(self, study: str, owner: str) -> bool:
        self.masks.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        self.beat.set()
        return True

    def release_lease(self, study: str, owner: str) -> None:
        pass


def test_the_heartbeat_thread_blocks_sigint_and_sigterm_and_the_main_thread_does_not() -> None:
    """A signal mask is per thread: the driver's main thread blocks the stop signals around
    a fork, and that holds them only if its other threads never take them either."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    storage = _MaskRecorder()
    held = Lease(cast(Storage, storage), "s", timeout_s=0.04)
    held.acquire(join=False)
    try:
        assert storage.beat.wait(10)
    finally:
        held.release()
    assert {signal.SIGINT, signal.SIGTERM} <= storage.masks[0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_a_driver_thread_blocks_the_stop_signals_before_its_target_runs() -> None:
    masks: list[set[int]] = []
    thread = driver_thread(
        lambda: masks.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, []))), name="t"
    )
    thread.start()
    thread.join(10)
    assert thread.daemon and masks and masks[0] >= STOP_SIGNALS


# -- real drivers --------------------------------------------------------------------------------


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def sleepy_spec(tmp_path: Path, url: str, *, trials: int, nap: float = 0.3) -> dict[str, Any]:
    """Iris k-NN behind a step that sleeps ``nap`` s a fold: a run lasts a few seconds."""
    return base_spec(
        tmp_path,
        name="shared",
        storage=url,
        pipeline=[
            {"name": "nap", "estimator": f"{PLUGIN_MODULE}.Sleep", "params": {"seconds": nap}},
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        space={"model__n_neighbors": {"type": "int", "low": 1, "high": 40}},
        budget={"trials": trials, "max_failed": 0},
        execution={"cache": "off"},  # every fold sleeps: no fitted step is reused
        allow_imports=[PLUGIN_MODULE],
    )


def trials_now(spec: dict[str, Any]) -> list[TrialRecord]:
    """The stored trials, or [] before the first driver made the study."""
    try:
        return stored_trials(spec)
    except Exception:
        return []


def running(spec: dict[str, Any]) -> bool:
    return any(t.state == TrialState.RUNNING for t in trials_now(spec))


def leases_held(spec: dict[str, Any]) -> list[LeaseRecord]:
    try:
        with open_store(spec) as store:
            return store.leases(spec["name"])
    except Exception:  # the first driver is still creating the file
        return []


def test_a_second_run_without_join_exits_75_and_the_first_finishes(
    plugins: Path, tmp_path: Path, backend_url: str
) -> None:
    spec = sleepy_spec(
        tmp_path, backend_url, trials=8, nap=0.4
    )  # 10 s or more: the second run starts within
    path = write_spec(tmp_path, spec)
    log = tmp_path / "first.log"
    events = tmp_path / "first.jsonl"
    first = popen(["run", path, "--events-file", events], tmp_path, log=log, new_session=True)
    try:
        wait_until(lambda: trials_now(spec), 120, "the first run began", first, log)
        second = run_process(["run", path], tmp_path)
        assert second.returncode == 75, second.stderr
        assert f"is being run by {HOST}:{first.pid} since" in second.stderr
        assert "use --join to help it" in second.stderr
        assert first.wait(timeout=300) == 0, log.read_text()
    finally:
        kill_group(first)
    trials = stored_trials(spec)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert all(t.attempt == 1 for t in trials)  # nothing of the first run was re-queued
    assert not [e for e in read_events(events) if e["event"] == "trial_requeued"]
    with open_store(spec) as store:
        assert len(store.test_evaluations("shared")) == 1
        assert store.leases("shared") == []  # released on the way out


def test_the_next_run_takes_over_a_killed_drivers_lease(
    plugins: Path, tmp_path: Path, backend_url: str
) -> None:
    spec = sleepy_spec(tmp_path, backend_url, trials=4)
    path = write_spec(tmp_path, spec)
    log = tmp_path / "killed.log"
    killed = popen(["run", path], tmp_path, log=log, new_session=True)
    try:
        wait_until(lambda: running(spec), 120, "a trial runs", killed, log)
    finally:
        kill_group(killed)
        killed.wait()
    assert [x.pid for x in leases_held(spec)] == [killed.pid]  # left behind by the kill
    shown = run_process(["status", path], tmp_path)
    assert f"driver {HOST}:{killed.pid} since" in shown.stderr
    assert "STALE, the next run takes it over" in shown.stderr
    assert "marked running, but no live driver runs them" in shown.stderr
    payload = json.loads(run_process(["status", path, "--json"], tmp_path).stdout)
    assert [d["driver"] for d in payload["drivers"]] == [f"{HOST}:{killed.pid}"]
    assert payload["drivers"][0]["stale"] and payload["stale_running"]
    events = tmp_path / "next.jsonl"
    done = run_process(["run", path, "--events-file", events], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    for event in read_events(events):
        check_event(event)
    [taken] = [e for e in read_events(events) if e["event"] == "lease_taken_over"]
    assert taken["owner"] == f"{HOST}:{killed.pid}" and taken["requeued"]
    requeued = {e["number"] for e in read_events(events) if e["event"] == "trial_requeued"}
    assert requeued == set(taken["requeued"])
    assert [t.state for t in stored_trials(spec)] == [TrialState.COMPLETE] * 4


def test_a_driver_paused_past_its_lease_timeout_stops_with_75(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEDAG_LEASE_TIMEOUT", "3")
    spec = sleepy_spec(tmp_path, storage_url(tmp_path / "studies.sqlite"), trials=6, nap=0.2)
    path = write_spec(tmp_path, spec)
    log = tmp_path / "paused.log"
    paused = popen(["run", path], tmp_path, log=log, new_session=True)
    try:
        wait_until(lambda: running(spec), 120, "a trial runs", paused, log)
        os.killpg(paused.pid, signal.SIGSTOP)
        wait_until(
            lambda: all(time.time() - x.heartbeat_at > 4 for x in leases_held(spec)),
            60,
            "the paused driver's lease went stale",
        )
        events = tmp_path / "taker.jsonl"
        taker = run_process(["run", path, "--events-file", events], tmp_path, timeout=300)
        assert taker.returncode == 0, taker.stderr
        assert [e["owner"] for e in read_events(events) if e["event"] == "lease_taken_over"] == [
            f"{HOST}:{paused.pid}"
        ]
        os.killpg(paused.pid, signal.SIGCONT)
        assert paused.wait(timeout=120) == 75, log.read_text()
    finally:
        kill_group(paused)
    assert "taken over by another driver" in log.read_text()
    trials = stored_trials(spec)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    with open_store(spec) as store:
        assert len(store.test_evaluations("shared")) == 1
