"""Loading plugins: built-ins first, then the `tunedag` entry-point group, then checks.

Built-ins are registered through the same hooks a third party uses; only their loading
differs. ``make_plugins`` is a factory, never a module global, so each test gets its own.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pluggy

from tunedag import hookspecs
from tunedag.errors import PluginError, UnknownNameError
from tunedag.executor import Executor
from tunedag.observer import Observer
from tunedag.plugin import Plugin
from tunedag.plugin_loading import PluginFailure, check_hooks, load_entry_points, observer_hint
from tunedag.pruner import Pruner
from tunedag.sampler import Sampler

#: The built-in plugins, by the name their entry point also carries.
DEFAULT_PLUGINS = {
    "random": "tunedag.plugins.random_sampler",
    "grid": "tunedag.plugins.grid_sampler",
    "skopt-gp": "tunedag.plugins.skopt_sampler",
    "pruners": "tunedag.plugins.pruners",
    "local": "tunedag.plugins.local_executor",
    "dask": "tunedag.plugins.dask_executor",
    "mlflow": "tunedag.plugins.mlflow_observer",
}
KINDS: dict[str, type[Plugin]] = {
    "sampler": Sampler,
    "pruner": Pruner,
    "executor": Executor,
    "observer": Observer,
}


@dataclass(frozen=True)
class Provided:
    """One sampler, pruner, executor or observer, and who provides it."""

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
    """The loaded plugin manager and what its plugins registered, by kind and name.

    An installed plugin (from an entry point) that breaks while registering is set aside
    and recorded in ``failures``; a name two plugins register, either of them installed,
    is in ``clashes`` and refused when a spec names it. The same mistakes by a built-in or
    by a plugin object handed to ``make_plugins`` raise PluginError.
    """

    def __init__(
        self,
        manager: pluggy.PluginManager,
        installed: dict[str, tuple[str, str]] | None = None,
        failures: Sequence[PluginFailure] = (),
    ) -> None:
        self.manager = manager
        self.hook = manager.hook
        self.installed = dict(installed or {})
        self.failures: list[PluginFailure] = list(failures)
        self.provided: dict[str, dict[str, Provided]] = {kind: {} for kind in KINDS}
        self.clashes: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            self._collect(kind)

    def _collect(self, kind: str) -> None:
        caller = getattr(self.manager.hook, f"register_{kind}s")
        for impl in caller.get_hookimpls():
            distribution, version = self.distribution_of(impl.plugin_name)
            offered: list[type[Plugin]] = []
            try:
                impl.function(**{name: offered.append for name in impl.argnames})
                for cls in offered:
                    self._check(kind, cls, impl.plugin_name)
            except (Exception, SystemExit) as error:  # its sys.exit is its own failure too
                reason = f"failed in hook 'register_{kind}s': {type(error).__name__}: {error}"
                if impl.plugin_name not in self.installed:
                    if isinstance(error, PluginError | UnknownNameError):
                        raise
                    raise PluginError(f"plugin {impl.plugin_name!r} {reason}") from error
                self._fail(impl.plugin_name, reason, traceback.format_exc())
                continue
            for cls in offered:
                self._add(kind, cls, impl.plugin_name, distribution, version)

    def _check(self, kind: str, cls: type[Plugin], plugin: str) -> None:
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"plugin {plugin!r} registered {cls!r} as a {kind}, but it is not a "
                f"subclass of tunedag.{base.__name__}"
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r}: {kind} {cls.__name__} has no `name`")

    def _add(self, kind: str, cls: type[Plugin], plugin: str, dist: str, version: str) -> None:
        name: str = cls.name
        if name in self.clashes[kind]:
            self.clashes[kind][name] += f" and by plugin {plugin!r} ({dist} {version})"
            return
        existing = self.provided[kind].get(name)
        if existing is not None:
            message = (
                f"{kind} {name!r} is registered twice: by {existing.provider} and by "
                f"plugin {plugin!r} ({dist} {version})"
            )
            if plugin not in self.installed and existing.plugin not in self.installed:
                raise PluginError(message)
            del self.provided[kind][name]
            self.clashes[kind][name] = message
            blamed = plugin if plugin in self.installed else existing.plugin
            self._fail(blamed, f"clashes: {message}")
            return
        self.provided[kind][name] = Provided(kind, name, cls, plugin, dist, version)

    def _fail(self, plugin: str, reason: str, details: str = "") -> None:
        self.failures.append(PluginFailure(plugin, *self.distribution_of(plugin), reason, details))

    def distribution_of(self, plugin_name: str) -> tuple[str, str]:
        if plugin_name in self.installed:
            return self.installed[plugin_name]
        for plugin, dist in self.manager.list_plugin_distinfo():
            if self.manager.get_name(plugin) == plugin_name:
                return dist.metadata["name"], dist.version
        if plugin_name in DEFAULT_PLUGINS:
            return "tunedag", _version("tunedag")
        return "(local)", ""

    def get(self, kind: str, name: str) -> Provided:
        """The named sampler, pruner, executor or observer, or an error listing the known ones (and
        the installed plugins that failed, which may have been meant to provide it)."""
        known = self.provided[kind]
        if name in known:
            return known[name]
        if name in self.clashes[kind]:
            raise UnknownNameError(
                f"{self.clashes[kind][name]}, so neither is used; disable one with "
                "TUNEDAG_DISABLED_PLUGINS=PLUGIN (the plugin's entry point name)"
            )
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        failed = "".join(
            f"; plugin {f.plugin!r} ({f.distribution} {f.version}) {f.reason}"
            for f in self.failures
        )
        raise UnknownNameError(
            f"unknown {kind} {name!r}{hint} (installed: {', '.join(sorted(known)) or 'none'})"
            f"{failed}"
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
    installed: dict[str, tuple[str, str]] = {}
    failures: list[PluginFailure] = []
    try:
        for name, module in DEFAULT_PLUGINS.items():
            if not manager.is_blocked(name):
                manager.register(importlib.import_module(module), name=name)
        if autoload:
            installed, failures = load_entry_points(manager)
        for plugin in extra:
            manager.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
        check_hooks(manager, installed, failures)
    except pluggy.PluginValidationError as error:
        name = getattr(error.plugin, "__name__", repr(error.plugin))
        raise PluginError(
            f"plugin {name!r} is invalid: {error}{observer_hint(str(error))}"
        ) from error
    except ImportError as error:
        raise PluginError(f"a tunedag plugin failed to import: {error}") from error
    plugins = Plugins(manager, installed, failures)
    for failure in plugins.failures:
        failure.warn()
    return plugins


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(source)"
