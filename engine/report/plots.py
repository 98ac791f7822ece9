"""The report's PNG plots, drawn with matplotlib's Agg canvas, one function a plot.

Figures are built with the object API (``Figure`` + ``FigureCanvasAgg``), never pyplot, so
drawing a report neither changes the caller's matplotlib backend nor keeps figures alive.
matplotlib is imported inside :func:`draw_plots`, so ``import tunedag`` stays fast.
A plot with nothing to show is skipped rather than drawn empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tunedag.report.data import ReportData
from tunedag.report.tables import fold_spread, param_names, top_trials
from tunedag.spec.models import CategoricalDimension, Dimension, IntDimension
from tunedag.storage import FINISHED_STATES, TrialRecord, TrialState

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Scale = Literal["linear", "log", "category"]

#: every file name a report may draw; stale ones from an earlier report are removed
PLOT_FILES = ("history.png", "params.png", "intermediate.png", "folds.png", "durations.png")

COLORS = {
    TrialState.COMPLETE: "#1f77b4",
    TrialState.PRUNED: "#ff7f0e",
    TrialState.FAILED: "#d62728",
    TrialState.RUNNING: "#7f7f7f",
    TrialState.WAITING: "#bcbcbc",
}
TEST_COLOR = "#d62728"
BEST_COLOR = "#2ca02c"
DPI = 100


@dataclass(frozen=True)
class Plot:
    """One PNG beside report.html: its file name, a title, and the alt text that describes it."""

    file: str
    title: str
    alt: str


def draw_plots(data: ReportData, out_dir: Path) -> list[Plot]:
    """Draw every plot the study has something for into ``out_dir``; returns those drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure(width: float, height: float) -> Figure:
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig

    drawers: Sequence[Callable[[ReportData, Callable[[float, float], Figure]], _Drawn | None]] = (
        _history,
        _params,
        _intermediate,
        _folds,
        _durations,
    )
    plots: list[Plot] = []
    for file, drawer in zip(PLOT_FILES, drawers, strict=True):
        target = out_dir / file
        drawn = drawer(data, figure)
        if drawn is None:
            target.unlink(missing_ok=True)  # a stale plot must not outlive its data
            continue
        drawn.figure.savefig(target, format="png")
        plots.append(Plot(file, drawn.title, drawn.alt))
    return plots


def axis_scale(dimension: Dimension | None, values: Sequence[Any]) -> Scale:
    """How a parameter's axis is drawn: categories, or the scale the space samples it on.

    A parameter no longer in the spec is judged by its values.
    """
    if isinstance(dimension, CategoricalDimension):
        return "category"
    if dimension is None and not all(_is_number(v) for v in values):
        return "category"
    if dimension is not None and dimension.log and all(_is_number(v) and v > 0 for v in values):
        return "log"
    return "linear"


def categories(dimension: Dimension | None, values: Sequence[Any]) -> list[Any]:
    """The category axis: the spec's choices in their order, then any other stored value."""
    order = list(dimension.labels) if isinstance(dimension, CategoricalDimension) else []
    keys = {repr(c) for c in order}
    for value in values:
        if repr(value) not in keys:
            keys.add(repr(value))
            order.append(value)
    return order


@dataclass
class _Drawn:
    figure: Figure
    title: str
    alt: str


Make = Callable[[float, float], "Figure"]


def _history(data: ReportData, make: Make) -> _Drawn | None:
    trials = [t for t in data.trials if t.state in FINISHED_STATES]
    if not trials:
        return None
    fig = make(9.0, 4.5)
    ax = fig.add_subplot()
    for state, filled in ((TrialState.COMPLETE, True), (TrialState.PRUNED, False)):
        shown = [t for t in trials if t.state == state and _finite(t.value)]
        if shown:
            _scatter(ax, [t.number for t in shown], [_y(t) for t in shown], state, filled)
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and _finite(t.value)),
        key=lambda t: t.number,
    )
    better = max if data.direction == "maximize" else min
    if complete:
        xs: list[int] = []
        best: list[float] = []
        for trial in complete:
            xs.append(trial.number)
            best.append(_y(trial) if not best else better(best[-1], _y(trial)))
        xs.append(max(t.number for t in trials))
        best.append(best[-1])
        ax.step(xs, best, where="post", color=BEST_COLOR, linewidth=2, label="best so far")
    if data.result is not None and data.result.best is not None:
        star = data.result.best
        ax.scatter([star.number], [_y(star)], marker="*", s=260, color=BEST_COLOR, zorder=4)
    no_value = [t.number for t in trials if not _finite(t.value)]
    if no_value:
        mark_on_edge(ax, no_value, "failed (no value)")
    if len(no_value) == len(trials):
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no trial has a value", ha="center", transform=ax.transAxes)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{_plain(data.metric)} ({_better(data.direction)})")
    ax.set_title("Optimization history")
    ax.grid(alpha=0.3)
    _integer_ticks(ax)
    _legend(ax)
    pruned = any(t.state == TrialState.PRUNED for t in trials)
    alt = (
        f"Optimization history: {data.metric} of each trial by trial number "
        f"({_state_counts(trials)}), with the best value so far ({_better(data.direction)})"
        + ("; a pruned trial (hollow) shows its last reported value" if pruned else "")
        + ("; failed trials have no value and are marked on the bottom edge" if no_value else "")
    )
    return _Drawn(fig, "Optimization history", alt)


def _params(data: ReportData, make: Make) -> _Drawn | None:
    valued = [t for t in data.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    valued = [t for t in valued if _finite(t.value)]
    names = param_names(data.spec, data.trials)
    if not valued or not names:
        return None
    failed = [t for t in data.trials if t.state in FINISHED_STATES and not _finite(t.value)]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = make(4.2 * columns, 3.4 * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    scales: list[str] = []
    for ax, name in zip(axes.flat, names, strict=False):
        dimension = data.spec.space.get(name)
        used = [t for t in valued if name in t.params]
        used_failed = [t for t in failed if name in t.params]
        every = [t.params[name] for t in used + used_failed]
        scale = axis_scale(dimension, every)
        scales.append(f"{name} ({scale})")
        position = _positioner(ax, scale, dimension, every)
        for state, filled in ((TrialState.COMPLETE, True), (TrialState.PRUNED, False)):
            shown = [t for t in used if t.state == state]
            if shown:
                xs = [position(t.params[name], t.number) for t in shown]
                _scatter(ax, xs, [_y(t) for t in shown], state, filled)
        if used_failed:
            xs = [position(t.params[name], t.number) for t in used_failed]
            mark_on_edge(ax, xs, "failed (no value)")
        if not used:
            ax.text(0.5, 0.5, "no trial with a value used it", ha="center", transform=ax.transAxes)
        ax.set_title(_plain(name), fontsize=10)
        ax.set_ylabel(_plain(data.metric))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    _legend(axes.flat[0])
    alt = (
        f"{data.metric} against each search-space parameter, one panel a parameter: "
        + ", ".join(scales)
        + "; filled points completed, hollow ones were pruned"
    )
    return _Drawn(fig, "Parameters", alt)


def _intermediate(data: ReportData, make: Make) -> _Drawn | None:
    curves = [t for t in data.trials if t.intermediate]
    if not any(len(t.intermediate) > 1 for t in curves):
        return None
    fig = make(9.0, 4.5)
    ax = fig.add_subplot()
    styles: dict[TrialState, dict[str, Any]] = {
        TrialState.COMPLETE: {"linewidth": 1.0, "alpha": 0.45, "zorder": 2},
        TrialState.PRUNED: {"linewidth": 1.6, "alpha": 0.9, "zorder": 3},
        TrialState.FAILED: {"linewidth": 1.0, "alpha": 0.6, "linestyle": "--", "zorder": 2},
    }
    seen: set[TrialState] = set()
    for trial in sorted(curves, key=lambda t: t.state == TrialState.PRUNED):
        steps = sorted(trial.intermediate)
        values = [trial.intermediate[s] for s in steps]
        style = styles.get(trial.state, {"linewidth": 1.0, "alpha": 0.6, "linestyle": ":"})
        label = None if trial.state in seen else trial.state.value
        seen.add(trial.state)
        ax.plot(steps, values, color=COLORS[trial.state], label=label, **style)
        if trial.state == TrialState.PRUNED:
            ax.scatter(steps[-1:], values[-1:], marker="x", color=COLORS[trial.state], zorder=4)
    ax.set_xlabel("step")
    ax.set_ylabel(f"reported {_plain(data.metric)}")
    ax.set_title("Intermediate values (what the pruner judges)")
    ax.grid(alpha=0.3)
    _integer_ticks(ax)
    _legend(ax)
    pruned = sum(1 for t in curves if t.state == TrialState.PRUNED)
    alt = (
        f"Intermediate values of {len(curves)} trials by step, the curves the pruner judges; "
        f"{pruned} pruned trials are highlighted and end with a cross where they were stopped"
    )
    return _Drawn(fig, "Intermediate values", alt)


def _folds(data: ReportData, make: Make) -> _Drawn | None:
    top = [t for t in top_trials(data.trials, data.direction, 10) if t.fold_values]
    if not top:
        return None
    fig = make(9.0, 4.5)
    ax = fig.add_subplot()
    for index, trial in enumerate(top):
        values = [v for v in trial.fold_values if not math.isnan(v)]
        offsets = [index + 0.18 * (k / max(len(values) - 1, 1) - 0.5) for k in range(len(values))]
        ax.scatter(
            offsets,
            values,
            s=16,
            color="#8c8c8c",
            zorder=2,
            label="fold score" if index == 0 else None,
        )
        spread = fold_spread(trial.fold_values)
        if spread is not None:
            mean, std = spread
            ax.errorbar(
                [index],
                [mean],
                yerr=[std],
                fmt="o",
                color=COLORS[TrialState.COMPLETE],
                capsize=5,
                zorder=3,
                label="mean ± std" if index == 0 else None,
            )
    test = data.result.test if data.result is not None else None
    tested = [i for i, t in enumerate(top) if test is not None and t.number == test.trial_number]
    if test is not None and tested:
        ax.scatter(
            tested,
            [test.value],
            marker="D",
            s=70,
            color=TEST_COLOR,
            zorder=4,
            label=f"test score (trial {test.trial_number})",
        )
    ax.set_xticks(range(len(top)), [f"#{t.number}" for t in top])
    ax.set_xlabel("trial, best first")
    ax.set_ylabel(_plain(data.metric))
    ax.set_title(f"Fold scores of the top {len(top)} trials")
    ax.grid(alpha=0.3, axis="y")
    _legend(ax)
    alt = (
        f"Fold scores of the {len(top)} best complete trials, best first, each with its mean "
        "and standard deviation"
        + (
            f"; the test score of trial {test.trial_number} is a red diamond"
            if test is not None and tested
            else ""
        )
    )
    return _Drawn(fig, "Fold scores", alt)


def _durations(data: ReportData, make: Make) -> _Drawn | None:
    timed = [t for t in data.trials if _finite(t.duration_s)]
    if not timed:
        return None
    fig = make(9.0, 3.6)
    ax = fig.add_subplot()
    for state in TrialState:
        shown = [t for t in timed if t.state == state]
        if shown:
            ax.bar(
                [t.number for t in shown],
                [float(t.duration_s or 0.0) for t in shown],
                color=COLORS[state],
                label=state.value,
            )
    ax.set_xlabel("trial number")
    ax.set_ylabel("seconds")
    ax.set_title("Trial durations")
    ax.grid(alpha=0.3, axis="y")
    _integer_ticks(ax)
    _legend(ax)
    total = sum(float(t.duration_s or 0.0) for t in timed)
    alt = f"Duration of each of {len(timed)} trials in seconds, by state ({total:.1f} s in all)"
    return _Drawn(fig, "Trial durations", alt)


# -- helpers -------------------------------------------------------------------------------------


def _positioner(
    ax: Axes, scale: Scale, dimension: Dimension | None, values: Sequence[Any]
) -> Callable[[Any, int], float]:
    """Set the axis up for ``scale``; returns value, trial number -> x position."""
    if scale != "category":
        ax.set_xscale(scale)
        if scale == "linear" and isinstance(dimension, IntDimension):
            _integer_ticks(ax)
        return lambda value, _number: float(value)
    order = categories(dimension, values)
    index = {repr(c): i for i, c in enumerate(order)}
    labels = [_plain(_short(_label(c))) for c in order]
    ax.set_xticks(range(len(order)), labels)
    if sum(len(label) for label in labels) > 30:
        ax.tick_params(axis="x", labelrotation=25)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    ax.set_xlim(-0.5, len(order) - 0.5)
    # a fixed small spread per trial, so equal values on one category stay visible
    return lambda value, number: index[repr(value)] + 0.3 * ((number * 0.618) % 1.0 - 0.5)


def _scatter(
    ax: Axes, xs: Sequence[float], ys: Sequence[float], state: TrialState, filled: bool
) -> None:
    color = COLORS[state]
    ax.scatter(
        xs,
        ys,
        s=28,
        label=state.value,
        zorder=3,
        facecolors=color if filled else "none",
        edgecolors=color,
    )


def mark_on_edge(ax: Axes, xs: Sequence[float], label: str) -> None:
    """Trials without a value: crosses on the bottom edge, at their x.

    Points drawn in axes coordinates do not widen the x range by themselves, so their x
    values are added to the data limits: a failed trial past the others stays in view.
    """
    ax.update_datalim([(x, 0.0) for x in xs], updatex=True, updatey=False)
    ax.autoscale_view()
    ax.scatter(
        xs,
        [0.0] * len(xs),
        transform=ax.get_xaxis_transform(),
        marker="x",
        s=40,
        color=COLORS[TrialState.FAILED],
        clip_on=False,
        zorder=4,
        label=label,
    )


def _legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="best")


def _integer_ticks(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _state_counts(trials: Sequence[TrialRecord]) -> str:
    counts = {state: sum(1 for t in trials if t.state == state) for state in FINISHED_STATES}
    order = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)
    return ", ".join(f"{counts[s]} {s.value}" for s in order if counts[s])


def _better(direction: str) -> str:
    return "higher is better" if direction == "maximize" else "lower is better"


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


def _y(trial: TrialRecord) -> float:
    return float(trial.value if trial.value is not None else math.nan)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> str:
    """Text for matplotlib: a ``$`` would start mathtext, so a name or a value escapes it."""
    return text.replace("$", r"\$")
