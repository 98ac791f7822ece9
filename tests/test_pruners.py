"""The built-in pruners: each decision rule on small tables, and pruning in real studies.

Tables are histories of TrialRecords as ``PrunerContract.study(curves)`` builds them: trial
``i`` is complete and reported ``curves[i][s]`` at step ``s``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import base_spec, recorder, stored_trials, trial_spec, write_spec

import tunedag
from tunedag.plugins.pruners import (
    BUILTIN,
    HyperbandPruner,
    MedianPruner,
    NoPruner,
    PatiencePruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
    ThresholdPruner,
)
from tunedag.pruner import Pruner
from tunedag.storage import TrialRecord, TrialState
from tunedag.testing import PrunerContract

study = PrunerContract.study


def make(cls: type[Pruner], direction: str = "maximize", **options: Any) -> Pruner:
    return cls(cls.Options.model_validate(options), direction=direction)  # type: ignore[arg-type]


def running(values: Sequence[float] | dict[int, float], number: int = 99) -> TrialRecord:
    intermediate = values if isinstance(values, dict) else dict(enumerate(values))
    return TrialRecord(
        number=number, state=TrialState.RUNNING, params={}, intermediate=dict(intermediate)
    )


def at(
    curves: Sequence[Sequence[float]],
    step: int,
    value: float,
    pruner: Pruner,
    earlier: Sequence[float] = (),
) -> bool:
    """Whether ``pruner`` stops a new trial reporting ``value`` at ``step`` (after ``earlier``)."""
    values = [*earlier, value]
    trial = running(dict(zip(range(step - len(earlier), step + 1), values, strict=True)))
    return pruner.prune(trial, step, study(curves))


def test_every_builtin_is_registered() -> None:
    names = set(tunedag.make_plugins(autoload=False).provided["pruner"])
    assert {
        "none",
        "median",
        "percentile",
        "successive_halving",
        "hyperband",
        "threshold",
        "patience",
    } <= names
    assert set(BUILTIN) <= names


def test_none_never_prunes() -> None:
    assert not at([[0.9]] * 10, 0, -1e9, make(NoPruner))


# -- median and percentile ------------------------------------------------------------------------

FIVE = [[0.1], [0.2], [0.3], [0.4], [0.5]]  # five finished trials at step 0; median 0.3


@pytest.mark.parametrize(("value", "pruned"), [(0.29, True), (0.3, False), (0.31, False)])
def test_median_prunes_below_the_median_of_finished_trials(value: float, pruned: bool) -> None:
    assert at(FIVE, 0, value, make(MedianPruner)) is pruned


@pytest.mark.parametrize(("value", "pruned"), [(0.31, True), (0.3, False), (0.29, False)])
def test_median_minimizing_prunes_above_the_median(value: float, pruned: bool) -> None:
    assert at(FIVE, 0, value, make(MedianPruner, "minimize")) is pruned


def test_median_waits_for_n_startup_trials_at_that_step() -> None:
    assert not at(FIVE[:4], 0, 0.0, make(MedianPruner))  # 4 < 5
    assert at(FIVE[:4], 0, 0.0, make(MedianPruner, n_startup_trials=4))
    assert at(FIVE[:1], 0, 0.0, make(MedianPruner, n_startup_trials=1))
    assert not at([], 0, 0.0, make(MedianPruner, n_startup_trials=0))  # nothing to compare
    # a step no finished trial reached has no reference
    assert not at(FIVE, 3, 0.0, make(MedianPruner, n_startup_trials=0), earlier=[0.5] * 3)


def test_median_counts_complete_trials_only() -> None:
    history = study(FIVE)
    history[4].state = TrialState.RUNNING  # 0.5 does not count
    history[0].state = TrialState.PRUNED  # nor does 0.1: the median of 0.2, 0.3, 0.4 is 0.3
    pruner = make(MedianPruner, n_startup_trials=3)
    assert not pruner.prune(running([0.3]), 0, history)
    assert pruner.prune(running([0.29]), 0, history)
    assert not make(MedianPruner, n_startup_trials=4).prune(running([0.0]), 0, history)


def test_median_warmup_and_interval() -> None:
    curves = [[0.5] * 6 for _ in range(5)]
    pruner = make(MedianPruner, n_warmup_steps=2, interval=2)
    judged = [s for s in range(6) if at(curves, s, 0.0, pruner, earlier=[0.0] * s)]
    assert judged == [2, 4]


def test_median_ignores_nan_in_others_and_prunes_its_own_nan() -> None:
    curves = [[0.1], [0.2], [math.nan], [0.4], [0.5], [0.3]]
    assert not at(curves, 0, 0.3, make(MedianPruner))  # median of 0.1,0.2,0.3,0.4,0.5
    assert at(curves, 0, math.nan, make(MedianPruner))


@pytest.mark.parametrize(
    ("direction", "percentile", "value", "pruned"),
    [
        # maximize, keep the best 25%: the 75th percentile of 0.1..0.5 is 0.4
        ("maximize", 25.0, 0.39, True),
        ("maximize", 25.0, 0.4, False),
        # keep the best 90%: the 10th percentile is 0.14
        ("maximize", 90.0, 0.13, True),
        ("maximize", 90.0, 0.15, False),
        # minimize, keep the best 25%: the 25th percentile is 0.2
        ("minimize", 25.0, 0.21, True),
        ("minimize", 25.0, 0.2, False),
    ],
)
def test_percentile_keeps_the_best_percent(
    direction: str, percentile: float, value: float, pruned: bool
) -> None:
    pruner = make(PercentilePruner, direction, percentile=percentile)
    assert at(FIVE, 0, value, pruner) is pruned


def test_percentile_50_is_the_median() -> None:
    for value in (0.05, 0.25, 0.3, 0.35, 0.6):
        assert at(FIVE, 0, value, make(PercentilePruner, percentile=50)) == at(
            FIVE, 0, value, make(MedianPruner)
        )


# -- successive halving ---------------------------------------------------------------------------

# rungs of min_resource=1, reduction_factor=3: steps 1, 3, 9
SIX_AT_RUNG_1 = [[0.0, v] for v in (0.9, 0.8, 0.7, 0.6, 0.5)]


@pytest.mark.parametrize(("value", "pruned"), [(0.75, True), (0.8, False), (0.85, False)])
def test_asha_keeps_the_top_third_of_values_at_a_rung(value: float, pruned: bool) -> None:
    # six values with this one: the best 6 // 3 = 2 continue (0.9 and 0.8 so far)
    assert at(SIX_AT_RUNG_1, 1, value, make(SuccessiveHalvingPruner), earlier=[0.0]) is pruned


def test_asha_minimizing_keeps_the_lowest() -> None:
    pruner = make(SuccessiveHalvingPruner, "minimize")
    assert not at(SIX_AT_RUNG_1, 1, 0.55, pruner, earlier=[0.0])  # the 2 lowest: 0.5, 0.55
    assert at(SIX_AT_RUNG_1, 1, 0.61, pruner, earlier=[0.0])  # the 2 lowest: 0.5, 0.6


def test_asha_first_trials_continue_only_when_best() -> None:
    pruner = make(SuccessiveHalvingPruner)
    assert not at([], 1, 0.1, pruner, earlier=[0.0])  # alone at the rung
    assert at([[0.0, 0.5]], 1, 0.4, pruner, earlier=[0.0])  # 2 values: keep max(1, 0) = 1
    assert not at([[0.0, 0.5]], 1, 0.6, pruner, earlier=[0.0])


def test_asha_judges_only_at_rungs_and_each_rung_once() -> None:
    pruner = make(SuccessiveHalvingPruner)
    curves = [[0.0, 0.9, 0.9, 0.9] for _ in range(6)]
    assert not at(curves, 0, -1.0, pruner)  # step 0 is below the first rung
    assert not at(curves, 2, -1.0, pruner, earlier=[0.0, 0.95])  # step 2 lies between rungs
    assert at(curves, 3, -1.0, pruner, earlier=[0.0, 0.95, 0.9])  # rung 3
    assert at(curves, 1, 0.5, pruner, earlier=[0.0])  # rung 1


def test_asha_counts_running_and_pruned_trials_at_a_rung() -> None:
    history = study(SIX_AT_RUNG_1)
    history[0].state = TrialState.RUNNING
    history[1].state = TrialState.PRUNED
    assert make(SuccessiveHalvingPruner).prune(running([0.0, 0.75]), 1, history)
    assert not make(SuccessiveHalvingPruner).prune(running([0.0, 0.85]), 1, history)


def test_asha_takes_a_trials_first_step_at_or_past_a_rung() -> None:
    # steps numbered by resource (10, 30, 90): rung thresholds 1, 3, 9 are all met at step 10
    history = [
        TrialRecord(
            number=i, state=TrialState.COMPLETE, params={}, value=v, intermediate={10: v, 30: v}
        )
        for i, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])
    ]
    pruner = make(SuccessiveHalvingPruner)
    assert pruner.prune(running({10: 0.75}), 10, history)
    assert not pruner.prune(running({10: 0.85}), 10, history)
    aligned = make(SuccessiveHalvingPruner, min_resource=10)  # rungs 10, 30, 90
    assert not aligned.prune(running({10: 0.85, 20: 0.1}), 20, history)  # no rung at 20


def test_asha_min_early_stopping_rate_skips_rungs() -> None:
    pruner = make(SuccessiveHalvingPruner, min_early_stopping_rate=1)  # rungs 3, 9
    curves = [[0.9] * 4 for _ in range(6)]
    assert not at(curves, 1, 0.1, pruner, earlier=[0.1])
    assert at(curves, 3, 0.1, pruner, earlier=[0.1, 0.1, 0.1])


# -- hyperband ------------------------------------------------------------------------------------


def test_hyperband_brackets_follow_hyperband_sizes() -> None:
    pruner = make(HyperbandPruner, min_resource=1, max_resource=9, reduction_factor=3)
    assert pruner.brackets(9) == [9, 5, 3]  # s = 2, 1, 0
    counts = [0, 0, 0]
    for number in range(1700):
        counts[pruner.bracket_of(number, 9)] += 1
    assert [round(c / 100) for c in counts] == [9, 5, 3]
    # a function of the number alone, and interleaved: the first 17 numbers reach every bracket
    again = make(HyperbandPruner, min_resource=1, max_resource=9, reduction_factor=3)
    assert [pruner.bracket_of(n, 9) for n in range(17)] == [
        again.bracket_of(n, 9) for n in range(17)
    ]
    assert {pruner.bracket_of(n, 9) for n in range(17)} == {0, 1, 2}


def test_hyperband_compares_within_a_bracket_with_its_rate() -> None:
    pruner = make(HyperbandPruner, min_resource=1, max_resource=9, reduction_factor=3)
    numbers = {b: [n for n in range(200) if pruner.bracket_of(n, 9) == b] for b in range(3)}

    def complete(number: int) -> TrialRecord:
        curve = dict(enumerate([0.9] * 10))
        return TrialRecord(
            number=number, state=TrialState.COMPLETE, params={}, value=0.9, intermediate=curve
        )

    # bracket 0 (rungs 1, 3, 9): a low value at step 1 is pruned among its own bracket
    zero = numbers[0]
    history = [complete(n) for n in zero[:6]]
    assert pruner.prune(running([0.1, 0.1], number=zero[6]), 1, history)
    # the same values from another bracket do not count: bracket 1 judges from step 3 only
    one = numbers[1]
    assert not pruner.prune(running([0.1, 0.1], number=one[0]), 1, history)
    assert not pruner.prune(running([0.1] * 4, number=one[0]), 3, history)  # alone in bracket 1
    # bracket 2 judges at max_resource only
    two = numbers[2]
    others = [complete(n) for n in two[1:7]]
    assert not pruner.prune(running([0.1] * 4, number=two[0]), 3, others)
    assert pruner.prune(running([0.1] * 10, number=two[0]), 9, others)


def test_hyperband_auto_max_resource_waits_for_a_complete_trial() -> None:
    pruner = make(HyperbandPruner)
    unfinished = study([[0.9] * 10] * 6)
    for trial in unfinished:
        trial.state = TrialState.PRUNED
    assert not pruner.prune(running([0.0, 0.0]), 1, unfinished)
    assert pruner._max_resource(study([[0.9] * 10, [0.9] * 3])) == 9  # the lowest number's


# -- threshold ------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize(
    ("options", "value", "pruned"),
    [
        ({"lower": 0.6}, 0.59, True),
        ({"lower": 0.6}, 0.6, False),
        ({"upper": 2.0}, 2.01, True),
        ({"upper": 2.0}, -5.0, False),
        ({"lower": 0.0, "upper": 1.0}, 0.5, False),
        ({"lower": 0.0, "upper": 1.0}, 1.5, True),
        ({"lower": 0.0}, math.nan, True),
    ],
)
def test_threshold_prunes_values_outside_the_bounds(
    direction: str, options: dict[str, float], value: float, pruned: bool
) -> None:
    pruner = make(ThresholdPruner, direction, **options)
    assert pruner.prune(running([value]), 0, study([[0.99]] * 5)) is pruned
    assert pruner.prune(running([value]), 0, []) is pruned  # other trials play no part


def test_threshold_warmup() -> None:
    pruner = make(ThresholdPruner, lower=0.5, n_warmup_steps=2)
    assert [pruner.prune(running([0.1] * (s + 1)), s, []) for s in range(4)] == [
        False,
        False,
        True,
        True,
    ]


# -- patience -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "patience", "min_delta", "stalled"),
    [
        ([0.5, 0.6, 0.7], 2, 0.0, False),  # improving
        ([0.5, 0.6], 2, 0.0, False),  # fewer than patience + 1 values
        ([0.7, 0.6, 0.65], 2, 0.0, True),  # the last two never beat 0.7
        ([0.7, 0.6, 0.71], 2, 0.0, False),
        ([0.7, 0.6, 0.71], 2, 0.05, True),  # 0.71 is not 0.05 better than 0.7
        ([0.7, 0.6, 0.8, 0.7], 1, 0.0, True),  # nothing better than 0.8 in the last one
        ([0.3], 0, 0.0, True),  # patience 0: the wrapped pruner decides alone
    ],
)
def test_patience_stalls_after_no_improvement(
    values: list[float], patience: int, min_delta: float, stalled: bool
) -> None:
    pruner = make(PatiencePruner, patience=patience, min_delta=min_delta)
    trial = running(values)
    assert pruner.stalled(trial, len(values) - 1) is stalled  # type: ignore[attr-defined]
    assert pruner.prune(trial, len(values) - 1, []) is stalled  # no wrapped: early stopping


def test_patience_minimizing_looks_for_lower_values() -> None:
    pruner = make(PatiencePruner, "minimize", patience=2, min_delta=0.01)
    assert not pruner.prune(running([0.7, 0.8, 0.65]), 2, [])
    assert pruner.prune(running([0.7, 0.8, 0.695]), 2, [])


def test_patience_prunes_only_when_the_wrapped_pruner_agrees() -> None:
    pruner = make(PatiencePruner, patience=2, wrapped={"name": "median"})
    good = [[0.0, 0.1, 0.2, 0.3]] * 5  # medians 0.0, 0.1, 0.2, 0.3
    assert at(good, 3, 0.25, pruner, earlier=[0.5, 0.4, 0.3])  # stalled and below the median
    assert not at(good, 3, 0.35, pruner, earlier=[0.5, 0.4, 0.3])  # stalled, above the median
    assert not at(good, 2, -1.0, pruner, earlier=[-3.0, -2.0])  # below the median, improving


def test_patience_wraps_with_the_wrapped_options() -> None:
    pruner = make(
        PatiencePruner, patience=0, wrapped={"name": "threshold", "options": {"lower": 0.5}}
    )
    assert pruner.prune(running([0.4]), 0, [])
    assert not pruner.prune(running([0.6]), 0, [])


# -- options: strict, and errors that echo the bad value -----------------------------------------


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (MedianPruner, {"n_startup_trials": -1}, "n_startup_trials must be at least 0, but got -1"),
        (MedianPruner, {"interval": 0}, "interval must be at least 1, but got 0"),
        (PercentilePruner, {"percentile": 120}, "percentile must be at most 100, but got 120"),
        (
            SuccessiveHalvingPruner,
            {"reduction_factor": 1},
            "reduction_factor must be at least 2, but got 1",
        ),
        (
            SuccessiveHalvingPruner,
            {"min_resource": 0},
            "min_resource must be at least 1, but got 0",
        ),
        (HyperbandPruner, {"max_resource": "lots"}, "but got 'lots'"),
        (
            HyperbandPruner,
            {"min_resource": 5, "max_resource": 3},
            "max_resource must be at least min_resource=5, but got 3",
        ),
        (ThresholdPruner, {}, "give `lower`, `upper` or both"),
        (ThresholdPruner, {"lower": 2, "upper": 1}, "but got lower=2.0 and upper=1.0"),
        (ThresholdPruner, {"lower": math.inf}, "lower must be a finite number, but got inf"),
        (PatiencePruner, {"min_delta": -0.1}, "min_delta must be at least 0, but got -0.1"),
        (PatiencePruner, {"wrapped": {"name": "medain"}}, "unknown pruner 'medain' to wrap"),
        (
            PatiencePruner,
            {"wrapped": {"name": "median", "options": {"interval": 0}}},
            "wrapped pruner 'median': interval: interval must be at least 1, but got 0",
        ),
    ],
)
def test_bad_options_are_refused_with_the_value(
    cls: type[Pruner], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        cls.Options.model_validate(options)
    assert message in str(caught.value)


def test_validate_names_the_bad_pruner_option(tmp_path: Path) -> None:
    from helpers import cli

    spec = base_spec(
        tmp_path, pruner={"name": "successive_halving", "options": {"reduction_factor": 1}}
    )
    result = cli(["validate", write_spec(tmp_path, spec)], tmp_path)
    assert result.exit_code == 65
    assert "pruner.options.reduction_factor" in result.stderr
    assert "reduction_factor must be at least 2, but got 1" in result.stderr


# -- real studies ---------------------------------------------------------------------------------

KNN_SPACE = {"model__n_neighbors": {"type": "int", "low": 1, "high": 85}}


def fold_study(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """k-NN on iris with 5 folds: large k is hopeless, which shows after a fold or two."""
    return base_spec(
        tmp_path,
        split={
            "test": {"fraction": 0.25, "stratify": True},
            "validation": {"method": "stratified_kfold", "folds": 5},
        },
        space=KNN_SPACE,
        **sections,
    )


def test_median_stops_hopeless_trials_after_a_fold_or_two(tmp_path: Path) -> None:
    spec_dict = fold_study(
        tmp_path,
        budget={"trials": 14},
        pruner={"name": "median", "options": {"n_startup_trials": 3}},
    )
    events, seen = recorder()
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)), events=events)
    trials = stored_trials(spec_dict)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete, [(t.params, t.state) for t in trials]
    assert all(
        len(t.fold_values) == 5 and sorted(t.intermediate) == [0, 1, 2, 3, 4] for t in complete
    )
    for trial in pruned:
        last = max(trial.intermediate)
        assert len(trial.fold_values) == last + 1  # one fold value a step it reached
        assert sorted(trial.intermediate) == list(range(last + 1))
        assert trial.value == pytest.approx(trial.intermediate[last])
        assert trial.value == pytest.approx(sum(trial.fold_values) / len(trial.fold_values))
    assert min(len(t.fold_values) for t in pruned) <= 2
    pruned_events = {e["number"]: e for e in seen if e["event"] == "trial_pruned"}
    assert set(pruned_events) == {t.number for t in pruned}
    for trial in pruned:
        event = pruned_events[trial.number]
        assert event["step"] == max(trial.intermediate) and event["value"] == trial.value
    assert result.counts["pruned"] == len(pruned)
    assert result.best is not None and result.best.state == TrialState.COMPLETE


def test_pruning_composes_with_parallel_workers(tmp_path: Path) -> None:
    spec_dict = fold_study(
        tmp_path,
        budget={"trials": 12},
        pruner={"name": "successive_halving"},
        execution={"workers": 2},
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    trials = stored_trials(spec_dict)
    assert result.counts["failed"] == 0 and len(trials) == 12
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned  # the first trial at a rung continues, later bad ones stop
    assert all(max(t.intermediate) in (1, 3) for t in pruned)  # rungs of 1 * 3**k


TRIAL_MODULE = '''
def curve(context):
    """Reports x * (step + 1) for 5 steps; a bad x is stopped by the pruner."""
    x = context.params["x"]
    for step in range(5):
        try:
            context.report(step, x * (step + 1))
        except Exception:
            assert context.should_prune()
            raise
        assert not context.should_prune()
    return x * 5
'''


def test_a_custom_trial_reports_and_sees_should_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tdcurve.py").write_text(textwrap.dedent(TRIAL_MODULE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec_dict = trial_spec(
        tmp_path,
        "curve",
        {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        budget={"trials": 12},
        pruner={"name": "median", "options": {"n_startup_trials": 2}},
    )
    spec_dict["trial"] = {"function": "tdcurve:curve"}
    spec_dict["allow_imports"] = ["tdcurve"]
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec_dict)))
    trials = stored_trials(spec_dict)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and result.counts["failed"] == 0
    for trial in pruned:
        last = max(trial.intermediate)
        assert last < 4 and trial.value == pytest.approx(trial.params["x"] * (last + 1))
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert sorted(trial.intermediate) == [0, 1, 2, 3, 4]
