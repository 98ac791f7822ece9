"""stdout of a ``--json`` command: JSON lines only, whatever else runs in the process.

A ``--json`` command moves the real stdout to a descriptor of its own and points fd 1 at
stderr, so a stray ``print``, a warning, a C library or a forked worker writing to fd 1
lands on stderr, and only the lines written here reach stdout. The first line is the
version line of the event stream (``{"event": "version", "schema": 1}``) whenever a
command writes events or an error; a command whose only output is one object (``status
--json``) writes that object alone.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sys
from typing import Any, TextIO

from tunedag.errors import OutputError
from tunedag.events import SCHEMA, encode, json_safe


class MachineOutput:
    """The stream of JSON lines on stdout for one command."""

    def __init__(self) -> None:
        self.stream: TextIO | None = sys.stdout  # None when the caller closed fd 1
        self.versioned = False
        self._saved_fd: int | None = None

    def claim(self) -> None:
        """Keep the real stdout for JSON lines; fd 1 writes to stderr from now on.

        Where stdout is not the process's fd 1 (a test runner's buffer), nothing is moved.
        """
        if self._saved_fd is not None or not _is_fd1(sys.stdout):
            return
        sys.stdout.flush()
        self._saved_fd = os.dup(1)
        os.dup2(2, 1)
        self.stream = open(  # noqa: SIM115 - closed by release()
            os.dup(self._saved_fd), "w", encoding="utf-8", buffering=1, closefd=True
        )

    def release(self) -> None:
        """Put the real stdout back on fd 1 (the command is over)."""
        claimed = self.stream
        if self._saved_fd is None or claimed is None:
            return
        with contextlib.suppress(OSError, ValueError):
            claimed.flush()
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        os.dup2(self._saved_fd, 1)
        os.close(self._saved_fd)
        self._saved_fd = None
        with contextlib.suppress(OSError, ValueError):
            claimed.close()
        self.stream = sys.stdout

    def version(self) -> None:
        """The version line, once, before the first event."""
        if not self.versioned:
            self.versioned = True
            self._write({"event": "version", "schema": SCHEMA})

    def event(self, record: dict[str, Any]) -> None:
        self.version()
        self._write(record)

    def document(self, payload: Any, *, indent: int | None = None) -> None:
        """A command's one JSON result (``status --json``, ``plugins --json``)."""
        self._line(json.dumps(json_safe(payload), indent=indent))  # NaN is not JSON

    def text(self, text: str) -> None:
        """A command's JSON result already rendered (``plan --format json``)."""
        self._line(text.rstrip("\n"))

    def _write(self, record: dict[str, Any]) -> None:
        self._line(encode(record))

    def _line(self, line: str) -> None:
        try:
            if self.stream is None:  # the caller closed fd 1
                raise OSError(errno.EBADF, "stdout is closed")
            self.stream.write(line + "\n")
            self.stream.flush()
        except OSError as error:
            raise OutputError("JSON lines to stdout", error) from error


def _is_fd1(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 1
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
