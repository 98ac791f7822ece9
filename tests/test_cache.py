"""Fitted preprocessing reused by content key: never a different score, only less work.

The cache's own rules (a byte budget, least recently used out, disk files that are never
pickles), then whole studies run with the cache on and off, in the driver's process, in
forked workers and on Dask, whose every fold score must be identical; and the study's
tail, where the last trial's folds spread over the idle workers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PLUGIN_MODULE, base_spec, install_plugins, recorder, write_spec
from scipy import sparse

import tunedag
from tunedag.cache import CacheSettings, FitCache, nbytes


def matrices(rows: int, value: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    return np.full((rows, 10), value), np.full((rows // 2, 10), value)


def test_the_memory_cache_keeps_to_its_byte_budget_evicting_the_least_recently_used() -> None:
    one = sum(nbytes(m) or 0 for m in matrices(100))  # 12,000 bytes an entry
    cache = FitCache(CacheSettings(memory_bytes=3 * one + 10))
    for key in "abc":
        cache.put(key, matrices(100))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", matrices(100))
    assert cache.bytes <= 3 * one + 10 and len(cache) == 3
    assert cache.get("b") is None  # the least recently used went first
    assert all(cache.get(key) is not None for key in "acd")
    cache.put("huge", matrices(1000))  # more than the whole budget: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 3


def test_the_disk_cache_is_found_by_another_process_and_holds_no_pickles(tmp_path: Path) -> None:
    settings = CacheSettings(memory_bytes=0, disk=tmp_path / "cache")
    dense = (np.arange(12.0).reshape(4, 3), np.arange(6.0).reshape(2, 3))
    sparse_pair = (sparse.random(5, 4, density=0.5, format="csr", random_state=0),) * 2
    FitCache(settings).put("k" * 64, dense)
    FitCache(settings).put("s" * 64, sparse_pair)
    fresh = FitCache(settings)  # as a new worker or a later run would
    found = fresh.get("k" * 64)
    assert found is not None and all(
        np.array_equal(a, b) for a, b in zip(found, dense, strict=True)
    )
    found_sparse = fresh.get("s" * 64)
    assert found_sparse is not None and (found_sparse[0] != sparse_pair[0]).nnz == 0
    files = sorted(p.name.split(".", 1)[1] for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert files == ["train.npy", "train.npz", "validation.npy", "validation.npz"]
    assert fresh.get("x" * 64) is None


def test_a_half_written_disk_entry_is_a_miss(tmp_path: Path) -> None:
    settings = CacheSettings(memory_bytes=0, disk=tmp_path)
    FitCache(settings).put("a" * 64, matrices(4))
    (tmp_path / "aa" / f"{'a' * 64}.validation.npy").unlink()  # killed between the two files
    assert FitCache(settings).get("a" * 64) is None


def test_the_memory_cache_holds_its_own_copies() -> None:
    cache = FitCache(CacheSettings(memory_bytes=10_000))
    train, validation = matrices(4)
    cache.put("k", (train, validation))
    train[:] = -1.0  # the step after the cached prefix writes into its input
    found = cache.get("k")
    assert found is not None and (found[0] == 1.0).all()
    found[0][:] = -2.0  # and so may the trial that took the entry
    again = cache.get("k")
    assert again is not None and (again[0] == 1.0).all()


def test_a_step_that_works_in_place_gets_the_scores_it_would_without_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEDAG_INLINE", "1")

    def spec(name: str, cache: Any) -> dict[str, Any]:
        return base_spec(
            tmp_path,
            name=name,
            data={"source": "sklearn:breast_cancer"},
            pipeline=[
                {"name": "scale", "estimator": "sklearn.preprocessing.MinMaxScaler"},
                {
                    "name": "bin",
                    "estimator": "sklearn.preprocessing.Binarizer",
                    "params": {"copy": False},
                },
                {"name": "model", "estimator": "sklearn.linear_model.LogisticRegression"},
            ],
            space={"bin__threshold": {"type": "float", "values": [0.1, 0.4, 0.7]}},
            objective={"metric": "roc_auc"},
            sampler={"name": "grid"},
            budget={"trials": 3, "max_failed": 0},
            execution={"cache": cache},
        )

    on = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec("on", {"memory": "100MB"}))))
    off = tunedag.run(
        tunedag.load_spec(write_spec(tmp_path, spec("off", "off"), "off.json")),
        allow_second_look=True,
    )
    assert sum(t.cache_hits for t in on.trials) > 0
    assert fold_scores(on) == fold_scores(off)
    assert len({t.value for t in on.trials}) == 3  # each threshold scored for itself


def pca_spec(tmp_path: Path, name: str, cache: Any, workers: int, **extra: Any) -> dict[str, Any]:
    """Scale -> PCA -> SVC: PCA's n_components and SVC's C on a grid, so prefixes repeat."""
    return base_spec(
        tmp_path,
        name=name,
        data={"source": "sklearn:breast_cancer"},
        split={
            "test": {"fraction": 0.2, "stratify": True},
            "validation": {"method": "stratified_kfold", "folds": 3},
        },
        pipeline=[
            {"name": "scale", "estimator": "sklearn.preprocessing.StandardScaler"},
            {"name": "pca", "estimator": "sklearn.decomposition.PCA"},
            {"name": "model", "estimator": "sklearn.svm.SVC"},
        ],
        space={
            "pca__n_components": {"type": "int", "values": [2, 5]},
            "model__C": {"type": "float", "values": [0.1, 1.0, 10.0]},
        },
        objective={"metric": "roc_auc"},
        sampler={"name": "grid"},
        budget={"trials": 6, "max_failed": 0},
        execution={"workers": workers, "cache": cache, **extra},
    )


def fold_scores(result: Any) -> dict[str, list[float]]:
    return {json.dumps(t.params, sort_keys=True): t.fold_values for t in result.trials}


@pytest.mark.parametrize(
    ("workers", "where"),
    [
        (1, "in-process"),
        (2, "local"),
        pytest.param(2, "dask", marks=[pytest.mark.slow, pytest.mark.filterwarnings("ignore")]),
    ],
    ids=["in-process", "forked-workers", "dask"],
)
def test_every_fold_score_is_identical_with_the_cache_on_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, where: str
) -> None:
    if where == "in-process":
        monkeypatch.setenv("TUNEDAG_INLINE", "1")
    executor = {"executor": "dask"} if where == "dask" else {}
    events, seen = recorder()
    on_spec = pca_spec(tmp_path, "on", {"memory": "100MB"}, workers, **executor)
    on = tunedag.run(tunedag.load_spec(write_spec(tmp_path, on_spec, "on.json")), events=events)
    off_spec = pca_spec(tmp_path, "off", "off", workers, **executor)
    # the same test rows again, on purpose: a recorded second look
    off = tunedag.run(
        tunedag.load_spec(write_spec(tmp_path, off_spec, "off.json")), allow_second_look=True
    )
    assert on.counts["complete"] == off.counts["complete"] == 6
    assert fold_scores(on) == fold_scores(off)  # exactly, not approximately
    assert on.test_value == off.test_value
    # per fold, `scale` is one prefix and `scale > pca` one per n_components: a worker fits
    # each (prefix, fold) once at most, and takes it from its cache afterwards
    hits = sum(t.cache_hits for t in on.trials)
    misses = sum(t.cache_misses for t in on.trials)
    assert hits + misses == 6 * 3 * 2  # two fit nodes (scale, pca) per trial and fold
    assert misses <= workers * 3 * (1 + 2) and hits >= 6 * 3 * 2 - workers * 3 * 3
    assert sum(t.cache_hits for t in off.trials) == 0
    completed = [e for e in seen if e["event"] == "trial_completed"]
    assert sum(e["cache_hits"] for e in completed) == hits


def test_the_disk_cache_serves_a_second_study_on_the_same_folds(tmp_path: Path) -> None:
    disk = {"memory": "0B", "disk": str(tmp_path / "fits")}
    first = tunedag.run(tunedag.load_spec(write_spec(tmp_path, pca_spec(tmp_path, "a", disk, 1))))
    again = pca_spec(tmp_path, "b", disk, 1)
    second = tunedag.run(
        tunedag.load_spec(write_spec(tmp_path, again, "b.json")), allow_second_look=True
    )
    assert fold_scores(first) == fold_scores(second)
    assert sum(t.cache_misses for t in second.trials) == 0  # every prefix came from disk


def test_the_last_trials_folds_spread_over_both_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 trials of 5 folds on 2 workers: the slow last trial's folds run on both."""
    install_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "fits.jsonl"
    quick = [0.0, 0.001, 0.002, 0.003, 0.004]
    spec = base_spec(
        tmp_path,
        name="tail",
        split={"test": {"fraction": 0.2}, "validation": {"method": "kfold", "folds": 5}},
        pipeline=[
            {"name": "pace", "estimator": f"{PLUGIN_MODULE}.PacedSpy", "params": {"log": str(log)}},
            {"name": "model", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
        # the grid runs its points in order: five quick trials, then one slow one
        space={"pace__seconds": {"type": "float", "values": [*quick, 0.5]}},
        sampler={"name": "grid"},
        budget={"trials": 6, "max_failed": 0},
        execution={"workers": 2},
        allow_imports=[PLUGIN_MODULE],
    )
    result = tunedag.run(tunedag.load_spec(write_spec(tmp_path, spec)))
    assert result.counts["complete"] == 6
    assert result.trials[-1].params == {"pace__seconds": 0.5}
    fits = [json.loads(line) for line in log.read_text().splitlines()]
    slow = [fit for fit in fits if fit["seconds"] == 0.5][:5]  # (then maybe the refit)
    assert len(slow) == 5 and len({fit["pid"] for fit in slow}) == 2


def test_a_fit_key_changes_with_the_code_of_its_transformer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from tunedag.nodes import step_digests

    source = tmp_path / "edited_step.py"
    source.write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Pick(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None): return self\n"
        "    def transform(self, X): return X[:, [0]]\n"
        "def double(X): return 2 * X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__("edited_step")
    pipeline = Pipeline(
        [("pick", module.Pick()), ("f", FunctionTransformer(module.double)), ("m", None)]
    )
    before = step_digests(pipeline)
    # the code changes, not its names
    source.write_text(source.read_text().replace("[:, [0]]", "[:, [17]]"))
    after = step_digests(pipeline)
    assert before is not None and after is not None
    assert before[0] != after[0] and before[1] != after[1]  # the module holds both
    assert before[2] == after[2]
