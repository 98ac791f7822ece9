"""The estimator registry: spec strings resolve to classes here, never by importing a path.

scikit-learn's public estimators are known by their public path (`sklearn.svm.SVC`) and,
when unambiguous, by their class name (`SVC`). Other estimators are reachable only under a
module prefix the spec lists in `allow_imports`. A path with a segment that starts with
`_` is refused, as is anything that is not an estimator class.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import inspect
from collections.abc import Collection, Iterator, Sequence
from typing import Any, cast

from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from tunedag.errors import SpecError, UnknownNameError
from tunedag.imports import import_user_module
from tunedag.spec.models import CategoricalDimension, EstimatorChoice, Spec, StepSpec
from tunedag.values import build_selector, is_function_ref, is_selector, resolve_function


class EstimatorRefused(SpecError):
    """A path that may not be imported: private, not allowed, or not an estimator."""


@functools.cache
def sklearn_estimators() -> dict[str, type[Any]]:
    """Public path -> class, for every estimator scikit-learn lists."""
    from sklearn.utils import all_estimators

    registry: dict[str, type[Any]] = {}
    for name, cls in all_estimators():
        parts = cls.__module__.split(".")
        private = next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))
        for end in range(private, 0, -1):
            public = ".".join(parts[:end])
            found: Any = getattr(importlib.import_module(public), name, None)
            if found is cls:
                registry[f"{public}.{name}"] = cls
                break
    return registry


@functools.cache
def _short_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for path in sklearn_estimators():
        names.setdefault(path.rsplit(".", 1)[1], []).append(path)
    return names


def resolve_estimator(path: Any, allow_imports: Sequence[str] = ()) -> type[Any]:
    """The class a spec's `estimator:` string names, or an error saying what to write."""
    if not isinstance(path, str) or not path:
        raise EstimatorRefused(
            f"`estimator` needs a dotted name such as sklearn.svm.SVC, not {path!r}"
        )
    if any(part.startswith("_") for part in path.split(".")):
        raise EstimatorRefused(f"{path!r} has a private segment (starting with '_'); refused")
    found = _public_sklearn_class(path)
    if found is not None:
        return found
    registry = sklearn_estimators()
    if path in registry:
        return registry[path]
    short = _short_names().get(path, [])
    if len(short) == 1:
        return registry[short[0]]
    if len(short) > 1:
        raise SpecError(f"{path!r} is ambiguous; write one of {sorted(short)}")
    if any(path == prefix or path.startswith(prefix + ".") for prefix in allow_imports):
        return _import_allowed(path)
    candidates = difflib.get_close_matches(path, [*registry, *_short_names()], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in candidates)}?" if candidates else ""
    if path.startswith("sklearn."):
        raise UnknownNameError(f"unknown estimator {path!r}{hint}")
    raise UnknownNameError(
        f"unknown estimator {path!r}{hint} (estimators outside scikit-learn need their module "
        "listed in `allow_imports`)"
    )


def _public_sklearn_class(path: str) -> type[Any] | None:
    """Fast path: a public scikit-learn module's concrete estimator class, else None.

    A public name that exists but is no concrete estimator class (a function, a module, an
    abstract base) is refused rather than reported as unknown.
    """
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith("sklearn.") or not module_name.replace(".", "").isidentifier():
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls: Any = getattr(module, name, None)
    if cls is None:
        return None
    is_estimator_class = (
        inspect.isclass(cls)
        and issubclass(cls, BaseEstimator)
        and cls.__module__.startswith("sklearn.")
        and cls.__module__ != "sklearn.base"  # BaseEstimator and friends fit nothing
        and not inspect.isabstract(cls)
    )
    if not is_estimator_class:
        raise EstimatorRefused(f"{path!r} is not a scikit-learn estimator class; refused")
    return cast("type[Any]", cls)


def _import_allowed(path: str) -> type[Any]:
    module_name, _, attribute = path.rpartition(".")
    try:
        module = import_user_module(module_name)
    except ImportError as error:
        raise UnknownNameError(f"cannot import {module_name!r} for {path!r}: {error}") from error
    cls = getattr(module, attribute, None)
    if cls is None:
        raise UnknownNameError(f"module {module_name!r} has no {attribute!r}")
    if not (inspect.isclass(cls) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise EstimatorRefused(f"{path!r} is not an estimator class (it needs fit and get_params)")
    return cls


def build_estimator(estimator: str, params: dict[str, Any], allow: Sequence[str]) -> Any:
    """An unfitted estimator; parameter values that describe objects are built too:
    ``{estimator: ..., params: ...}`` nests an estimator, ``{function: numpy.log}`` is a
    function, ``{dtype_include: ..., dtype_exclude: ..., pattern: ...}`` a column selector."""
    cls = resolve_estimator(estimator, allow)
    instance = cls(**{key: build_value(value, allow) for key, value in params.items()})
    return instance


def is_estimator_ref(value: Any) -> bool:
    """Whether a spec value is ``{estimator: PATH}`` or ``{estimator: PATH, params: {...}}``."""
    return (
        isinstance(value, dict) and "estimator" in value and set(value) <= {"estimator", "params"}
    )


def build_value(value: Any, allow: Sequence[str]) -> Any:
    """A spec value as the Python object it describes (plain values pass through)."""
    if is_estimator_ref(value):
        params = value.get("params") or {}
        if not isinstance(params, dict):
            raise SpecError(f"`params` of {value['estimator']!r} must be a mapping, not {params!r}")
        return build_estimator(value["estimator"], params, allow)
    if is_function_ref(value):
        return resolve_function(value["function"], allow)
    if is_selector(value):
        return build_selector(value)
    if isinstance(value, list):
        return [build_value(item, allow) for item in value]
    return value


def accepts_any_keyword(cls: type[Any]) -> bool:
    """Whether the class takes ``**kwargs`` (XGBoost, LightGBM): unknown names pass through."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


#: Choice values that are not estimators: scikit-learn's own words for "no step".
NOT_ESTIMATORS = ("passthrough", "drop", None)

#: key -> stored value -> the estimator it stands for ({estimator, params}), or the raw value
ChoiceTable = dict[str, dict[Any, Any]]


def choice_table(spec: Spec) -> ChoiceTable:
    """The estimator-valued dimensions of the space and what each of their values builds.

    A categorical dimension is estimator-valued when a choice is written as
    ``{estimator: ...}``, or when its key names a pipeline step (then bare names such as
    ``RandomForestClassifier`` are estimators too).
    """
    steps = {step.name for step in spec.pipeline or []}
    table: ChoiceTable = {}
    for key, dim in spec.space.items():
        if not isinstance(dim, CategoricalDimension):
            continue
        written = any(isinstance(c, EstimatorChoice) for c in dim.choices)
        if not (written or key in steps):
            continue
        options: dict[Any, Any] = {}
        for choice in dim.choices:
            if isinstance(choice, EstimatorChoice):
                options[choice.label] = {"estimator": choice.estimator, "params": choice.params}
            elif isinstance(choice, str) and choice not in NOT_ESTIMATORS:
                options[choice] = {"estimator": choice, "params": {}}
            else:
                options[choice] = choice
        table[key] = options
    return table


def realize(params: dict[str, Any], table: ChoiceTable, allow: Sequence[str]) -> dict[str, Any]:
    """Parameters as set_params wants them: a stored estimator name becomes a fresh estimator."""
    built = dict(params)
    for key, options in table.items():
        if key in built and _hashable(built[key]) and built[key] in options:
            option = options[built[key]]
            if isinstance(option, dict):
                built[key] = build_estimator(option["estimator"], option["params"], allow)
            else:
                built[key] = option
    return built


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class SpecPipeline(Pipeline):  # type: ignore[misc]
    """A Pipeline whose ``set_params`` builds the estimator a trial chose by name.

    Trials store an estimator choice as a string, so params stay JSON in storage; this is
    the one place a name becomes an estimator, whoever clones and sets the pipeline.
    """

    def __init__(
        self,
        steps: Any,
        *,
        choices: ChoiceTable | None = None,
        allow_imports: tuple[str, ...] = (),
        seed: int | None = None,
        unseeded: tuple[str, ...] = (),
        transform_input: Any = None,
        memory: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.choices = choices
        self.allow_imports = allow_imports
        self.seed = seed
        self.unseeded = unseeded

    def set_params(self, **params: Any) -> SpecPipeline:
        super().set_params(**realize(params, self.choices or {}, self.allow_imports))
        # an estimator a trial chose was built unseeded; a random_state it sets stays as set
        self.seed_random_states(kept=params)
        return self

    def seed_random_states(self, kept: Collection[str] = ()) -> dict[str, int]:
        """Give each estimator whose ``random_state`` the spec leaves unset a seed of its own.

        Why: with ``random_state=None`` an estimator (SGD, randomized PCA, forests) draws
        from the global generator, so the same study seed scored the same trial differently.
        The seed is derived from the study seed and the parameter's path
        (``model__random_state``, ``model__estimator__random_state`` for a nested estimator):
        the same in every trial and fold, different between steps. A ``random_state`` the
        spec writes (``null`` included: ``unseeded``) or the space tunes (``kept``, the
        parameters being set) is left as it is.
        """
        if self.seed is None:
            return {}
        derived = {
            key: derived_seed(self.seed, key)
            for key, value in Pipeline.get_params(self, deep=True).items()
            if key.endswith("__random_state")
            and value is None
            and key not in self.unseeded
            and key not in kept
        }
        if derived:
            Pipeline.set_params(self, **derived)
        return derived


def plain_pipeline(model: Any) -> Any:
    """A SpecPipeline as scikit-learn's own Pipeline over the same (fitted) steps, so a saved
    model loads without tunedag and holds only trusted types."""
    if not isinstance(model, SpecPipeline):
        return model
    return Pipeline(
        model.steps,
        transform_input=model.transform_input,
        memory=model.memory,
        verbose=model.verbose,
    )


def build_pipeline(
    steps: Sequence[StepSpec],
    allow: Sequence[str] = (),
    choices: ChoiceTable | None = None,
    seed: int | None = None,
) -> SpecPipeline:
    """The spec's pipeline; with ``seed``, every ``random_state`` it leaves unset is seeded."""
    pipeline = SpecPipeline(
        [(step.name, build_estimator(step.estimator, step.params, allow)) for step in steps],
        choices=choices or {},
        allow_imports=tuple(allow),
        seed=seed,
        unseeded=tuple(sorted(_written_null(steps))),
    )
    pipeline.seed_random_states()
    return pipeline


def pipeline_of(spec: Spec) -> SpecPipeline:
    """The spec's pipeline with its fixed parameters, ready for a trial's ``set_params``;
    the study seed reaches every estimator in it, and every one a trial chooses."""
    assert spec.pipeline is not None
    return build_pipeline(spec.pipeline, spec.allow_imports, choice_table(spec), spec.seed)


def derived_seed(seed: int, path: str) -> int:
    """A seed in scikit-learn's range from the study seed and a parameter path; stable."""
    digest = hashlib.sha256(f"{seed}/{path}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _written_null(steps: Sequence[StepSpec]) -> Iterator[str]:
    """Paths of each ``random_state: null`` a spec writes on a step (or an estimator nested
    in one): those stay unseeded, as written. An estimator a trial chooses is always seeded,
    as choices share their step's path."""

    def walk(prefix: str, params: dict[str, Any]) -> Iterator[str]:
        for key, value in params.items():
            if key == "random_state" and value is None:
                yield f"{prefix}__{key}"
            nested = value.get("params") if is_estimator_ref(value) else None
            if isinstance(nested, dict):
                yield from walk(f"{prefix}__{key}", nested)

    for step in steps:
        yield from walk(step.name, step.params)
