"""One cell (a solver spec and seed over some states of one state file) in its own child process,
under a hard limit per state — and the probe that learns a plugin's name, parameters and
capabilities without importing it into the harness.

Why a child process per cell: a plugin is code the harness does not trust to finish (a hang in C
code ignores every signal but SIGKILL), to stay alive (a segfault) or to leave the harness's
memory alone (it could patch the evaluator). So the harness never imports a plugin: the probe and
the cell's child import it, under a time limit, and send back plain JSON — a status claim and the
numbers of a dispatch, never a cost and never a pickle (unpickling runs code chosen by the
sender). The process that writes the rows scores those numbers itself (:mod:`scoring`).

Everything here takes and returns plain values, so the same function runs in the harness, in a
thread of the local pool and inside a Dask task on another machine (:mod:`executors`).
"""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from dispatchbench.contract.limits import STARTUP_LIMIT_S
from dispatchbench.contract.status import Status

COOPERATIVE_SHARE = 0.9  # solvers get time_limit = 0.9 * timeout, so they can stop before the kill
EXIT_WAIT_S = 10.0  # a child that answered every state gets this long to shut down before it is killed
POLL_SLICE_S = 0.25  # how often a waiting cell checks whether it was cancelled (Ctrl-C, --jobs)
# imported once by the fork server (thread-free modules only: no torch)
PRELOAD = (
    "dispatchbench.bench.cell_runner",
    "dispatchbench.bench.scoring",
    "dispatchbench.formulations.compile_pyomo",
    "pyomo.contrib.solver.common.factory",
)


@dataclass(frozen=True)
class CellJob:
    """Everything a cell needs, as plain picklable values (paths and the spec string)."""

    origin: str  # plugin file or module:qualname: the child imports this one plugin only
    cwd: str  # relative paths in a spec (e.g. a model directory) mean what they meant to the user
    problem_path: str
    states_path: str
    spec: str
    seed: int
    todo: tuple[int, ...]
    timeout: float  # hard limit per state, seconds
    startup_timeout: float = STARTUP_LIMIT_S  # plugin import + prepare, before the first state


# An outcome per state, plain values: {"answer": raw_answer dict, "time_s": wall} when the plugin
# answered, {"status": "timeout"|"error", "reason": str, "time_s": float|None} when it did not,
# {"skip": reason} when the plugin declined the problem.
Outcome = dict[str, Any]


# ---- the child ---------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — dead, not yet reaped — counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _watch_parent(parent: int) -> None:
    """Exit if the harness dies (e.g. SIGKILL): an orphaned, hung solver must not run forever.

    Two signs: the harness (or Dask worker) that started the cell is gone, or this process was
    re-parented (the fork server that forked it exits when that harness does)."""
    born_to = os.getppid()

    def watch() -> None:
        while _alive(parent) and os.getppid() == born_to:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # a clean exit if the main thread is in Python code
        time.sleep(2)
        os._exit(3)  # stuck in C code: leave without cleaning up

    threading.Thread(target=watch, daemon=True).start()


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the child through normal interpreter shutdown, so the semaphores that libraries
    (pyomo) create at import are released instead of reported as leaked."""
    raise SystemExit(128 + signum)


def _child_setup(parent: int) -> None:
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # own process group: the parent can kill the solver and any helpers it forked
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _watch_parent(parent)


def _send(conn, message: Any) -> None:
    conn.send_bytes(json.dumps(message, default=str).encode())


def cell_worker(conn, job: CellJob, parent: int) -> None:
    """Child body: import the plugin, build the solver, then solve one state at a time and send
    each answer's raw numbers. The problem and states it loads are its own; the parent never
    reads them back."""
    _child_setup(parent)
    from dispatchbench.bench.plugins import make_solver_from
    from dispatchbench.bench.scoring import crash_answer, raw_answer
    from dispatchbench.model.problem_file import load_problem
    from dispatchbench.model.state_file import load_states

    try:
        os.chdir(job.cwd)  # on a remote worker the folder must exist there too (a shared file system)
        problem = load_problem(job.problem_path)
        states = load_states(job.states_path, problem)
        solver = make_solver_from(job.origin, job.spec)  # the plugin's import happens here
        skip = solver.skip(copy.deepcopy(problem))
        if skip:
            _send(conn, ["skip", str(skip)])
            return
        prepared = time.perf_counter()
        solver.prepare(problem)  # model loading etc.: kept out of every state's time
        prepare_s = time.perf_counter() - prepared
    except Exception as exc:
        _send(conn, ["fatal", f"could not start solver {job.spec!r}: {type(exc).__name__}: {exc}"])
        return
    _send(conn, ["ready"])
    for index in job.todo:
        start = time.perf_counter()
        try:
            answers = solver.solve(
                problem, [copy.deepcopy(states[index])], seed=job.seed, time_limit=COOPERATIVE_SHARE * job.timeout
            )
            if len(answers) != 1:
                raise RuntimeError(f"returned {len(answers)} answers for 1 state")
            raw = raw_answer(answers[0])
        except Exception as exc:  # a crashing backend is a result, not a crash of the run
            raw = raw_answer(crash_answer(exc, time.perf_counter() - start))
        raw["info"] = {**raw["info"], "solver_time_s": raw["time_s"], "prepare_s": prepare_s}
        _send(conn, ["answer", index, raw])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # work done: let interpreter shutdown run undisturbed
    _send(conn, ["done"])


# ---- the parent side: one cell under a hard limit ---------------------------------------------------


def _kill(proc, grace: float = 1.0) -> None:
    """Stop the child and its process group: SIGTERM, then SIGKILL if it is still there after
    ``grace`` seconds (a solver stuck in C code never sees the SIGTERM)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not proc.is_alive():
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError, AttributeError):
            proc.kill() if sig == signal.SIGKILL else proc.terminate()
        proc.join(wait)


def _exit_description(code: int | None) -> str:
    if code is None:
        return "solver process vanished"
    if code < 0:
        try:
            return f"solver process killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"solver process killed by signal {-code}"
    return f"solver process exited with status {code}"


# One BLAS thread per child: cells and trainings already run one per core, and OpenBLAS's own
# threads then fight them for the same cores (measured at 128 regions: PSO's small matrix
# products took 12 ms instead of 0.4 ms, and it managed 10 iterations in 30 s).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_children() -> None:
    """Children started from now on use one BLAS thread (a user's own setting is kept)."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


@lru_cache(maxsize=1)
def process_context() -> mp.context.BaseContext:
    """``forkserver`` with the package and Pyomo preloaded where available, else ``spawn``.

    Both start cells from a clean process (never a fork of the harness with its threads and
    state). The fork server imports the heavy, thread-free modules once, so a cell starts in
    milliseconds instead of the ~2 s a spawned interpreter spends importing pandas and Pyomo.
    """
    single_threaded_children()  # before the fork server starts: its children inherit its environment
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def _check_can_fork() -> str | None:
    """Why this process cannot start the cell's child (a daemonic Dask worker), or None."""
    if mp.current_process().daemon:
        return (
            "this worker process is daemonic and cannot start the per-cell child process; start "
            "Dask workers with the config distributed.worker.daemon=False (see docs/running.md)"
        )
    return None


class _Wait:
    """Reads the child's messages with a deadline, in slices so a cancel is seen promptly."""

    def __init__(self, receiver, cancel: threading.Event | None) -> None:
        self.receiver, self.cancel = receiver, cancel

    def get(self, deadline: float) -> tuple[str, Any]:
        """("message", parsed) | ("timeout", None) | ("eof", None) | ("cancelled", None)."""
        while True:
            if self.cancel is not None and self.cancel.is_set():
                return "cancelled", None
            left = max(0.0, deadline - time.perf_counter())  # 0: still take a message already there
            if self.receiver.poll(min(left, POLL_SLICE_S) if self.cancel is not None else left):
                try:
                    data = self.receiver.recv_bytes(1 << 26)
                except (EOFError, OSError):
                    return "eof", None
                try:
                    return "message", json.loads(data)
                except ValueError:
                    return "garbled", None
            if left <= 0:
                return "timeout", None


def cell_outcomes(job: CellJob, cancel: threading.Event | None = None) -> Iterator[tuple[int, Outcome]]:
    """Run one cell in a child process and yield ``(state_index, outcome)`` for every state of
    ``job.todo``, whatever happens to the child (answers, or timeout/error outcomes). If ``cancel``
    is set, the child is killed and the generator stops without outcomes for the rest."""
    pending = list(job.todo)

    def fail_rest(status: Status, first_reason: str, first_time: float | None) -> Iterator[tuple[int, Outcome]]:
        head = pending[0]
        out = [(head, {"status": status, "reason": first_reason, "time_s": first_time})]
        out += [
            (
                i,
                {
                    "status": status,
                    "reason": f"not attempted: the cell stopped at state #{head} ({first_reason})",
                    "time_s": None,
                },
            )
            for i in pending[1:]
        ]
        pending.clear()
        yield from out

    blocked = _check_can_fork()
    if blocked:
        yield from fail_rest(Status.ERROR, blocked, None)
        return
    ctx = process_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=cell_worker,
        args=(sender, job, os.getpid()),
        daemon=True,
        name=f"dispatchbench {job.spec} seed {job.seed}",
    )
    proc.start()
    sender.close()
    wait = _Wait(receiver, cancel)
    finished = False
    try:
        started, limit, ready = time.perf_counter(), job.startup_timeout, False
        while pending:
            kind, message = wait.get(started + limit)
            elapsed = time.perf_counter() - started
            if kind == "cancelled":
                return
            if kind == "timeout":
                _kill(proc)
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
                _kill(proc, grace=5.0)
                why = _exit_description(proc.exitcode) if kind == "eof" else "solver process sent unreadable data"
                yield from fail_rest(Status.ERROR, why, elapsed if ready else None)
                break
            tag = message[0] if isinstance(message, list) and message else None
            if tag == "ready":
                ready, started, limit = True, time.perf_counter(), job.timeout
            elif tag == "answer" and len(message) == 3 and message[1] in pending:
                pending.remove(message[1])
                yield message[1], {"answer": message[2], "time_s": elapsed}
                started = time.perf_counter()
            elif tag == "skip":
                reason = str(message[1]) if len(message) > 1 else ""
                out = [(i, {"skip": reason}) for i in pending]
                pending.clear()
                yield from out
            elif tag == "fatal":
                yield from fail_rest(
                    Status.ERROR, str(message[1]) if len(message) > 1 else "solver failed to start", None
                )
            else:
                _kill(proc)
                yield from fail_rest(
                    Status.ERROR,
                    f"solver process sent an unexpected message ({str(tag)[:40]})",
                    elapsed if ready else None,
                )
        else:
            finished = True
    finally:
        if finished:  # every state answered: give the child time to exit on its own
            proc.join(EXIT_WAIT_S)
        _kill(proc)
        receiver.close()


def run_cell_collect(job: CellJob) -> list[tuple[int, Outcome]]:
    """The whole cell's outcomes as one list: what a Dask task returns."""
    return list(cell_outcomes(job))


# ---- the probe: what a spec is, learned in a child ---------------------------------------------------


def probe_worker(conn, origin: str, specs: list[str], cwd: str, parent: int) -> None:
    """Child body: import the plugin at ``origin`` and build every spec once; send back each one's
    name, typed parameters, capabilities and label (display name and family), or the error that
    building it raised."""
    _child_setup(parent)
    from dispatchbench.bench.plugins import make_solver_from
    from dispatchbench.contract.solver import label_of

    os.chdir(cwd)
    out = []
    for spec in specs:
        try:
            solver = make_solver_from(origin, spec)
            label = label_of(solver)
            out.append(
                {
                    "spec": spec,
                    "name": solver.name,
                    "params": dict(solver.params),
                    "capabilities": asdict(solver.capabilities),
                    "label": label.name,
                    "family": label.family,
                }
            )
        except Exception as exc:
            out.append(
                {
                    "spec": spec,
                    "error": f"{type(exc).__name__}: {exc}"
                    if not isinstance(exc, LookupError)
                    else str(exc.args[0] if exc.args else exc),
                }
            )
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _send(conn, out)


def probe_specs(groups: dict[str, list[str]], limit: float) -> dict[str, dict[str, Any]]:
    """Probe every origin's specs in parallel child processes, each under ``limit`` seconds.

    Returns spec -> ``{"name", "params", "capabilities", "label", "family"}`` or ``{"error": text}`` (the plugin
    raised) or ``{"timeout": text}`` (its import or constructor did not finish in time)."""
    ctx = process_context()
    running = []
    for origin, specs in groups.items():
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=probe_worker,
            args=(sender, origin, specs, os.getcwd(), os.getpid()),
            daemon=True,
            name=f"dispatchbench probe {origin}",
        )
        proc.start()
        sender.close()
        running.append((origin, specs, proc, receiver))
    deadline = time.perf_counter() + limit
    found: dict[str, dict[str, Any]] = {}
    try:
        for _origin, specs, proc, receiver in running:
            kind, message = _Wait(receiver, None).get(deadline)
            if kind == "message" and isinstance(message, list) and len(message) == len(specs):
                for spec, entry in zip(specs, message):
                    found[spec] = entry if isinstance(entry, dict) else {"error": "unreadable probe answer"}
                continue
            if kind == "timeout":
                why = {"timeout": f"plugin import and set-up did not finish within {limit:g} s; process killed"}
            else:
                _kill(proc, grace=5.0)
                why = {"error": f"plugin process failed while importing ({_exit_description(proc.exitcode)})"}
            for spec in specs:
                found[spec] = why
    finally:
        for _, _, proc, receiver in running:
            proc.join(0.5)
            _kill(proc)
            receiver.close()
    return found
