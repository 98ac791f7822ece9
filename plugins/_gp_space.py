"""How ``skopt-gp`` sees a tunedag search space: one GP column per dimension.

* ``float`` and ``int``: a numeric column in [0, 1], linear in the value, or in its log
  with ``log: true``. An int is searched as a real and rounded before the acquisition
  scores it, so the GP is always asked about a point that can be proposed (Garrido-Merchan
  and Hernandez-Lobato, 2020). A ``step`` too fine to enumerate is snapped the same way.
* ``values``, ``step`` and ``grid_points`` dimensions: a numeric column holding the
  *index* into the dimension's sorted values, divided by their count less one. Unlike a
  categorical, the index keeps their order, so the GP interpolates between neighbours (a
  log grid is evenly spaced in its index). A stored ``grid_points`` value off the grid but
  inside the range (a trial another sampler proposed) is told at the nearest grid point.
* ``categorical``: a column of choice positions, compared by equality only (see
  ``_gp``), so any choice type comes back as exactly the value written in the spec.
* A dimension with a single possible value is left out of the GP and always proposed.

A parameter inactive in a trial (its ``when`` not met) is imputed at the low end of its
column (0, the first choice), so trials that differ only in inactive parameters are one
point to the GP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tunedag.space import SearchSpace
from tunedag.spec.models import CategoricalDimension, IntDimension

Kind = Literal["real", "int", "index", "categorical", "constant"]


@dataclass
class Axis:
    """One tunedag dimension as the GP sees it; ``dim`` (a scikit-optimize dimension, for
    the space-filling initial designs) is None for a single-valued one."""

    name: str
    kind: Kind
    dim: Any
    low: float = 0.0
    high: float = 0.0
    values: tuple[Any, ...] = ()
    step: float | None = None  # a step too fine to enumerate: searched as continuous, snapped
    grid_log: bool | None = None  # a grid_points axis: True on a log scale, False on a linear one
    log: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind != "categorical"

    @property
    def warpable(self) -> bool:
        """Numeric with enough distinct values for a warping to matter."""
        if self.kind == "real":
            return True
        if self.kind == "int":
            return self.high - self.low >= 3
        return self.kind == "index" and len(self.values) >= 4

    # -- spec values <-> GP coordinates --------------------------------------------------------

    def _scale(self, value: float) -> float:
        return math.log(value) if self.log else float(value)

    def unit(self, value: Any) -> float | None:
        """The GP coordinate of a stored value, or None when it is not in this dimension."""
        if self.kind in ("real", "int"):
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer):
                return None
            if self.kind == "int" and not isinstance(value, int | np.integer):
                return None
            if not self.low <= value <= self.high:
                return None
            low, high = self._scale(self.low), self._scale(self.high)
            return (self._scale(float(value)) - low) / (high - low)
        index = self.index(value)
        if index is None:
            return None
        return float(index) if self.kind == "categorical" else index / (len(self.values) - 1)

    def index(self, value: Any) -> int | None:
        """The position of ``value`` among the axis's values or choices, else None."""
        if self.kind == "categorical":
            for position, choice in enumerate(self.values):
                if type(choice) is type(value) and choice == value:
                    return position
            return None
        for position, point in enumerate(self.values):
            if point == value or (
                isinstance(point, float)
                and isinstance(value, int | float)
                and math.isclose(point, value, rel_tol=1e-9, abs_tol=1e-12)
            ):
                return position
        return self.nearest(value)

    def nearest(self, value: Any) -> int | None:
        """The index of the grid point nearest ``value`` (on the dimension's scale) when this
        is a ``grid_points`` axis and ``value`` lies in its range; else None."""
        if self.grid_log is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        low, high = self.values[0], self.values[-1]
        if not low - 1e-9 * abs(low) <= value <= high + 1e-9 * abs(high):
            return None
        scale = math.log if self.grid_log else float
        target = scale(max(value, low) if self.grid_log else value)
        distances = [abs(scale(point) - target) for point in self.values]
        return distances.index(min(distances))

    def value(self, u: float) -> Any:
        """A (snapped) GP coordinate back to the spec's value, as a plain Python object."""
        if self.kind == "categorical":
            return self.values[min(max(round(u), 0), len(self.values) - 1)]
        if self.kind in ("index", "constant"):
            last = len(self.values) - 1
            return self.values[min(max(round(u * last), 0), last)]
        low, high = self._scale(self.low), self._scale(self.high)
        raw = low + min(max(u, 0.0), 1.0) * (high - low)
        return self.native(math.exp(raw) if self.log else raw)

    def native(self, x: Any) -> Any:
        """A value of a real or int axis (or an index of the others) as the spec's value."""
        if self.kind in ("index", "categorical", "constant"):
            return self.values[min(max(round(float(x)), 0), len(self.values) - 1)]
        value = min(max(float(x), self.low), self.high)
        if self.step:
            count = math.floor((self.high - self.low) / self.step + 1e-9)
            value = self.low + min(max(round((value - self.low) / self.step), 0), count) * self.step
        return round(value) if self.kind == "int" else float(value)

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Coordinates moved to the nearest ones a proposal can have (vectorised)."""
        if self.kind == "categorical":
            codes: np.ndarray = np.clip(np.rint(u), 0, len(self.values) - 1)
            return codes
        if self.kind == "index":
            last = len(self.values) - 1
            index: np.ndarray = np.clip(np.rint(u * last), 0, last) / last
            return index
        u = np.clip(u, 0.0, 1.0)
        if self.kind == "real" and not self.step:
            return u
        low, high = self._scale(self.low), self._scale(self.high)
        raw = low + u * (high - low)
        x = np.exp(raw) if self.log else raw
        if self.step:
            count = math.floor((self.high - self.low) / self.step + 1e-9)
            x = self.low + np.clip(np.rint((x - self.low) / self.step), 0, count) * self.step
        if self.kind == "int":
            x = np.clip(np.rint(x), self.low, self.high)
        scaled = np.log(x) if self.log else x
        return np.clip((scaled - low) / (high - low), 0.0, 1.0)


def make_axis(space: SearchSpace, name: str) -> Axis:
    from skopt.space import Categorical, Integer, Real  # imports scikit-learn: only when asked

    dim = space.dimensions[name]
    if isinstance(dim, CategoricalDimension):
        choices = tuple(dim.labels)
        if len(choices) == 1:
            return Axis(name, "constant", None, values=choices)
        return Axis(
            name, "categorical", Categorical(list(range(len(choices))), name=name), values=choices
        )
    if dim.values is not None or dim.step is not None or dim.grid_points:
        finite = space.finite_values(name)
        if finite is not None:
            points = tuple(sorted(dict.fromkeys(finite)))
            if len(points) == 1:
                return Axis(name, "constant", None, values=points)
            grid_log = bool(dim.log) if dim.grid_points and dim.values is None else None
            index = Integer(0, len(points) - 1, name=name)
            return Axis(name, "index", index, values=points, grid_log=grid_log)
    assert dim.low is not None and dim.high is not None
    prior = "log-uniform" if dim.log else "uniform"
    # a dimension with a step too fine to enumerate is searched as continuous, then snapped
    step = float(dim.step) if dim.step is not None else None
    if isinstance(dim, IntDimension):
        low, high = int(dim.low), int(dim.high)
        integer = Integer(low, high, prior=prior, name=name)
        return Axis(name, "int", integer, low, high, (), step, log=bool(dim.log))
    real = Real(dim.low, dim.high, prior=prior, name=name)
    return Axis(name, "real", real, float(dim.low), float(dim.high), (), step, log=bool(dim.log))
