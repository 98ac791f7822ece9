"""The study as a DAG of nodes (networkx), and the rule that guards the test rows.

load data -> split off the test rows -> make the folds -> per fold: fit steps 1..j of the
pipeline on the training rows for each prefix j, score on the validation rows -> the
trial's aggregate -> the search -> refit the best on all development rows -> the one test
evaluation. Edges carry which rows travel on them; rows="test" may only ever end at the
final evaluation. The same graph executes: ``tunedag.scheduler`` reads each trial's tasks
off its nodes (their ``task`` attribute), and ``run`` checks the graph before anything runs.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from tunedag.errors import TunedagError
from tunedag.spec.models import Spec

EVALUATE = "evaluate_test"


class LeakageError(TunedagError):
    """A DAG in which the test rows reach anything but the final evaluation: a bug."""


def build_dag(spec: Spec) -> nx.DiGraph:
    graph = nx.DiGraph(study=spec.name)
    validation = spec.split.validation
    test = spec.split.test
    graph.add_node("load_data", kind="data", label=f"load {spec.data.source}")
    how = f"fraction {test.fraction}" if test.fraction else f"file {test.source}"
    if test.stratify:
        how += ", stratified"
    if test.order_by:
        how += f", latest by {test.order_by}"
    graph.add_node("split_test", kind="split", label=f"split off test rows ({how})")
    graph.add_edge("load_data", "split_test", rows="all")
    folds = 1 if validation.method == "holdout" else validation.folds
    graph.add_node("make_folds", kind="split", label=f"{validation.method} x {folds}")
    graph.add_edge("split_test", "make_folds", rows="development")
    _add_trial_nodes(graph, spec, folds)
    graph.add_node(
        "search",
        kind="search",
        label=f"{spec.sampler.name} search, {spec.budget.trials} trials, pruner {spec.pruner.name}",
    )
    graph.add_edge("aggregate", "search", rows="score")
    graph.add_node("refit", kind="fit", label="refit the best on all development rows")
    graph.add_edge("search", "refit", rows="params")
    graph.add_edge("split_test", "refit", rows="development")
    graph.add_node(EVALUATE, kind="evaluate", label="score the test rows once")
    graph.add_edge("refit", EVALUATE, rows="fitted")
    graph.add_edge("split_test", EVALUATE, rows="test")
    return graph


def _add_trial_nodes(graph: nx.DiGraph, spec: Spec, folds: int) -> None:
    """A trial's nodes: per fold, fit steps 1..j for each prefix j, then score; aggregate.

    ``task`` names the unit that runs a node on a worker (``tunedag.scheduler``): one task
    per fold for a pipeline, so folds spread across workers and fitted prefixes are
    cached by content key; one task for the whole trial when its folds are interleaved
    inside it (a custom trial function, or a model trained in fidelity levels).
    """
    if spec.pipeline:
        steps = [step.name for step in spec.pipeline]
    else:
        steps = [f"trial {spec.trial.function}" if spec.trial else "trial"]
    whole_trial = not spec.pipeline or spec.fidelity is not None
    caches = not whole_trial and spec.execution.cache != "off"
    metric = spec.objective.metric
    graph.add_node("aggregate", kind="aggregate", label=f"mean {metric} over folds, in fold order")
    for k in range(folds):
        task = "trial" if whole_trial else f"fold{k}"
        previous = "make_folds"
        for depth, step in enumerate(steps, start=1):
            node = f"fold{k}/fit/{step}"
            prefix = " > ".join(_step_label(spec, name) for name in steps[:depth])
            cached = caches and depth < len(steps)  # the model's own fit is never reused
            graph.add_node(
                node,
                kind="fit",
                fold=k,
                depth=depth,
                task=task,
                cached=cached,
                label=f"fold {k}: fit {prefix} on training rows{', cached' if cached else ''}",
            )
            graph.add_edge(previous, node, rows="train" if previous == "make_folds" else "fitted")
            previous = node
        score = f"fold{k}/score"
        graph.add_node(
            score, kind="score", fold=k, task=task, label=f"fold {k}: {metric} on validation rows"
        )
        graph.add_edge(previous, score, rows="fitted")
        graph.add_edge("make_folds", score, rows="validation")
        graph.add_edge(score, "aggregate", rows="score")


def _step_label(spec: Spec, step: str) -> str:
    """A step's name; for a step the space chooses, with its estimators by name."""
    chosen = spec.space.get(step)
    if chosen is not None and hasattr(chosen, "labels"):
        return f"{step} ({' | '.join(map(str, chosen.labels))})"
    return step


def check_test_isolation(graph: nx.DiGraph) -> None:
    """The test rows feed the final evaluation only, and nothing comes after it."""
    for source, target, rows in graph.edges(data="rows"):
        if rows == "test" and target != EVALUATE:
            raise LeakageError(f"test rows flow from {source!r} to {target!r}")
    if list(graph.successors(EVALUATE)):
        raise LeakageError("the test evaluation must be the last node")
    if not nx.is_directed_acyclic_graph(graph):
        raise LeakageError("the study graph has a cycle")


def render_text(graph: nx.DiGraph) -> str:
    lines = [f"study {graph.graph.get('study')}: {graph.number_of_nodes()} nodes"]
    for node in nx.topological_sort(graph):
        inputs = ", ".join(f"{src} [{rows}]" for src, _, rows in graph.in_edges(node, data="rows"))
        lines.append(f"  {node:<28} {graph.nodes[node]['label']}")
        if inputs:
            lines.append(f"  {'':<28}   <- {inputs}")
    return "\n".join(lines)


def render_dot(graph: nx.DiGraph) -> str:
    lines = [f'digraph "{graph.graph.get("study")}" {{', "  rankdir=TB;"]
    for node, data in graph.nodes(data=True):
        shape = "doubleoctagon" if node == EVALUATE else "box"
        lines.append(f'  "{node}" [label="{data["label"]}", shape={shape}];')
    for source, target, rows in graph.edges(data="rows"):
        style = ", color=red, penwidth=2" if rows == "test" else ""
        lines.append(f'  "{source}" -> "{target}" [label="{rows}"{style}];')
    lines.append("}")
    return "\n".join(lines)


def render_json(graph: nx.DiGraph) -> str:
    payload: dict[str, Any] = {
        "study": graph.graph.get("study"),
        "nodes": [{"id": n, **d} for n, d in graph.nodes(data=True)],
        "edges": [{"source": s, "target": t, "rows": r} for s, t, r in graph.edges(data="rows")],
    }
    return json.dumps(payload, indent=2)
