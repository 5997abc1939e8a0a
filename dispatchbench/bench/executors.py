"""Where a run's cells execute: one after the other, ``--jobs N`` at once on this machine, or on
a Dask cluster. One small interface, so the harness reads the same whatever runs the cells.

Every executor runs :func:`cell_runner.cell_outcomes` for each cell — the per-cell child process
and its hard per-state kill live *inside* the unit of work, because neither a thread pool nor
Dask can stop a task stuck in C code. Executors only carry plain values back; the harness is the
only process that scores and writes (workers never touch the results folder).

* ``serial`` (``--jobs 1``): in the harness's own thread; answers stream per state, so even a
  SIGKILL keeps every finished state.
* ``pool`` (``--jobs N``): N threads of the harness, each waiting on one cell's child process
  (the work is in the children, so threads are enough and nothing is pickled). Streams per state.
* ``dask`` (``--executor dask``): one task per cell on a Dask cluster, results per finished cell.
  Without ``--scheduler`` it starts a ``LocalCluster`` of ``jobs`` worker processes with one
  thread each. Dask's workers are daemonic by default and a daemonic process may not start
  children, so the local cluster is made with ``distributed.worker.daemon = False``; workers of
  a remote cluster need the same setting (docs/running.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from dispatchbench.bench.cell_runner import CellJob, Outcome, cell_outcomes, run_cell_collect, single_threaded_children
from dispatchbench.contract.status import Status
from dispatchbench.model.errors import InputError

EXECUTORS = ("local", "dask")
DASK_CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Event:
    """One state's outcome of job number ``job`` (its place in the list given to ``run``), or,
    with ``index`` None, the news that the job is finished."""

    job: int
    index: int | None
    outcome: Outcome | None = None


class Executor(ABC):
    """Runs cell jobs and yields their outcomes as they come; ``close`` stops whatever still runs."""

    workers = 1  # how many units of work run at once

    @abstractmethod
    def run(self, jobs: Sequence[CellJob]) -> Iterator[Event]:
        """Every state of every job once, then a finishing event per job, in completion order."""

    def call_all(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        tick: Callable[[], None] | None = None,
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """Run ``fn(*args)`` for each args tuple (a training, say), ``workers`` at a time in fresh
        processes; yield ``(number, result, error)`` as each finishes, calling ``tick`` about
        every second while waiting (progress bars). The base version uses a local process pool."""
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if not calls:
            return
        with ProcessPoolExecutor(max_workers=min(self.workers, len(calls)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(fn, *args): k for k, args in enumerate(calls)}
            while futures:
                done, _ = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                if tick:
                    tick()
                for f in done:
                    k = futures.pop(f)
                    error = f.exception()
                    yield k, None if error else f.result(), error

    def close(self) -> None:
        """Stop running cells (their child processes are killed) and release resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SerialExecutor(Executor):
    def run(self, jobs: Sequence[CellJob]) -> Iterator[Event]:
        for k, job in enumerate(jobs):
            with closing(cell_outcomes(job)) as outcomes:  # closing kills the child on Ctrl-C
                for index, outcome in outcomes:
                    yield Event(k, index, outcome)
            yield Event(k, None)


class PoolExecutor(Executor):
    """``jobs`` threads, each running one cell at a time; events reach the caller through a queue."""

    def __init__(self, jobs: int) -> None:
        self.jobs = self.workers = jobs
        self.cancel = threading.Event()
        self.threads: list[threading.Thread] = []

    def run(self, jobs: Sequence[CellJob]) -> Iterator[Event]:
        events: queue.Queue = queue.Queue()
        next_job = iter(range(len(jobs)))
        take = threading.Lock()

        def work() -> None:
            try:
                while not self.cancel.is_set():
                    with take:
                        k = next(next_job, None)
                    if k is None:
                        break
                    for index, outcome in cell_outcomes(jobs[k], self.cancel):
                        events.put(Event(k, index, outcome))
                    if not self.cancel.is_set():
                        events.put(Event(k, None))
            except BaseException as exc:  # a bug here must reach the harness, not die in a thread
                events.put(exc)
            finally:
                events.put(None)

        self.threads = [
            threading.Thread(target=work, name=f"dispatchbench cell {i}", daemon=True)
            for i in range(min(self.jobs, len(jobs)))
        ]
        for t in self.threads:
            t.start()
        running = len(self.threads)
        while running:
            try:
                item = events.get(timeout=0.2)  # a timeout, so Ctrl-C reaches the main thread promptly
            except queue.Empty:
                continue
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    def close(self) -> None:
        self.cancel.set()
        for t in self.threads:
            t.join()


class DaskExecutor(Executor):
    """One Dask task per cell; see the module docstring."""

    def __init__(self, jobs: int, scheduler: str | None, connect_timeout: float = DASK_CONNECT_TIMEOUT_S) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError(
                "--executor",
                "dask",
                "Dask is not installed",
                'pip install "dispatchbench[cluster]" (or dask[distributed])',
            ) from None
        dask.config.set({"distributed.worker.daemon": False})  # workers must be able to start the cell's child
        self.workers = jobs
        self.cluster = None
        self.futures: list = []
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(
                    "--scheduler",
                    repr(scheduler),
                    f"no Dask scheduler answered ({type(exc).__name__})",
                    "give the address `dask scheduler` printed, e.g. tcp://10.0.0.5:8786",
                ) from None
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                memory_limit=0,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)

    def run(self, jobs: Sequence[CellJob]) -> Iterator[Event]:
        from distributed import as_completed

        batch = uuid.uuid4().hex[:8]
        numbers = {}
        for k, job in enumerate(jobs):
            future = self.client.submit(run_cell_collect, job, pure=False, key=f"dispatchbench-cell-{batch}-{k}")
            numbers[future.key] = k
            self.futures.append(future)
        for future in as_completed(self.futures):
            k = numbers[future.key]
            try:
                outcomes = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not run
                why = f"Dask task failed: {type(exc).__name__}: {exc}"
                outcomes = [(i, {"status": Status.ERROR, "reason": why, "time_s": None}) for i in jobs[k].todo]
            for index, outcome in outcomes:
                yield Event(k, index, outcome)
            yield Event(k, None)

    def call_all(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        tick: Callable[[], None] | None = None,
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """As :meth:`Executor.call_all`, one Dask task per call (on the cluster's workers)."""
        from distributed import wait

        futures = {self.client.submit(fn, *args, pure=False): k for k, args in enumerate(calls)}
        self.futures += list(futures)
        while futures:
            try:
                done = wait(list(futures), timeout=1.0, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            if tick:
                tick()
            for f in done:
                k = futures.pop(f)
                error = f.exception() if f.status == "error" else None
                yield k, None if error else f.result(), error

    def close(self) -> None:
        try:
            if self.futures:
                self.client.cancel(self.futures)
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def make_executor(kind: str, jobs: int, scheduler: str | None = None) -> Executor:
    """The executor for ``--executor kind --jobs jobs [--scheduler ADDR]``."""
    single_threaded_children()  # trainings and a LocalCluster's workers inherit it
    if kind == "dask":
        return DaskExecutor(jobs, scheduler)
    if kind != "local":
        raise InputError("--executor", repr(kind), "is not an executor", f"use one of: {', '.join(EXECUTORS)}")
    return SerialExecutor() if jobs == 1 else PoolExecutor(jobs)
