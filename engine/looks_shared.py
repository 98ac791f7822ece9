"""The look ledger of a study kept on a database server: a table beside the study.

Drivers of one PostgreSQL study run on several machines, whose ledger files
(``tunedag.looks``) each see only their own looks. So a PostgreSQL storage keeps the
looks in a ``looks`` table of the same database, with the same rows, the same rule (a
look at rows seen before is a second look, refused unless allowed) and the same single
transaction for the check and the insert; this class gives it the ledger file's methods.
"""

from __future__ import annotations

from typing import Self

from tunedag.looks import Look
from tunedag.storage import Storage


class StorageLookLedger:
    """The ``looks`` table of ``storage``, read and written like a ledger file."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.path = f"{storage.url} (table looks)"

    def looks(self, rows_fingerprint: str) -> list[Look]:
        """Every look at these rows, first first."""
        return self.storage.looks(rows_fingerprint=rows_fingerprint)

    def all_looks(self) -> list[Look]:
        return self.storage.looks()

    def looks_at_split(self, split_fingerprint: str) -> list[Look]:
        """Every look at the rows that a study with this split scored (for status)."""
        own = self.storage.looks(split_fingerprint=split_fingerprint)
        return self.looks(own[0].rows_fingerprint) if own else []

    def record(self, look: Look, *, allow_second_look: bool) -> Look:
        """Add ``look`` as the next look at its rows, or refuse (exit 3) a second look."""
        return self.storage.record_look(look, allow_second_look=allow_second_look)

    def close(self) -> None:
        """The storage stays open: it belongs to the run."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["StorageLookLedger"]
