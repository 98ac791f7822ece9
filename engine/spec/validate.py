"""Loading and validating a spec file: parse, type-check, then check meaning."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tunedag.errors import SpecError
from tunedag.spec.loader import Document, read_document
from tunedag.spec.models import Spec
from tunedag.spec.pydantic_errors import problems_from

if TYPE_CHECKING:
    from tunedag.registry import Plugins


def load_spec(path: str | Path, plugins: Plugins | None = None) -> Spec:
    """Read and validate a spec file; raises SpecError listing every problem found."""
    return validate_document(read_document(path), plugins)


def read_spec(path: str | Path) -> Spec:
    """Read a spec file and check its types only, for commands that only read storage.

    Names (estimators, plugins, data paths) are not resolved, so ``tunedag status`` imports
    neither scikit-learn nor the plugins, and still shows a study whose spec no longer
    validates in full. Raises SpecError with every located problem of syntax and type.
    """
    return _typed(read_document(path))


def validate_document(document: Document, plugins: Plugins | None = None) -> Spec:
    from tunedag.registry import make_plugins
    from tunedag.spec.checks import check_spec

    spec = _typed(document)
    base_dir = base_dir_of(spec)
    findings = check_spec(spec, plugins or make_plugins(), base_dir)
    problems = [document.problem(loc, message, code) for loc, message, code in findings]
    if problems:
        raise SpecError(problems)
    return spec


def _typed(document: Document) -> Spec:
    try:
        spec = Spec.model_validate(document.data)
    except ValidationError as error:
        raise SpecError(problems_from(error, document, Spec)) from None
    spec._source = SpecSource(document, Path(document.file).resolve().parent)
    return spec


class SpecSource:
    """Where a spec came from: relative paths in it resolve against ``base_dir``."""

    def __init__(self, document: Document, base_dir: Path) -> None:
        self.document = document
        self.base_dir = base_dir


def base_dir_of(spec: Spec) -> Path:
    source: Any = spec._source
    return source.base_dir if source is not None else Path.cwd()


__all__ = ["Spec", "base_dir_of", "load_spec", "read_spec", "validate_document"]
