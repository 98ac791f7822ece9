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
"""

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
    StudyBusyError,
    StudyFailedError,
    TestSetLockedError,
    TunedagError,
    UnknownNameError,
)
from tunedag.executor import Executor, TrialOutcome, Workload
from tunedag.hookspecs import hookimpl, hookspec
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
    "StudyBusyError",
    "StudyFailedError",
    "StudyResult",
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
