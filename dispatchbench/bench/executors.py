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
  Without ``--scheduler`` it starts a ``LocalCluster`` of ``jobs`` workers with one thread each,
  as threads of this process (a process worker would be started by ``multiprocessing``'s spawn,
  which re-runs the caller's script: a ``db.run`` without a ``__main__`` guard ran again in it).
  A stock ``dask worker`` needs no configuration: the cell's child is started with
  ``subprocess``, which Dask's daemonic worker processes may do (``multiprocessing`` refuses),
  and the cell's inputs travel with the task by content, so workers need no shared file system.
  The scheduler's address is checked before any work (its form, then a connection within
  :data:`DASK_CONNECT_TIMEOUT_S`), and the workers already connected must run this version of
  dispatchbench.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import os
import pickle
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dispatchbench.bench.cell_runner import CellJob, Outcome, cell_outcomes, single_threaded_children
from dispatchbench.bench.job_payload import Blob, PathPayload
from dispatchbench.bench.run_metadata import worker_metadata
from dispatchbench.contract.status import Status
from dispatchbench.model.errors import InputError

EXECUTORS = ("local", "dask")
DASK_CONNECT_TIMEOUT_S = 5.0  # a scheduler that has not answered by then is not going to
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
SCHEDULER_FIX = "give the address `dask scheduler` printed, e.g. tcp://10.0.0.5:8786"


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
    def run(self, jobs: Sequence[CellJob]) -> Generator[Event, None, None]:
        """Every state of every job once, then a finishing event per job, in completion order."""

    def call_all(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple[Any, ...]],
        tick: Callable[[], None] | None = None,
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """Run ``fn(*args)`` for each args tuple (a training, say), ``workers`` at a time, each in
        a fresh process (:mod:`call_child`); yield ``(number, result, error)`` as each finishes,
        calling ``tick`` about every second while waiting (progress bars). Processes still
        running when the caller stops (Ctrl-C) are killed."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        if not calls:
            return
        running: list[subprocess.Popen[bytes]] = []
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(calls)))
        try:
            futures = {pool.submit(_call_in_child, fn, args, running): k for k, args in enumerate(calls)}
            while futures:
                done, _ = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                if tick:
                    tick()
                for f in done:
                    k = futures.pop(f)
                    error = f.exception()
                    yield k, None if error else f.result(), error
        finally:
            for f in futures:
                f.cancel()
            for proc in list(running):
                _kill_group(proc)
            pool.shutdown(wait=True)

    def close(self) -> None:
        """Stop running cells (their child processes are killed) and release resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _call_in_child(fn: Callable[..., Any], args: tuple[Any, ...], running: list[subprocess.Popen[bytes]]) -> Any:
    """``fn(*args)`` in a :mod:`call_child` process (in a session of its own, so the kill
    reaches whatever it started); its exception is raised here."""
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "dispatchbench.bench.call_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    running.append(proc)
    try:
        out, _ = proc.communicate(pickle.dumps((fn, args)))
    finally:
        running.remove(proc)
    if not out:
        code = proc.returncode
        raise RuntimeError(f"the process ended without an answer (exit status {code})")
    ok, value = pickle.loads(out)
    if ok:
        return value
    raise value


class SerialExecutor(Executor):
    def run(self, jobs: Sequence[CellJob]) -> Generator[Event, None, None]:
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

    def run(self, jobs: Sequence[CellJob]) -> Generator[Event, None, None]:
        events: queue.Queue[Event | BaseException | None] = queue.Queue()
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


def _need_dask() -> None:
    if importlib.util.find_spec("distributed") is None:
        raise InputError(
            "--executor", "dask", "Dask is not installed", 'pip install "dispatchbench[cluster]" (or dask[distributed])'
        )


def _ucx_installed() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("distributed_ucxx", "ucp"))


def _split_address(text: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a scheduler address (``tcp://`` when none is written)."""

    def bad(problem: str, fix: str = SCHEDULER_FIX) -> InputError:
        return InputError("--scheduler", repr(text), problem, fix)

    scheme, sep, location = text.strip().partition("://")
    if not sep:
        scheme, location = "tcp", text.strip()
    scheme = scheme.lower()
    if scheme == "inproc":
        raise bad(
            "is an in-process address: only the process that made it can reach it",
            "start `dask scheduler` and give the tcp:// address it prints",
        )
    if scheme not in SCHEDULER_SCHEMES:
        raise bad(f"scheme {scheme!r} is not one Dask speaks", "write tcp://HOST:PORT (or tls://, ws://, wss://)")
    if scheme == "ucx" and not _ucx_installed():
        raise bad(
            "needs UCX (the distributed-ucxx package), which is not installed here",
            "install distributed-ucxx on every machine, or give the scheduler's tcp:// address",
        )
    host, colon, port_text = location.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [IPv6]
    if not colon or not host or "/" in location or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad("is not SCHEME://HOST:PORT with a port in 1..65535", SCHEDULER_FIX)
    return scheme, host, int(port_text)


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    """``getaddrinfo`` with a limit (a broken DNS can block it for minutes)."""
    result: dict[str, Any] = {}

    def look() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(timeout)
    if "infos" not in result:
        raise TimeoutError if thread.is_alive() else result["error"]
    infos: list[Any] = result["infos"]
    return infos


async def _identity(address: str, timeout: float) -> dict[str, Any]:
    from distributed.comm.core import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        reply: dict[str, Any] = await comm.read()
        return reply
    finally:
        await comm.close()


def check_scheduler(address: str, timeout: float = DASK_CONNECT_TIMEOUT_S) -> str:
    """The scheduler address, checked before any work: its form (``tcp://HOST:PORT``; ``tls://``,
    ``ws://``, ``wss://``; ``ucx://`` only with UCX installed; never ``inproc://``), that something
    listens there, and for ``tcp://`` that it is a Dask scheduler — all within ``timeout``
    seconds. Raises :class:`InputError` (one line) otherwise; returns the address to connect to."""
    _need_dask()
    text = str(address).strip()
    scheme, host, port = _split_address(text)
    normal = text if "://" in text else f"tcp://{text}"
    if scheme == "ucx":
        return normal  # no socket check for UCX: the client's own timeout applies

    def bad(problem: str) -> InputError:
        return InputError("--scheduler", repr(text), problem, SCHEDULER_FIX)

    deadline = time.monotonic() + timeout
    try:
        infos = _resolve(host, port, timeout)
    except TimeoutError:
        raise bad(f"host name {host!r} did not resolve within {timeout:g} s") from None
    except OSError as exc:
        raise bad(f"host name {host!r} does not resolve ({exc.strerror or exc})") from None
    try:
        family, kind, proto, _, sockaddr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.connect(sockaddr)
    except ConnectionRefusedError:
        raise bad("nothing listens there (connection refused)") from None
    except TimeoutError:
        raise bad(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise bad(f"cannot be reached ({exc.strerror or exc})") from None
    if scheme != "tcp":
        return normal  # tls/ws need the cluster's security settings to say more
    left = max(0.5, deadline - time.monotonic())
    reply: dict[str, Any] = {}  # asked from a thread of its own: a notebook's running event loop stays untouched

    def ask() -> None:
        try:
            reply["identity"] = asyncio.run(asyncio.wait_for(_identity(normal, left), left))
        except BaseException as exc:  # noqa: BLE001 (anything a non-scheduler's bytes provoke)
            reply["error"] = exc

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(left + 0.5)
    identity = reply.get("identity")
    if not isinstance(identity, dict):
        why = reply.get("error")
        what = f"{type(why).__name__}" if why is not None else f"no answer within {timeout:g} s"
        raise bad(f"something listens there, but it did not answer as a Dask scheduler ({what})")
    if identity.get("type") != "Scheduler":
        raise bad(f"is a Dask {identity.get('type', 'process')}, not the scheduler")
    return normal


def installed_version() -> str | None:
    """dispatchbench's version as installed here (``None`` when it is not installed, only importable)."""
    try:
        return version("dispatchbench")
    except PackageNotFoundError:
        return None


def worker_profile() -> dict[str, Any]:
    """What a worker runs: dispatchbench's version and the machine (checked before any cell)."""
    return {"dispatchbench": installed_version(), "python": platform.python_version(), **worker_metadata()}


def _check_workers(client: Any) -> None:
    """Every worker already connected must import this version of dispatchbench: otherwise each
    of its cells would fail the same way, one error row at a time."""
    mine = installed_version()
    for address, answer in sorted(client.run(worker_profile, on_error="return").items()):
        if isinstance(answer, BaseException):
            raise InputError(
                "--scheduler",
                f"worker {address}",
                f"cannot run dispatchbench ({type(answer).__name__}: {answer})",
                f"install dispatchbench {mine} with its extras in the workers' environment",
            )
        if answer.get("dispatchbench") != mine:
            raise InputError(
                "--scheduler",
                f"worker {address} ({answer.get('worker_host')})",
                f"runs dispatchbench {answer.get('dispatchbench')}, this driver {mine}",
                "install the same version on the driver and every worker",
            )


class DaskExecutor(Executor):
    """One Dask task per cell; see the module docstring."""

    def __init__(self, jobs: int, scheduler: str | None, connect_timeout: float = DASK_CONNECT_TIMEOUT_S) -> None:
        _need_dask()
        from distributed import Client, LocalCluster

        self.workers = jobs
        self.cluster = None
        self.futures: list[Any] = []
        self.cancel_key = uuid.uuid4().hex  # names this executor's cancel flag to its in-process workers
        if scheduler:
            address = check_scheduler(scheduler, connect_timeout)
            try:
                self.client = Client(address, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(
                    "--scheduler", repr(scheduler), f"no Dask scheduler answered ({exc})", SCHEDULER_FIX
                ) from None
            try:
                _check_workers(self.client)
            except BaseException:
                self.client.close()
                raise
        else:
            # Workers as threads of this process, not processes: a process worker is started by
            # multiprocessing's spawn, which re-runs the caller's script (``__main__``) in it — a
            # ``db.run`` in a script without an ``if __name__ == "__main__":`` guard then ran
            # again inside each worker. The work is in each cell's own child process anyway
            # (and a call of ``call_all`` in a ``call_child`` process), so threads lose nothing.
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=False,
                memory_limit=0,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
            self.cancel = threading.Event()
            _LOCAL_CANCEL[self.cancel_key] = self.cancel

    def run(self, jobs: Sequence[CellJob]) -> Generator[Event, None, None]:
        from distributed import as_completed

        batch = uuid.uuid4().hex[:8]
        numbers = {}
        sent: dict[int, Any] = {}  # the harness shares one object per input among its jobs
        cells: list[Any] = []

        def once(value: Any) -> Any:
            """The input as a Dask future, scattered once: a model folder is not re-sent per cell."""
            if value is None:
                return None
            if id(value) not in sent:
                sent[id(value)] = self.client.scatter(value, hash=False)
                self.futures.append(sent[id(value)])
            return sent[id(value)]

        for k, job in enumerate(jobs):
            future = self.client.submit(
                run_cell_parts,
                dataclasses.replace(job, problem=_SENT_APART, states=_SENT_APART, paths=(), plugin=None),
                once(job.problem),
                once(job.states),
                tuple((param, once(payload)) for param, payload in job.paths),
                once(job.plugin),
                self.cancel_key,
                pure=False,
                key=f"dispatchbench-cell-{batch}-{k}",
            )
            numbers[future.key] = k
            cells.append(future)
        self.futures += cells
        for future in as_completed(cells):
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
        calls: Sequence[tuple[Any, ...]],
        tick: Callable[[], None] | None = None,
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """As :meth:`Executor.call_all`, one Dask task per call (on the cluster's workers); on the
        local cluster, whose workers are threads of this process, each call in a process of its
        own as without Dask (a training must not share this interpreter)."""
        from distributed import wait

        if self.cluster is not None:
            yield from super().call_all(fn, calls, tick)
            return

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
        flag = _LOCAL_CANCEL.pop(self.cancel_key, None)
        if flag is not None:  # in-process workers: their running cells kill their children now
            flag.set()
        try:
            if self.futures:
                self.client.cancel(self.futures)
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


# The job's own input fields when its inputs travel as separate (scattered) Dask arguments.
_SENT_APART = Blob(name="(sent apart)", data=b"", sha256="")


# Cancel flags of the local clusters' executors, by key: their workers are threads of this
# process, and a running cell must stop (its child killed) when the run is closed or interrupted.
_LOCAL_CANCEL: dict[str, threading.Event] = {}


def run_cell_parts(
    job: CellJob,
    problem: Blob,
    states: Blob,
    paths: tuple[tuple[str, PathPayload], ...],
    plugin: Blob | None,
    cancel_key: str = "",
) -> list[tuple[int, Outcome]]:
    """A Dask task: the cell, its inputs passed separately (scattered once, fetched per worker).
    On a worker in the driver's process ``cancel_key`` finds the executor's cancel flag; on a
    remote worker it finds none (the worker's own process ends the cell's child when it stops)."""
    full = dataclasses.replace(job, problem=problem, states=states, paths=paths, plugin=plugin)
    return list(cell_outcomes(full, _LOCAL_CANCEL.get(cancel_key)))


def make_executor(kind: str, jobs: int, scheduler: str | None = None) -> Executor:
    """The executor for ``--executor kind --jobs jobs [--scheduler ADDR]``."""
    single_threaded_children()  # trainings and a LocalCluster's workers inherit it
    if kind == "dask":
        return DaskExecutor(jobs, scheduler)
    if kind != "local":
        raise InputError("--executor", repr(kind), "is not an executor", f"use one of: {', '.join(EXECUTORS)}")
    return SerialExecutor() if jobs == 1 else PoolExecutor(jobs)
