"""tunedag: declarative hyperparameter tuning.

One spec file describes a study; tunedag validates it, compiles it into a DAG, runs it
resumably, and scores the best configuration once on a locked test set::

    import tunedag
    spec = tunedag.load_spec("specs/quickstart.yaml")
    result = tunedag.run(spec)
    result.best_params, result.best_value, result.test_value
    result.best_estimator                   # the refit model the test set scored
    model = tunedag.load_model(spec)        # the same, from .tunedag/NAME/model.skops
    tunedag.write_report(spec, "report/")  # report.html, trials.csv, results.json

The names below the error classes are imported when first used, so that ``import
tunedag`` (and the commands that need little, such as ``tunedag status``) stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tunedag.errors import (
    DataError,
    InterruptedStudy,
    LeaseLostError,
    ModelNotFoundError,
    ModelRefusedError,
    PluginError,
    Problem,
    SpecChangedError,
    SpecError,
    SpecNotFoundError,
    StorageBusyError,
    StorageError,
    StorageURLError,
    StudyBusyError,
    StudyFailedError,
    TestRowsError,
    TestSetLockedError,
    TunedagError,
    UnknownNameError,
)
from tunedag.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from tunedag.executor import Executor, TrialOutcome, Workload
    from tunedag.model import load_model
    from tunedag.observer import Observer
    from tunedag.plugin import PluginOptions
    from tunedag.pruner import Pruner
    from tunedag.registry import make_plugins
    from tunedag.report import ReportFiles, write_report
    from tunedag.result import StudyResult
    from tunedag.sampler import Sampler
    from tunedag.space import SearchSpace
    from tunedag.spec.models import Spec
    from tunedag.spec.validate import load_spec
    from tunedag.storage import TrialRecord, TrialState
    from tunedag.study import run, status

#: public name -> the module that defines it, imported on first use
_LAZY = {
    "Executor": "tunedag.executor",
    "TrialOutcome": "tunedag.executor",
    "Workload": "tunedag.executor",
    "load_model": "tunedag.model",
    "Observer": "tunedag.observer",
    "PluginOptions": "tunedag.plugin",
    "Pruner": "tunedag.pruner",
    "make_plugins": "tunedag.registry",
    "ReportFiles": "tunedag.report",
    "write_report": "tunedag.report",
    "StudyResult": "tunedag.result",
    "Sampler": "tunedag.sampler",
    "SearchSpace": "tunedag.space",
    "Spec": "tunedag.spec.models",
    "load_spec": "tunedag.spec.validate",
    "TrialRecord": "tunedag.storage",
    "TrialState": "tunedag.storage",
    "run": "tunedag.study",
    "status": "tunedag.study",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tunedag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DataError",
    "Executor",
    "InterruptedStudy",
    "LeaseLostError",
    "ModelNotFoundError",
    "ModelRefusedError",
    "Observer",
    "PluginError",
    "PluginOptions",
    "Problem",
    "Pruner",
    "ReportFiles",
    "Sampler",
    "SearchSpace",
    "Spec",
    "SpecChangedError",
    "SpecError",
    "SpecNotFoundError",
    "StorageBusyError",
    "StorageError",
    "StorageURLError",
    "StudyBusyError",
    "StudyFailedError",
    "StudyResult",
    "TestRowsError",
    "TestSetLockedError",
    "TrialOutcome",
    "TrialRecord",
    "TrialState",
    "TunedagError",
    "UnknownNameError",
    "Workload",
    "hookimpl",
    "hookspec",
    "load_model",
    "load_spec",
    "make_plugins",
    "run",
    "status",
    "write_report",
]
