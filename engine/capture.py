"""A trial's output: what it writes to file descriptors 1 and 2, kept apart from the events.

Trial code prints, warns, and calls C libraries that write straight to fd 1 (libsvm's
``[LibSVM]``, OpenMP, BLAS): none of it may reach the event stream on stdout. So each task
runs with fds 1 and 2 pointed at a file; afterwards they are restored, and the last
``OUTPUT_LIMIT`` bytes become the task's ``output``, stored with its trial
(``tunedag status SPEC --trial N``). With ``--verbose`` (``TUNEDAG_VERBOSE=1``) the whole
output is also copied to stderr once the task ends.

File descriptors belong to the process, so the capture is for processes that run one task
at a time: the local executor's workers, the driver in ``TUNEDAG_INLINE=1`` mode, and
single-threaded Dask workers.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

#: How much of a trial's output is kept: its last 64 KiB (the end says why it failed).
OUTPUT_LIMIT = 64 * 1024

VERBOSE_ENV = "TUNEDAG_VERBOSE"

_COPY_CHUNK = 1 << 16


def verbose() -> bool:
    """Whether trial output is passed through to stderr (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") == "1"


@dataclass
class Captured:
    """The text a task wrote; set when its capture ends."""

    output: str = ""


@contextlib.contextmanager
def captured_output(sink: IO[bytes] | None = None, *, echo: bool = False) -> Iterator[Captured]:
    """Run the block with fds 1 and 2 writing to ``sink`` (a fresh temporary file if None).

    ``sink`` is emptied first. A worker passes a file its driver also holds, so the output of
    a task that kills its worker is still readable (``read_tail``).
    """
    captured = Captured()
    _flush_python_streams()
    owned = sink is None
    target: IO[bytes] = tempfile.TemporaryFile() if sink is None else sink  # noqa: SIM115
    try:
        target.seek(0)
        target.truncate()
        saved = os.dup(1), os.dup(2)
    except BaseException:
        if owned:
            target.close()
        raise
    try:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        try:
            yield captured
        finally:
            _flush_python_streams()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            captured.output = read_tail(target)
            if echo:
                _copy(target, saved[1])
    finally:
        os.close(saved[0])
        os.close(saved[1])
        if owned:
            target.close()


def read_tail(sink: IO[bytes], limit: int = OUTPUT_LIMIT) -> str:
    """The last ``limit`` bytes written to ``sink``, decoded (bad bytes replaced).

    Reads with ``pread``, so a file shared with another process keeps its offset.
    """
    size = os.fstat(sink.fileno()).st_size
    start = max(0, size - limit)
    data = os.pread(sink.fileno(), size - start, start)
    text = data.decode("utf-8", errors="replace")
    return f"[... {start} earlier bytes left out]\n{text}" if start else text


def bounded(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text`` cut to about its last ``limit`` bytes (several folds' outputs joined)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode("utf-8", errors="replace")
    return f"[... {len(data) - limit} earlier bytes left out]\n{tail}"


def _copy(sink: IO[bytes], fd: int) -> None:
    offset = 0
    while chunk := os.pread(sink.fileno(), _COPY_CHUNK, offset):
        offset += len(chunk)
        view = memoryview(chunk)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except OSError:
                return


def _flush_python_streams() -> None:
    """Text a trial left in Python's buffers belongs to its own output, not to what follows."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()
