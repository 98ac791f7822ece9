"""The `local` executor: trials in this process, or in forked worker processes.

With one worker and no `trial_timeout`, trials run inline: no process start, no copying,
which keeps the engine's overhead per trial well under a millisecond. Otherwise each trial
runs in a process forked from the driver, so the data reaches it without copying, a trial
past its timeout is killed for real, and a worker that dies loses only its own trial,
which the driver re-queues.

Native thread pools (BLAS, OpenMP) are limited to one thread per worker: on small
problems a multi-threaded BLAS is many times slower than a single thread, and N workers on
N cores would oversubscribe them anyway.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from threadpoolctl import threadpool_limits

from tunedag import hookimpl
from tunedag.executor import Executor, Reporter, TrialOutcome, Workload
from tunedag.space import Params
from tunedag.storage import TrialState


class LocalExecutor(Executor):
    name = "local"

    def start(self, workload: Workload, on_report: Reporter) -> None:
        self.workload = workload
        self.on_report = on_report
        self.inline = self.workers == 1 and self.trial_timeout is None
        self.queued: list[tuple[int, Params]] = []
        self.running: dict[int, _Child] = {}
        self.limits = threadpool_limits(limits=1)

    def free_slots(self) -> int:
        return self.workers - len(self.queued) - len(self.running)

    def submit(self, number: int, params: Params) -> None:
        if self.inline:
            self.queued.append((number, params))
        else:
            self.running[number] = _Child.fork(number, params, self.workload)

    def wait(self) -> list[TrialOutcome]:
        if self.inline:
            number, params = self.queued.pop(0)
            return [self.workload.run(number, params, lambda s, v: self.on_report(number, s, v))]
        return self._wait_children()

    def _wait_children(self) -> list[TrialOutcome]:
        while True:
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([child.connection for child in self.running.values()], timeout)
            outcomes = [self._timed_out(c) for c in list(self.running.values()) if c.overdue(
                self.trial_timeout)]
            for connection in ready:
                child = next(c for c in self.running.values() if c.connection is connection)
                outcome = child.receive(self.on_report)
                if outcome is not None:
                    del self.running[child.number]
                    outcomes.append(outcome)
            if outcomes:
                return outcomes

    def _next_deadline(self) -> float | None:
        if self.trial_timeout is None or not self.running:
            return None
        return min(child.started for child in self.running.values()) + self.trial_timeout

    def _timed_out(self, child: _Child) -> TrialOutcome:
        child.kill()
        del self.running[child.number]
        return TrialOutcome(
            number=child.number,
            state=TrialState.FAILED,
            duration_s=time.monotonic() - child.started,
            error=f"TrialTimeout: stopped after the trial_timeout of {self.trial_timeout:g}s",
        )

    def close(self) -> None:
        for child in self.running.values():
            child.kill()
        self.running.clear()
        self.queued.clear()
        self.limits.restore_original_limits()


class _Child:
    """One trial in one forked process, talking to the driver over a pipe."""

    def __init__(self, number: int, process: Any, connection: Connection) -> None:
        self.number = number
        self.process = process
        self.connection = connection
        self.started = time.monotonic()

    @classmethod
    def fork(cls, number: int, params: Params, workload: Workload) -> _Child:
        parent_end, child_end = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_child_main, args=(number, params, workload, child_end), daemon=True
        )
        process.start()
        child_end.close()
        return cls(number, process, parent_end)

    def overdue(self, timeout: float | None) -> bool:
        return timeout is not None and time.monotonic() - self.started > timeout

    def receive(self, on_report: Reporter) -> TrialOutcome | None:
        """Answer one report, or return the outcome; a dead child's trial is lost."""
        try:
            message = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            return TrialOutcome(
                number=self.number,
                state=TrialState.RUNNING,
                lost=True,
                error=f"worker process exited with code {self.process.exitcode}",
            )
        if message[0] == "report":
            _, step, value = message
            self.connection.send(on_report(self.number, step, value))
            return None
        self.process.join(timeout=5)
        outcome: TrialOutcome = message[1]
        return outcome

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=5)
        self.connection.close()


def _child_main(number: int, params: Params, workload: Workload, connection: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it kills us if needed
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def report(step: int, value: float) -> bool:
        connection.send(("report", step, value))
        return bool(connection.recv())

    outcome = workload.run(number, params, report)
    connection.send(("done", outcome))
    connection.close()


@hookimpl
def register_executors(register: Any) -> None:
    register(LocalExecutor)
