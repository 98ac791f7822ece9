"""A stop signal another thread takes while the main thread blocks it waits for the block."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tunedag.errors import InterruptedStudy
from tunedag.study import _signals_raise


def test_a_signal_taken_by_another_thread_waits_until_the_main_thread_unblocks_it() -> None:
    # a thread started before the block leaves SIGTERM unblocked, as a native pool's does:
    # the kernel hands it the signal, and Python runs the handler in the main thread
    release = threading.Event()
    bystander = threading.Thread(target=release.wait, daemon=True)
    bystander.start()
    try:
        with _signals_raise():
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(200):  # bytecode boundaries, where a pending handler runs
                    threading.Event().wait(0.005)
                held_back = True
            except InterruptedStudy:
                held_back = False
            with pytest.raises(InterruptedStudy):
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                for _ in range(200):
                    threading.Event().wait(0.005)
        assert held_back, "the handler ran while the main thread blocked the signal"
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        release.set()
        bystander.join()
