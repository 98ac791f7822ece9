"""The run's side of the look ledger: refuse a second look before anything runs, record each
look as it is scored.

A study's own storage already refuses to score its test set twice; this adds the test rows'
history across every study, folder and `--fresh` start, so the lock holds wherever the same
rows turn up again.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunedag.errors import TestSetLockedError
from tunedag.looks import Look, LookLedger, ledger_path, second_look_message, who
from tunedag.looks_shared import StorageLookLedger
from tunedag.spec.models import Spec
from tunedag.spec.validate import base_dir_of
from tunedag.storage import Storage, TestEvaluation

if TYPE_CHECKING:  # reading a study's looks (``tunedag status``) needs neither
    from tunedag.data import Dataset


def spec_ledger_path(spec: Spec) -> Path:
    return ledger_path(spec.ledger, base_dir_of(spec))


def spec_file_of(spec: Spec) -> str:
    source: Any = spec._source
    return str(Path(source.document.file).resolve()) if source is not None else "<api>"


def spec_digest(spec: Spec) -> str:
    """The whole spec as validated: any edit (budget, space, ...) gives another digest."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]


def open_ledger(
    spec: Spec, storage: Storage | None, *, readonly: bool = False
) -> LookLedger | StorageLookLedger:
    """The ledger of a study's looks: a table of its storage on a server (so every machine
    sees the same looks), else the ledger file (``TUNEDAG_LEDGER``, ``ledger:``)."""
    if storage is not None and storage.dialect == "postgresql":
        return StorageLookLedger(storage)
    return LookLedger(spec_ledger_path(spec), readonly=readonly)


class TestSetLock:
    """Looks at one study's test rows: ``check`` before the search, ``record`` after scoring."""

    __test__ = False  # not a pytest test class

    def __init__(self, spec: Spec, test: Dataset, storage: Storage) -> None:
        self.spec = spec
        self.store = storage
        self.storage = str(storage.path or storage.url)
        self.n_rows = len(test)
        from tunedag.rows import rows_fingerprint

        self.rows = rows_fingerprint(test)
        # opened now, so an unwritable ledger fails before anything runs
        with open_ledger(spec, storage) as ledger:
            self.path = ledger.path
            self.earlier = ledger.looks(self.rows)

    def check(self, *, scored_here: bool, allow_second_look: bool) -> None:
        """Refuse (exit 3) when other looks saw these rows and this study has not scored them:
        every trial it runs would end in a second look."""
        if self.earlier and not scored_here and not allow_second_look:
            raise TestSetLockedError(
                second_look_message(self.earlier, f"study {self.spec.name!r}")
                + f" (ledger {self.path})"
            )

    def unrecorded(self, created_at: float) -> Look | None:
        """This study's own look that its storage never recorded, or None.

        The ledger commits a look before the study's storage records it, so a run stopped
        in between (75, 143, SIGKILL) leaves one: by this study, in this storage, after the
        study was created (an older one is a look at a study since started ``--fresh``).
        """
        own = [
            look
            for look in self.earlier
            if look.study == self.spec.name
            and look.storage == self.storage
            and look.looked_at >= created_at
        ]
        return own[-1] if own else None

    def record(self, evaluation: TestEvaluation, *, allow_second_look: bool) -> tuple[Look, int]:
        """(this look, how many looks at these rows the ledger now holds)."""
        host, user = who()
        look = Look(
            rows_fingerprint=self.rows,
            n_rows=self.n_rows,
            number=0,
            study=self.spec.name,
            spec_file=spec_file_of(self.spec),
            spec_digest=spec_digest(self.spec),
            storage=self.storage,
            split_fingerprint=evaluation.split_fingerprint,
            trial=evaluation.trial_number,
            metric=self.spec.objective.metric,
            value=evaluation.value,
            cv_value=evaluation.cv_value,
            allowed=False,
            looked_at=evaluation.evaluated_at or time.time(),
            host=host,
            user=user,
        )
        with open_ledger(self.spec, self.store) as ledger:
            looked = ledger.record(look, allow_second_look=allow_second_look)
            return looked, len(ledger.looks(self.rows))


def looks_of_study(
    spec: Spec, evaluations: list[TestEvaluation], storage: Storage | None = None
) -> list[Look]:
    """Every look at the rows this study scored, read without creating the ledger."""
    if not evaluations:
        return []
    with open_ledger(spec, storage, readonly=True) as ledger:
        return ledger.looks_at_split(evaluations[-1].split_fingerprint)


__all__ = [
    "TestSetLock",
    "looks_of_study",
    "open_ledger",
    "spec_digest",
    "spec_file_of",
    "spec_ledger_path",
]
