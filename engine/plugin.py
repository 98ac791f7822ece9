"""What every sampler, pruner and executor shares: a name and a strict Options model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class PluginOptions(BaseModel):
    """Options a plugin accepts under ``options:``; unknown keys are errors, and floats are
    finite (``.inf`` and ``.nan`` are refused) unless a plugin's own model says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Plugin:
    """Base of Sampler, Pruner and Executor. Subclasses set ``name`` and may nest ``Options``."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = PluginOptions
