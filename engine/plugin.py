"""What every sampler, pruner and executor shares: a name and a strict Options model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from tunedag.strict_numbers import NoBooleanNumbers


class PluginOptions(NoBooleanNumbers):
    """Options a plugin accepts under ``options:``; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """Base of Sampler, Pruner and Executor. Subclasses set ``name`` and may nest ``Options``."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = PluginOptions
