"""Loading installed plugins one at a time, so that a broken one fails alone.

A third party's package that fails to import, registers a name another plugin has, or
implements a misspelt hook is set aside with a warning that names its entry point, its
package and the fix; every command that does not need it goes on, and a spec that names
what it would have provided is refused (exit 78) with the reason. Set ``TUNEDAG_DEBUG=1``
(or pass ``--debug``) to see the full traceback in the warning.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import traceback
from dataclasses import dataclass

import pluggy

GROUP = "tunedag"
#: Hooks that were module-level observer hooks; they are now methods of an Observer.
OBSERVER_METHODS = ("before_trial", "after_trial", "on_trial_error", "after_study")
_warned: set[str] = set()  # each failure is told once per process, however often plugins load


@dataclass(frozen=True)
class PluginFailure:
    """An installed plugin that was set aside, and why."""

    plugin: str  # the entry point's name, which TUNEDAG_DISABLED_PLUGINS takes
    distribution: str
    version: str
    reason: str
    details: str = ""  # the traceback, shown with TUNEDAG_DEBUG=1
    #: whether TUNEDAG_DISABLED_PLUGINS=NAME is a fix (not for a name another module holds)
    blockable: bool = True

    def __str__(self) -> str:
        block = f", or set TUNEDAG_DISABLED_PLUGINS={self.plugin}" if self.blockable else ""
        return (
            f"plugin {self.plugin!r} (entry point {self.plugin!r} in group {GROUP!r}, package "
            f"{self.distribution} {self.version}) {self.reason}; tunedag goes on without it. "
            f"Fix or uninstall {self.distribution}{block}"
        )

    def warn(self) -> None:
        text = str(self)
        if text in _warned:
            return
        _warned.add(text)
        if debugging() and self.details:
            text = f"{text}\n{self.details.rstrip()}"
        print(f"warning: {text}", file=sys.stderr)  # as the CLI's human output: on stderr


def debugging() -> bool:
    """Whether full tracebacks were asked for (``--debug`` or ``TUNEDAG_DEBUG=1``)."""
    return os.environ.get("TUNEDAG_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def load_entry_points(
    manager: pluggy.PluginManager,
) -> tuple[dict[str, tuple[str, str]], list[PluginFailure]]:
    """Register each entry point of the group on its own: (loaded name -> (package, version),
    failures). A blocked entry point is skipped, and so is one already registered (a
    built-in's own); one whose name another module holds is a failure."""
    loaded: dict[str, tuple[str, str]] = {}
    failures: list[PluginFailure] = []
    for dist in list(importlib.metadata.distributions()):
        for entry in dist.entry_points:
            if entry.group != GROUP or manager.is_blocked(entry.name):
                continue
            package = (dist.metadata["name"] or "(unknown)", dist.version or "")
            holder = manager.get_plugin(entry.name)
            if holder is not None:
                if getattr(holder, "__name__", None) != entry.module:  # not the same module
                    reason = (
                        f"is not loaded: its entry-point name {entry.name!r} is taken by "
                        f"{getattr(holder, '__name__', repr(holder))!r}; rename the entry point"
                    )
                    failures.append(PluginFailure(entry.name, *package, reason, blockable=False))
                continue
            try:
                manager.register(entry.load(), name=entry.name)
            except (Exception, SystemExit) as error:
                reason = f"failed to load: {type(error).__name__}: {error}"
                failures.append(PluginFailure(entry.name, *package, reason, traceback.format_exc()))
                continue
            loaded[entry.name] = package
    return loaded, failures


def check_hooks(
    manager: pluggy.PluginManager, loaded: dict[str, tuple[str, str]], failures: list[PluginFailure]
) -> None:
    """``check_pending`` one plugin at a time: an installed plugin that implements a hook
    tunedag does not have (a misspelt name) is unregistered and recorded; any other plugin's
    such mistake raises, as it is the caller's own code."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as error:
            name = manager.get_name(error.plugin)
            if name not in loaded:
                raise
            manager.unregister(error.plugin)
            package = loaded.pop(name)
            reason = f"is invalid: {error}{observer_hint(str(error))}"
            failures.append(PluginFailure(name, *package, reason))


def observer_hint(message: str) -> str:
    """How to move an observer written as bare hook functions to an Observer class."""
    if not any(f"'{hook}'" in message for hook in OBSERVER_METHODS):
        return ""
    return (
        "; observer hooks are now methods of a tunedag.Observer subclass: register it with "
        "register_observers(register) and name it in the spec's `observers:` "
        "(see docs/plugins.md)"
    )
