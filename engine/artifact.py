"""Model files in scikit-learn's secure skops format: written atomically, read with a trust list.

A model is never pickled. Writing goes to a hidden temporary file in the same folder, which
is flushed to disk and then renamed over the final name, so a process killed at any moment
leaves either the previous file or the complete new one (and perhaps a temporary file that
the next save removes). Reading first lists the types the file would build, without
building any, and refuses the file unless every one of them is trusted: skops's own defaults,
scikit-learn's types, a few plain data types (``TRUSTED_TYPES``), and the module prefixes a
study lists in ``allow_imports``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunedag.errors import ModelNotFoundError, ModelRefusedError

#: scikit-learn's own types are trusted, including those skops leaves out (tree internals)
TRUSTED_PREFIXES = ("sklearn",)
#: plain data that fitted estimators hold and skops does not trust by default: a fitted
#: SimpleImputer keeps a numpy.dtype, LightGBM's estimators an OrderedDict; neither runs code
TRUSTED_TYPES = frozenset({"numpy.dtype", "collections.OrderedDict"})


def write_atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed save
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def write_skops(model: Any, path: Path) -> str:
    """Save ``model`` to ``path`` atomically; returns the file's sha256."""
    import skops.io

    write_atomic(path, lambda tmp: skops.io.dump(model, tmp))
    return file_sha256(path)


def write_json(data: dict[str, Any], path: Path) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_trusted(type_name: str, allow_imports: Sequence[str]) -> bool:
    """Whether a type named ``module.Name`` is plain data or lies under scikit-learn or an
    allowed prefix."""
    if type_name in TRUSTED_TYPES:
        return True
    for prefix in (*TRUSTED_PREFIXES, *allow_imports):
        if type_name == prefix or type_name.startswith(prefix + "."):
            return True
    return False


def untrusted_types(data: bytes, where: Path, allow_imports: Sequence[str]) -> list[str]:
    """The types in a skops file that would be refused, read without building any object."""
    import skops.io

    try:
        listed = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise ModelRefusedError(
            f"{where} is not a skops model file ({type(error).__name__}: {error}); refused "
            "without loading anything from it (tunedag never loads pickles)"
        ) from error
    return sorted(t for t in listed if not is_trusted(t, allow_imports))


def read_skops(path: Path, allow_imports: Sequence[str]) -> Any:
    """The object in a skops file, built only if every type in it is trusted."""
    import skops.io

    if not path.is_file():
        raise ModelNotFoundError(f"no model file at {path}")
    data = path.read_bytes()  # read once: what is checked is what is loaded
    refused = untrusted_types(data, path, allow_imports)
    if refused:
        raise ModelRefusedError(
            f"{path} holds types this study does not trust: {', '.join(refused)}; refused "
            "without building any of them. Trusted are scikit-learn's types and the module "
            "prefixes in the spec's `allow_imports`"
        )
    try:
        return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as error:
        raise ModelRefusedError(
            f"{path} cannot be loaded as a skops model: {type(error).__name__}: {error}"
        ) from error


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the folder's entry is flushed too (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays in parameters and scores become plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return repr(value)
