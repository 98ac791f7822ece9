"""The study graph executes: the scheduler reads a trial's tasks off the graph `plan` shows,
and puts fold results back together in fold order, whatever order they arrive in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from helpers import base_spec, install_plugins, write_spec

import tunedag
from tunedag.dag import build_dag
from tunedag.executor import Task, TrialOutcome
from tunedag.scheduler import Scheduler, trial_tasks
from tunedag.storage import TrialRecord, TrialState


class FoldWorkload:
    """Three folds, no data: the scheduler only needs the tasks."""

    def tasks(self, number: int, params: dict[str, object], attempt: int) -> list[Task]:
        return [Task(number, params, attempt, fold=k) for k in range(3)]

    def run(self, task: Task, report: Callable[[int, float], bool]) -> TrialOutcome:
        raise AssertionError("the scheduler never runs a task itself")


def fold(number: int, k: int, value: float, attempt: int = 1) -> TrialOutcome:
    return TrialOutcome(number, TrialState.COMPLETE, value=value, fold=k, attempt=attempt)


def trial(number: int, attempt: int = 1) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.RUNNING, params={}, attempt=attempt)


def scheduler(judged: list[tuple[int, int, float]], stop_at: int | None = None) -> Scheduler:
    graph = build_dag(tunedag.load_spec(Path(__file__).parents[1] / "specs" / "quickstart.yaml"))
    graph.remove_nodes_from([n for n, d in graph.nodes(data=True) if d.get("fold", 0) > 2])

    def judge(number: int, step: int, value: float) -> bool:
        judged.append((number, step, value))
        return step == stop_at

    return Scheduler(graph, FoldWorkload(), judge)


def test_plan_json_shows_each_nodes_kind_and_the_task_that_runs_it(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    spec = write_spec(tmp_path, base_spec(tmp_path))
    result = run_cli("plan", str(spec), "--format", "json")
    assert result.exit_code == 0, result.stderr
    nodes = {node["id"]: node for node in json.loads(result.stdout)["nodes"]}
    kinds = {node["kind"] for node in nodes.values()}
    assert kinds == {"data", "split", "fit", "score", "aggregate", "search", "evaluate"}
    assert nodes["fold0/fit/scale"]["task"] == nodes["fold0/score"]["task"] == "fold0"
    assert nodes["fold0/fit/scale"]["cached"] and not nodes["fold0/fit/model"]["cached"]
    graph = build_dag(tunedag.load_spec(spec))
    assert trial_tasks(graph) == [f"fold{k}" for k in range(3)]


def test_a_custom_trial_function_runs_as_one_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = base_spec(
        tmp_path,
        pipeline=None,
        trial={"function": "tdplug:nap"},
        allow_imports=["tdplug"],
        space={"nap": {"type": "float", "values": [0.0]}},
    )
    assert trial_tasks(build_dag(tunedag.load_spec(write_spec(tmp_path, spec)))) == ["trial"]


def test_folds_arriving_out_of_order_are_judged_in_fold_order() -> None:
    judged: list[tuple[int, int, float]] = []
    plan = scheduler(judged)
    first = plan.start(trial(0))
    assert first.fold == 0 and plan.next_in_order() is None  # fold 0 is not judged yet
    ahead = [plan.next_ahead(), plan.next_ahead()]  # the study's tail: folds 1, 2 go out too
    assert [t.fold for t in ahead if t] == [1, 2] and plan.next_ahead() is None
    assert plan.receive(fold(0, 2, 0.0)) is None and plan.receive(fold(0, 1, 0.5)) is None
    assert judged == []  # fold 0 is still out
    outcome = plan.receive(fold(0, 0, 1.0))
    assert judged == [(0, 0, 1.0), (0, 1, 0.75), (0, 2, 0.5)]
    assert outcome is not None and outcome.state == TrialState.COMPLETE
    assert outcome.fold_values == [1.0, 0.5, 0.0] and outcome.value == 0.5
    assert outcome.intermediate == {0: 1.0, 1: 0.75, 2: 0.5} and not plan


def test_a_pruned_trial_ignores_its_later_folds_and_a_stale_attempt_is_dropped() -> None:
    judged: list[tuple[int, int, float]] = []
    plan = scheduler(judged, stop_at=0)
    plan.start(trial(0))
    plan.next_ahead()
    pruned = plan.receive(fold(0, 0, 0.1))
    assert pruned is not None and pruned.state == TrialState.PRUNED and pruned.value == 0.1
    assert plan.receive(fold(0, 1, 0.9)) is None  # its trial was decided already
    plan.start(trial(1, attempt=2))
    assert plan.receive(fold(1, 0, 0.5, attempt=1)) is None  # from the attempt before
    assert len(plan) == 1


def test_a_failed_fold_fails_the_trial_and_a_lost_one_returns_it_for_requeueing() -> None:
    plan = scheduler([])
    plan.start(trial(0))
    plan.start(trial(1))
    failed = TrialOutcome(0, TrialState.FAILED, fold=0, error="ValueError: bad")
    outcome = plan.receive(failed)
    assert outcome is not None and outcome.state == TrialState.FAILED
    assert outcome.error == "ValueError: bad"
    lost = TrialOutcome.lost_task(Task(1, {}, fold=0), "worker died")
    again = plan.receive(lost)
    assert again is not None and again.lost and not plan
