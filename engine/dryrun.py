"""The dry run: what validation alone cannot see, found in seconds before any trial is stored.

``tunedag validate --dry-run`` and the start of every ``run`` build the pipeline with its
fixed parameters and with a few sampled configurations (the space's low and high corners,
one random point, and each estimator a dimension may choose), run scikit-learn's parameter
validation on every estimator in it, check each column selector against the data, then fit
the pipeline as written (and each estimator choice) on a small sample of development rows
and score it on a few more with the objective and every extra metric. The test rows are
never touched. Each problem is reported like a spec error, at the key that caused it.

Fit failures of the sampled configurations are left to the trials: a configuration may fail
on a small sample (``n_neighbors`` above the sample's rows) and still be fine on the folds.
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import InvalidParameterError

from tunedag.errors import Problem, SpecError
from tunedag.estimators import choice_table, pipeline_of
from tunedag.prepare import Prepared, prepare
from tunedag.scoring import resolve_scorer
from tunedag.space import Params, SearchSpace
from tunedag.spec.loader import Loc
from tunedag.spec.models import CategoricalDimension, EstimatorChoice, Spec
from tunedag.spec.validate import base_dir_of
from tunedag.spec.value_checks import check_values
from tunedag.stopsignals import STOP_SIGNALS
from tunedag.text import clip, error_text
from tunedag.trial import take
from tunedag.values import build_selector, describe_selector, is_selector

#: rows the dry run fits on, and rows it scores
TRAIN_ROWS = 300
SCORE_ROWS = 200
Finding = tuple[Loc, str]
_PARAM = re.compile(r"The '([^']+)' parameter of (\w+)")


@dataclass
class DryRunSummary:
    configurations: int
    fitted: int
    rows: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"dry run ok: {self.configurations} configurations built and validated, "
            f"{self.fitted} fitted and scored on {self.rows} development rows "
            f"({self.seconds:.1f} s)"
        )


def dry_run(spec: Spec, prepared: Prepared) -> DryRunSummary:
    """Raise SpecError with every problem found, located in the spec file; else a summary."""
    started = time.perf_counter()
    if spec.pipeline is None:
        return DryRunSummary(0, 0, 0, time.perf_counter() - started)
    run = _DryRun(spec, prepared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        findings = run.findings()
    if findings:
        raise SpecError(_problems(spec, findings))
    return DryRunSummary(run.built, run.fitted, run.rows, time.perf_counter() - started)


def dry_run_apart(spec: Spec, prepared: Prepared) -> DryRunSummary:
    """``dry_run`` in a child process forked for it, for a driver that forks workers later.

    Fitting in the driver could start a native thread pool there (LightGBM's OpenMP threads
    with ``n_jobs: -1``), and a worker forked from the driver afterwards hangs on its copy of
    that pool. The child's threads end with it.
    """
    if spec.pipeline is None:
        return dry_run(spec, prepared)  # nothing is fitted
    receiving, sending = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_dry_run_child, args=(spec, prepared, sending), daemon=True, name="tunedag-dry-run"
    )
    try:
        child.start()
        sending.close()
        try:
            kind, payload = receiving.recv()
        except EOFError:
            child.join(timeout=5)
            message = f"fitting the pipeline ended its process (exit code {child.exitcode})"
            raise SpecError(_problems(spec, [(("pipeline",), message)])) from None
    finally:
        if child.pid is not None:  # started
            if child.is_alive():
                child.kill()
            child.join(timeout=5)
        receiving.close()
        sending.close()
    if kind == "problems":
        raise SpecError(payload)
    if kind == "bug":
        raise RuntimeError(f"the dry run failed in its process:\n{payload}")
    if kind == "raised":  # only the pipeline's code raises a BaseException in the child
        raise SpecError(
            _problems(spec, [(("pipeline",), f"fitting the pipeline raised {payload}")])
        )
    summary: DryRunSummary = payload
    return summary


def _dry_run_child(spec: Spec, prepared: Prepared, connection: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it kills us if needed
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        connection.send(("ok", dry_run(spec, prepared)))
    except SpecError as error:
        connection.send(("problems", error.problems))
    except Exception:
        connection.send(("bug", traceback.format_exc()))
    except BaseException as error:  # SIGINT is ignored here: the pipeline's code raised it
        connection.send(("raised", error_text(error)))
    finally:
        connection.close()


def dry_run_spec(spec: Spec) -> DryRunSummary:
    """The dry run of a loaded spec: its data is loaded and split (the test rows set aside)."""
    return dry_run(spec, prepare(spec, base_dir_of(spec)))


def _problems(spec: Spec, findings: list[Finding]) -> list[Problem]:
    source: Any = spec._source
    unique = list(dict.fromkeys((loc, clip(message)) for loc, message in findings))
    if source is None:
        return [Problem(".".join(map(str, loc)), message) for loc, message in unique]
    return [source.document.problem(loc, f"dry run: {message}") for loc, message in unique]


class _DryRun:
    def __init__(self, spec: Spec, prepared: Prepared) -> None:
        self.spec = spec
        self.prepared = prepared
        self.space = SearchSpace(spec.space)
        self.table = choice_table(spec)
        self.built = self.fitted = 0
        dev = prepared.dev
        train, valid = prepared.folds[0]
        rng = np.random.default_rng(spec.seed)
        classes = dev.task == "classification"
        self.train = _subsample(train, dev.y, TRAIN_ROWS, rng, classes)
        self.valid = _subsample(valid, dev.y, SCORE_ROWS, rng, classes)
        self.rows = len(self.train) + len(self.valid)

    def findings(self) -> list[Finding]:
        if list(check_values(self.spec)):
            return []  # load_spec reports those
        found = list(self._selectors())
        base = pipeline_of(self.spec)
        found += self._validate(base, {})
        for config in self._configurations():
            model = clone(base)
            try:
                model.set_params(**config)
            except (TypeError, ValueError, AttributeError) as error:
                found.append((("space",), f"cannot set {config}: {error}"))
                continue
            self.built += 1
            found += self._validate(model, config)
        if found:
            return found
        for config in self._fit_configurations():
            found += self._fit_and_score(clone(base).set_params(**config), config)
            if found:
                break
        return found

    # -- what is built ----------------------------------------------------------------------

    def _configurations(self) -> list[Params]:
        """Low corner, high corner, one random point, and each estimator choice."""
        low, high = self._corner(0), self._corner(-1)
        configs = [low, high, self.space.sample(np.random.default_rng(self.spec.seed))]
        for key in self.table:
            dim = self.spec.space[key]
            assert isinstance(dim, CategoricalDimension)
            for label in dim.labels:
                if not any(c.get(key) == label for c in configs):
                    configs.append(self._corner(0, {key: label}))
        return configs

    def _corner(self, end: int, fixed: Params | None = None) -> Params:
        params: Params = {}
        for name in self.space.names:
            if not self.space.is_active(name, params):
                continue
            if fixed and name in fixed:
                params[name] = fixed[name]
                continue
            values = self.space.finite_values(name)
            dim = self.spec.space[name]
            bound = getattr(dim, "low" if end == 0 else "high", None)
            params[name] = values[end] if values else bound
        return params

    def _fit_configurations(self) -> list[Params]:
        """The pipeline as written, then each other estimator a dimension may choose."""
        configs: list[Params] = [{}]
        for key, options in self.table.items():
            configs += [{key: label} for label in options if isinstance(options[label], dict)]
        return configs

    # -- scikit-learn's parameter validation ---------------------------------------------------

    def _validate(self, model: Any, config: Params) -> list[Finding]:
        found: list[Finding] = []
        for path, estimator in _estimators(model):
            if not hasattr(type(estimator), "_parameter_constraints"):
                continue
            try:
                estimator._validate_params()
            except InvalidParameterError as error:
                match = _PARAM.search(str(error))
                param = match.group(1) if match else ""
                found.append((self._param_loc(path, param, config), str(error)))
            except Exception:  # an estimator's own validation that fails otherwise
                continue
        return found

    def _param_loc(self, path: str, param: str, config: Params) -> Loc:
        """Where the spec set ``path__param``: a space dimension, a choice, or a step."""
        key = f"{path}__{param}" if path else param
        if key in config:
            dim = self.spec.space[key]
            value = config[key]
            for side in ("low", "high"):
                if getattr(dim, side, None) is not None and getattr(dim, side) == value:
                    return ("space", key, side)
            return ("space", key)
        step, _, rest = path.partition("__")
        steps = [s.name for s in self.spec.pipeline or []]
        chooser = next((k for k in self.table if path == k or path.startswith(k + "__")), None)
        if chooser is not None and chooser in config:
            dim = self.spec.space[chooser]
            assert isinstance(dim, CategoricalDimension)
            index = dim.labels.index(config[chooser])
            choice = dim.choices[index]
            if isinstance(choice, EstimatorChoice) and path == chooser and param in choice.params:
                return ("space", chooser, "choices", index, "params", param)
            return ("space", chooser, "choices", index)
        if step in steps:
            index = steps.index(step)
            params = self.spec.pipeline[index].params if self.spec.pipeline else {}
            if not rest and param in params:
                return ("pipeline", index, "params", param)
            first = rest.split("__", 1)[0]
            for name, value in params.items():
                if first and _mentions(value, first):
                    return ("pipeline", index, "params", name)
            return ("pipeline", index, "estimator")
        return ("pipeline",)

    # -- the data ---------------------------------------------------------------------------

    def _selectors(self) -> Iterator[Finding]:
        X = self.prepared.dev.X
        for loc, value in _selector_values(self.spec):
            if not isinstance(X, pd.DataFrame):
                yield loc, "column selectors need named columns: a csv or parquet source"
                continue
            picked = build_selector(value)(X)
            if not picked:
                columns = ", ".join(f"{c} ({X[c].dtype})" for c in X.columns)
                selector = describe_selector(value)
                yield loc, f"the selector {selector} picks no column; the data has: {columns}"

    def _fit_and_score(self, model: Any, config: Params) -> list[Finding]:
        X, y = self.prepared.dev.X, self.prepared.dev.y
        Xt, yt = take(X, self.train), y[self.train]
        steps = model.steps
        for index, (name, estimator) in enumerate(steps):
            if estimator is None or estimator == "passthrough":
                continue
            last = index == len(steps) - 1
            try:
                if last:
                    estimator.fit(Xt, yt)
                else:
                    Xt = estimator.fit_transform(Xt, yt)
            except (Exception, SystemExit) as error:  # sys.exit in a fit is its failure
                kind = type(estimator).__name__
                what = f"fitting step {name!r} ({kind}) on {len(yt)} development rows failed"
                return [(self._step_loc(name, config), f"{what}: {error_text(error)}")]
        self.fitted += 1
        Xv, yv = take(X, self.valid), y[self.valid]
        objective = self.spec.objective
        metrics: list[tuple[Loc, str]] = [(("objective", "metric"), objective.metric)]
        metrics += [(("objective", "report", i), m) for i, m in enumerate(objective.report)]
        found: list[Finding] = []
        for loc, metric in metrics:
            try:
                resolve_scorer(metric)(model, Xv, yv)
            except (Exception, SystemExit) as error:
                found.append(
                    (
                        loc,
                        f"scoring {metric!r} failed: {error_text(error)}"
                        + _metric_hint(metric, y, self.prepared.dev.task),
                    )
                )
        return found

    def _step_loc(self, name: str, config: Params) -> Loc:
        if name in config and name in self.spec.space:
            dim = self.spec.space[name]
            assert isinstance(dim, CategoricalDimension)
            return ("space", name, "choices", dim.labels.index(config[name]))
        steps = [s.name for s in self.spec.pipeline or []]
        return ("pipeline", steps.index(name), "estimator") if name in steps else ("pipeline",)


def _estimators(model: Any) -> Iterator[tuple[str, Any]]:
    """Every estimator inside ``model`` with its ``step__param`` path ('' for the model)."""
    yield "", model
    for key, value in model.get_params(deep=True).items():
        if isinstance(value, BaseEstimator):
            yield key, value


def _mentions(value: Any, name: str) -> bool:
    """Whether a written parameter value names ``name`` (a transformer in a list)."""
    if isinstance(value, list):
        return any(_mentions(item, name) for item in value)
    return bool(value == name)


def _selector_values(spec: Spec) -> Iterator[tuple[Loc, dict[str, Any]]]:
    def walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, dict[str, Any]]]:
        if is_selector(value):
            yield loc, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, (*loc, index))

    for index, step in enumerate(spec.pipeline or []):
        yield from walk(step.params, ("pipeline", index, "params"))
    for key, dim in spec.space.items():
        if isinstance(dim, CategoricalDimension):
            for index, choice in enumerate(dim.choices):
                if isinstance(choice, EstimatorChoice):
                    yield from walk(choice.params, ("space", key, "choices", index, "params"))


def _metric_hint(metric: str, y: np.ndarray, task: str) -> str:
    classes = len(np.unique(y))
    if classes <= 2 or task != "classification":
        return ""
    if metric.startswith("roc_auc"):
        return f" (the target has {classes} classes: write roc_auc_ovr or roc_auc_ovo)"
    if metric in ("f1", "precision", "recall", "jaccard"):
        return f" (the target has {classes} classes: write {metric}_macro or {metric}_weighted)"
    return f" (the target has {classes} classes)"


def _subsample(
    rows: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator, by_class: bool
) -> np.ndarray:
    """At most ``limit`` of ``rows``, keeping every class of a classification target."""
    if len(rows) <= limit:
        return rows
    if not by_class:
        return np.sort(rng.choice(rows, limit, replace=False))
    picked = []
    for label in np.unique(y[rows]):
        members = rows[y[rows] == label]
        wanted = max(2, round(limit * len(members) / len(rows)))
        picked.append(rng.choice(members, min(wanted, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


__all__ = ["DryRunSummary", "dry_run", "dry_run_spec"]
