"""The cache of fitted preprocessing: a fit node's output, kept under its content key.

A fit node (``fold k / fit steps 1..j``) turns a fold's training and validation rows into
transformed matrices. Its key hashes everything that output depends on (the fold's rows,
the steps and every parameter that reaches them, the seed), so an entry is valid for any
trial that meets the same key, and the cache can never change a score, only skip work.

Each worker process keeps one cache in memory (``process_cache``: it outlives any one copy
of the workload, which a Dask worker may receive more than once), least recently used
first out, under a byte budget; with a ``disk`` directory, entries are also written there
as ``.npy`` / ``.npz`` files (never pickles) and found again by any worker or later run.
Only NumPy arrays and SciPy sparse matrices go to disk; other outputs (a DataFrame from
``set_output(transform="pandas")``) stay in memory. A killed worker's memory cache is
simply lost. Nothing here ever holds test rows: the test evaluation does not use the cache.

The memory cache keeps copies and hands out copies: a step that writes into its input
(``copy=False``, a custom transformer working in place) would otherwise change an entry
under every later trial that meets its key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The transformed training and validation matrices of one fold.
Matrices = tuple[Any, Any]


@dataclass(frozen=True)
class CacheSettings:
    """``execution.cache`` resolved: a memory budget per worker, and an optional directory."""

    memory_bytes: int
    disk: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.memory_bytes > 0 or self.disk is not None


OFF = CacheSettings(memory_bytes=0)


def nbytes(value: Any) -> int | None:
    """Memory held by a matrix, or None when it cannot be told (then it is not cached)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes) if value.dtype != object else None
    if hasattr(value, "tocsr") and hasattr(value, "data"):  # scipy.sparse
        parts = ("data", "indices", "indptr", "row", "col", "offsets")
        return int(sum(getattr(value, p).nbytes for p in parts if hasattr(value, p)))
    if hasattr(value, "memory_usage") and hasattr(value, "columns"):  # pandas.DataFrame
        return int(value.memory_usage(deep=True).sum())
    return None


_PROCESS_CACHES: dict[CacheSettings, FitCache] = {}


def process_cache(settings: CacheSettings) -> FitCache:
    """This process's cache for these settings: keys are content keys, so any study may share it."""
    cache = _PROCESS_CACHES.get(settings)
    if cache is None:
        cache = _PROCESS_CACHES[settings] = FitCache(settings)
    return cache


class FitCache:
    """Fitted-prefix outputs by content key: an LRU in memory, optionally backed by disk."""

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self._entries: OrderedDict[str, tuple[Matrices, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Matrices | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return _copies(entry[0])
        found = self._read_disk(key)
        if found is not None:
            self._remember(key, found)
        return found

    def put(self, key: str, matrices: Matrices) -> None:
        self._remember(key, matrices)
        self._write_disk(key, matrices)

    def _remember(self, key: str, matrices: Matrices) -> None:
        sizes = [nbytes(m) for m in matrices]
        if any(size is None for size in sizes):
            return
        size = sum(s for s in sizes if s is not None)
        if size > self.settings.memory_bytes:
            return  # larger than the whole budget: keeping it would evict everything else
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (_copies(matrices), size)
        self.bytes += size
        while self.bytes > self.settings.memory_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    # -- disk -------------------------------------------------------------------------------------

    def _path(self, key: str, part: str) -> Path:
        assert self.settings.disk is not None
        return self.settings.disk / key[:2] / f"{key}.{part}"

    def _read_disk(self, key: str) -> Matrices | None:
        if self.settings.disk is None:
            return None
        try:
            return (self._load(key, "train"), self._load(key, "validation"))
        except (OSError, ValueError):
            return None  # absent, or half-written by a worker killed before its rename

    def _load(self, key: str, part: str) -> Any:
        dense = self._path(key, f"{part}.npy")
        if dense.exists():
            return np.load(dense, allow_pickle=False)
        from scipy import sparse

        return sparse.load_npz(self._path(key, f"{part}.npz"))

    def _write_disk(self, key: str, matrices: Matrices) -> None:
        if self.settings.disk is None:
            return
        with contextlib.suppress(OSError):  # a full or read-only disk costs speed, not results
            for part, matrix in zip(("train", "validation"), matrices, strict=True):
                self._save(key, part, matrix)

    def _save(self, key: str, part: str, matrix: Any) -> None:
        from scipy import sparse

        write: Callable[[Any], None]
        if isinstance(matrix, np.ndarray) and matrix.dtype != object:
            suffix, write = ".npy", lambda f: np.save(f, matrix, allow_pickle=False)
        elif sparse.issparse(matrix):
            suffix, write = ".npz", lambda f: sparse.save_npz(f, matrix, compressed=False)
        else:
            raise OSError("only arrays and sparse matrices are written to disk")
        target = self._path(key, f"{part}{suffix}")
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # written under a temporary name, then renamed: a reader never sees half a file
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _copies(matrices: Matrices) -> Matrices:
    """Matrices no caller shares (arrays, sparse matrices and DataFrames all copy)."""
    train, validation = matrices
    return (train.copy(), validation.copy())
