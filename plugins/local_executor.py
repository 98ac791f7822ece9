"""The `local` executor: trials in this process, or in a pool of forked worker processes.

With one worker and no `trial_timeout`, trials run inline: no process start, no copying,
which keeps the engine's overhead per trial well under a millisecond.

Otherwise trials run in a pool of up to `execution.workers` processes forked from the
driver. A worker is forked when a trial needs one and no idle worker is left, and then
serves trial after trial: the workload (the development rows, the folds, the pipeline)
reaches it once, through the fork, shared copy-on-write with the driver, and each trial
sends it only ``(number, params)`` over a pipe. The same pipe carries the trial's reports
to the driver and the pruning decision back, then the outcome. When the study's pruner
never stops a trial, a report gets no answer and the worker does not wait for one.

A worker that dies (killed, out of memory, a crash in native code) loses only its own
trial: the driver sees the pipe close, returns the trial as ``lost`` and re-queues it,
and the next trial forks a fresh worker. A trial past its `trial_timeout` is stopped for
real: its worker is killed, the trial recorded as failed, and a fresh worker replaces it.

Native thread pools (BLAS, OpenMP) are limited to one thread per worker: on small
problems a multi-threaded BLAS is many times slower than a single thread, and N workers on
N cores would oversubscribe them anyway.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from threadpoolctl import threadpool_limits

from tunedag import hookimpl
from tunedag.executor import THREAD_ENV, Executor, Reporter, TrialOutcome, Workload
from tunedag.space import Params
from tunedag.storage import TrialState

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class LocalExecutor(Executor):
    name = "local"

    def start(self, workload: Workload, on_report: Reporter) -> None:
        self.workload = workload
        self.on_report = on_report
        self.inline = self.workers == 1 and self.trial_timeout is None
        self.queued: list[tuple[int, Params]] = []
        self.idle: list[_Worker] = []
        self.busy: dict[int, _Worker] = {}
        self.limits = threadpool_limits(limits=1)

    def free_slots(self) -> int:
        return self.workers - len(self.queued) - len(self.busy)

    def submit(self, number: int, params: Params) -> None:
        if self.inline:
            self.queued.append((number, params))
            return
        while self.idle:
            worker = self.idle.pop()
            if worker.send(number, params):
                self.busy[number] = worker
                return
            worker.kill()  # it died while idle; its replacement runs the trial
        # SIGINT and SIGTERM wait until the new worker is tracked: one arriving mid-fork would
        # run the driver's handler in an at-fork hook, which swallows its exception, and the
        # worker would start with the driver's handler
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            worker = _Worker.fork(self.workload, self.prunes, self._connections())
            if not worker.send(number, params):
                worker.kill()
                raise OSError(f"a freshly forked worker (pid {worker.process.pid}) died at once")
            self.busy[number] = worker
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def wait(self) -> list[TrialOutcome]:
        if self.inline:
            number, params = self.queued.pop(0)
            return [self.workload.run(number, params, lambda s, v: self.on_report(number, s, v))]
        return self._wait_workers()

    def _connections(self) -> list[Connection]:
        """The driver's ends of every pipe, which a newly forked worker must not keep open."""
        return [w.connection for w in (*self.idle, *self.busy.values())]

    def _wait_workers(self) -> list[TrialOutcome]:
        while True:
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([worker.connection for worker in self.busy.values()], timeout)
            outcomes = [
                self._timed_out(number, worker)
                for number, worker in list(self.busy.items())
                if worker.overdue(self.trial_timeout)
            ]
            for connection in ready:
                found = [(n, w) for n, w in self.busy.items() if w.connection is connection]
                if not found:
                    continue  # timed out just now
                number, worker = found[0]
                outcome = worker.receive(self.on_report, self.prunes)
                if outcome is None:
                    continue
                del self.busy[number]
                if outcome.lost:
                    worker.kill()
                else:
                    self.idle.append(worker)
                outcomes.append(outcome)
            if outcomes:
                return outcomes

    def _next_deadline(self) -> float | None:
        if self.trial_timeout is None or not self.busy:
            return None
        return min(worker.started for worker in self.busy.values()) + self.trial_timeout

    def _timed_out(self, number: int, worker: _Worker) -> TrialOutcome:
        worker.kill()
        del self.busy[number]
        return TrialOutcome(
            number=number,
            state=TrialState.FAILED,
            duration_s=time.monotonic() - worker.started,
            error=f"TrialTimeout: stopped after the trial_timeout of {self.trial_timeout:g}s",
        )

    def close(self) -> None:
        for worker in self.idle:
            worker.connection.close()  # an idle worker exits when its pipe closes
        for worker in self.busy.values():
            worker.kill()
        for worker in self.idle:
            worker.process.join(timeout=1)
            worker.kill()
        self.busy.clear()
        self.idle.clear()
        self.queued.clear()
        self.limits.restore_original_limits()


class _Worker:
    """One forked worker process serving trials over a pipe, one at a time."""

    def __init__(self, process: Any, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.number: int | None = None
        self.started = time.monotonic()

    @classmethod
    def fork(cls, workload: Workload, prunes: bool, inherited: list[Connection]) -> _Worker:
        parent_end, child_end = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_worker_main,
            args=(workload, prunes, child_end, [parent_end, *inherited]),
            daemon=True,
            name="tunedag-worker",
        )
        # the worker's garbage collector leaves the driver's objects alone, so it does not
        # copy every page they live on (the parent's collector is back on once forked)
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
        child_end.close()
        return cls(process, parent_end)

    def send(self, number: int, params: Params) -> bool:
        """Hand the worker a trial; False if it is gone."""
        try:
            self.connection.send((number, params))
        except (OSError, ValueError):
            return False
        self.number = number
        self.started = time.monotonic()
        return True

    def overdue(self, timeout: float | None) -> bool:
        return timeout is not None and time.monotonic() - self.started > timeout

    def receive(self, on_report: Reporter, prunes: bool) -> TrialOutcome | None:
        """Take one report (answered when ``prunes``), or return the outcome.

        A dead worker's trial is lost.
        """
        number = self.number
        assert number is not None
        try:
            message = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            return TrialOutcome(
                number=number,
                state=TrialState.RUNNING,
                lost=True,
                error=f"worker process {self.process.pid} exited with code "
                f"{self.process.exitcode} while running trial {number}",
            )
        if message[0] == "report":
            _, step, value = message
            decision = on_report(number, step, value)
            if prunes:
                # if it died after reporting, the next receive returns the trial as lost
                with contextlib.suppress(OSError):
                    self.connection.send(decision)
            return None
        outcome: TrialOutcome = message[1]
        self.number = None
        return outcome

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=5)
        self.connection.close()


class _DriverGone(BaseException):
    """The driver's end of the pipe closed: it stopped, so this worker stops too."""


def _worker_main(
    workload: Workload, prunes: bool, connection: Connection, inherited: list[Connection]
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it kills us if needed
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the driver's fork
    for other in inherited:  # so each pipe closes when its own process dies, not later
        other.close()
    for variable in THREAD_ENV:
        os.environ[variable] = "1"
    threadpool_limits(limits=1)

    def report(step: int, value: float) -> bool:
        try:
            connection.send(("report", step, value))
            return prunes and bool(connection.recv())
        except (EOFError, OSError) as error:
            raise _DriverGone from error

    try:
        while True:
            try:
                task = connection.recv()
            except (EOFError, OSError):
                return
            number, params = task
            outcome = workload.run(number, params, report)
            try:
                connection.send(("done", outcome))
            except OSError:
                return
    except _DriverGone:
        return
    finally:
        connection.close()


@hookimpl
def register_executors(register: Any) -> None:
    register(LocalExecutor)
