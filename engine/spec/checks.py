"""Checks that types alone cannot make: names resolve, parameters exist, the space is searchable."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError
from sklearn.base import is_classifier, is_regressor

from tunedag.data import check_source
from tunedag.errors import Problem, SpecError, StorageError
from tunedag.estimators import accepts_any_keyword, pipeline_of, resolve_estimator
from tunedag.imports import import_user_module
from tunedag.registry import Plugins
from tunedag.scoring import resolve_scorer, scorer_task
from tunedag.space import SearchSpace
from tunedag.spec.leakage import check_fold_leakage, check_split_columns, check_test_source
from tunedag.spec.loader import Loc
from tunedag.spec.models import CategoricalDimension, Spec
from tunedag.spec.pydantic_errors import spec_loc
from tunedag.spec.value_checks import (
    check_choices,
    check_report,
    check_values,
    choice_param_findings,
    param_names,
)
from tunedag.storage import parse_url

Finding = tuple[Loc, str, int]  # where, what, exit code


def check_spec(spec: Spec, plugins: Plugins, base_dir: Path) -> Iterator[Finding]:
    pipeline = None
    if spec.pipeline is not None:
        pipeline, findings = _check_pipeline(spec)
        yield from findings
        yield from check_choices(spec)
    else:
        yield from _check_trial_function(spec)
    yield from _check_space(spec, pipeline)
    yield from _check_fidelity(spec, pipeline)
    conditions = list(_check_conditions(spec))
    yield from conditions
    yield from _check_objective(spec, pipeline)
    # A sampler can only judge a space whose conditions form a DAG of known parameters.
    yield from _check_plugins(spec, plugins, space_ok=not conditions)
    yield from _check_group_leakage(spec)
    yield from check_fold_leakage(spec)
    sources = list(_check_sources(spec, base_dir))
    yield from sources
    if not sources:
        yield from check_test_source(spec, base_dir)
        yield from check_split_columns(spec, base_dir)
    yield from _check_storage(spec.storage_url)


def _check_storage(url: str) -> Iterator[Finding]:
    """The URL parses and names a file that can be made (storage is relative to the cwd)."""
    try:
        path = parse_url(url, Path.cwd())
    except StorageError as error:
        yield ("storage",), str(error), 65
        return
    if path is None:
        return
    if path.is_dir():
        yield ("storage",), f"storage {url!r} names a folder; name a file in it", 65
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        yield ("storage",), f"storage {url!r}: {parent} is a file, not a folder", 65


def _check_pipeline(spec: Spec) -> tuple[Any, list[Finding]]:
    assert spec.pipeline is not None
    findings: list[Finding] = []
    for index, step in enumerate(spec.pipeline):
        try:
            cls = resolve_estimator(step.estimator, spec.allow_imports)
        except SpecError as error:
            for problem in error.problems:
                findings.append((("pipeline", index, "estimator"), problem.message, problem.code))
            continue
        accepted = param_names(cls)
        for param in step.params:
            if accepted is not None and param not in accepted:
                hint = _did_you_mean(param, accepted)
                message = f"{cls.__name__} has no parameter {param!r}{hint}"
                findings.append((("pipeline", index, "params", param), message, 65))
    findings += check_values(spec)
    if findings:
        return None, findings
    try:
        pipeline = pipeline_of(spec)
    except SpecError as error:
        return None, [(("pipeline",), p.message, p.code) for p in error.problems]
    except (TypeError, ValueError) as error:
        return None, [(("pipeline",), f"cannot build the pipeline: {error}", 65)]
    untagged = list(_check_tags(pipeline))
    if untagged:
        return None, untagged
    return pipeline, list(_check_passed_through(spec, pipeline))


def _check_tags(pipeline: Any) -> Iterator[Finding]:
    """Every step can list its parameters and tell scikit-learn what kind of estimator it is.

    scikit-learn reads a step's parameters and tags to clone, score and split it; a step that
    cannot answer (a class outside scikit-learn's hierarchy, or a meta-estimator given a
    mapping where an estimator belongs) would fail every trial, so validation names it first.
    """
    for index, (_, estimator) in enumerate(pipeline.steps):
        params: dict[str, Any] = {}
        try:
            params = estimator.get_params(deep=False)
            estimator.get_params(deep=True)
            is_classifier(estimator)
        except Exception as error:  # the step's own code: any failure is the spec's problem
            reason = re.sub(r"(The following error was raised: )+", "", str(error))
            mappings = [key for key, value in params.items() if isinstance(value, dict)]
            if mappings:
                hint = (
                    f"; its parameter {mappings[0]!r} is a plain mapping: an estimator is "
                    "written {estimator: PATH, params: {...}}"
                )
            else:
                hint = "; an estimator class should inherit sklearn.base.BaseEstimator"
            name = type(estimator).__name__
            reason = reason.split(". ")[0][:200]
            message = f"{name} cannot describe itself to scikit-learn ({reason}){hint}"
            yield ("pipeline", index, "estimator"), message, 65


def _check_passed_through(spec: Spec, pipeline: Any) -> Iterator[Finding]:
    """Names a ``**kwargs`` estimator took unchecked must show in its get_params()."""
    for index, (step, (_, estimator)) in enumerate(
        zip(spec.pipeline or [], pipeline.steps, strict=True)
    ):
        if not accepts_any_keyword(type(estimator)):
            continue
        try:
            known = estimator.get_params(deep=False)
        except Exception:
            continue
        for param in step.params:
            if param not in known:
                message = f"{type(estimator).__name__} did not keep parameter {param!r}"
                yield ("pipeline", index, "params", param), message, 65


def _check_trial_function(spec: Spec) -> Iterator[Finding]:
    assert spec.trial is not None
    for key in ("function", "fit"):
        path = getattr(spec.trial, key)
        if path is None:
            continue
        module_name, _, name = path.partition(":")
        try:
            module = import_user_module(module_name)
        except ImportError as error:
            yield ("trial", key), f"cannot import {module_name!r}: {error}", 65
            continue
        if not callable(getattr(module, name, None)):
            yield ("trial", key), f"module {module_name!r} has no function {name!r}", 65


def _check_space(spec: Spec, pipeline: Any) -> Iterator[Finding]:
    if pipeline is not None:
        params = pipeline.get_params(deep=True)
        steps = [step.name for step in spec.pipeline or []]
        for key in spec.space:
            under_choice = choice_param_findings(spec, key)
            if under_choice is not None:
                yield from under_choice
                continue
            if key in params:
                continue
            step = key.split("__", 1)[0]
            owner, _, rest = key.rpartition("__")
            if owner in params and "__" not in rest and accepts_any_keyword(type(params[owner])):
                continue  # passed through to a **kwargs estimator
            if "__" not in key or step not in steps:
                message = f"{key!r} does not name a pipeline step (steps: {', '.join(steps)})"
                hint = _did_you_mean(key, [p for p in params if "__" in p])
                yield ("space", key), f"{message}; write STEP__PARAM{hint}", 65
            else:
                known = [p for p in params if p.startswith(step + "__")]
                hint = _did_you_mean(key, known)
                name = type(params[step]).__name__
                yield ("space", key), f"{name} has no parameter {key.split('__', 1)[1]!r}{hint}", 65


def _check_fidelity(spec: Spec, pipeline: Any) -> Iterator[Finding]:
    """The resource of `fidelity:` is a parameter of the final step, which can train on."""
    fidelity = spec.fidelity
    if fidelity is None:
        return
    if spec.trial is not None:
        message = "`fidelity` trains a pipeline; a custom trial reports with context.report()"
        yield ("fidelity",), message, 65
        return
    if pipeline is None:
        return
    final_name, final = pipeline.steps[-1]
    kind = type(final).__name__
    if fidelity.partial_fit:
        if not hasattr(final, "partial_fit"):
            message = f"{kind} has no partial_fit, so `partial_fit: true` cannot train it"
            yield ("fidelity", "partial_fit"), message, 65
        return
    param = fidelity.param or ""
    params = pipeline.get_params(deep=True)
    if param not in params:
        hint = _did_you_mean(param, [p for p in params if p.startswith(final_name + "__")])
        message = f"{param!r} is not a parameter of the pipeline{hint}"
        yield ("fidelity", "param"), message, 65
    elif param.split("__", 1)[0] != final_name or param.count("__") != 1:
        message = (
            f"{param!r} is not a parameter of the final step {final_name!r}; only the "
            "final model is trained in increments"
        )
        yield ("fidelity", "param"), message, 65
    elif "warm_start" not in final.get_params(deep=False):
        message = (
            f"{kind} has no warm_start, so {param!r} cannot grow in increments (write "
            "`partial_fit: true` for an estimator with partial_fit)"
        )
        yield ("fidelity", "param"), message, 65
    if param in spec.space:
        message = f"{param!r} is the fidelity resource, set by the schedule; remove it from space"
        yield ("space", param), message, 65


def _check_conditions(spec: Spec) -> Iterator[Finding]:
    graph = nx.DiGraph()
    for name, dim in spec.space.items():
        for parent, allowed in (dim.when or {}).items():
            loc: Loc = ("space", name, "when", parent)
            if parent == name:
                yield loc, "a parameter cannot depend on itself", 65
                continue
            if parent not in spec.space:
                hint = _did_you_mean(parent, list(spec.space))
                yield loc, f"{parent!r} is not a parameter of the space{hint}", 65
                continue
            graph.add_edge(parent, name)
            parent_dim = spec.space[parent]
            if isinstance(parent_dim, CategoricalDimension):
                values = allowed if isinstance(allowed, list) else [allowed]
                for value in values:
                    if value not in parent_dim.labels:
                        message = f"{value!r} is not one of {parent}'s choices {parent_dim.labels}"
                        yield loc, message, 65
    for cycle in nx.simple_cycles(graph):
        yield ("space", cycle[0], "when"), f"conditions form a cycle: {' -> '.join(cycle)}", 65


def _check_objective(spec: Spec, pipeline: Any) -> Iterator[Finding]:
    if pipeline is None:
        if spec.trial is not None and spec.objective.report:
            message = (
                "extra metrics score a pipeline's predictions; a custom trial returns one value"
            )
            yield ("objective", "report"), message, 65
        return
    metric = spec.objective.metric
    try:
        resolve_scorer(metric)
    except SpecError as error:
        yield ("objective", "metric"), error.problems[0].message, 65
        return
    if spec.objective.direction == "minimize":
        message = (
            "scikit-learn scorers are greater-is-better (losses come negated, as neg_log_loss); "
            "leave `direction` out or write maximize"
        )
        yield ("objective", "direction"), message, 65
    final = pipeline.steps[-1][1]
    yield from check_report(spec, final)
    task = scorer_task(metric)
    if task == "regression" and is_classifier(final):
        yield (
            ("objective", "metric"),
            f"{metric!r} scores regressors, but the model is a classifier ({type(final).__name__})",
            65,
        )
    if task == "classification" and is_regressor(final):
        yield (
            ("objective", "metric"),
            f"{metric!r} scores classifiers, but the model is a regressor ({type(final).__name__})",
            65,
        )


def _check_plugins(spec: Spec, plugins: Plugins, space_ok: bool = True) -> Iterator[Finding]:
    refs: list[tuple[str, str, dict[str, Any], Loc]] = [
        ("sampler", spec.sampler.name, spec.sampler.options, ("sampler",)),
        ("pruner", spec.pruner.name, spec.pruner.options, ("pruner",)),
        ("executor", spec.execution.executor, {}, ("execution",)),
    ]
    refs += [
        ("observer", ref.name, ref.options, ("observers", index))
        for index, ref in enumerate(spec.observers)
    ]
    for kind, name, options, section in refs:
        name_loc: Loc = (*section, "executor" if kind == "executor" else "name")
        try:
            provided = plugins.get(kind, name)
        except SpecError as error:
            yield name_loc, error.problems[0].message, 78
            continue
        if kind == "observer":
            for missing in provided.cls.check_environment():  # type: ignore[attr-defined]
                yield name_loc, f"{missing} ({provided.provider})", 78
        try:
            provided.cls.Options.model_validate(options)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                loc: Loc = (*section, "options", *item["loc"], *spec_loc(item))
                message = item["msg"].removeprefix("Value error, ")
                if item["type"] == "extra_forbidden":
                    allowed = ", ".join(provided.cls.Options.model_fields) or "none"
                    message = (
                        f"{kind} {name!r} has no option {item['loc'][-1]!r} (options: {allowed})"
                    )
                yield loc, f"{message} ({provided.provider})", 65
        if kind == "sampler" and space_ok:
            for message in provided.cls.check_space(SearchSpace(spec.space)):  # type: ignore[attr-defined]
                yield ("sampler", "name"), message, 65


def _check_group_leakage(spec: Spec) -> Iterator[Finding]:
    """Folds that keep groups apart are worth little if the test split mixes them."""
    validation, test = spec.split.validation, spec.split.test
    if validation.method == "group_kfold" and test.fraction is not None and not test.groups:
        message = (
            f"the validation folds keep `{validation.groups}` groups apart, but this test split "
            f"would put rows of one group on both sides; add `groups: {validation.groups}`"
        )
        yield ("split", "test", "fraction"), message, 65


def _check_sources(spec: Spec, base_dir: Path) -> Iterator[Finding]:
    message = check_source(spec.data, base_dir)
    if message:
        # 66 is for a file that is not there; an unknown scikit-learn dataset is a spec error
        code = 65 if spec.data.source.startswith("sklearn:") else 66
        yield ("data", "source"), message, code
    if spec.split.test.source:
        test_source = spec.split.test.source
        message = check_source(spec.data.model_copy(update={"source": test_source}), base_dir)
        if message:
            yield ("split", "test", "source"), message, 66


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = ["Problem", "check_spec"]
