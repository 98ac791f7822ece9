"""Noticing that a storage's write-ahead log was deleted under a running study, before it
costs a trial.

In WAL mode SQLite keeps each committed transaction in ``FILE-wal`` until a checkpoint
copies it into FILE. When that log is deleted while tunedag writes (a cleanup job, a
careless ``rm *-wal``), the open connection goes on writing into the unlinked log: every
transaction since the last checkpoint lives only there and is gone when the process ends
without a checkpoint. So the storage looks at the log after each commit; when it is gone or
replaced, it checkpoints through its connection (which still reads the unlinked log) into
FILE, and opens a new connection, which starts a new log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class WalGuard:
    """Tells whether the log a connection writes to is still the file at ``FILE-wal``."""

    def __init__(self, path: Path) -> None:
        self.wal = path.with_name(path.name + "-wal")
        self._inode: int | None = None

    def lost(self) -> bool:
        """Whether the log was deleted or replaced since the connection began writing."""
        try:
            inode = os.stat(self.wal).st_ino
        except FileNotFoundError:
            return True  # a connection in WAL mode keeps its log while it is open
        if self._inode is None:
            self._inode = inode
        return inode != self._inode

    def reset(self) -> None:
        """A new connection: its log is whatever file it opens next."""
        self._inode = None

    def warn(self, url: str) -> None:
        print(
            f"warning: storage {url}: its write-ahead log {self.wal} was deleted while tunedag "
            "was writing; what it held was saved into the storage file and a new log started, "
            "so nothing is lost. Something deletes SQLite's -wal files: stop it, they are part "
            "of the storage while a study runs",
            file=sys.stderr,
        )
