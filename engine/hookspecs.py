"""The hooks a tunedag plugin may implement; the first file a plugin author reads.

Register a plugin through the ``tunedag`` entry-point group::

    [project.entry-points.tunedag]
    sobol = "tunedag_sobol"

and mark its functions with ``tunedag.hookimpl``. An implementation may accept fewer
arguments than a hook declares, so hooks can grow without breaking plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from tunedag.executor import Executor
    from tunedag.pruner import Pruner
    from tunedag.sampler import Sampler
    from tunedag.storage import TrialRecord

hookspec = pluggy.HookspecMarker("tunedag")
hookimpl = pluggy.HookimplMarker("tunedag")


@hookspec
def register_samplers(register: Callable[[type[Sampler]], None]) -> None:
    """Called once when plugins load: call ``register(cls)`` for each Sampler subclass.

    ``cls.name`` is what a spec writes in ``sampler.name``; a name registered twice is an error.
    """


@hookspec
def register_pruners(register: Callable[[type[Pruner]], None]) -> None:
    """Called once when plugins load: call ``register(cls)`` for each Pruner subclass."""


@hookspec
def register_executors(register: Callable[[type[Executor]], None]) -> None:
    """Called once when plugins load: call ``register(cls)`` for each Executor subclass."""


@hookspec
def before_trial(study: Any, trial: TrialRecord) -> None:
    """Called in the driver just before a trial is handed to the executor.

    ``study`` is the running :class:`tunedag.study.StudyContext`. An observer that raises is
    logged with its name and the study goes on.
    """


@hookspec
def after_trial(study: Any, trial: TrialRecord) -> None:
    """Called after a trial's final state (complete, pruned or failed) is stored."""


@hookspec
def on_trial_error(error: str, study: Any, trial: TrialRecord) -> None:
    """Called after a trial failed, with the error text that was stored."""


@hookspec
def after_study(study: Any, result: Any) -> None:
    """Called once a run ends, with its :class:`tunedag.StudyResult`."""
