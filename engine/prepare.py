"""The study's fixed inputs: the data, the locked test rows, the folds, and the workload.

The test rows are split off first and kept apart in ``Prepared.test``; the workload that
trials run is built from the development rows alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunedag.cache import OFF, CacheSettings
from tunedag.data import Dataset, load_dataset
from tunedag.datachecks import check_overlap
from tunedag.estimators import pipeline_of
from tunedag.fidelity import FidelityWorkload
from tunedag.scoring import resolve_scorer
from tunedag.spec.models import Spec
from tunedag.splits import make_folds, split_fingerprint, split_test
from tunedag.trial import FunctionWorkload, PipelineWorkload

Fold = tuple[np.ndarray, np.ndarray]


@dataclass
class Prepared:
    dev: Dataset
    test: Dataset
    folds: list[Fold]
    spec: Spec

    @property
    def workload(self) -> PipelineWorkload | FunctionWorkload:
        """What each trial runs: only development rows and the folds go in."""
        if self.spec.trial is not None:
            return FunctionWorkload(self.spec.trial.function, self.dev.X, self.dev.y, self.folds)
        assert self.spec.pipeline is not None
        common: dict[str, Any] = {
            "pipeline": pipeline_of(self.spec),
            "scorer": resolve_scorer(self.spec.objective.metric),
            "X": self.dev.X,
            "y": self.dev.y,
            "folds": self.folds,
            "metric": self.spec.objective.metric,
            "report": tuple(self.spec.objective.report),
            "seed": self.spec.seed,
            "data_fingerprint": self.dev.fingerprint,
            "cache": cache_settings(self.spec),
        }
        if self.spec.fidelity is not None:  # the final model trained in increments
            return FidelityWorkload(**common, fidelity=self.spec.fidelity)
        return PipelineWorkload(**common)

    @property
    def split_fingerprint(self) -> str:
        return split_fingerprint(self.dev, self.test, self.folds)


def cache_settings(spec: Spec) -> CacheSettings:
    """``execution.cache``: off, or a memory budget and a directory (relative to the cwd)."""
    cache = spec.execution.cache
    if cache == "off":
        return OFF
    disk = Path(cache.disk).expanduser().resolve() if cache.disk is not None else None
    return CacheSettings(memory_bytes=int(cache.memory), disk=disk)


def keep_columns(spec: Spec) -> list[str]:
    """Columns used to split rather than as features."""
    columns = [spec.split.validation.groups, spec.split.test.order_by, spec.split.test.groups]
    return list(dict.fromkeys(column for column in columns if column))


def prepare(spec: Spec, base_dir: Path) -> Prepared:
    """Load and split the data, refuse test rows that repeat development rows, make folds."""
    dev, test = split_rows(spec, base_dir)
    check_overlap(spec, dev, test)
    folds = make_folds(dev, spec.split.validation, spec.seed, order_by=spec.split.test.order_by)
    return Prepared(dev=dev, test=test, folds=folds, spec=spec)


def split_rows(spec: Spec, base_dir: Path) -> tuple[Dataset, Dataset]:
    """(development rows, locked test rows), as the study splits them; nothing is fitted."""
    data = load_dataset(spec.data, base_dir, keep_columns=keep_columns(spec))
    return split_test(
        data,
        spec.split.test,
        spec.seed,
        base_dir=base_dir,
        data_spec=spec.data,
        keep_columns=keep_columns(spec),
    )


def spec_fingerprint(spec: Spec, prepared: Prepared) -> dict[str, str]:
    """The parts of a study that must not change under it, each hashed on its own."""
    parts = spec_parts(spec)
    return {
        "space": parts["space"],
        "objective": parts["objective"],
        "data": _digest([prepared.dev.fingerprint, prepared.test.fingerprint]),
        "split": parts["split"],
    }


def spec_parts(spec: Spec) -> dict[str, str]:
    """The fingerprint parts read from the spec alone (no data loaded), plus its data source."""
    return {
        "space": _digest(
            {
                "space": {k: v.model_dump(mode="json") for k, v in spec.space.items()},
                "pipeline": [s.model_dump(mode="json") for s in spec.pipeline or []],
                "trial": spec.trial.model_dump(mode="json", exclude={"fit"})
                if spec.trial
                else None,
                # only when set, so studies without fidelity keep their stored fingerprint
                **({"fidelity": spec.fidelity.model_dump(mode="json")} if spec.fidelity else {}),
            }
        ),
        "objective": _digest(spec.objective.model_dump(mode="json", exclude={"report"})),
        "split": _digest({"split": _split_rows_spec(spec), "seed": spec.seed}),
        "data source": _digest(spec.data.model_dump(mode="json")),
    }


def _split_rows_spec(spec: Spec) -> dict[str, Any]:
    """The split as it decides rows: `allow_overlap` only vets them, so it is left out
    (and studies stored before it existed keep their fingerprint)."""
    split: dict[str, Any] = spec.split.model_dump(mode="json")
    split["test"].pop("allow_overlap", None)
    return split


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
