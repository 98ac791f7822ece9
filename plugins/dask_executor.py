"""The `dask` executor: trials on a Dask cluster (``pip install 'tunedag[dask]'``).

``execution: {executor: dask, address: tcp://host:8786}`` connects to a running scheduler;
without an address, a ``LocalCluster`` of ``execution.workers`` single-threaded worker
processes starts on 127.0.0.1 (no dashboard, a temporary directory) and stops with the run.

What runs where: the driver keeps the sampler, the pruner, the storage and the scheduler;
each task the scheduler hands out (one fold's chain of nodes of a trial, or a whole trial)
is a Dask task that runs ``workload.run(task, report)`` on a worker and returns its
TrialOutcome. A fold's Dask key is its score node's content key (with the trial and
attempt, since two trials may share a configuration), so the distributed scheduler names
its tasks as the study graph does. The workload (development rows, folds, pipeline,
scorer) is scattered once per run with ``broadcast=True``; every task gets its future, so
the rows reach each worker once, not once per task (a worker that joins later fetches them
once from a peer), and each worker keeps its own cache of fitted preprocessing in it.

Reports of a whole-trial task and pruning are synchronous, as with the `local` executor: a
worker publishes each report as a Dask event (``log_event``) that the driver receives
without polling, then waits for the pruner's answer in a Dask ``Variable`` named after its
task and step. When the study's pruner never stops a trial there is no answer to wait
for, and the worker goes on. Fold tasks do not report: the driver judges their results.

Failures: tasks go out with ``retries=0``. A worker that dies mid-task gives
``KilledWorker`` (the LocalCluster's scheduler runs with ``allowed-failures: 0``); on a
cluster whose scheduler retries by itself, the driver sees the same task start twice and
treats the second start the same way; either way the trial comes back ``lost`` and the
driver re-queues it (attempt + 1), so it is recorded once. A lost scheduler raises
ExecutorUnreachableError (exit 75): the driver re-queues the trials in flight, and the
next run resumes. See docs/distributed.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tunedag import hookimpl
from tunedag.capture import verbose
from tunedag.errors import ExecutorUnreachableError, UnknownNameError
from tunedag.executor import (
    THREAD_ENV,
    Executor,
    Reporter,
    Task,
    TrialOutcome,
    Workload,
    run_captured,
)
from tunedag.storage import TrialState

log = logging.getLogger("tunedag")

#: How often the driver checks its connection to the scheduler while it waits.
POLL_S = 1.0
#: How long a run waits for the first worker of an external cluster to join.
WORKER_WAIT_S = 60.0
#: How long a waiting report re-checks whether its task was cancelled.
ANSWER_POLL_S = 2.0


@dataclass
class _Task:
    task: Task
    future: Any
    started: float | None = None
    worker: str | None = None
    starts: int = 0


class DaskExecutor(Executor):
    """Trials as Dask tasks on a cluster at ``execution.address``, or on a LocalCluster."""

    name = "dask"

    def start(self, workload: Workload, on_report: Reporter) -> None:
        self.echo = verbose()
        try:
            import distributed
        except ImportError as error:
            raise UnknownNameError(
                "executor 'dask' needs dask.distributed, which is not installed: "
                "pip install 'tunedag[dask]'"
            ) from error
        self.distributed: Any = distributed  # partly untyped
        self.workload = workload
        self.on_report = on_report
        self.tasks: dict[str, _Task] = {}
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.topic = f"tunedag-{uuid.uuid4().hex}"
        self.cluster: Any = None
        self.directory: str | None = None
        self.client: Any = None
        self.workload_future: Any = None
        try:
            self.client = self._connect()
            self.client.subscribe_topic(self.topic, self._on_event)
            self._scatter()
            if self.cluster is None:
                self._say_if_idle()
        except BaseException:
            self.close()
            raise

    # -- connecting ----------------------------------------------------------------------------

    def _connect(self) -> Any:
        import dask

        distributed = self.distributed
        connect_timeout = _seconds(dask.config.get("distributed.comm.timeouts.connect"))
        if self.address is None:
            self.directory = tempfile.mkdtemp(prefix="tunedag-dask-")
            # the scheduler fails a task at the first worker death, so the driver re-queues
            # the trial (attempt + 1) rather than the scheduler re-running it unseen
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = distributed.LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    local_directory=self.directory,
                    silence_logs=logging.ERROR,
                )
            return distributed.Client(self.cluster, set_as_default=False)
        try:
            return distributed.Client(self.address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ExecutorUnreachableError(
                f"cannot reach the Dask scheduler at {self.address} within "
                f"{connect_timeout:g}s ({type(error).__name__}: {error}); start it with "
                "`dask scheduler`, or fix execution.address. Safe to retry: the study resumes"
            ) from error

    def _wait_for_workers(self) -> None:
        timeout = WORKER_WAIT_S
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as error:
            where = self.address or "the local Dask cluster"
            raise ExecutorUnreachableError(
                f"no Dask worker joined the scheduler at {where} within {timeout:g}s; start "
                "one with `dask worker ADDRESS`. Safe to retry: the study resumes"
            ) from error

    def _say_if_idle(self) -> None:
        threads = sum(self.client.nthreads().values())
        if threads > self.workers:
            log.warning(
                "the Dask cluster at %s has %d worker threads, but execution.workers is %d: "
                "tunedag keeps only %d trials in flight (set --workers or execution.workers)",
                self.address,
                threads,
                self.workers,
                self.workers,
            )

    def _scatter(self) -> None:
        """Ship the workload to every worker, once; tasks get the future, not the data."""
        self._wait_for_workers()  # after a restart, the nanny may not have one back yet
        try:
            self.workload_future = self.client.scatter(self.workload, broadcast=True, hash=False)
        except (OSError, TimeoutError) as error:
            raise self._unreachable(error) from error

    def _unreachable(self, error: BaseException | None = None) -> ExecutorUnreachableError:
        where = self.address or "the local Dask cluster"
        cause = f" ({type(error).__name__}: {error})" if error is not None else ""
        return ExecutorUnreachableError(
            f"lost the connection to the Dask scheduler at {where}{cause}; the trials in "
            "flight were re-queued and the study resumes when run again (exit 75: retry)"
        )

    # -- the executor interface ----------------------------------------------------------------

    def free_slots(self) -> int:
        return self.workers - len(self.tasks)

    def submit(self, task: Task) -> None:
        self._check_connected()
        if self.workload_future.status != "finished":  # every worker holding it died
            self._scatter()
        key = _task_key(task, self.topic)
        try:
            future = self.client.submit(
                _run_task,
                self.workload_future,
                task,
                key,
                self.topic,
                self.prunes,
                self.echo,
                key=key,
                pure=False,
                retries=0,
            )
        except (OSError, TimeoutError) as error:
            raise self._unreachable(error) from error
        self.tasks[key] = _Task(task, future)
        future.add_done_callback(lambda done, key=key: self.inbox.put(("done", key)))

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            poll = POLL_S
            if deadline is not None:
                poll = min(poll, max(0.0, deadline - time.monotonic()))
            items: list[tuple[str, Any]] = []
            with contextlib.suppress(queue.Empty):
                items.append(self.inbox.get(timeout=poll))
                while True:
                    items.append(self.inbox.get_nowait())
            outcomes: list[TrialOutcome] = []
            for kind, payload in items:
                outcome = self._handle(kind, payload)
                if outcome is not None:
                    outcomes.append(outcome)
            if outcomes or (deadline is not None and time.monotonic() >= deadline):
                return outcomes
            self._check_connected()

    def cancel(self, number: int) -> None:
        """Cancel the trial's tasks; on our own LocalCluster, kill the workers running them."""
        for key, entry in list(self.tasks.items()):
            if entry.task.number != number:
                continue
            del self.tasks[key]
            entry.future.cancel()  # a whole-trial task stops at its next report
            if self.cluster is not None and entry.worker is not None:
                # our own single-threaded workers: stop it for real, the nanny restarts it
                with contextlib.suppress(Exception):
                    self.client.run(_kill_this_process, workers=[entry.worker], wait=False)

    def close(self) -> None:
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            connected = client.status == "running"
            if connected:  # else each call would wait for a reconnection
                with contextlib.suppress(Exception):
                    client.cancel([task.future for task in self.tasks.values()])
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(self.topic)
            # closing a client that lost its scheduler logs the cancelled reconnection as a
            # traceback; the ExecutorUnreachableError already says what happened
            noisy = [] if connected else ["distributed", "distributed.client", "distributed.utils"]
            with _quiet(*noisy), contextlib.suppress(Exception):
                client.close(timeout=5)
        self.tasks = {}
        cluster, self.cluster = getattr(self, "cluster", None), None
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)
        directory, self.directory = getattr(self, "directory", None), None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    # -- what comes back -----------------------------------------------------------------------

    def _on_event(self, event: tuple[float, Any]) -> None:
        """Runs on the client's event loop: hand the report or start to the driver's thread."""
        self.inbox.put(("event", event[1]))

    def _handle(self, kind: str, payload: Any) -> TrialOutcome | None:
        if kind == "done":
            task = self.tasks.pop(payload, None)
            return None if task is None else self._outcome(payload, task)
        key = payload.get("key")
        task = self.tasks.get(key)
        if payload.get("kind") == "start":
            return None if task is None else self._started(key, task, payload)
        if payload.get("kind") == "report":
            if task is None:  # timed out or abandoned: tell it to stop
                if self.prunes:
                    self._answer(key, payload["step"], True)
                return None
            number = task.task.number
            decision = self.on_report(number, int(payload["step"]), float(payload["value"]))
            if self.prunes:
                self._answer(key, payload["step"], bool(decision))
        return None

    def _started(self, key: str, task: _Task, payload: dict[str, Any]) -> TrialOutcome | None:
        task.starts += 1
        if task.starts == 1:
            task.started = time.monotonic()
            task.worker = payload.get("worker")
            return None
        # the scheduler re-ran the task after its worker died: count that as a lost trial, so
        # the driver re-queues it as attempt + 1 and records it once
        del self.tasks[key]
        task.future.cancel()
        return TrialOutcome.lost_task(
            task.task,
            f"Dask worker {task.worker} died while running {task.task.name} "
            "(the scheduler restarted its task)",
        )

    def _outcome(self, key: str, task: _Task) -> TrialOutcome | None:
        distributed = self.distributed
        future = task.future
        if future.status == "cancelled":
            self._check_connected()
            return self._lost(task, "its task was cancelled (its data was lost with a worker)")
        try:
            result = future.result(timeout=60)
        except (distributed.scheduler.KilledWorker, distributed.comm.CommClosedError) as error:
            return self._lost(task, f"{type(error).__name__}: {error}")
        except distributed.client.FutureCancelledError:
            self._check_connected()
            return self._lost(task, "its task was cancelled")
        except (OSError, TimeoutError) as error:
            self._check_connected()
            return self._lost(task, f"{type(error).__name__}: {error}")
        except Exception as error:  # outside the trial's own code: deserializing, importing
            return TrialOutcome(
                number=task.task.number,
                attempt=task.task.attempt,
                fold=task.task.fold,
                state=TrialState.FAILED,
                error=f"{type(error).__name__}: {error} (raised on the Dask worker, outside "
                "the trial; is tunedag installed there, in the same version?)",
            )
        finally:
            future.release()
        if not isinstance(result, TrialOutcome):  # abandoned on the worker
            return self._lost(task, "its task was abandoned")
        return result

    def _lost(self, task: _Task, why: str) -> TrialOutcome:
        return TrialOutcome.lost_task(
            task.task, f"{task.task.name} was lost on Dask worker {task.worker or '?'}: {why}"
        )

    def _answer(self, key: str, step: Any, decision: bool) -> None:
        try:
            self.distributed.Variable(_answer_name(key, step), client=self.client).set(decision)
        except (OSError, TimeoutError) as error:
            raise self._unreachable(error) from error

    # -- the connection ------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if self.client is None or self.client.status != "running":
            raise self._unreachable()


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Raise the named loggers to CRITICAL for the duration."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _seconds(value: Any) -> float:
    from dask.utils import parse_timedelta

    return float(parse_timedelta(value, default="s"))


def _task_key(task: Task, run: str) -> str:
    """The Dask key: the score node's content key for a fold, made unique to this try."""
    node = "trial" if task.fold is None else f"fold{task.fold}"
    content = task.keys[-1][:16] if task.keys else uuid.uuid4().hex[:16]
    return f"tunedag-{node}-{content}-t{task.number}.{task.attempt}-{run[-8:]}"


def _answer_name(key: str, step: Any) -> str:
    return f"{key}-answer-{step}"


# -- on the worker -----------------------------------------------------------------------------


class _Abandoned(BaseException):
    """The driver cancelled this task (timed out, or gone): stop the trial now."""


_threads_limited = False


def _limit_threads() -> None:
    """One native thread per task, once per worker process."""
    global _threads_limited
    if _threads_limited:
        return
    from threadpoolctl import threadpool_limits

    for variable in THREAD_ENV:
        os.environ[variable] = "1"
    threadpool_limits(limits=1)
    _threads_limited = True


def _run_task(
    workload: Workload, task: Task, key: str, topic: str, prunes: bool, echo: bool = False
) -> TrialOutcome | None:
    """The Dask task: one task on a worker, reporting to the driver through events.

    A single-threaded worker runs one task at a time, so the task's fds 1 and 2 are
    captured into its outcome; a worker with several threads shares them between tasks, so
    its tasks' output stays in the worker's own log.
    """
    import distributed

    dask: Any = distributed  # partly untyped

    worker = dask.get_worker()
    _limit_threads()
    worker.log_event(
        topic,
        {
            "kind": "start",
            "key": key,
            "number": task.number,
            "worker": worker.address,
            "pid": os.getpid(),
        },
    )

    def cancelled() -> bool:
        state = worker.state.tasks.get(key)
        return state is None or state.state in ("cancelled", "released", "forgotten")

    def report(step: int, value: float) -> bool:
        if cancelled():
            raise _Abandoned
        worker.log_event(
            topic,
            {
                "kind": "report",
                "key": key,
                "number": task.number,
                "step": int(step),
                "value": float(value),
            },
        )
        if not prunes:
            return False
        answer = dask.Variable(_answer_name(key, int(step)), client=dask.get_client())
        while True:
            try:
                decision = answer.get(timeout=ANSWER_POLL_S)
                break
            except TimeoutError:
                if cancelled():
                    raise _Abandoned from None
        answer.delete()
        return bool(decision)

    try:
        if worker.state.nthreads == 1:
            return run_captured(workload, task, report, echo=echo)
        return workload.run(task, report)
    except _Abandoned:
        return None


def _kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def register_executors(register: Callable[[type[Executor]], None]) -> None:
    register(DaskExecutor)
