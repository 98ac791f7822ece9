"""The nodes of one fold, executed: fit each pipeline prefix, then fit the model and score.

A trial's part of the study graph is, per fold k, a chain of nodes::

    fold k / fit steps 1..1 -> fold k / fit steps 1..2 -> ... -> fold k / score

Each fit node's output is the fold's training and validation rows transformed by the
fitted prefix. Its content key hashes the key before it with the configured estimator of
its step (class and every parameter, fixed or sampled); the chain starts from the fold's
key (the development rows' fingerprint, the fold's row indices and the seed). Two trials
whose parameters agree on steps 1..j therefore share the key of ``fit steps 1..j`` on
every fold, and the second one takes the matrices from the cache instead of refitting.

Walking a chain, the deepest cached prefix is found first; only the steps after it are
fitted, in the same calls scikit-learn's Pipeline makes (``fit_transform`` on the training
rows, ``transform`` on the validation rows), so a score is bit-identical with the cache on
or off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.base import clone

from tunedag.cache import FitCache
from tunedag.scoring import score_metrics
from tunedag.space import Params

Fold = tuple[np.ndarray, np.ndarray]


def take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _sha(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def fold_key(data_fingerprint: str, seed: int, fold: int, rows: Fold) -> str:
    """The key every chain of fold ``fold`` starts from: which rows, of which data."""
    train, validation = rows
    return _sha(
        data_fingerprint,
        str(seed),
        str(fold),
        np.ascontiguousarray(train, dtype="<i8").tobytes(),
        np.ascontiguousarray(validation, dtype="<i8").tobytes(),
    )


def step_digests(pipeline: Any) -> list[str] | None:
    """One digest per configured step (class, parameters and code); None if one cannot be
    hashed.

    joblib's hash pickles the unfitted estimator, so arrays and nested estimators among
    its parameters are hashed by content, as scikit-learn's Pipeline ``memory`` does. A
    pickle names classes without their code, so the digest adds the code of every class and
    function in the step (``code_digest``): the disk cache outlives the run, and an edited
    transformer or an upgraded library must not meet the fits of the old one.
    """
    try:
        return [
            str(joblib.hash((name, step, sorted(map(code_digest, _code_owners(step))))))
            for name, step in pipeline.steps
        ]
    except Exception:  # a lambda among the parameters, say: run the trial uncached
        return None


def _code_owners(step: Any) -> list[Any]:
    """The step's class, and the classes and functions among its parameters at any depth
    (nested estimators, a FunctionTransformer's ``func``)."""
    owners: list[Any] = [type(step)]
    params = step.get_params(deep=True) if hasattr(step, "get_params") else {}
    for value in params.values():
        if hasattr(value, "get_params"):
            owners.append(type(value))
        elif callable(value):
            owners.append(value)
    return owners


def code_digest(owner: Any) -> str:
    """The code behind a class or function: its module's source file and its top package's
    version."""
    module_name = str(getattr(owner, "__module__", None) or "")
    name = str(getattr(owner, "__qualname__", None) or getattr(owner, "__name__", ""))
    module = sys.modules.get(module_name)
    top = sys.modules.get(module_name.split(".")[0])
    version = str(getattr(top, "__version__", ""))
    source = getattr(module, "__file__", None)
    if not source or not os.path.isfile(source):
        return _sha(module_name, name, version)
    stat = os.stat(source)
    return _sha(module_name, name, version, _file_digest(source, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """A source file's content digest, read once per (path, mtime, size)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def chain_keys(start: str, digests: Sequence[str], metric: str) -> tuple[str, ...]:
    """Keys of ``fit steps 1..j`` for every j, then of the score node."""
    keys: list[str] = []
    key = start
    for digest in digests:
        key = _sha(key, digest)
        keys.append(key)
    keys.append(_sha(key, "score", metric))
    return tuple(keys)


@dataclass
class FoldRun:
    """What running one fold's chain gave."""

    score: float
    fit_hits: int
    fit_misses: int
    metrics: dict[str, float] = field(default_factory=dict)


def run_fold(
    pipeline: Any,
    params: Params,
    scorer: Any,
    X: Any,
    y: np.ndarray,
    rows: Fold,
    keys: Sequence[str],
    cache: FitCache | None,
    report: Sequence[str] = (),
) -> FoldRun:
    """Fit the fold's prefixes (reusing cached ones), fit the final step, score it."""
    model = clone(pipeline).set_params(**params)
    steps = [step for _, step in model.steps]
    transformers = steps[:-1]
    train, validation = rows
    y_train = y[train]
    start = 0
    matrices: tuple[Any, Any] = (take(X, train), take(X, validation))
    if cache is not None and keys:
        for depth in range(len(transformers), 0, -1):
            found = cache.get(keys[depth - 1])
            if found is not None:
                start, matrices = depth, found
                break
    X_train, X_validation = matrices
    for depth in range(start, len(transformers)):
        step = transformers[depth]
        if step is None or step == "passthrough":
            pass
        elif hasattr(step, "fit_transform"):
            X_train = step.fit_transform(X_train, y_train)
            X_validation = step.transform(X_validation)
        else:
            X_train = step.fit(X_train, y_train).transform(X_train)
            X_validation = step.transform(X_validation)
        if cache is not None and keys:
            cache.put(keys[depth], (X_train, X_validation))
    final = steps[-1]
    final.fit(X_train, y_train)
    score = float(scorer(final, X_validation, y[validation]))
    metrics = score_metrics(final, X_validation, y[validation], report)  # objective.report
    return FoldRun(score, start, len(transformers) - start, metrics)
