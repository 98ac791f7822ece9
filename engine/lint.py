"""`tunedag lint`: every check a CI job can make before any tuning code runs.

The spec checks of `validate` (folds that leak, a test file that is the training file),
then the data checks (test rows that repeat development rows, a feature that is the target
in disguise), then the ledger's question: has this test set been looked at? Nothing is
fitted and nothing is written: the ledger is opened read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunedag.datachecks import check_overlap, data_warnings, locate
from tunedag.errors import Problem, SpecError, TunedagError
from tunedag.looks import Look, LookLedger
from tunedag.prepare import split_rows
from tunedag.rows import rows_fingerprint
from tunedag.spec.models import Spec
from tunedag.spec.validate import base_dir_of, load_spec
from tunedag.testlock import spec_digest, spec_ledger_path


@dataclass
class LintResult:
    """What lint found in one spec file: problems fail the lint, warnings do not."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)
    ledger: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "problems": [_problem(p) for p in self.problems],
            "warnings": [_problem(p) for p in self.warnings],
            "looks": [look.to_dict() for look in self.looks],
            "ledger": self.ledger,
        }


def lint(path: Path) -> LintResult:
    result = LintResult(str(path))
    try:
        spec = load_spec(path)
    except SpecError as error:  # findings; a spec file that cannot be read stops lint itself
        result.problems = list(error.problems)
        return result
    try:
        dev, test = split_rows(spec, base_dir_of(spec))
    except TunedagError as error:
        result.problems.append(locate(spec, ("data", "source"), str(error), error.exit_code))
        return result
    try:
        check_overlap(spec, dev, test)
    except SpecError as error:
        result.problems.extend(error.problems)
    result.warnings = data_warnings(spec, dev, test)
    ledger = spec_ledger_path(spec)
    result.ledger = str(ledger)
    with LookLedger(ledger, readonly=True) as looks:
        result.looks = looks.looks(rows_fingerprint(test))
    looked = _looked_problem(spec, result.looks, ledger)
    if looked is not None:
        result.problems.append(looked)
    return result


def _looked_problem(spec: Spec, looks: list[Look], ledger: Path) -> Problem | None:
    """A test set scored once by exactly this spec is fine (running it again adds nothing);
    any other look means the next run would be a second look, or already was one."""
    if not looks:
        return None
    if len(looks) == 1 and looks[0].spec_digest == spec_digest(spec):
        return None
    earlier = "; ".join(look.describe() for look in looks)
    if len(looks) > 1:
        verdict = f"scored {len(looks)} times, so its score is no longer an unbiased estimate"
    else:
        verdict = (
            "already scored by another spec or an earlier version of this one, so running "
            "this spec would be a second look (refused with exit 3)"
        )
    message = (
        f"this test set ({looks[0].n_rows} rows, fingerprint {looks[0].rows_fingerprint[:12]}) "
        f"was {verdict}: {earlier} (ledger {ledger}); hold out rows that were never scored"
    )
    return locate(spec, ("split", "test"), message)


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "field": problem.path,
        "message": problem.message,
        "exit_code": problem.code,
    }


__all__ = ["LintResult", "lint"]
