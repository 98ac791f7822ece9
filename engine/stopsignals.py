"""SIGINT and SIGTERM in the driver: the threads it starts leave them to its main thread.

A signal mask is per thread, and the kernel hands a process-directed signal to any thread
that does not block it. Python runs the handler in the main thread either way, so blocking
the signals in the main thread alone (``LocalExecutor`` does, around a fork, until the new
worker is tracked) holds them back only if no other thread can take them. Every thread the
driver starts therefore runs ``block_stop_signals`` first; ``driver_thread`` builds one so.
Native thread pools started by libraries (OpenBLAS's, when numpy loads) do not, and can
still take a signal; Python then runs the handler in the main thread even while it blocks
the signal. So the driver's handlers start with ``deferred_while_blocked``: a signal the
main thread blocks is sent to it again, to wait there until the block ends. Code that blocks
the signals still stays consistent if the handler raises inside the block.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

#: the signals that stop a run
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def block_stop_signals() -> None:
    """Block SIGINT and SIGTERM in the calling thread, for good.

    They then reach the main thread only, and wait while it blocks them itself.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def deferred_while_blocked(signum: int) -> bool:
    """In a handler: whether the main thread blocks ``signum`` now, in which case it has
    been sent again to the main thread (pending until the block ends) and the handler should
    return without acting."""
    if signum not in signal.pthread_sigmask(signal.SIG_BLOCK, ()):
        return False
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signum)
    return True


def driver_thread(target: Callable[[], object], *, name: str) -> threading.Thread:
    """A daemon thread (not started) that blocks SIGINT and SIGTERM, then runs ``target``."""

    def run() -> None:
        block_stop_signals()
        target()

    return threading.Thread(target=run, name=name, daemon=True)


__all__ = ["STOP_SIGNALS", "block_stop_signals", "deferred_while_blocked", "driver_thread"]
