"""The locked test rows reach the final evaluation and nothing else.

A spying transformer at the head of the pipeline records every row it is fitted or applied
on, in the driver and in forked workers alike. During the search each fit sees exactly one
fold's training rows and no test row is seen at all; the final evaluation fits once on all
development rows and applies the model to the test rows once. The study's DAG says the same,
and a DAG with one more edge from the test split is refused before anything runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from helpers import (
    PLUGIN_MODULE,
    base_spec,
    install_plugins,
    recorder,
    row_keys,
    trial_spec,
    write_spec,
)

import tunedag
from tunedag.dag import EVALUATE, LeakageError, build_dag, check_test_isolation
from tunedag.prepare import prepare
from tunedag.spec.validate import base_dir_of
from tunedag.storage import TrialState

MARK = {"call": "search-over"}


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def spy_spec(tmp_path: Path, log: Path, workers: int) -> dict[str, Any]:
    return base_spec(
        tmp_path,
        name=f"spy-{workers}",
        data={"source": "sklearn:breast_cancer"},
        split={
            "test": {"fraction": 0.2, "stratify": True},
            "validation": {"method": "stratified_kfold", "folds": 3},
        },
        pipeline=[
            {"name": "spy", "estimator": f"{PLUGIN_MODULE}.RowSpy", "params": {"log": str(log)}},
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "model", "estimator": "sklearn.linear_model.LogisticRegression"},
        ],
        space={"model__C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
        objective={"metric": "roc_auc"},
        budget={"trials": 3, "max_failed": 0},
        execution={"workers": workers},
        allow_imports=[PLUGIN_MODULE],
    )


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("workers", "inline"),
    [(1, True), (1, False), (2, False)],
    ids=["in-process", "one-forked-worker", "two-forked-workers"],
)
def test_no_test_row_reaches_a_fit_during_the_search(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, inline: bool
) -> None:
    if inline:
        monkeypatch.setenv("TUNEDAG_INLINE", "1")
    log = tmp_path / "rows.jsonl"
    spec = tunedag.load_spec(write_spec(tmp_path, spy_spec(tmp_path, log, workers)))
    prepared = prepare(spec, base_dir_of(spec))
    dev_keys, test_keys = row_keys(prepared.dev.X), row_keys(prepared.test.X)
    # every row is distinguishable: no row of the data set is repeated
    assert len(set(dev_keys)) == len(dev_keys) and len(set(test_keys)) == len(test_keys)
    assert not set(dev_keys) & set(test_keys)

    events, _ = recorder()

    def mark(event: dict[str, Any]) -> None:
        # study_started comes after the dry run; study_finished after the last trial and
        # before the test evaluation
        if event["event"] in ("study_started", "study_finished"):
            with log.open("a") as stream:
                stream.write(json.dumps(MARK) + "\n")

    events.add(mark)
    result = tunedag.run(spec, events=events)
    assert result.counts["complete"] == 3 and result.test_value is not None

    calls = read_log(log)
    start = calls.index(MARK)
    cut = calls.index(MARK, start + 1)
    dry, search, final = calls[:start], calls[start + 1 : cut], calls[cut + 1 :]
    fold_train = {frozenset(dev_keys[i] for i in train) for train, _ in prepared.folds}

    # the dry run fits on a sample of one fold's training rows: development rows only
    assert [c["call"] for c in dry][:1] == ["fit"]
    first_train = {dev_keys[i] for i in prepared.folds[0][0]}
    for call in dry:
        assert not set(call["rows"]) & set(test_keys), f"a test row reached the dry run's {call}"
    assert set(dry[0]["rows"]) <= first_train

    # the search: no test row anywhere; each fit on exactly one fold's training rows
    assert search, "the spy saw nothing during the search"
    for call in search:
        assert not set(call["rows"]) & set(test_keys), f"a test row reached {call['call']}"
        assert set(call["rows"]) <= set(dev_keys)
    fits = [call for call in search if call["call"] == "fit"]
    for fit in fits:
        assert frozenset(fit["rows"]) in fold_train
        assert len(fit["rows"]) == len(set(fit["rows"]))
    # the spy's parameters never change: each worker fits it once per fold, then reuses it
    fitted = [(fit["pid"], frozenset(fit["rows"])) for fit in fits]
    assert {rows for _, rows in fitted} == fold_train
    assert len(fitted) == len(set(fitted)) <= workers * len(prepared.folds)
    search_pids = {call["pid"] for call in search}
    if inline:
        assert search_pids == {os.getpid()}  # in the driver's process, for a debugger
    else:
        assert os.getpid() not in search_pids  # trials ran in forked workers

    # the final evaluation: one fit on all development rows, test rows applied once
    assert [c["call"] for c in final] == ["fit", "transform", "transform"]
    assert final[0]["rows"] == dev_keys  # fit_transform during the refit
    assert final[1]["rows"] == dev_keys
    assert final[2]["rows"] == test_keys  # the one look at the test rows
    assert {c["pid"] for c in final} == {os.getpid()}  # the driver refits and scores
    assert sum(1 for c in search + final if set(c["rows"]) & set(test_keys)) == 1


def test_fits_never_see_their_own_validation_rows(plugins: Path, tmp_path: Path) -> None:
    log = tmp_path / "rows.jsonl"
    spec = tunedag.load_spec(write_spec(tmp_path, spy_spec(tmp_path, log, 1)))
    prepared = prepare(spec, base_dir_of(spec))
    dev_keys = row_keys(prepared.dev.X)
    events, _ = recorder()

    def mark(event: dict[str, Any]) -> None:
        if event["event"] == "study_started":  # after the dry run
            with log.open("a") as stream:
                stream.write(json.dumps(MARK) + "\n")

    events.add(mark)
    tunedag.run(spec, max_new_trials=1, events=events)  # one trial, no test evaluation yet
    calls = read_log(log)
    calls = calls[calls.index(MARK) + 1 :]
    # per fold: fit (fit_transform) on train, transform train, transform validation to score
    assert [c["call"] for c in calls] == ["fit", "transform", "transform"] * len(prepared.folds)
    for k, (train, valid) in enumerate(prepared.folds):
        fit, _, scored = calls[3 * k : 3 * k + 3]
        assert fit["rows"] == [dev_keys[i] for i in train]
        assert scored["rows"] == [dev_keys[i] for i in valid]
        assert not set(fit["rows"]) & set(scored["rows"])


def test_a_custom_trial_gets_development_rows_only(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "context.jsonl"
    monkeypatch.setenv("TDPLUG_LOG", str(log))
    spec_dict = trial_spec(
        tmp_path,
        "peek",
        {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        data={"source": "sklearn:wine"},
        budget={"trials": 2, "max_failed": 0},
    )
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    prepared = prepare(spec, base_dir_of(spec))
    dev_keys, test_keys = row_keys(prepared.dev.X), set(row_keys(prepared.test.X))
    result = tunedag.run(spec)
    assert result.counts["complete"] == 2
    assert result.test is None  # a trial function returns a score, not a model to refit
    calls = read_log(log)
    assert [c["call"] for c in calls].count("context.X") == 2
    for call in calls:
        assert not set(call["rows"]) & test_keys
        if call["call"] == "context.X":
            assert call["rows"] == dev_keys


# -- the DAG ----------------------------------------------------------------------------------


@pytest.fixture
def graph(tmp_path: Path) -> nx.DiGraph:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path)))
    return build_dag(spec)


def test_the_test_split_feeds_only_the_final_evaluation(graph: nx.DiGraph) -> None:
    check_test_isolation(graph)
    test_edges = [(s, t) for s, t, rows in graph.edges(data="rows") if rows == "test"]
    assert test_edges == [("split_test", EVALUATE)]
    assert list(graph.successors(EVALUATE)) == []
    # every fit and score is upstream of the evaluation and fed by development rows only
    for node, kind in graph.nodes(data="kind"):
        if kind in ("fit", "score"):
            assert nx.has_path(graph, node, EVALUATE)
            assert all(rows != "test" for _, _, rows in graph.in_edges(node, data="rows"))
    # the folds come from the development rows, never from the raw data
    assert graph.edges["split_test", "make_folds"]["rows"] == "development"
    assert not graph.has_edge("load_data", "make_folds")


@pytest.mark.parametrize(
    "target", ["fold0/fit/scale", "fold1/score", "aggregate", "search", "refit", "make_folds"]
)
def test_a_graph_with_an_extra_test_edge_is_refused(graph: nx.DiGraph, target: str) -> None:
    assert target in graph
    graph.add_edge("split_test", target, rows="test")
    with pytest.raises(LeakageError, match=f"test rows flow from 'split_test' to '{target}'"):
        check_test_isolation(graph)


def test_nothing_may_follow_the_test_evaluation(graph: nx.DiGraph) -> None:
    graph.add_node("retune", kind="search", label="tune again after looking")
    graph.add_edge(EVALUATE, "retune", rows="score")
    with pytest.raises(LeakageError, match="last node"):
        check_test_isolation(graph)


def test_run_refuses_a_leaky_graph_before_touching_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunedag.study

    def leaky(spec: Any) -> nx.DiGraph:
        graph = build_dag(spec)
        graph.add_edge("split_test", "fold0/fit/model", rows="test")
        return graph

    monkeypatch.setattr(tunedag.study, "build_dag", leaky)
    spec_dict = base_spec(tmp_path)
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    with pytest.raises(LeakageError):
        tunedag.run(spec)
    assert not (tmp_path / "studies.sqlite").exists()


def test_pruned_and_failed_trials_keep_the_test_rows_locked(plugins: Path, tmp_path: Path) -> None:
    """A study whose trials all fail never scores the test rows."""
    log = tmp_path / "rows.jsonl"
    spec_dict = spy_spec(tmp_path, log, 1)
    # valid for scikit-learn's parameter checks (so the dry run lets it through), but no fold
    # has that many rows: every trial fails when it scores
    spec_dict["pipeline"][2] = {
        "name": "model",
        "estimator": "sklearn.neighbors.KNeighborsClassifier",
    }
    spec_dict["space"] = {"model__n_neighbors": {"type": "int", "values": [100_000]}}
    spec_dict["sampler"] = {"name": "grid"}
    spec_dict["budget"] = {"trials": 1, "max_failed": 1}
    spec = tunedag.load_spec(write_spec(tmp_path, spec_dict))
    prepared = prepare(spec, base_dir_of(spec))
    result = tunedag.run(spec)
    assert [t.state for t in result.trials] == [TrialState.FAILED]
    assert result.best is None and result.test is None
    test_keys = set(row_keys(prepared.test.X))
    calls = read_log(log)
    assert calls and all(not set(c["rows"]) & test_keys for c in calls)
