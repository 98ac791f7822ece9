"""The search space: which parameters are active, how each is sampled, and its finite grid."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx
import numpy as np

from tunedag.spec.models import MAX_GRID_AXIS, CategoricalDimension, Dimension, IntDimension

Params = dict[str, Any]


class SearchSpace:
    """A validated space; names come in dependency order (a condition's parent first)."""

    def __init__(self, dimensions: Mapping[str, Dimension]) -> None:
        self.dimensions = dict(dimensions)
        graph = nx.DiGraph()
        graph.add_nodes_from(self.dimensions)
        for name, dim in self.dimensions.items():
            for parent in dim.when or {}:
                graph.add_edge(parent, name)
        self.names: list[str] = list(nx.lexicographical_topological_sort(graph))

    def conditions(self, name: str) -> dict[str, list[Any]]:
        when = self.dimensions[name].when or {}
        return {key: value if isinstance(value, list) else [value] for key, value in when.items()}

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Active when every parent is present in `params` with one of the listed values."""
        return all(
            parent in params and params[parent] in allowed
            for parent, allowed in self.conditions(name).items()
        )

    def finite_values(self, name: str) -> list[Any] | None:
        """The grid axis of a dimension, or None when it is continuous."""
        dim = self.dimensions[name]
        if isinstance(dim, CategoricalDimension):
            return list(dim.labels)
        if dim.values is not None:
            return list(dim.values)
        assert dim.low is not None and dim.high is not None
        if dim.grid_points:
            space = np.geomspace if dim.log else np.linspace
            points = space(dim.low, dim.high, dim.grid_points)
            if isinstance(dim, IntDimension):
                return sorted({round(p) for p in points})
            return [float(p) for p in points]
        if dim.step is not None or isinstance(dim, IntDimension):
            step = dim.step or 1
            count = math.floor((dim.high - dim.low) / step + 1e-9) + 1
            if isinstance(dim, IntDimension) and count <= MAX_GRID_AXIS:
                return [int(dim.low + i * step) for i in range(count)]
            if count <= MAX_GRID_AXIS:
                return [_round_step(dim.low + i * step, step) for i in range(count)]
        return None

    @property
    def is_finite(self) -> bool:
        return all(self.finite_values(name) is not None for name in self.names)

    def grid(self) -> Iterator[Params]:
        """Every configuration once, in a fixed order; inactive parameters are left out."""
        axes = {name: self.finite_values(name) for name in self.names}
        if any(axis is None for axis in axes.values()):
            raise ValueError("the space has continuous dimensions; a grid needs finite ones")

        def expand(index: int, partial: Params) -> Iterator[Params]:
            if index == len(self.names):
                yield dict(partial)
                return
            name = self.names[index]
            if not self.is_active(name, partial):
                yield from expand(index + 1, partial)
                return
            for value in axes[name] or []:
                partial[name] = value
                yield from expand(index + 1, partial)
            partial.pop(name, None)

        return expand(0, {})

    def grid_size(self) -> int:
        return sum(1 for _ in self.grid())

    def sample(self, rng: np.random.Generator) -> Params:
        """One configuration, each active dimension drawn on its own scale."""
        params: Params = {}
        for name in self.names:
            if self.is_active(name, params):
                params[name] = self.sample_dimension(name, rng)
        return params

    def sample_dimension(self, name: str, rng: np.random.Generator) -> Any:
        return self.from_unit(name, float(rng.random()))

    def from_unit(self, name: str, u: float) -> Any:
        """Map ``u`` in [0, 1) to a value of the dimension, uniform on its own scale.

        Samplers that work in the unit cube (quasi-random sequences, surrogate models) use
        this so log dimensions, steps, ints and choices are handled in one place.
        """
        dim = self.dimensions[name]
        u = min(max(u, 0.0), 1.0 - 1e-12)
        if isinstance(dim, CategoricalDimension):
            labels = dim.labels
            return labels[int(u * len(labels))]
        if dim.values is not None:
            return dim.values[int(u * len(dim.values))]
        assert dim.low is not None and dim.high is not None
        if dim.step is not None:
            count = math.floor((dim.high - dim.low) / dim.step + 1e-9) + 1
            value = dim.low + int(u * count) * dim.step
            return int(value) if isinstance(dim, IntDimension) else _round_step(value, dim.step)
        if isinstance(dim, IntDimension):
            if dim.log:
                low, high = math.log(dim.low - 0.5 + 1e-9), math.log(dim.high + 0.5)
                return int(min(max(round(math.exp(low + u * (high - low))), dim.low), dim.high))
            return int(dim.low + int(u * (dim.high - dim.low + 1)))
        if dim.log:
            low, high = math.log(dim.low), math.log(dim.high)
            return float(min(math.exp(low + u * (high - low)), dim.high))
        return float(dim.low + u * (dim.high - dim.low))

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when exactly the active parameters are present, each inside its dimension."""
        for name in self.names:
            active = self.is_active(name, params)
            if active != (name in params):
                return False
            if active and not self._inside(name, params[name]):
                return False
        return set(params) <= set(self.names)

    def _inside(self, name: str, value: Any) -> bool:
        dim = self.dimensions[name]
        if isinstance(dim, CategoricalDimension):
            return any(_same(value, label) for label in dim.labels)
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            return False  # a bool or a text for a number is no value of the dimension
        if isinstance(dim, IntDimension) and not isinstance(value, int | np.integer):
            return False
        if dim.values is not None:
            return value in dim.values
        assert dim.low is not None and dim.high is not None
        if dim.log and not value > 0:
            return False
        slack = 1e-9 * (dim.high - dim.low)  # round-off of a sampler's arithmetic, no more
        inside = dim.low - slack <= value <= dim.high + slack
        if dim.step is not None:
            steps = (value - dim.low) / dim.step
            return bool(inside and math.isclose(steps, round(steps), abs_tol=1e-6))
        return bool(inside)

    def fingerprint(self) -> str:
        payload = {name: dim.model_dump(mode="json") for name, dim in self.dimensions.items()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _same(value: Any, label: Any) -> bool:
    """Equal, and both or neither a bool (``True == 1``, but a bool is no int choice)."""
    is_bool = isinstance(value, bool | np.bool_)
    return is_bool == isinstance(label, bool | np.bool_) and bool(value == label)


def _round_step(value: float, step: float) -> float:
    """Snap a stepped float to the step's decimals so 0.1 * 3 reads 0.3."""
    decimals = max(0, -math.floor(math.log10(step)) + 6) if step > 0 else 12
    return float(round(value, decimals))


def pairs(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Params as sorted pairs, a hashable key for deduplication."""
    return sorted(params.items())


__all__ = ["Params", "SearchSpace", "pairs"]
