"""The lease a driver holds on its study: who runs it, kept alive by a heartbeat.

A driver takes the lease before it touches the study and renews it every few seconds from
a background thread. Another driver sees a live lease and is refused (exit 75), or with
``--join`` helps: trials carry the owner that runs them, so a driver only ever re-queues,
finishes or stops its own. A lease whose heartbeat is older than its timeout (or whose
process is gone from this very host) is stale: the next driver removes it and re-queues
the trials it was running. A driver that finds its own lease gone (it was paused past the
timeout) stops with LeaseLostError and writes nothing over what the others stored.

The timeout is ``execution.lease_timeout`` (seconds, default 60), or ``TUNEDAG_LEASE_TIMEOUT``
which wins over the spec; the heartbeat runs every quarter of it, at most every 5 s.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from tunedag.errors import LeaseLostError, StorageError, UsageError
from tunedag.stopsignals import driver_thread
from tunedag.storage import LeaseRecord, Storage, Takeover

#: the environment variable that sets the lease timeout in seconds (it wins over the spec)
LEASE_TIMEOUT_ENV = "TUNEDAG_LEASE_TIMEOUT"
DEFAULT_LEASE_TIMEOUT_S = 60.0


def lease_timeout(configured: float | None) -> float:
    """The lease timeout: the environment, else the spec, else the default."""
    text = os.environ.get(LEASE_TIMEOUT_ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise UsageError(f"{LEASE_TIMEOUT_ENV}={text!r}: give a positive number of seconds")
        return value
    return DEFAULT_LEASE_TIMEOUT_S if configured is None else float(configured)


class Lease:
    """This driver's lease on one study; ``acquire`` it, ``check`` it often, ``release`` it."""

    def __init__(self, storage: Storage, study: str, timeout_s: float) -> None:
        self.storage = storage
        self.study = study
        self.timeout_s = timeout_s
        self.interval_s = min(5.0, timeout_s / 4)
        now = time.time()
        self.record = LeaseRecord(
            owner=uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            timeout_s=timeout_s,
        )
        self.owner = self.record.owner
        self._lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, *, join: bool) -> Takeover:
        """Take the lease (StudyBusyError if another driver holds it and not ``join``)."""
        takeover = self.storage.acquire_lease(self.study, self.record, join=join)
        self._thread = driver_thread(self._beat, name=f"tunedag-lease-{self.study}")
        self._thread.start()
        return takeover

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                alive = self.storage.heartbeat(self.study, self.owner)
            except StorageError:
                continue  # a busy or briefly unreachable storage: try again next beat
            if not alive:
                self._lost = True
                return

    def check(self) -> None:
        """LeaseLostError once another driver has taken this driver's lease over."""
        if self._lost:
            raise LeaseLostError(
                f"the lease of this driver ({self.record.where}) on study {self.study!r} was "
                f"taken over by another driver: no heartbeat reached {self.storage.url} within "
                f"{self.timeout_s:g} s (was this process paused?). This driver stops; every "
                "result stored is kept, and the study goes on under the other driver"
            )

    def release(self) -> None:
        """Stop the heartbeat and drop the lease (a lost lease is left to its new owner)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self._lost:
            self.storage.release_lease(self.study, self.owner)


__all__ = ["DEFAULT_LEASE_TIMEOUT_S", "LEASE_TIMEOUT_ENV", "Lease", "lease_timeout"]
