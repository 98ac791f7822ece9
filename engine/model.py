"""The tuned model: where a study saves it, the JSON card beside it, and loading it back.

The test node's model (the best configuration fitted on every development row) is saved
once, by default as ``NAME/model.skops`` in the folder of the study's storage file
(``.tunedag/NAME/model.skops`` for the default storage), or where the spec's ``model:``
says. Beside it, ``model.card.json`` records what the model is: the study, the spec's
fingerprints, the parameters, the CV and test scores, the metric, the training columns, the
library versions and the date, plus the sha256 of the model file. The model file is written
first and the card second, each atomically, and the study records its test evaluation only
after both, so a run killed during the save is finished by the next run.

:func:`load_model` refuses a model whose card does not match the spec (exit 65, naming what
changed) or whose file does not match its card, and builds only trusted types.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunedag.artifact import file_sha256, read_skops, write_json, write_skops
from tunedag.errors import ModelNotFoundError, ModelRefusedError, SpecChangedError
from tunedag.prepare import Prepared, spec_fingerprint, spec_parts
from tunedag.spec.models import Spec
from tunedag.storage import TestEvaluation, TrialRecord, parse_url

CARD_FORMAT = 1
_PART_NAMES = {
    "space": "pipeline or search space",
    "objective": "objective",
    "split": "split or seed",
    "data source": "data source",
}


def model_path(spec: Spec, storage: str | None = None) -> Path:
    """Where ``spec``'s study keeps its model (relative paths from the current directory)."""
    if spec.model is not None:
        return Path.cwd() / spec.model
    db = parse_url(storage or spec.storage_url, Path.cwd())
    folder = db.parent if db is not None else Path.cwd() / ".tunedag"
    return folder / spec.name / "model.skops"


def card_path(path: Path) -> Path:
    """``model.skops`` -> ``model.card.json``, in the same folder."""
    return path.with_name(f"{path.stem}.card.json")


def make_card(
    prepared: Prepared,
    best: TrialRecord,
    evaluation: TestEvaluation,
    direction: str,
) -> dict[str, Any]:
    """The card of the model that ``evaluation`` scored (its sha256 is added on save)."""
    spec = prepared.spec
    dev = prepared.dev
    folds = [float(v) for v in best.fold_values]
    spread = float(np.std(folds, ddof=1)) if len(folds) > 1 else 0.0
    return {
        "format": CARD_FORMAT,
        "study": spec.name,
        "saved_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "trial": best.number,
        "params": best.params,
        "metric": spec.objective.metric,
        "direction": direction,
        "cv": {"value": best.value, "fold_values": folds, "fold_std": spread},
        "test": {
            "value": evaluation.value,
            "gap": evaluation.gap,
            "flagged": evaluation.flagged,
            "second_look": evaluation.second_look,
        },
        "fingerprint": {**spec_fingerprint(spec, prepared), **spec_parts(spec)},
        "data": {
            "development": dev.fingerprint,
            "test": prepared.test.fingerprint,
            "rows": len(dev),
            "task": dev.task,
            "input": "frame" if isinstance(dev.X, pd.DataFrame) else "array",
            "features": dev.feature_names,
            "dtypes": _dtypes(dev.X, dev.feature_names),
            "target": spec.data.target or "target",
            "ignored": sorted({*spec.data.drop, *dev.columns}),
        },
        "allow_imports": list(spec.allow_imports),
        "versions": _versions(),
    }


def save_model(model: Any, path: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write the model, then its card with the model's sha256; both atomically."""
    card = {**card, "file": path.name, "sha256": write_skops(model, path)}
    write_json(card, card_path(path))
    return card


def is_saved(path: Path, evaluation: TestEvaluation) -> bool:
    """Whether a complete model of this evaluation's trial is on disk (card and file agree)."""
    try:
        card = read_card(path)
    except (ModelNotFoundError, ModelRefusedError):
        return False
    return (
        card.get("trial") == evaluation.trial_number
        and path.is_file()
        and file_sha256(path) == card.get("sha256")
    )


def read_card(path: Path) -> dict[str, Any]:
    import json

    where = card_path(path)
    if not where.is_file():
        raise ModelNotFoundError(f"no model card at {where}")
    try:
        card = json.loads(where.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelRefusedError(f"{where} is not a model card: {error}") from error
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelRefusedError(f"{where} is not a tunedag model card (format {CARD_FORMAT})")
    data = card.get("data")
    shapes = (
        isinstance(card.get("fingerprint"), dict),
        isinstance(data, dict)
        and isinstance(data.get("features"), list)
        and isinstance(data.get("dtypes"), dict)
        and set(map(str, data["features"])) <= set(data["dtypes"]),
    )
    if not all(shapes):
        raise ModelRefusedError(
            f"{where} is not a whole tunedag model card (its fingerprint or data is missing "
            "or malformed: edited by hand?); run the study again to save the model and card"
        )
    return card


def check_card(card: dict[str, Any], spec: Spec, path: Path) -> None:
    """Refuse (exit 65) a model saved from another study or an older version of the spec."""
    if card.get("study") != spec.name:
        raise SpecChangedError(
            f"the model at {path} belongs to study {card.get('study')!r}, not {spec.name!r}"
        )
    stored = card.get("fingerprint") or {}
    changed = [
        _PART_NAMES[part] for part, value in spec_parts(spec).items() if stored.get(part) != value
    ]
    if changed:
        raise SpecChangedError(
            f"the model at {path} was saved from an older version of the spec: its "
            f"{', '.join(changed)} changed since (saved {card.get('saved_at')}); run the study "
            "again with --fresh to tune and save a model for this spec"
        )


def load_model(
    spec_or_path: Spec | str | Path,
    *,
    storage: str | None = None,
    allow_imports: tuple[str, ...] = (),
) -> Any:
    """The fitted model a study saved, checked against its card and built from trusted types.

    Give a spec (or a spec file's path) to load that study's model after checking that the
    card matches the spec; give a ``.skops`` path to load that file, trusting scikit-learn's
    types and ``allow_imports`` (never the card's own list, which the file's author wrote).
    """
    if isinstance(spec_or_path, Spec):
        spec: Spec | None = spec_or_path
    elif Path(spec_or_path).suffix == ".skops":
        spec = None
    else:
        from tunedag.spec.validate import load_spec

        spec = load_spec(Path(spec_or_path))
    if spec is None:
        path = Path(spec_or_path)  # type: ignore[arg-type]
        card = read_card(path) if card_path(path).is_file() else None
        trust = allow_imports
    else:
        path = model_path(spec, storage)
        if not path.is_file() and not card_path(path).is_file():
            raise ModelNotFoundError(
                f"study {spec.name!r} has no saved model at {path}: the model is saved when "
                "a finished study is scored on its test set (`tunedag run`)"
            )
        card = read_card(path)
        check_card(card, spec, path)
        trust = (*spec.allow_imports, *allow_imports)
    if card is not None:
        _check_file(path, card)
    return read_skops(path, trust)


def _check_file(path: Path, card: dict[str, Any]) -> None:
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing but its card is there: a save was interrupted; run the study "
            "again to finish it"
        )
    if file_sha256(path) != card.get("sha256"):
        raise ModelRefusedError(
            f"{path} does not match its card {card_path(path).name} (sha256 differs): the file "
            "was changed after it was saved, or a save was interrupted; refused without "
            "loading it. Running the study again finishes an interrupted save"
        )


def _dtypes(X: Any, names: list[str]) -> dict[str, str]:
    if isinstance(X, pd.DataFrame):
        return {str(c): str(t) for c, t in X.dtypes.items()}
    return dict.fromkeys(names, str(np.asarray(X).dtype))


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("tunedag", "scikit-learn", "skops", "numpy", "pandas"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions
