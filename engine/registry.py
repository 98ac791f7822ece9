"""Loading plugins: built-ins first, then the `tunedag` entry-point group, then checks.

Built-ins are registered through the same hooks a third party uses; only their loading
differs. ``make_plugins`` is a factory, never a module global, so each test gets its own.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from tunedag import hookspecs
from tunedag.errors import PluginError, UnknownNameError
from tunedag.executor import Executor
from tunedag.plugin import Plugin
from tunedag.pruner import Pruner
from tunedag.sampler import Sampler

log = logging.getLogger("tunedag")

#: The built-in plugins, by the name their entry point also carries.
DEFAULT_PLUGINS = {
    "random": "tunedag.plugins.random_sampler",
    "grid": "tunedag.plugins.grid_sampler",
    "skopt-gp": "tunedag.plugins.skopt_sampler",
    "pruners": "tunedag.plugins.pruners",
    "local": "tunedag.plugins.local_executor",
    "dask": "tunedag.plugins.dask_executor",
}
KINDS: dict[str, type[Plugin]] = {"sampler": Sampler, "pruner": Pruner, "executor": Executor}
OBSERVER_HOOKS = ("before_trial", "after_trial", "on_trial_error", "after_study")


@dataclass(frozen=True)
class Provided:
    """One sampler, pruner or executor, and who provides it."""

    kind: str
    name: str
    cls: type[Plugin]
    plugin: str
    distribution: str
    version: str

    @property
    def provider(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution} {self.version})"


class Plugins:
    """The loaded plugin manager and what its plugins registered, by kind and name."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.hook = manager.hook
        self.provided: dict[str, dict[str, Provided]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            self._collect(kind)

    def _collect(self, kind: str) -> None:
        caller = getattr(self.manager.hook, f"register_{kind}s")
        for impl in caller.get_hookimpls():
            distribution, version = self.distribution_of(impl.plugin_name)

            def register(
                cls: type[Plugin],
                _impl: Any = impl,
                _dist: tuple[str, str] = (distribution, version),
            ) -> None:
                self._add(kind, cls, _impl.plugin_name, *_dist)

            try:
                impl.function(**{name: register for name in impl.argnames})
            except (PluginError, UnknownNameError):
                raise
            except Exception as error:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in hook 'register_{kind}s': "
                    f"{type(error).__name__}: {error}"
                ) from error

    def _add(self, kind: str, cls: type[Plugin], plugin: str, dist: str, version: str) -> None:
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"plugin {plugin!r} registered {cls!r} as a {kind}, but it is not a "
                f"subclass of tunedag.{base.__name__}"
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r}: {kind} {cls.__name__} has no `name`")
        existing = self.provided[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {existing.provider} and by "
                f"plugin {plugin!r} ({dist} {version})"
            )
        self.provided[kind][name] = Provided(kind, name, cls, plugin, dist, version)

    def distribution_of(self, plugin_name: str) -> tuple[str, str]:
        for plugin, dist in self.manager.list_plugin_distinfo():
            if self.manager.get_name(plugin) == plugin_name:
                return dist.metadata["name"], dist.version
        if plugin_name in DEFAULT_PLUGINS:
            return "tunedag", _version("tunedag")
        return "(local)", ""

    def get(self, kind: str, name: str) -> Provided:
        """The named sampler, pruner or executor, or an error listing the known ones."""
        known = self.provided[kind]
        if name in known:
            return known[name]
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(
            f"unknown {kind} {name!r}{hint} (installed: {', '.join(sorted(known)) or 'none'})"
        )

    def observers(self) -> list[tuple[str, str]]:
        """(plugin name, hook) for each observer hook implementation."""
        return [
            (impl.plugin_name, hook)
            for hook in OBSERVER_HOOKS
            for impl in getattr(self.manager.hook, hook).get_hookimpls()
        ]

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook; an observer that raises is logged and the study goes on."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as error:
                log.warning(
                    "observer plugin %r raised in hook %r: %s: %s",
                    impl.plugin_name,
                    hook,
                    type(error).__name__,
                    error,
                )


def make_plugins(
    extra: Iterable[object] = (),
    *,
    autoload: bool | None = None,
    disabled: Sequence[str] | None = None,
) -> Plugins:
    """A fresh plugin manager: built-ins, then entry points, then ``extra`` objects."""
    manager = pluggy.PluginManager("tunedag")
    manager.add_hookspecs(hookspecs)
    if disabled is None:
        disabled = [n.strip() for n in os.environ.get("TUNEDAG_DISABLED_PLUGINS", "").split(",")]
    for name in disabled:
        if name:
            manager.set_blocked(name)
    if autoload is None:
        autoload = not os.environ.get("TUNEDAG_DISABLE_PLUGIN_AUTOLOAD")
    try:
        for name, module in DEFAULT_PLUGINS.items():
            if not manager.is_blocked(name):
                manager.register(importlib.import_module(module), name=name)
        if autoload:
            manager.load_setuptools_entrypoints("tunedag")
        for plugin in extra:
            manager.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        name = getattr(error.plugin, "__name__", repr(error.plugin))
        raise PluginError(f"plugin {name!r} is invalid: {error}") from error
    except ImportError as error:
        raise PluginError(f"a tunedag plugin failed to import: {error}") from error
    return Plugins(manager)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(source)"
