"""The hooks a tunedag plugin may implement; the first file a plugin author reads.

Register a plugin through the ``tunedag`` entry-point group::

    [project.entry-points.tunedag]
    sobol = "tunedag_sobol"

and mark its functions with ``tunedag.hookimpl``. An implementation may accept fewer
arguments than a hook declares, so hooks can grow without breaking plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tunedag.executor import Executor
    from tunedag.observer import Observer
    from tunedag.pruner import Pruner
    from tunedag.sampler import Sampler

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
def register_observers(register: Callable[[type[Observer]], None]) -> None:
    """Called once when plugins load: call ``register(cls)`` for each Observer subclass.

    An observer runs only in a study whose spec lists it under ``observers:``.
    """
