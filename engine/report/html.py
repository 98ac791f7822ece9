"""``report.html``: the study's numbers and plots through one Jinja2 template.

Autoescaping is on for the whole template, and the view built here holds plain strings
and numbers only, so a study name, parameter value or error text from storage is always
shown as text, never interpreted as HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from tunedag.baseline import Baseline, compare, describe
from tunedag.evaluation import GAP_TOLERANCE_STDS
from tunedag.looks import Look as LedgerLook
from tunedag.refit import NO_FIT
from tunedag.report.data import ReportData
from tunedag.report.plots import Plot
from tunedag.report.tables import (
    failed_trials,
    first_line,
    fold_spread,
    metric_names,
    param_names,
    top_trials,
)
from tunedag.spec.models import PluginRef
from tunedag.storage import TestEvaluation, TrialRecord, TrialState

TEMPLATE = "report.html.j2"
TOP = 10
#: how much of a failed trial's output the report shows (its last characters)
OUTPUT_SHOWN = 4000


@dataclass
class Row:
    """A trial as the tables show it: every cell already a string."""

    number: int
    value: str
    spread: str
    params: list[str]
    duration: str
    error: str = ""
    attempt: int = 1
    metrics: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class Look:
    """One recorded evaluation of the locked test set."""

    when: str
    trial: int
    value: str
    cv_value: str
    gap: str
    flagged: bool
    second_look: bool
    study: str = ""


@dataclass
class View:
    """Everything the template shows, formatted."""

    study: str
    state: str
    state_class: str
    reason: str
    counts: list[tuple[str, int]]
    metric: str
    direction: str
    elapsed: str
    sampler: str
    pruner: str
    storage: str
    generated: str
    created: str
    notices: list[str] = field(default_factory=list)
    best: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    test_missing: str = ""
    baseline: dict[str, Any] | None = None
    looks: list[Look] = field(default_factory=list)
    second_looks: int = 0
    plots: list[Plot] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)
    top: list[Row] = field(default_factory=list)
    top_of: int = 0
    failed: list[Row] = field(default_factory=list)


def render_html(data: ReportData, plots: list[Plot]) -> str:
    """The report page for ``data``; the plots are referenced by their relative file names."""
    import jinja2

    text = resources.files("tunedag.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return environment.from_string(text).render(view=build_view(data, plots))


def build_view(data: ReportData, plots: list[Plot]) -> View:
    result = data.result
    record = data.record
    trials = data.trials
    names = param_names(data.spec, trials)
    view = View(
        study=data.spec.name,
        state=_state(data),
        state_class="done" if result is not None and result.finished else "open",
        reason=(result.reason or "") if result is not None else "",
        counts=[(state, n) for state, n in (result.counts.items() if result else ()) if n],
        metric=data.metric,
        direction=data.direction,
        elapsed=_duration(record.elapsed_s) if record is not None and record.elapsed_s else "",
        sampler=_plugin(data.spec.sampler),
        pruner=_plugin(data.spec.pruner),
        storage=data.storage_url,
        generated=_when(datetime.now(UTC).timestamp()),
        created=_when(record.created_at) if record is not None else "",
        plots=plots,
        param_names=names,
    )
    if result is None:
        view.notices.append(
            f"Study {data.spec.name!r} has not run yet in {data.storage_url}: there are no "
            "trials to report. Run it with `tunedag run`, then write the report again."
        )
        return view
    if not trials:
        view.notices.append(f"Study {data.spec.name!r} is stored but has no trials yet.")
    best = result.best
    if best is not None:
        spread = fold_spread(best.fold_values)
        view.best = {
            "number": best.number,
            "value": _num(best.value),
            "mean": _num(spread[0]) if spread else "",
            "std": _spread(spread[1]) if spread else "",
            "folds": len(best.fold_values),
            "params": [(n, _num(best.params[n])) for n in names if n in best.params],
            "metrics": [(m, _num(v)) for m, v in best.metric_means().items()],
            "duration": _seconds(best.duration_s),
        }
    elif trials:
        view.notices.append("No trial has completed, so there is no best configuration yet.")
    if result.test is not None:
        view.test = _test(result.test, best)
    else:
        view.test_missing = _why_no_test(data)
    if result.baseline is not None:
        view.baseline = _baseline(result.baseline, best, data)
    # the ledger's looks at these test rows (any study), else this study's own
    view.looks = [_ledger_look(look, data.direction) for look in result.looks] or [
        _look(e, data.spec.name) for e in data.evaluations
    ]
    view.second_looks = max(len(data.second_looks), result.second_look_count)
    top = top_trials(trials, data.direction, None)
    view.top_of = len(top)
    view.metric_names = metric_names(data.spec, trials)
    view.top = [_row(t, names, view.metric_names) for t in top[:TOP]]
    view.failed = [
        replace(_row(t, names), output=_output_tail(data.failed_outputs.get(t.number, "")))
        for t in failed_trials(trials)
    ]
    return view


def _state(data: ReportData) -> str:
    result = data.result
    if result is None:
        return "not run yet"
    if result.finished:
        return "failed" if result.reason == "failed" else "finished"
    return "in progress"


def _test(test: TestEvaluation, best: TrialRecord | None) -> dict[str, Any]:
    spread = fold_spread(best.fold_values) if best is not None else None
    return {
        "trial": test.trial_number,
        "value": _num(test.value),
        "cv_value": _num(test.cv_value),
        "gap": f"{test.gap:+.4g}" if not math.isnan(test.gap) else "nan",
        "flagged": test.flagged,
        "tolerance": f"{GAP_TOLERANCE_STDS:g}",
        "std": _spread(spread[1]) if spread else "",
        "stale": best is not None and best.number != test.trial_number,
        "metrics": [(name, _num(value)) for name, value in test.metrics.items()],
    }


def _baseline(baseline: Baseline, best: TrialRecord | None, data: ReportData) -> dict[str, Any]:
    lines = describe(baseline, best, data.direction, data.metric)
    comparison = compare(baseline, best, data.direction)
    return {
        "where": f"trial #{baseline.trial}" if baseline.inside_space else "outside the space",
        "value": _num(baseline.value) if baseline.value is not None else "no score",
        "params": [(name, _num(value)) for name, value in baseline.params.items()],
        "gain": f"{comparison.gain:+.4g}" if comparison else "",
        "stds": f"{comparison.stds:+.2f}" if comparison and comparison.stds is not None else "",
        "warning": lines[1].removeprefix("warning: ") if len(lines) > 1 else "",
        "error": baseline.error or "",
    }


def _why_no_test(data: ReportData) -> str:
    result = data.result
    assert result is not None
    if data.spec.trial is not None and data.spec.trial.fit is None:
        return f"No test evaluation: {NO_FIT.removeprefix('no test score: ')}."
    if result.reason == "failed":
        return (
            "No test evaluation: the study failed (more failed trials than budget.max_failed), "
            "and a failed study is never scored on its test set."
        )
    if not result.finished:
        return (
            "No test evaluation yet: the study is not finished. The best configuration is "
            "scored on the locked test set once, when the study reaches its budget."
        )
    if result.best is None:
        return "No test evaluation: no trial completed, so there was nothing to score."
    return "No test evaluation is recorded for this study."


def _ledger_look(look: LedgerLook, direction: str) -> Look:
    value, cv = look.value, look.cv_value
    gap = (
        None
        if value is None or cv is None
        else (cv - value if direction == "maximize" else value - cv)
    )
    return Look(
        when=_when(look.looked_at),
        trial=look.trial,
        value=_num(value),
        cv_value=_num(cv),
        gap="" if gap is None else f"{gap:+.4g}",
        flagged=False,
        second_look=look.number > 1,
        study=look.study,
    )


def _look(evaluation: TestEvaluation, study: str) -> Look:
    return Look(
        study=study,
        when=_when(evaluation.evaluated_at),
        trial=evaluation.trial_number,
        value=_num(evaluation.value),
        cv_value=_num(evaluation.cv_value),
        gap=f"{evaluation.gap:+.4g}",
        flagged=evaluation.flagged,
        second_look=evaluation.second_look,
    )


def _row(trial: TrialRecord, names: list[str], metrics: list[str] | None = None) -> Row:
    spread = fold_spread(trial.fold_values)
    means = trial.metric_means()
    return Row(
        number=trial.number,
        value=_num(trial.value),
        spread=f"± {_spread(spread[1])} ({len(trial.fold_values)} folds)"
        if spread and len(trial.fold_values) > 1
        else "",
        params=[_num(trial.params[n]) if n in trial.params else "" for n in names],
        duration=_seconds(trial.duration_s),
        error=first_line(trial.error) if trial.state == TrialState.FAILED else "",
        attempt=trial.attempt,
        metrics=[_num(means[m]) if m in means else "" for m in metrics or []],
    )


def _output_tail(output: str) -> str:
    """The end of a failed trial's output, where it says why (``status --trial N`` has it all)."""
    if len(output) <= OUTPUT_SHOWN:
        return output
    return "[...]\n" + output[-OUTPUT_SHOWN:]


def _plugin(ref: PluginRef) -> str:
    if not ref.options:
        return ref.name
    options = ", ".join(f"{k}={v}" for k, v in ref.options.items())
    return f"{ref.name} ({options})"


def _num(value: Any) -> str:
    """A value as the report prints it: 5 significant digits for floats, as-is otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def _spread(std: float) -> str:
    """A standard deviation needs two significant digits, not five."""
    return f"{std:.2g}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{seconds:.1f} s"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
