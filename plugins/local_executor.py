"""The `local` executor: tasks in a pool of worker processes forked from the driver.

Every task runs in a worker process, one worker or many, so a trial that crashes, calls
``os._exit`` or ``sys.exit``, or is killed by a signal loses only its own task: the driver
stays up and records it. A worker is forked when a task needs one and no idle worker is
left, and then serves task after task: the workload (the development rows, the folds, the
pipeline) reaches it once, through the fork, shared copy-on-write with the driver, and
each task sends it only the task (trial number, parameters, fold, content keys) over a
pipe. A worker keeps its cache of fitted preprocessing across the tasks it serves. The
same pipe carries a whole-trial task's reports to the driver and the pruning decision
back, then the outcome. When the study's pruner never stops a trial, a report gets no
answer and the worker does not wait for one.

A worker that dies (killed, out of memory, a crash in native code) loses only its own
task: the driver sees the pipe close, returns it as ``lost`` and re-queues the trial, and
the next task forks a fresh worker. ``cancel`` (a trial past its ``trial_timeout``, or the
study out of time) kills the workers running the trial's tasks; fresh ones replace them.

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
import tempfile
import time
import weakref
from multiprocessing.connection import Connection, wait
from typing import IO, Any

from threadpoolctl import threadpool_limits

from tunedag import hookimpl
from tunedag.capture import read_tail, verbose
from tunedag.executor import (
    THREAD_ENV,
    Executor,
    Reporter,
    Task,
    TaskAbandoned,
    TrialOutcome,
    Workload,
    run_captured,
)
from tunedag.stopsignals import STOP_SIGNALS

#: ``TUNEDAG_INLINE=1`` runs tasks in the driver's own process, one at a time, for a
#: debugger: a crash in a trial then takes the run down, and no trial_timeout can stop it.
INLINE_ENV = "TUNEDAG_INLINE"


class LocalExecutor(Executor):
    name = "local"

    def start(self, workload: Workload, on_report: Reporter) -> None:
        self.workload = workload
        self.on_report = on_report
        self.inline = os.environ.get(INLINE_ENV, "") == "1"
        self.echo = verbose()
        self.queued: list[Task] = []
        self.idle: list[_Worker] = []
        self.busy: list[_Worker] = []
        self.limits = threadpool_limits(limits=1)

    def free_slots(self) -> int:
        if self.inline:
            return 1 - len(self.queued)
        return self.workers - len(self.busy)

    def submit(self, task: Task) -> None:
        if self.inline:
            self.queued.append(task)
            return
        # a worker is in ``busy`` before it leaves ``idle`` and before it gets the task, and
        # leaves it only once killed: whatever raises in between (a stop signal's exception
        # too), close() still finds it
        while self.idle:
            worker = self.idle[-1]
            self.busy.append(worker)
            self.idle.pop()
            if worker.send(task):
                return
            worker.kill()  # it died while idle; its replacement runs the task
            self.busy.remove(worker)
        # SIGINT and SIGTERM wait until the new worker is tracked: one arriving mid-fork would
        # run the driver's handler in an at-fork hook, which swallows its exception, and the
        # worker would start with the driver's handler
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            worker = _Worker.fork(
                self.workload, self.prunes, self.echo, self._connections(), self.busy
            )
            if not worker.send(task):
                worker.kill()
                self.busy.remove(worker)
                raise OSError(f"a freshly forked worker (pid {worker.process.pid}) died at once")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        if self.inline:
            if not self.queued:
                return []
            task = self.queued.pop(0)
            report = lambda s, v: self.on_report(task.number, s, v)  # noqa: E731
            return [run_captured(self.workload, task, report, echo=self.echo)]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([worker.connection for worker in self.busy], left)
            outcomes = []
            for connection in ready:
                worker = next(w for w in self.busy if w.connection is connection)
                outcome = worker.receive(self.on_report, self.prunes)
                if outcome is None:
                    continue
                if outcome.lost:
                    worker.kill()
                else:
                    self.idle.append(worker)
                self.busy.remove(worker)  # last: tracked until then, as in submit
                outcomes.append(outcome)
            if outcomes or (deadline is not None and time.monotonic() >= deadline):
                return outcomes

    def cancel(self, number: int) -> None:
        """Kill the workers running the trial's tasks; a fresh one replaces each when needed."""
        self.queued = [task for task in self.queued if task.number != number]
        for worker in [w for w in self.busy if w.task is not None and w.task.number == number]:
            worker.kill()
            self.busy.remove(worker)

    def _connections(self) -> list[Connection]:
        """The driver's ends of every pipe, which a newly forked worker must not keep open."""
        return [w.connection for w in (*self.idle, *self.busy)]

    def close(self) -> None:
        for worker in self.idle:
            worker.connection.close()  # an idle worker exits when its pipe closes
        for worker in self.busy:
            worker.kill()
        for worker in self.idle:
            worker.process.join(timeout=1)
            worker.kill()
        self.busy.clear()
        self.idle.clear()
        self.queued.clear()
        self.limits.restore_original_limits()


class _Worker:
    """One forked worker process serving tasks over a pipe, one at a time."""

    def __init__(self, process: Any, connection: Connection, output: IO[bytes]) -> None:
        self.process = process
        self.connection = connection
        self.output = output  # the file its tasks' output goes to, shared through the fork
        self.task: Task | None = None
        # a worker dropped without kill() (an executor never closed) still closes its file
        weakref.finalize(self, output.close)

    @classmethod
    def fork(
        cls,
        workload: Workload,
        prunes: bool,
        echo: bool,
        inherited: list[Connection],
        tracked: list[_Worker],
    ) -> _Worker:
        """Fork a worker and append it to ``tracked`` before returning it.

        On any exception (a stop signal's too) its file, pipe and process are closed and
        killed here.
        """
        parent_end, child_end = multiprocessing.Pipe()
        output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        process: Any = None
        try:
            context = multiprocessing.get_context("fork")
            process = context.Process(
                target=_worker_main,
                args=(workload, prunes, echo, output, child_end, [parent_end, *inherited]),
                daemon=True,
                name="tunedag-worker",
            )
            try:
                # the worker's garbage collector leaves the driver's objects alone, so it does
                # not copy every page they live on (the parent's collector is back on once forked)
                gc.freeze()
                process.start()
            finally:
                gc.unfreeze()
                child_end.close()
            worker = cls(process, parent_end, output)
            tracked.append(worker)
            return worker
        except BaseException:
            # also a signal's exception, which the driver's handler raises wherever the main
            # thread is: blocking the signals here holds them for this thread only, and another
            # thread may take one. Nothing owns the file or the pipe yet, so close them now
            output.close()
            parent_end.close()
            child_end.close()
            if process is not None and process.pid is not None:
                process.kill()
                process.join(timeout=5)
            raise

    def send(self, task: Task) -> bool:
        """Hand the worker a task; False if it is gone."""
        try:
            self.connection.send(task)
        except (OSError, ValueError):
            return False
        self.task = task
        return True

    def receive(self, on_report: Reporter, prunes: bool) -> TrialOutcome | None:
        """Take one report (answered when ``prunes``), or return the outcome.

        A dead worker's task is lost.
        """
        task = self.task
        assert task is not None
        try:
            message = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            return TrialOutcome.lost_task(
                task,
                f"worker process {self.process.pid} exited with code "
                f"{self.process.exitcode} while running {task.name}",
                output=read_tail(self.output),
            )
        if message[0] == "report":
            _, step, value = message
            decision = on_report(task.number, step, value)
            if prunes:
                # if it died after reporting, the next receive returns the trial as lost
                with contextlib.suppress(OSError):
                    self.connection.send(decision)
            return None
        outcome: TrialOutcome = message[1]
        self.task = None
        return outcome

    def kill(self) -> None:
        try:
            if self.process.is_alive():
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.join(timeout=5)
        finally:
            self.connection.close()
            self.output.close()


class _DriverGone(TaskAbandoned):
    """The driver's end of the pipe closed: it stopped, so this worker stops too."""


def _worker_main(
    workload: Workload,
    prunes: bool,
    echo: bool,
    output: IO[bytes],
    connection: Connection,
    inherited: list[Connection],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it kills us if needed
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the driver's fork
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
            outcome = run_captured(workload, task, report, sink=output, echo=echo)
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
