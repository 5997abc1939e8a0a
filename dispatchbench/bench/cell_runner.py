"""One cell (a solver spec and seed over some states of one state file) in its own child process,
under a hard limit per state — and the probes that learn what a plugin is without importing it
into the harness.

Why a child process per cell: a plugin is code the harness does not trust to finish (a hang in C
code ignores every signal but SIGKILL), to stay alive (a segfault), to keep quiet (a print on
stdout) or to leave the harness's memory alone (it could patch the evaluator). So the harness
never imports a plugin: a child (:mod:`cell_child`, started as ``python -P -m ...`` with
``subprocess``) imports it under a time limit and sends back plain JSON — a status claim and the
numbers of a dispatch, never a cost and never a pickle (unpickling runs code chosen by the
sender). The process that writes the rows scores those numbers itself (:mod:`scoring`).

The cell's inputs travel with it by content (:mod:`job_payload`): the problem, the state file and
any folder a spec names are bytes with their SHA-256, checked and written into a local cache
where the cell runs. So the same function runs in the harness, in a thread of the local pool and
inside a Dask task on a machine that shares no file with the driver (:mod:`executors`); the
child and its kill stay inside that unit of work, and every outcome says on which host and CPU
it was computed.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dispatchbench.bench.job_payload import (
    Blob,
    PathPayload,
    PayloadError,
    materialise_blob,
    materialise_path,
    sha256_bytes,
)
from dispatchbench.bench.run_metadata import worker_metadata
from dispatchbench.contract.limits import STARTUP_LIMIT_S
from dispatchbench.contract.status import Status
from dispatchbench.model.errors import InputError

COOPERATIVE_SHARE = 0.9  # solvers get time_limit = 0.9 * timeout, so they can stop before the kill
EXIT_WAIT_S = 10.0  # a child that answered every state gets this long to shut down before it is killed
POLL_SLICE_S = 0.25  # how often a waiting cell checks whether it was cancelled (Ctrl-C, --jobs)
MAX_MESSAGE_BYTES = 1 << 26  # one answer; a child that sends more is garbling the channel
CHILD_MODULE = "dispatchbench.bench.cell_child"


@dataclass(frozen=True)
class CellJob:
    """Everything a cell needs, as plain picklable values: the plugin's origin, the inputs by
    content, the spec as the user wrote it (the row's spec) and the limits."""

    origin: str  # plugin file or module:qualname: the child imports this one plugin only
    problem: Blob  # the problem file's bytes
    states: Blob  # the state file's bytes
    spec: str
    seed: int
    todo: tuple[int, ...]
    timeout: float | None  # hard limit per state, seconds; None: no limit (``solve`` without one)
    startup_timeout: float = STARTUP_LIMIT_S  # plugin import + prepare, before the first state
    paths: tuple[tuple[str, PathPayload], ...] = ()  # parameters naming a file or folder, by content
    plugin: Blob | None = None  # a plugin file's bytes (origin a file): used where that file is missing


# An outcome per state, plain values: {"answer": raw_answer dict, "time_s": wall} when the plugin
# answered, {"status": "timeout"|"error", "reason": str, "time_s": float|None} when it did not,
# {"skip": reason} when the plugin declined the problem. Each also carries the worker's
# ``worker_host`` and ``worker_cpu`` (run_metadata.WORKER_COLUMNS).
Outcome = dict[str, Any]


# One BLAS thread per child: cells and trainings already run one per core, and OpenBLAS's own
# threads then fight them for the same cores (measured at 128 regions: PSO's small matrix
# products took 12 ms instead of 0.4 ms, and it managed 10 iterations in 30 s).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_children() -> None:
    """Children started from now on use one BLAS thread (a user's own setting is kept)."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


# ---- one child process ---------------------------------------------------------------------------


def child_command() -> list[str]:
    """``python -P -m dispatchbench.bench.cell_child``: ``-P`` keeps the working folder off the
    child's module path (see :mod:`cell_child` for why not ``-I``)."""
    return [sys.executable, "-P", "-m", CHILD_MODULE]


def _exit_description(code: int | None) -> str:
    if code is None:
        return "solver process vanished"
    if code < 0:
        try:
            return f"solver process killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"solver process killed by signal {-code}"
    return f"solver process exited with status {code}"


class ChildProcess:
    """A :mod:`cell_child` process: its request goes in on stdin, its messages come back as JSON
    lines, read with a deadline. It runs in a session (process group) of its own, so that the
    kill reaches any helper process the plugin started, and Ctrl-C in a terminal reaches only
    the parent, which then kills it."""

    def __init__(self, request: dict[str, Any]) -> None:
        single_threaded_children()
        self.proc = subprocess.Popen(
            child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None  # both are PIPEs
        self.fd = self.proc.stdout.fileno()
        self.buffer = bytearray()
        self.eof = False
        try:
            self.proc.stdin.write(json.dumps({**request, "parent": os.getpid()}).encode())
            self.proc.stdin.close()
        except OSError:  # the child died before reading: its exit shows up as end of file
            pass

    def get(self, deadline: float, cancel: threading.Event | None = None) -> tuple[str, Any]:
        """("message", parsed) | ("timeout", None) | ("eof", None) | ("garbled", None) | ("cancelled", None).

        ``deadline`` is a ``time.perf_counter()`` value (``math.inf``: none); with ``cancel``
        the wait is cut into slices so that a cancel is seen promptly."""
        while True:
            line_end = self.buffer.find(b"\n")
            if line_end >= 0:
                line = bytes(self.buffer[:line_end])
                del self.buffer[: line_end + 1]
                try:
                    return "message", json.loads(line)
                except ValueError:
                    return "garbled", None
            if len(self.buffer) > MAX_MESSAGE_BYTES:
                return "garbled", None
            if self.eof:
                return "eof", None
            if cancel is not None and cancel.is_set():
                return "cancelled", None
            left = max(0.0, deadline - time.perf_counter())  # 0: still take what is already there
            wait = min(left, POLL_SLICE_S) if cancel is not None else left
            readable, _, _ = select.select([self.fd], [], [], None if math.isinf(wait) else wait)
            if readable:
                chunk = os.read(self.fd, 1 << 20)
                if chunk:
                    self.buffer += chunk
                else:
                    self.eof = True
            elif left <= 0:
                return "timeout", None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self, grace: float = 1.0) -> None:
        """Stop the child and its process group: SIGTERM, then SIGKILL if it is still there after
        ``grace`` seconds (a solver stuck in C code never sees the SIGTERM)."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not self.alive():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                self.proc.send_signal(sig)
            self.wait(wait)
        try:  # helpers the plugin left behind in its group go too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def exit_description(self) -> str:
        return _exit_description(self.proc.poll())

    def close(self) -> None:
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---- the parent side: one cell under a hard limit ---------------------------------------------------


@lru_cache(maxsize=8)
def _load_inputs(problem_path: str, states_path: str) -> tuple[Any, tuple[Any, ...]]:
    """The states of a materialised state file (its name is its content's hash: safe to cache)."""
    from dispatchbench.model.problem_file import load_problem
    from dispatchbench.model.state_file import load_states

    problem = load_problem(problem_path)
    return problem, tuple(load_states(states_path, problem))


def plugin_origin(job: CellJob) -> str:
    """Where this machine finds the cell's plugin: its module or entry point as installed here;
    a plugin file where the driver had it, if it is there with the same bytes, else the copy
    that travelled with the job."""
    if job.plugin is None:
        return job.origin
    try:
        with open(job.origin, "rb") as fh:
            if sha256_bytes(fh.read()) == job.plugin.sha256:
                return job.origin
    except OSError:
        pass
    return str(materialise_blob(job.plugin))


def cell_request(job: CellJob) -> dict[str, Any]:
    """The child's request: the inputs checked against their hashes and written into this
    machine's cache, the states to solve as exact numbers, path parameters pointing at the
    local copies. Raises :class:`PayloadError` (or ``OSError``) when that fails."""
    problem_path = str(materialise_blob(job.problem))
    states_path = str(materialise_blob(job.states))
    _, states = _load_inputs(problem_path, states_path)
    return {
        "kind": "cell",
        "origin": plugin_origin(job),
        "spec": job.spec,
        "overrides": {param: str(materialise_path(payload)) for param, payload in job.paths},
        "problem": problem_path,
        "states": {
            str(i): {"label": states[i].label, "demand": states[i].demand, "v2g": states[i].v2g_available}
            for i in job.todo
        },
        "todo": list(job.todo),
        "seed": job.seed,
        "time_limit": None if job.timeout is None else COOPERATIVE_SHARE * job.timeout,
    }


def cell_outcomes(
    job: CellJob,
    cancel: threading.Event | None = None,
    built: Callable[[dict[str, Any]], None] | None = None,
) -> Generator[tuple[int, Outcome], None, None]:
    """Run one cell in a child process and yield ``(state_index, outcome)`` for every state of
    ``job.todo``, whatever happens to the child (answers, or timeout/error outcomes). If ``cancel``
    is set, the child is killed and the generator stops without outcomes for the rest.
    ``built`` is called with the solver's description (name, spec label, parameters,
    capabilities) once the child has built it."""
    pending = list(job.todo)
    where = worker_metadata()

    def fail_rest(status: Status, first_reason: str, first_time: float | None) -> Iterator[tuple[int, Outcome]]:
        head = pending[0]
        out = [(head, {"status": status, "reason": first_reason, "time_s": first_time, **where})]
        out += [
            (
                i,
                {
                    "status": status,
                    "reason": f"not attempted: the cell stopped at state #{head} ({first_reason})",
                    "time_s": None,
                    **where,
                },
            )
            for i in pending[1:]
        ]
        pending.clear()
        yield from out

    try:
        request = cell_request(job)
    except (PayloadError, InputError, OSError) as exc:
        yield from fail_rest(
            Status.ERROR, f"the cell's inputs could not be prepared on {where['worker_host']}: {exc}", None
        )
        return
    child = ChildProcess(request)
    finished = False
    try:
        started, limit, ready = time.perf_counter(), job.startup_timeout, False
        while pending:
            kind, message = child.get(started + limit, cancel)
            elapsed = time.perf_counter() - started
            if kind == "cancelled":
                return
            if kind == "timeout":
                child.kill()
                if ready:
                    yield from fail_rest(
                        Status.TIMEOUT, f"no answer within the hard limit of {job.timeout:g} s; process killed", elapsed
                    )
                else:
                    yield from fail_rest(
                        Status.ERROR,
                        f"solver process did not start (plugin import and set-up) within {limit:g} s; process killed",
                        None,
                    )
                break
            if kind in ("eof", "garbled"):
                child.kill(grace=5.0)
                why = child.exit_description() if kind == "eof" else "solver process sent unreadable data"
                yield from fail_rest(Status.ERROR, why, elapsed if ready else None)
                break
            tag = message[0] if isinstance(message, list) and message else None
            if tag == "built" and len(message) == 2 and isinstance(message[1], dict):
                if built is not None:
                    built(message[1])
            elif tag == "ready":
                ready, started = True, time.perf_counter()
                limit = math.inf if job.timeout is None else job.timeout
            elif tag == "answer" and len(message) == 3 and message[1] in pending:
                pending.remove(message[1])
                yield message[1], {"answer": message[2], "time_s": elapsed, **where}
                started = time.perf_counter()
            elif tag == "skip":
                reason = str(message[1]) if len(message) > 1 else ""
                out = [(i, {"skip": reason, **where}) for i in pending]
                pending.clear()
                yield from out
            elif tag == "fatal":
                yield from fail_rest(
                    Status.ERROR, str(message[1]) if len(message) > 1 else "solver failed to start", None
                )
            else:
                child.kill()
                yield from fail_rest(
                    Status.ERROR,
                    f"solver process sent an unexpected message ({str(tag)[:40]})",
                    elapsed if ready else None,
                )
        else:
            finished = True
    finally:
        if finished:  # every state answered: give the child time to exit on its own
            child.wait(EXIT_WAIT_S)
        child.close()


def run_cell_collect(job: CellJob) -> list[tuple[int, Outcome]]:
    """The whole cell's outcomes as one list: what a Dask task returns."""
    return list(cell_outcomes(job))


# ---- probes: what a spec or a plugin is, learned in a child -----------------------------------------


def _ask_each(requests: Sequence[dict[str, Any]], limit: float) -> list[tuple[str, Any, str]]:
    """Send each request to a child of its own and wait at most ``limit`` seconds, counted from
    that child's start, for its single message: ``(kind, message, exit description)`` per
    request. As many children run at once as there are cores (importing a plugin is CPU work:
    more at once would only make each slower, and a slow import look like a hung one)."""
    parallel = max(2, os.cpu_count() or 2)
    started: list[tuple[ChildProcess, float]] = []
    out: list[tuple[str, Any, str]] = []
    try:
        for k in range(len(requests)):
            while len(started) < min(len(requests), k + parallel):
                started.append((ChildProcess(requests[len(started)]), time.perf_counter() + limit))
            child, deadline = started[k]
            kind, message = child.get(deadline)
            if kind in ("eof", "garbled"):
                child.kill(grace=5.0)
            out.append((kind, message, child.exit_description()))
            child.wait(0.5)
            child.close()
    finally:
        for child, _ in started:
            child.close()
    return out


def probe_specs(groups: dict[str, list[str]], limit: float) -> dict[str, dict[str, Any]]:
    """Probe every origin's specs in parallel child processes, each under ``limit`` seconds.

    Returns spec -> ``{"name", "label", "family", "params", "capabilities", "path_parameters"}`` or
    ``{"error": text}`` (the plugin raised) or ``{"timeout": text}`` (its import or constructor
    did not finish in time)."""
    origins = list(groups)
    answers = _ask_each([{"kind": "probe", "origin": o, "specs": groups[o]} for o in origins], limit)
    found: dict[str, dict[str, Any]] = {}
    for origin, (kind, message, exit_text) in zip(origins, answers):
        specs = groups[origin]
        if kind == "message" and isinstance(message, list) and len(message) == len(specs):
            for spec, entry in zip(specs, message):
                found[spec] = entry if isinstance(entry, dict) else {"error": "unreadable probe answer"}
            continue
        if kind == "timeout":
            why = {"timeout": f"plugin import and set-up did not finish within {limit:g} s; process killed"}
        else:
            why = {"error": f"plugin process failed while importing ({exit_text})"}
        for spec in specs:
            found[spec] = why
    return found


def describe_origins(origins: Sequence[str], limit: float) -> dict[str, tuple[list[dict[str, Any]] | None, str]]:
    """Import each plugin file or entry point in a child of its own (in parallel, each under
    ``limit`` seconds): origin -> ``(class descriptions, "")`` or ``(None, why it failed)``."""
    answers = _ask_each([{"kind": "describe", "origin": o} for o in origins], limit)
    out: dict[str, tuple[list[dict[str, Any]] | None, str]] = {}
    for origin, (kind, message, exit_text) in zip(origins, answers):
        if kind == "message" and isinstance(message, list) and len(message) == 2:
            if message[0] == "classes" and isinstance(message[1], list):
                out[origin] = (message[1], "")
                continue
            if message[0] == "error":
                out[origin] = (None, str(message[1]))
                continue
        if kind == "timeout":
            out[origin] = (None, f"its import did not finish within {limit:g} s; process killed")
        elif kind == "eof":
            out[origin] = (None, f"its import ended the process ({exit_text.replace('solver process ', '')})")
        else:
            out[origin] = (None, "its process sent unreadable data")
    return out
