"""The Observer base class: a plugin that watches a study (a tracker such as MLflow).

A spec names the observers a study runs under ``observers:``; an installed observer the
spec does not name does not run. The engine calls, in this order:

1. ``check_environment()`` when the spec is validated, to refuse an observer that cannot
   run here (a package it needs is not installed);
2. ``Observer(options)`` once per run, with its validated ``Options``;
3. ``before_study(study)`` once the study is opened, before any trial of this run starts;
4. ``before_trial``, ``after_trial`` and ``on_trial_error`` around each trial;
5. ``after_study(study, result)`` when the run ends with a result (finished or paused);
6. ``close()`` last, however the run ended, interrupted or failed included.

Observers watch and never steer: each gets its own copy of the trial or the result it is
shown, and one that raises is logged with its name and the study goes on, so a tracking
server outage never stops a study.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from tunedag.errors import InterruptedStudy
from tunedag.plugin import Plugin, PluginOptions
from tunedag.storage import TrialRecord

if TYPE_CHECKING:
    from tunedag.registry import Plugins
    from tunedag.spec.models import Spec

log = logging.getLogger("tunedag")


class Observer(Plugin):
    """Override the hooks you need; each does nothing by default.

    ``study`` is the running ``tunedag.study.StudyContext`` (``name``, ``spec``,
    ``storage``); ``trial`` a ``tunedag.TrialRecord``; ``result`` a ``tunedag.StudyResult``.
    """

    kind: ClassVar[str] = "observer"

    class Options(PluginOptions):
        """Override in a subclass to accept options."""

    def __init__(self, options: PluginOptions | None = None) -> None:
        self.options: Any = options if options is not None else self.Options()

    @classmethod
    def check_environment(cls) -> list[str]:
        """What this observer lacks to run here, such as a package that is not installed;
        `tunedag validate` and `tunedag run` refuse the spec with each (exit 78)."""
        return []

    def before_study(self, study: Any) -> None:
        """Called once the study is opened (created or resumed), before this run's trials."""

    def before_trial(self, study: Any, trial: TrialRecord) -> None:
        """Called in the driver just before a trial is handed to the executor."""

    def after_trial(self, study: Any, trial: TrialRecord) -> None:
        """Called after a trial's final state (complete, pruned or failed) is stored."""

    def on_trial_error(self, error: str, study: Any, trial: TrialRecord) -> None:
        """Called after a trial failed, with the error text that was stored."""

    def after_study(self, study: Any, result: Any) -> None:
        """Called when a run ends with a result: finished, failed or paused (a slice)."""

    def close(self) -> None:
        """Called last, however the run ended; release what the observer holds."""


class Observers:
    """The observers of one run, called in the spec's order, each failure isolated.

    An observer whose ``before_study`` raises is dropped for the rest of the run (it never
    got its footing); a failure in any later hook is logged and the observer stays.
    """

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.active = list(observers)

    @classmethod
    def of_spec(cls, spec: Spec, plugins: Plugins, extra: Sequence[Observer] = ()) -> Observers:
        """The spec's observers, made with their validated options, then ``extra`` ones."""
        made: list[Observer] = []
        for ref in spec.observers:
            observer_class = cast(type[Observer], plugins.get("observer", ref.name).cls)
            made.append(observer_class(observer_class.Options.model_validate(ref.options)))
        return cls([*made, *extra])

    def before_study(self, study: Any) -> None:
        for observer in list(self.active):
            if not self._call(observer, "before_study", lambda o: o.before_study(study)):
                log.warning("observer %r is left out for the rest of this run", _name(observer))
                self.active.remove(observer)

    # Each observer gets its own copy of a trial or a result: what it changes there never
    # reaches the study, the sampler, the stored record or the next observer.

    def before_trial(self, study: Any, trial: TrialRecord) -> None:
        self._each("before_trial", lambda o: o.before_trial(study, copy.deepcopy(trial)))

    def after_trial(self, study: Any, trial: TrialRecord) -> None:
        self._each("after_trial", lambda o: o.after_trial(study, copy.deepcopy(trial)))

    def on_trial_error(self, error: str, study: Any, trial: TrialRecord) -> None:
        self._each("on_trial_error", lambda o: o.on_trial_error(error, study, copy.deepcopy(trial)))

    def after_study(self, study: Any, result: Any) -> None:
        self._each("after_study", lambda o: o.after_study(study, copy.deepcopy(result)))

    def close(self) -> None:
        self._each("close", lambda o: o.close())

    def _each(self, hook: str, call: Callable[[Observer], None]) -> None:
        for observer in self.active:
            self._call(observer, hook, call)

    @staticmethod
    def _call(observer: Observer, hook: str, call: Callable[[Observer], None]) -> bool:
        try:
            call(observer)
        except InterruptedStudy:  # a signal that arrived during the hook stops the run
            raise
        except (Exception, SystemExit) as error:
            log.warning(
                "observer %r raised in hook %r: %s: %s; the study goes on",
                _name(observer),
                hook,
                type(error).__name__,
                error,
            )
            return False
        return True


def _name(observer: Observer) -> str:
    return getattr(observer, "name", type(observer).__name__)
