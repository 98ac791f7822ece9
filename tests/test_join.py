"""Several drivers on one study (`tunedag run --join`): one budget, one history, one look.

Real `tunedag run --join` processes share a grid study on one storage; some are killed with
SIGKILL at random moments and started again. Whatever happens, the study ends with exactly
its budget of complete trials, no trial number or grid point twice, and the test set scored
exactly once.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

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
    wait_until,
    write_spec,
)

import tunedag
from tunedag.storage import TrialState


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def grid_spec(
    tmp_path: Path, url: str | None = None, *, points: int, trials: int, nap: float
) -> dict[str, Any]:
    """A k-NN grid of ``points`` behind a step that sleeps ``nap`` s a fold."""
    return base_spec(
        tmp_path,
        name="joined",
        **({"storage": url} if url else {}),
        pipeline=[
            {"name": "nap", "estimator": f"{PLUGIN_MODULE}.Sleep", "params": {"seconds": nap}},
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        space={"model__n_neighbors": {"type": "int", "values": list(range(1, points + 1))}},
        sampler={"name": "grid"},
        budget={"trials": trials, "max_failed": 0},
        execution={"cache": "off"},
        allow_imports=[PLUGIN_MODULE],
    )


def count(spec: dict[str, Any], state: TrialState) -> int:
    try:
        with open_store(spec) as store:
            return sum(1 for t in store.trials(spec["name"]) if t.state == state)
    except Exception:  # not created yet
        return 0


def check_shared_study(spec: dict[str, Any], logs: list[Path], events: list[Path]) -> None:
    """Exactly the budget, each number and grid point once, one look at the test set."""
    budget = spec["budget"]["trials"]
    with open_store(spec) as store:
        trials = store.trials(spec["name"])
        evaluations = store.test_evaluations(spec["name"])
        leases = store.leases(spec["name"])
    assert [t.number for t in trials] == list(range(budget))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * budget
    points = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(points)) == budget, "a grid point ran twice"
    assert len(evaluations) == 1, evaluations
    for path in events:
        for event in read_events(path):
            check_event(event)
    looked = [e for path in events for e in read_events(path) if e["event"] == "test_evaluated"]
    assert len(looked) == 1, looked
    assert leases == []  # every driver gave its lease back (or had it taken over)
    for log in logs:
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text()


def start(path: Path, cwd: Path, tag: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    log, events = cwd / f"{tag}.log", cwd / f"{tag}.jsonl"
    proc = popen(["run", path, "--join", "--events-file", events], cwd, log=log, new_session=True)
    return proc, log, events


def test_two_joined_drivers_share_one_budget_and_one_look(
    plugins: Path, tmp_path: Path, backend_url: str
) -> None:
    spec = grid_spec(tmp_path, backend_url, points=12, trials=10, nap=0.15)
    path = write_spec(tmp_path, spec)
    runs = [start(path, tmp_path, f"driver-{k}") for k in range(2)]
    try:
        for proc, log, _ in runs:
            assert proc.wait(timeout=300) == 0, log.read_text()
    finally:
        for proc, _, _ in runs:
            kill_group(proc)
    check_shared_study(spec, [log for _, log, _ in runs], [ev for _, _, ev in runs])


def test_join_through_the_python_api_on_a_finished_study_returns_its_result(
    plugins: Path, tmp_path: Path
) -> None:
    spec = grid_spec(tmp_path, points=4, trials=3, nap=0.0)
    path = write_spec(tmp_path, spec)
    first = tunedag.run(tunedag.load_spec(path))
    again = tunedag.run(tunedag.load_spec(path), join=True)
    assert again.test is not None and first.test is not None
    assert again.test.value == first.test.value and len(again.trials) == 3


@pytest.mark.slow
def test_four_drivers_two_killed_and_restarted_run_the_budget_exactly_once(
    plugins: Path, tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEDAG_LEASE_TIMEOUT", "10")
    spec = grid_spec(tmp_path, backend_url, points=60, trials=40, nap=0.1)
    path = write_spec(tmp_path, spec)
    rng = random.Random(16)
    runs = [start(path, tmp_path, f"driver-{k}") for k in range(4)]
    logs = [log for _, log, _ in runs]
    events = [ev for _, _, ev in runs]
    killed: list[int] = []
    try:
        victims = rng.sample(range(4), 2)
        for kill, victim in enumerate(victims):
            target = rng.randint(4, 30)  # a random moment: after `target` trials completed
            proc, log, _ = runs[victim]
            wait_until(
                lambda t=target: count(spec, TrialState.COMPLETE) >= t,
                300,
                f"{target} trials completed",
            )
            kill_group(proc)
            proc.wait()
            killed.append(proc.pid)
            runs[victim] = start(path, tmp_path, f"restarted-{kill}")
            logs.append(runs[victim][1])
            events.append(runs[victim][2])
        for proc, log, _ in runs:
            assert proc.wait(timeout=600) == 0, log.read_text()
    finally:
        for proc, _, _ in runs:
            kill_group(proc)
    check_shared_study(spec, logs, events)
    taken = [e for path in events for e in read_events(path) if e["event"] == "lease_taken_over"]
    assert sorted(int(e["owner"].rsplit(":", 1)[1]) for e in taken) == sorted(killed)
    requeued = sorted(n for e in taken for n in e["requeued"])
    with open_store(spec) as store:
        trials = store.trials(spec["name"])
    assert all(trials[n].attempt >= 2 for n in requeued)  # run again, under the same number
    print(
        f"\n{len(trials)} complete, {len({t.owner for t in trials})} drivers finished trials, "
        f"killed {killed}, re-queued {requeued}, 1 test evaluation"
    )
