"""The spec file as pydantic models: types and ranges only; cross-field meaning lives in checks."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tunedag.strict_numbers import NoBooleanNumbers

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
STUDY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

# Every number a spec holds has finite bounds, so anything that validates also runs.
#: The longest duration (`budget.time`, `trial_timeout`): a year.
MAX_DURATION_S = 366 * 86400.0
#: A trial runs at most this long when the spec sets no `trial_timeout`: a safety net, so a
#: trial that hangs fails after a day instead of holding the study forever.
DEFAULT_TRIAL_TIMEOUT_S = 86400.0
#: Seeds are scikit-learn's `random_state` range.
MAX_SEED = 2**32 - 1
#: Bounds and steps of an int dimension: integers a float holds exactly (samplers use floats).
MAX_INT_BOUND = 2**53
#: Values of one grid axis (`grid_points`, or a stepped range enumerated for a grid).
MAX_GRID_AXIS = 100_000
MAX_TRIALS = 10_000_000
MAX_WORKERS = 1024


def parse_duration(value: Any) -> Any:
    """`90`, `"90s"`, `"30m"`, `"2h"` become seconds; anything else is for pydantic to refuse."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 90s, 30m or 2h, but got {value!r}")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(gt=0, le=MAX_DURATION_S),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"},
            ]
        }
    ),
]


def invalid(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error that names the key it is about, relative to the model raising it.

    A model validator's error is otherwise placed at the model itself; `at` lets the file
    position and the field path point at the offending key (`space.model__C.low`).
    """
    return PydanticCustomError("spec_invalid", message, {"spec_loc": at})


class Strict(NoBooleanNumbers):
    """Every section refuses keys it does not know, and `true` where a number goes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataSpec(Strict):
    source: str = Field(
        description="sklearn:NAME (iris, wine, breast_cancer, digits, diabetes), csv:PATH or "
        "parquet:PATH; paths are relative to the spec file",
        pattern=r"^(sklearn|csv|parquet):.+$",
    )
    target: str | None = Field(None, description="the target column of a csv or parquet file")
    drop: list[str] = Field(default_factory=list, description="columns that are not features")

    @model_validator(mode="after")
    def _target_for_files(self) -> DataSpec:
        if not self.source.startswith("sklearn:") and self.target is None:
            raise invalid("a csv or parquet source needs `target: COLUMN`", "source")
        if self.source.startswith("sklearn:") and self.target is not None:
            raise invalid("`target` applies to csv and parquet sources only", "target")
        return self


class TestSplitSpec(Strict):
    """The locked hold-out set: a fraction of the data, or a separate file."""

    __test__ = False
    fraction: float | None = Field(None, gt=0, lt=1)
    stratify: bool = False
    order_by: str | None = Field(None, description="hold out the latest rows by this column")
    groups: str | None = Field(None, description="hold out whole groups of this column")
    source: str | None = Field(None, pattern=r"^(csv|parquet):.+$")
    allow_overlap: int = Field(
        0,
        ge=0,
        description="how many test rows may be exact duplicates of development feature rows "
        "(any more refuse the study)",
    )

    @model_validator(mode="after")
    def _one_way(self) -> TestSplitSpec:
        if (self.fraction is None) == (self.source is None):
            at = ("source",) if self.source is not None else ()
            raise invalid("give either `fraction` or `source` (a separate test file)", *at)
        ways = [key for key in ("stratify", "order_by", "groups") if getattr(self, key)]
        if self.source is not None and ways:
            raise invalid(f"`{ways[0]}` applies to a `fraction` split only", ways[0])
        if len(ways) > 1:
            raise invalid(f"`{ways[0]}` and `{ways[1]}` exclude each other", ways[1])
        return self


ValidationMethod = Literal["kfold", "stratified_kfold", "group_kfold", "timeseries", "holdout"]


class ValidationSpec(Strict):
    method: ValidationMethod = "kfold"
    folds: int = Field(5, ge=2, le=100)
    shuffle: bool = Field(True, description="false keeps scikit-learn's contiguous folds")
    groups: str | None = Field(None, description="the group column, for group_kfold")
    gap: int = Field(
        0,
        ge=0,
        le=MAX_INT_BOUND,
        description="rows left out between train and validation (timeseries)",
    )
    fraction: float | None = Field(None, gt=0, lt=1, description="validation share (holdout)")

    @model_validator(mode="after")
    def _method_options(self) -> ValidationSpec:
        if self.method == "group_kfold" and self.groups is None:
            raise invalid("group_kfold needs `groups: COLUMN`", "method")
        if self.groups is not None and self.method != "group_kfold":
            raise invalid("`groups` applies to method group_kfold only", "groups")
        if self.gap and self.method != "timeseries":
            raise invalid("`gap` applies to method timeseries only", "gap")
        if self.fraction is not None and self.method != "holdout":
            raise invalid("`fraction` applies to method holdout only", "fraction")
        return self


class SplitSpec(Strict):
    test: TestSplitSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)


class StepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    estimator: str = Field(description="a scikit-learn estimator such as sklearn.svm.SVC")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed parameters")

    @model_validator(mode="after")
    def _no_double_underscore(self) -> StepSpec:
        if "__" in self.name:
            raise invalid(f"a step name cannot contain '__', but got {self.name!r}", "name")
        return self


#: A value a categorical dimension takes, as trials store it and `when:` names it.
Label = str | int | float | bool | None
When = dict[str, Any]


class _Dimension(Strict):
    when: When | None = Field(
        None, description="active only when these parameters take these values (a value or a list)"
    )

    @model_validator(mode="after")
    def _when_names_labels(self) -> _Dimension:
        for parent, allowed in (self.when or {}).items():
            if allowed == []:
                message = f"`when` lists no value of {parent!r} ([]): this would never be active"
                raise invalid(message, "when", parent)
            for label in allowed if isinstance(allowed, list) else [allowed]:
                if not isinstance(label, Label):
                    message = (
                        f"`when` names values of {parent!r} (a string, number, boolean or null, "
                        f"or a list of them), not {label!r}"
                    )
                    raise invalid(message, "when", parent)
        return self


class _NumericDimension(_Dimension):
    log: bool = Field(False, description="sample on a log scale (for scale parameters)")
    grid_points: int | None = Field(
        None, ge=2, le=MAX_GRID_AXIS, description="points of a grid over [low, high]"
    )

    @model_validator(mode="after")
    def _bounds(self) -> _NumericDimension:
        low, high = getattr(self, "low", None), getattr(self, "high", None)
        values, step = getattr(self, "values", None), getattr(self, "step", None)
        if values is not None:
            if low is not None or high is not None or step is not None or self.grid_points:
                message = "`values` excludes `low`, `high`, `step` and `grid_points`"
                raise invalid(message, "values")
            if not values:
                raise invalid("`values` needs at least one value", "values")
            for index, value in enumerate(values):
                if value in values[:index]:
                    raise invalid(
                        f"`values` must be distinct, but {value!r} repeats", "values", index
                    )
            return self
        if low is None or high is None:
            raise invalid("give `low` and `high`, or a list of `values`")
        if not low < high:
            message = f"`low` must be below `high`, but got low={low} and high={high}"
            raise invalid(message, "low")
        if self.log and low <= 0:
            raise invalid(f"a log dimension needs a positive `low`, but got low={low}", "low")
        if not math.isfinite(high - low):
            message = f"the range from low={low} to high={high} is too wide to sample"
            raise invalid(message, "high")
        if step is not None:
            if self.log:
                raise invalid("`step` and `log` exclude each other", "step")
            if step <= 0:
                raise invalid(f"`step` must be positive, but got step={step}", "step")
            if self.grid_points:
                raise invalid("`step` and `grid_points` exclude each other", "step")
            if (high - low) / step > MAX_INT_BOUND:
                message = f"`step` {step} cuts [{low}, {high}] into more than 2**53 steps"
                raise invalid(message, "step")
        return self


class FloatDimension(_NumericDimension):
    type: Literal["float"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    values: list[float] | None = None


IntBound = Annotated[int, Field(ge=-MAX_INT_BOUND, le=MAX_INT_BOUND)]


class IntDimension(_NumericDimension):
    type: Literal["int"]
    low: IntBound | None = None
    high: IntBound | None = None
    step: IntBound | None = None
    values: list[int] | None = None


class EstimatorChoice(Strict):
    """One estimator a categorical dimension may choose, with its own fixed parameters.

    Trials store the choice by its `name` (the class name unless given), so storage, events
    and reports hold a plain string; the estimator is built when the pipeline's parameters
    are set.
    """

    estimator: str = Field(description="an estimator such as sklearn.svm.SVC")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed parameters")
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        description="the value trials store and `when:` names; defaults to the class name",
    )

    @property
    def label(self) -> str:
        return self.name or self.estimator.rsplit(".", 1)[-1]


Choice = Label | EstimatorChoice


class CategoricalDimension(_Dimension):
    type: Literal["categorical"]
    choices: list[Choice] = Field(
        min_length=1,
        description="values, or estimators ({estimator: PATH, params: {...}} or a bare name) "
        "that replace the step or estimator parameter this key names",
    )

    @property
    def labels(self) -> list[Label]:
        """The values trials take: an estimator choice is its name, anything else itself."""
        return [c.label if isinstance(c, EstimatorChoice) else c for c in self.choices]

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalDimension:
        labels = self.labels
        for index, label in enumerate(labels):
            if repr(label) in {repr(c) for c in labels[:index]}:
                hint = (
                    " (give estimator choices distinct `name:`s)"
                    if isinstance(self.choices[index], EstimatorChoice)
                    else ""
                )
                raise invalid(
                    f"`choices` must be distinct, but {label!r} repeats{hint}", "choices", index
                )
        return self


Dimension = Annotated[
    FloatDimension | IntDimension | CategoricalDimension, Field(discriminator="type")
]


class ObjectiveSpec(Strict):
    metric: str = Field(description="a scikit-learn scorer name, such as roc_auc or neg_log_loss")
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="defaults from the scorer: scikit-learn scorers are greater-is-better"
    )
    report: list[str] = Field(
        default_factory=list,
        description="extra scorer names computed per fold and on the test set, never optimised",
    )


class PluginRef(Strict):
    name: str
    options: dict[str, Any] = Field(
        default_factory=dict, description="validated by the named plugin's own Options model"
    )


class BudgetSpec(Strict):
    trials: int = Field(
        50, ge=1, le=MAX_TRIALS, description="total trials of the study, across every run"
    )
    time: Duration | None = Field(None, description="wall-clock budget, such as 30m")
    max_failed: int = Field(
        5, ge=0, le=MAX_TRIALS, description="more failed trials than this fail the study"
    )
    trial_timeout: Duration | None = Field(
        None, description="stop a trial that runs longer (unset: 1d, a safety net)"
    )

    @property
    def trial_limit_s(self) -> float:
        """The longest a trial may run: `trial_timeout`, or the default safety net."""
        return self.trial_timeout if self.trial_timeout is not None else DEFAULT_TRIAL_TIMEOUT_S


class CacheSpec(Strict):
    """Fitted preprocessing kept per worker by content key, so trials and folds reuse it."""

    memory: ByteSize = Field(
        ByteSize(1_000_000_000),
        ge=0,
        description="bytes each worker keeps in memory, such as 2GB or 512MiB (0: none)",
    )
    disk: str | None = Field(
        None,
        description="a directory that also keeps them, shared by workers and later runs "
        "(relative to the current directory)",
    )


class ExecutionSpec(Strict):
    workers: int = Field(1, ge=1, le=MAX_WORKERS)
    executor: str = "local"
    address: str | None = Field(None, description="a scheduler address for distributed executors")
    lease_timeout: Duration | None = Field(
        None,
        description="a driver silent this long loses its lease on the study to the next "
        "driver, such as 30s (default 60s; TUNEDAG_LEASE_TIMEOUT wins)",
    )
    cache: CacheSpec | Literal["off"] = Field(
        default_factory=CacheSpec,
        description="reuse of fitted preprocessing across trials and folds, or off",
    )


class TrialFunctionSpec(Strict):
    function: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="package.module:function"
    )
    fit: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="package.module:function returning an estimator fitted on every "
        "development row; tunedag scores it once on the test rows and saves it",
    )


class FidelitySpec(Strict):
    """Train the pipeline's final model in increments and report after each, for pruning.

    Either a resource parameter of the final step (`param`, `min`, `max`, and `steps` or
    `reduction_factor`), trained with `warm_start`, or `partial_fit: true` with `epochs`
    (reported after every epoch, or at the epochs `steps` or `reduction_factor` pick).
    """

    param: str | None = Field(
        None, description="the resource, a STEP__PARAM of the final step: model__n_estimators"
    )
    min: int | None = Field(None, ge=1, le=MAX_INT_BOUND, description="the first resource level")
    max: int | None = Field(
        None, ge=1, le=MAX_INT_BOUND, description="the last resource level (a full trial)"
    )
    steps: int | None = Field(
        None, ge=2, le=10_000, description="this many levels, evenly spaced from min to max"
    )
    reduction_factor: float | None = Field(
        None, gt=1, le=1000, description="levels min, min*f, min*f^2 ... up to max (geometric)"
    )
    partial_fit: bool = Field(False, description="train with partial_fit, one call an epoch")
    epochs: int | None = Field(
        None, ge=1, le=1_000_000, description="epochs of partial_fit (partial_fit only)"
    )

    @model_validator(mode="after")
    def _one_way(self) -> FidelitySpec:
        if self.steps is not None and self.reduction_factor is not None:
            message = (
                f"give either `steps` or `reduction_factor`, but got steps={self.steps} "
                f"and reduction_factor={self.reduction_factor:g}"
            )
            raise invalid(message, "reduction_factor")
        if self.partial_fit:
            for key in ("param", "min", "max"):
                if getattr(self, key) is not None:
                    raise invalid(f"`{key}` does not apply with `partial_fit: true`", key)
            if self.epochs is None:
                raise invalid("`partial_fit: true` needs `epochs: N`", "partial_fit")
            return self
        if self.epochs is not None:
            raise invalid("`epochs` applies with `partial_fit: true` only", "epochs")
        for key in ("param", "min", "max"):
            if getattr(self, key) is None:
                raise invalid(f"missing required key {key!r} (or write `partial_fit: true`)")
        assert self.min is not None and self.max is not None
        if self.min >= self.max:
            message = f"`min` must be below `max`, but got min={self.min} and max={self.max}"
            raise invalid(message, "min")
        if self.steps is None and self.reduction_factor is None:
            raise invalid("give `steps: N` (evenly spaced levels) or `reduction_factor: F`")
        return self


class Spec(Strict):
    """One study: the data, its split, the pipeline, the space, the objective and the budget."""

    name: str = Field(pattern=STUDY_NAME, description="the study's key in storage")
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="seeds the split, the folds, the sampler and every estimator's "
        "random_state the pipeline leaves unset",
    )
    data: DataSpec
    split: SplitSpec
    pipeline: list[StepSpec] | None = Field(None, min_length=1)
    trial: TrialFunctionSpec | None = None
    fidelity: FidelitySpec | None = Field(
        None, description="train the final model in increments, reporting after each (pruning)"
    )
    space: dict[str, Dimension] = Field(min_length=1)
    objective: ObjectiveSpec
    sampler: PluginRef = Field(default_factory=lambda: PluginRef(name="random"))
    pruner: PluginRef = Field(default_factory=lambda: PluginRef(name="none"))
    observers: list[PluginRef] = Field(
        default_factory=list,
        description="observer plugins that watch this study (such as mlflow), in order; "
        "an installed observer runs only when listed here",
    )
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    storage: str | None = Field(None, description="default sqlite:///.tunedag/NAME.sqlite")
    allow_imports: list[str] = Field(
        default_factory=list, description="module prefixes whose estimators may be used"
    )
    baseline: bool = Field(
        True,
        description="also score the estimators' own default parameters on the same folds "
        "(trial 0 when they lie inside the space)",
    )
    model: str | None = Field(
        None,
        description="where the tuned model is saved (skops format), relative to the current "
        "directory; default NAME/model.skops beside the storage file",
        pattern=r"\.skops$",
    )
    ledger: str | None = Field(
        None,
        description="path of the look ledger (every test-set score, keyed by the test rows); "
        "TUNEDAG_LEDGER overrides it; default: the user data directory",
    )

    _source: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _pipeline_or_trial(self) -> Spec:
        if self.pipeline is not None and self.trial is not None:
            raise invalid("give either `pipeline` or `trial.function`, not both", "trial")
        if self.pipeline is None and self.trial is None:
            raise invalid("missing `pipeline` (or `trial.function` for a custom trial)")
        if self.trial is not None:
            _check_trial_import(self.trial.function, self.allow_imports, "function")
            if self.trial.fit is not None:
                _check_trial_import(self.trial.fit, self.allow_imports, "fit")
        if self.pipeline is not None:
            names = [step.name for step in self.pipeline]
            for index, name in enumerate(names):
                if name in names[:index]:
                    message = f"step names must be unique, but {name!r} repeats"
                    raise invalid(message, "pipeline", index, "name")
        return self

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///.tunedag/{self.name}.sqlite"


def _check_trial_import(function: str, allow_imports: list[str], key: str) -> None:
    """A custom trial's module is imported only when `allow_imports` lists it (as for
    estimators), and never one with a private segment: importing a module runs its code."""
    module = function.partition(":")[0]
    if any(part.startswith("_") for part in function.replace(":", ".").split(".")):
        message = f"{function!r} has a private segment (starting with '_'); refused"
        raise invalid(message, "trial", key)
    if not any(module == prefix or module.startswith(prefix + ".") for prefix in allow_imports):
        top = module.split(".")[0]
        message = (
            f"module {module!r} is not in `allow_imports`; add `allow_imports: [{top}]` "
            "to let this study import it"
        )
        raise invalid(message, "trial", key)
