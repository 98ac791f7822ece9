"""The baseline: the pipeline with its estimators' own defaults, scored on the same folds.

A tuned model is only worth its cost if it beats what scikit-learn gives without tuning.
With ``baseline: true`` (the default) a new pipeline study plans its baseline before its
first trial:

- when the defaults of the searched parameters lie inside the space (as the sampler
  would propose them), they are **trial 0**, queued like a re-queued trial, so they run
  through the normal trial machinery, count toward the budget, and may well be the best;
- otherwise they cannot be a trial of this space, and the baseline is a separate record,
  scored on the same folds once the search has finished, before the test evaluation.

Either way the study reports how far the best trial is above the defaults, in standard
deviations of the best trial's fold scores, and warns when it is not above them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunedag.spec.models import CategoricalDimension, FloatDimension, Spec
from tunedag.storage import Storage, TrialRecord, TrialState

if TYPE_CHECKING:  # scoring the baseline needs them; reading and describing it does not
    import networkx as nx

    from tunedag.executor import TrialOutcome
    from tunedag.prepare import Prepared
    from tunedag.space import Params, SearchSpace

_PLAIN = (str, int, float, bool, type(None))


@dataclass
class Baseline:
    """The defaults' scores; ``trial`` is 0 when they ran as a trial of the space."""

    params: dict[str, Any]
    trial: int | None
    value: float | None = None
    fold_values: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def inside_space(self) -> bool:
        return self.trial is not None


@dataclass
class Comparison:
    """How far the best trial is above the baseline, in the objective's direction."""

    gain: float
    stds: float | None
    beaten: bool
    best_is_baseline: bool


def default_params(spec: Spec, space: SearchSpace) -> Params | None:
    """The pipeline's default value of each active searched parameter; None without one."""
    if spec.pipeline is None:
        return None
    from tunedag.estimators import pipeline_of

    defaults = pipeline_of(spec).get_params(deep=True)
    params: Params = {}
    for name in space.names:
        if not space.is_active(name, params):
            continue
        if name not in defaults:
            return None
        value = defaults[name]
        if isinstance(space.dimensions[name], FloatDimension) and type(value) is int:
            value = float(value)
        params[name] = value if isinstance(value, _PLAIN) else repr(value)
    return params


def plan_baseline(storage: Storage, spec: Spec, sampler_cls: Any) -> None:
    """Before a new study's first trial: queue the defaults as trial 0, or record them apart.

    Does nothing for a study that already has trials or a baseline (so it runs once, and
    studies made before baselines existed stay as they were), or with ``baseline: false``.
    """
    if not spec.baseline or storage.baseline(spec.name) is not None:
        return
    if any(storage.count_trials(spec.name).values()):
        return
    from tunedag.space import SearchSpace

    space = SearchSpace(spec.space)
    params = default_params(spec, space)
    if params is None:
        return
    inside = _comparable(space, params) and bool(sampler_cls.could_propose(space, params))
    storage.add_baseline(spec.name, params, as_trial=inside)


def _comparable(space: SearchSpace, params: Params) -> bool:
    """A default of the wrong kind (``gamma='scale'`` for a numeric range) is outside."""
    for name, value in params.items():
        numeric = not isinstance(space.dimensions[name], CategoricalDimension)
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
            return False
    return True


def score_outside_space(storage: Storage, prepared: Prepared, graph: nx.DiGraph) -> None:
    """Score a baseline that is no trial (defaults outside the space) once, on the folds.

    Its tasks are the study graph's, run in this process one after another and judged by
    the scheduler's own aggregation (never pruned), as a trial's would be.
    """
    name = prepared.spec.name
    record = storage.baseline(name)
    if record is None or record["trial"] is not None or record["scored"]:
        return
    from threadpoolctl import threadpool_limits

    from tunedag.executor import Task
    from tunedag.scheduler import Scheduler

    workload = prepared.workload
    scheduler = Scheduler(graph, workload, lambda number, step, value: False)
    # no parameter set: the pipeline as the spec builds it, with its estimators' defaults
    task: Task | None = scheduler.start(TrialRecord(-1, TrialState.RUNNING, {}))
    outcome: TrialOutcome | None = None
    with threadpool_limits(limits=1):
        while task is not None and outcome is None:
            outcome = scheduler.receive(workload.run(task, lambda step, value: False))
            task = scheduler.next_in_order() if outcome is None else None
    ok = outcome is not None and outcome.state == TrialState.COMPLETE
    storage.set_baseline_score(
        name,
        value=outcome.value if ok and outcome else None,
        fold_values=list(outcome.fold_values) if ok and outcome else [],
        error=None if ok else _failure(outcome),
    )


def _failure(outcome: TrialOutcome | None) -> str:
    if outcome is None:
        return "the baseline's tasks gave no outcome"
    return (outcome.error or f"the baseline was {outcome.state}").split("\n")[0]


def read_baseline(storage: Storage, name: str, trials: list[TrialRecord]) -> Baseline | None:
    record = storage.baseline(name)
    if record is None:
        return None
    baseline = Baseline(params=record["params"], trial=record["trial"])
    if baseline.trial is None:
        baseline.value = record["value"]
        baseline.fold_values = record["fold_values"]
        baseline.error = record["error"]
        return baseline
    trial = trials[baseline.trial] if baseline.trial < len(trials) else None
    if trial is not None and trial.state == TrialState.COMPLETE:
        baseline.value = trial.value
        baseline.fold_values = list(trial.fold_values)
    elif trial is not None and trial.state in (TrialState.FAILED, TrialState.PRUNED):
        baseline.error = (trial.error or f"trial {trial.number} was {trial.state}").split("\n")[0]
    return baseline


def compare(baseline: Baseline, best: TrialRecord | None, direction: str) -> Comparison | None:
    """The best trial against the baseline; None until both have a value."""
    if best is None or best.value is None or baseline.value is None:
        return None
    if math.isnan(best.value) or math.isnan(baseline.value):
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    gain = sign * (best.value - baseline.value)
    spread = _sample_std(best.fold_values) if len(best.fold_values) > 1 else 0.0
    return Comparison(
        gain=gain,
        stds=gain / spread if spread > 0 else None,
        beaten=gain > 0,
        best_is_baseline=baseline.trial is not None and best.number == baseline.trial,
    )


def _sample_std(values: list[float]) -> float:
    """The folds' sample standard deviation (ddof 1); NaN when a fold is NaN."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def baseline_payload(
    baseline: Baseline | None, best: TrialRecord | None, direction: str
) -> dict[str, Any] | None:
    """The ``baseline`` object of ``status --json`` and ``results.json``."""
    if baseline is None:
        return None
    comparison = compare(baseline, best, direction)
    return {
        "value": baseline.value,
        "fold_values": baseline.fold_values,
        "trial": baseline.trial,
        "params": baseline.params,
        "inside_space": baseline.inside_space,
        "error": baseline.error,
        "gain": comparison.gain if comparison else None,
        "gain_stds": comparison.stds if comparison else None,
        "beaten": comparison.beaten if comparison else None,
    }


def describe(
    baseline: Baseline, best: TrialRecord | None, direction: str, metric: str
) -> list[str]:
    """The summary's baseline line, then a warning line when tuning did not beat it."""
    where = f"trial {baseline.trial}" if baseline.inside_space else "outside the space"
    if baseline.value is None:
        why = baseline.error or "not scored yet"
        return [f"baseline (defaults, {where}): no score ({why})"]
    line = f"baseline (defaults, {where}): {metric}={baseline.value:.5g}"
    comparison = compare(baseline, best, direction)
    if comparison is None:
        return [line]
    spread = f" ({abs(comparison.stds):.2f} fold std)" if comparison.stds is not None else ""
    side = "above" if comparison.gain > 0 else "below" if comparison.gain < 0 else "level with"
    line += f"  best is {abs(comparison.gain):.4g} {side} it{spread}"
    if comparison.best_is_baseline:
        return [
            line,
            "warning: the best trial is the defaults (trial 0): tuning found nothing better",
        ]
    if not comparison.beaten:
        return [
            line,
            "warning: the best trial is not above the estimators' defaults: tuning did not "
            "help on these folds (widen or move the space, or keep the defaults)",
        ]
    return [line]
