"""Built-in pruners: whether a running trial should stop, from its intermediate values.

What a step is
    A pipeline study reports the running mean of its fold scores after each fold, as steps
    0, 1, ... (one per fold). A study with a ``fidelity:`` section reports the mean over
    folds of the validation score after each training increment, as the step numbered by
    the resource reached (``n_estimators`` or ``max_iter`` = 10, 30, 90 ...; the epoch
    1, 2 ... for ``partial_fit``). A custom trial chooses its own steps with
    ``context.report(step, value)``. Every trial of a study uses the same steps, so a
    pruner compares trials at equal steps; its step options (``n_warmup_steps``,
    ``min_resource``) are in the same units.

The pruners
    ``none``                never prunes.
    ``median``              prunes a trial worse than the median of the complete trials
                            at the same step (the median stopping rule).
    ``percentile``          the same with another percentile: ``percentile: 25`` keeps
                            trials in the best 25% at each step.
    ``successive_halving``  asynchronous successive halving (ASHA): at each rung a trial
                            continues only when it is in the top 1/``reduction_factor`` of
                            every value recorded at that rung so far.
    ``hyperband``           several ASHA brackets with different
                            ``min_early_stopping_rate``; a trial's number picks its bracket.
    ``threshold``           prunes a value outside ``[lower, upper]`` (or NaN).
    ``patience``            prunes when a wrapped pruner says so and the trial has not
                            improved for ``patience`` steps.

Each class's docstring gives its exact rule. A NaN value at a judged step is pruned, and
other trials' NaN values are ignored.

Parallel workers (asynchronous semantics)
    The driver asks the pruner after every report, with the other trials as stored at that
    moment; nothing waits for other trials. ``median`` and ``percentile`` judge against
    trials that have completed, so with N workers a trial may be judged against fewer
    trials than in a sequential run, and may survive where a sequential run would have
    stopped it (``threshold`` looks at no other trial). ``successive_halving`` and
    ``hyperband`` count every value recorded at a rung, running trials' included, as ASHA
    does: a trial is never held back to wait for a rung to fill up, and early trials are
    judged against few values (the first trial at a rung always continues). A decision is
    never revisited, so a trial that passed a rung stays passed even when better trials
    reach that rung later. With one worker every decision is a function of the trials'
    numbers and values, so a resumed study decides as an uninterrupted one would.

Pruned trials
    A pruned trial is stored with state ``pruned``, every intermediate value it reported,
    and as ``value`` its last reported value (the mean over the folds or resource it
    reached); the event stream has a ``trial_pruned`` event with its last step and value.
    It is never the study's best (only complete trials are) and never scored on the test
    set. Samplers see pruned trials in their history: ``random`` and ``grid`` ignore every
    value, so pruning does not change what they propose; model-based samplers that use
    ``Sampler.loss`` learn from complete trials only (``loss`` is None for a pruned one)
    and should treat a pruned configuration as seen and not worth proposing again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeAlias

import numpy as np
from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tunedag import hookimpl
from tunedag.plugin import PluginOptions
from tunedag.pruner import Pruner
from tunedag.sampler import Direction
from tunedag.storage import TrialRecord, TrialState

# -- option types whose errors echo the bad value ------------------------------------------------


def _range(
    *, ge: float | None = None, gt: float | None = None, le: float | None = None
) -> tuple[AfterValidator, Any]:
    """A check that names the option and echoes a bad value, and its JSON Schema bounds."""

    def check(value: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, but got {value!r}")
        if ge is not None and value < ge:
            raise ValueError(f"{name} must be at least {ge:g}, but got {value!r}")
        if gt is not None and value <= gt:
            raise ValueError(f"{name} must be above {gt:g}, but got {value!r}")
        if le is not None and value > le:
            raise ValueError(f"{name} must be at most {le:g}, but got {value!r}")
        return value

    bounds = {"minimum": ge, "exclusiveMinimum": gt, "maximum": le}
    schema: dict[str, Any] = {key: bound for key, bound in bounds.items() if bound is not None}
    return AfterValidator(check), Field(json_schema_extra=schema)


_NON_NEGATIVE = _range(ge=0)
_POSITIVE = _range(ge=1)
_AT_LEAST_TWO = _range(ge=2)
_FINITE = _range()
_PERCENT = _range(ge=0, le=100)

NonNegativeInt: TypeAlias = Annotated[int, _NON_NEGATIVE[0], _NON_NEGATIVE[1]]
PositiveInt: TypeAlias = Annotated[int, _POSITIVE[0], _POSITIVE[1]]
ReductionFactor: TypeAlias = Annotated[int, _AT_LEAST_TWO[0], _AT_LEAST_TWO[1]]
Finite: TypeAlias = Annotated[float, _FINITE[0], _FINITE[1]]
NonNegative: TypeAlias = Annotated[float, _NON_NEGATIVE[0], _NON_NEGATIVE[1]]
Percent: TypeAlias = Annotated[float, _PERCENT[0], _PERCENT[1]]


def _good(value: float) -> bool:
    return not math.isnan(value)


def _first_step_at(intermediate: Mapping[int, float], threshold: float) -> int | None:
    """The trial's first reported step at or past ``threshold``: where it met that rung."""
    steps = [step for step in intermediate if step >= threshold]
    return min(steps) if steps else None


# -- none, median, percentile ----------------------------------------------------------------------


class NoPruner(Pruner):
    """Never prunes."""

    name = "none"
    may_prune = False

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        return False


class _StepOptions(Pruner.Options):
    n_startup_trials: NonNegativeInt = Field(
        5, description="complete trials with a value at a step before that step is judged"
    )
    n_warmup_steps: NonNegativeInt = Field(0, description="steps below this are never judged")
    interval: PositiveInt = Field(
        1, description="judge every this many steps, from n_warmup_steps on"
    )


class PercentilePruner(Pruner):
    """Prune a trial whose value at a step is worse than a percentile of the complete trials.

    Rule: at a step ``s`` with ``s >= n_warmup_steps`` and ``(s - n_warmup_steps) %
    interval == 0``, take the values at ``s`` of every other trial that completed. With at
    least ``max(n_startup_trials, 1)`` of them, prune when the trial's value at ``s`` is
    worse than their ``percentile``-th percentile counted from the best (linear
    interpolation): maximizing, below the (100 - percentile)-th percentile; minimizing,
    above the percentile-th. ``percentile: 25`` keeps the best quarter; 50 is the median.
    Running and pruned trials are not counted (as in Optuna and Vizier's median stopping
    rule): the reference is what a configuration worth finishing looked like at ``s``.
    The trial's current value is judged, not its best so far: for fold scores it is the
    running mean, the best estimate there is.
    """

    name = "percentile"

    class Options(_StepOptions):
        percentile: Percent = Field(
            25.0, description="keep trials within the best this many percent at each step"
        )

    def _percentile(self) -> float:
        return float(self.options.percentile)

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        options = self.options
        if step < options.n_warmup_steps or (step - options.n_warmup_steps) % options.interval:
            return False
        value = trial.intermediate[step]
        complete = [
            other.intermediate[step]
            for other in history
            if other.number != trial.number
            and other.state == TrialState.COMPLETE
            and step in other.intermediate
            and _good(other.intermediate[step])
        ]
        if len(complete) < max(options.n_startup_trials, 1):
            return False
        if not _good(value):
            return True
        if self.direction == "maximize":
            return value < float(np.percentile(complete, 100.0 - self._percentile()))
        return value > float(np.percentile(complete, self._percentile()))


class MedianPruner(PercentilePruner):
    """Prune a trial whose value at a step is worse than the median of the complete trials.

    Rule: ``percentile`` with ``percentile: 50``: at a judged step (``s >=
    n_warmup_steps``, every ``interval`` steps), once at least ``max(n_startup_trials, 1)``
    other complete trials reported at ``s``, prune when the trial's value at ``s`` is worse
    than the median of theirs. Running and pruned trials are not counted.
    """

    name = "median"

    class Options(_StepOptions):
        pass

    def _percentile(self) -> float:
        return 50.0


# -- successive halving and hyperband --------------------------------------------------------------


def _rung_step(min_resource: int, reduction_factor: int, rate: int, rung: int) -> int:
    return int(min_resource * reduction_factor ** (rate + rung))


def _asha_prune(
    pruner: Pruner,
    trial: TrialRecord,
    step: int,
    competitors: Sequence[TrialRecord],
    *,
    min_resource: int,
    reduction_factor: int,
    rate: int,
) -> bool:
    """ASHA's decision for ``trial`` at ``step`` against ``competitors`` (others, any state)."""
    value = trial.intermediate[step]
    earlier = [s for s in trial.intermediate if s < step]
    rung = 0
    while (threshold := _rung_step(min_resource, reduction_factor, rate, rung)) <= step:
        rung += 1
        if any(s >= threshold for s in earlier):
            continue  # this rung was judged at an earlier report
        if not _good(value):
            return True
        values = [value]
        for other in competitors:
            if other.number == trial.number:
                continue
            at = _first_step_at(other.intermediate, threshold)
            if at is not None and _good(other.intermediate[at]):
                values.append(other.intermediate[at])
        keep = max(1, len(values) // reduction_factor)
        ranked = sorted(values, reverse=pruner.direction == "maximize")
        if pruner.better(ranked[keep - 1], value):
            return True
    return False


class SuccessiveHalvingPruner(Pruner):
    """Asynchronous successive halving (ASHA, Li et al. 2018).

    Rule: rung ``k`` (k = 0, 1, ...) lies at step ``min_resource * reduction_factor **
    (min_early_stopping_rate + k)``. A trial is judged at a rung when it first reports at
    or past that step (one report may pass several rungs; each is judged). Its value there
    is compared with the value every other trial recorded at that rung so far (the value
    at its first step at or past the rung), whatever the other trial's state: with ``n``
    values in all, the trial continues only if it is among the best ``max(1, n //
    reduction_factor)``. So the first trial at a rung always continues, and until
    ``reduction_factor`` values are there a trial continues only if it is the best.
    Steps between rungs are never judged.
    """

    name = "successive_halving"

    class Options(Pruner.Options):
        min_resource: PositiveInt = Field(
            1, description="the step of the first rung (with min_early_stopping_rate 0)"
        )
        reduction_factor: ReductionFactor = Field(
            3, description="rungs are this factor apart; the top 1/factor continue"
        )
        min_early_stopping_rate: NonNegativeInt = Field(
            0, description="skip this many rungs at the start"
        )

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        options = self.options
        return _asha_prune(
            self,
            trial,
            step,
            history,
            min_resource=options.min_resource,
            reduction_factor=options.reduction_factor,
            rate=options.min_early_stopping_rate,
        )


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class HyperbandPruner(Pruner):
    """Hyperband (Li et al. 2017) as brackets of asynchronous successive halving.

    Rule: with ``s_max = floor(log(max_resource / min_resource) / log(reduction_factor))``
    there are ``s_max + 1`` brackets; bracket ``b`` is ``successive_halving`` with
    ``min_early_stopping_rate = b`` (bracket 0 judges from ``min_resource`` on, the last
    only at ``max_resource``). Trial number ``n`` goes to the bracket where ``frac(n *
    0.618...)`` falls when [0, 1) is cut in proportion to Hyperband's bracket sizes
    (``ceil((s_max + 1) / (s + 1) * reduction_factor ** s)`` with ``s = s_max - b``), so
    the assignment depends on the number alone and brackets interleave evenly. A trial is
    compared only with trials of its own bracket. ``max_resource: auto`` takes the last step
    of the lowest-numbered complete trial and prunes nothing before one exists.
    """

    name = "hyperband"

    class Options(Pruner.Options):
        min_resource: PositiveInt = Field(1, description="the step of bracket 0's first rung")
        max_resource: int | Literal["auto"] = Field(
            "auto", description="the last step of a full trial, or auto (from the first complete)"
        )
        reduction_factor: ReductionFactor = Field(
            3, description="rungs are this factor apart; the top 1/factor continue"
        )

        @field_validator("max_resource", mode="before")
        @classmethod
        def _int_or_auto(cls, value: Any) -> Any:
            if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            raise ValueError(f"max_resource must be a step (an integer) or auto, but got {value!r}")

        @model_validator(mode="after")
        def _range(self) -> HyperbandPruner.Options:
            if self.max_resource != "auto" and self.max_resource < self.min_resource:
                raise ValueError(
                    f"max_resource must be at least min_resource={self.min_resource}, but got "
                    f"{self.max_resource!r}"
                )
            return self

    def _max_resource(self, history: Sequence[TrialRecord]) -> int | None:
        if self.options.max_resource != "auto":
            return int(self.options.max_resource)
        complete = [t for t in history if t.state == TrialState.COMPLETE and t.intermediate]
        if not complete:
            return None
        return max(min(complete, key=lambda t: t.number).intermediate)

    def brackets(self, max_resource: int) -> list[int]:
        """Hyperband's number of trials per bracket, for bracket 0, 1, ..."""
        options = self.options
        ratio = max(max_resource / options.min_resource, 1.0)
        s_max = math.floor(math.log(ratio) / math.log(options.reduction_factor) + 1e-9)
        n = s_max + 1
        return [
            math.ceil(n / (s + 1) * options.reduction_factor**s)
            for s in (s_max - b for b in range(n))
        ]

    def bracket_of(self, number: int, max_resource: int) -> int:
        sizes = self.brackets(max_resource)
        point = (number * _GOLDEN) % 1.0 * sum(sizes)
        total = 0
        for bracket, size in enumerate(sizes):
            total += size
            if point < total:
                return bracket
        return len(sizes) - 1

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        max_resource = self._max_resource(history)
        if max_resource is None:
            return False
        bracket = self.bracket_of(trial.number, max_resource)
        same = [t for t in history if self.bracket_of(t.number, max_resource) == bracket]
        return _asha_prune(
            self,
            trial,
            step,
            same,
            min_resource=self.options.min_resource,
            reduction_factor=self.options.reduction_factor,
            rate=bracket,
        )


# -- threshold -------------------------------------------------------------------------------------


class ThresholdPruner(Pruner):
    """Prune a value outside fixed bounds.

    Rule: at a step ``s >= n_warmup_steps``, prune when the value is below ``lower``, above
    ``upper``, or NaN, whatever the study's direction (a bound is the absolute limit of a
    sensible value: ``lower: 0.6`` on an accuracy stops trials no better than chance). Other
    trials play no part. An ``upper`` bound on a maximized objective prunes the best
    trials: use it for minimized ones (or for values that signal a broken run).
    """

    name = "threshold"

    class Options(Pruner.Options):
        lower: Finite | None = Field(None, description="prune values below this")
        upper: Finite | None = Field(None, description="prune values above this")
        n_warmup_steps: NonNegativeInt = Field(0, description="steps below this are never judged")

        @model_validator(mode="after")
        def _bounds(self) -> ThresholdPruner.Options:
            if self.lower is None and self.upper is None:
                raise ValueError("give `lower`, `upper` or both, but got neither")
            if self.lower is not None and self.upper is not None and self.lower > self.upper:
                raise ValueError(
                    f"lower must not be above upper, but got lower={self.lower!r} and "
                    f"upper={self.upper!r}"
                )
            return self

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        options = self.options
        if step < options.n_warmup_steps:
            return False
        value = trial.intermediate[step]
        if not _good(value):
            return True
        if options.lower is not None and value < options.lower:
            return True
        return options.upper is not None and value > options.upper


# -- patience --------------------------------------------------------------------------------------


def pruner_class(name: str) -> type[Pruner]:
    """A pruner class by name: the built-ins, then those installed plugins register."""
    if name in BUILTIN:
        return BUILTIN[name]
    from tunedag.registry import make_plugins

    provided = make_plugins().provided["pruner"]
    if name not in provided:
        known = ", ".join(sorted({*BUILTIN, *provided}))
        raise ValueError(f"unknown pruner {name!r} to wrap (known: {known})")
    cls: type[Pruner] = provided[name].cls  # type: ignore[assignment]
    return cls


class WrappedPruner(PluginOptions):
    """The pruner `patience` asks: a name and its options, as in the spec's `pruner:`."""

    name: str = Field(description="a pruner name, such as median")
    options: dict[str, Any] = Field(default_factory=dict, description="that pruner's options")

    @model_validator(mode="after")
    def _resolves(self) -> WrappedPruner:
        cls = pruner_class(self.name)
        try:
            cls.Options.model_validate(self.options)
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(map(str, item['loc'])) or 'options'}: "
                f"{item['msg'].removeprefix('Value error, ')}"
                for item in error.errors(include_url=False)
            )
            raise ValueError(f"wrapped pruner {self.name!r}: {details}") from None
        return self

    def build(self, direction: Direction) -> Pruner:
        cls = pruner_class(self.name)
        return cls(cls.Options.model_validate(self.options), direction=direction)


class PatiencePruner(Pruner):
    """Prune only when a wrapped pruner says so and the trial has stopped improving.

    Rule: take the trial's values in step order up to this step, ``v_1 ... v_n``. It has
    not improved for ``patience`` steps when ``n > patience`` and none of its last
    ``patience`` values beats ``best(v_1 ... v_(n - patience))`` by more than
    ``min_delta`` (NaN values never count as improvements). Then, and only then, the
    ``wrapped`` pruner is asked, and its answer is the decision. Without ``wrapped``, the
    trial is pruned as soon as it has not improved for ``patience`` steps (early
    stopping). ``patience: 0`` leaves the decision to the wrapped pruner alone.
    """

    name = "patience"

    class Options(Pruner.Options):
        patience: NonNegativeInt = Field(
            3, description="steps without improvement before pruning is considered"
        )
        min_delta: NonNegative = Field(
            0.0, description="an improvement must beat the best so far by more than this"
        )
        wrapped: WrappedPruner | None = Field(
            None, description="the pruner that decides once patience ran out (none: prune then)"
        )

    def __init__(
        self, options: PluginOptions | None = None, *, direction: Direction = "maximize"
    ) -> None:
        super().__init__(options, direction=direction)
        wrapped = self.options.wrapped
        self.inner: Pruner | None = wrapped.build(direction) if wrapped is not None else None

    def stalled(self, trial: TrialRecord, step: int) -> bool:
        """Whether the trial has not improved for ``patience`` steps at ``step``."""
        patience = self.options.patience
        values = [trial.intermediate[s] for s in sorted(trial.intermediate) if s <= step]
        if len(values) <= patience:
            return False
        reference = [v for v in values[: len(values) - patience] if _good(v)]
        if not reference:
            return True
        best = max(reference) if self.direction == "maximize" else min(reference)
        delta = self.options.min_delta if self.direction == "maximize" else -self.options.min_delta
        recent = values[len(values) - patience :]
        return not any(_good(v) and self.better(v, best + delta) for v in recent)

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        if not self.stalled(trial, step):
            return False
        return True if self.inner is None else bool(self.inner.prune(trial, step, history))


BUILTIN: dict[str, type[Pruner]] = {
    cls.name: cls
    for cls in (
        NoPruner,
        MedianPruner,
        PercentilePruner,
        SuccessiveHalvingPruner,
        HyperbandPruner,
        ThresholdPruner,
        PatiencePruner,
    )
}


@hookimpl
def register_pruners(register: Callable[[type[Pruner]], None]) -> None:
    for cls in BUILTIN.values():
        register(cls)
