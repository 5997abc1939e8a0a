"""The run harness: every solver spec x seed x state of a run, each cell in its own process.

How a run is cut up, and why:

* A **cell** is one solver spec and one seed over one state file. It runs in a fresh process
  (``forkserver`` or ``spawn``, never a fork of the harness, so no parent state such as torch
  threads or a half-initialised SCIP leaks in; see :func:`process_context`). The child gets the
  spec *string* and the plugin's origin (its file, or entry point), imports that one plugin and
  builds its own solver (re-discovering every plugin would cost each SCIP cell a torch import).
* Inside the cell the child solves **one state at a time** on one solver instance and sends each
  scored row back through a pipe as soon as it is ready. So per-state times are honest (measured
  around each state by the same code for every backend), a hang on state 50 keeps states 0-49,
  and a state's result does not depend on which states were solved before it in the same
  process — which is what makes ``--resume`` reproduce an uninterrupted run. What this gives up
  is small: SCIP over 30 states took 33 ms/state in one ``solve`` call and 36 ms/state in one call
  per state (its persistent model is rebuilt per call; a few ms against the Pyomo solve).
* The **hard limit** is per state: ``--timeout S`` seconds of wall clock from the moment the
  child is ready (or the previous state finished). Solvers are asked to stop by themselves at
  ``0.9·S`` (their ``time_limit``); a child that has not answered after ``S`` is killed with its
  process group. The state in flight is recorded as ``timeout``; the cell's remaining states as
  ``timeout`` "not attempted" (a solver that hung once would cost ``S`` per state otherwise).
  A child that dies (segfault, ``os._exit``, non-zero exit) gives ``error`` rows the same way;
  an exception inside ``solve`` is caught by :func:`scoring.solve_and_score` in the child and
  only costs that state.
* Deterministic solvers (``capabilities.stochastic`` false) run once per state with seed 0;
  stochastic ones once per seed.
* Rows go to ``rows.jsonl`` durably as they arrive; ``results.parquet`` is rebuilt after each
  cell, at the end and on Ctrl-C (see :mod:`results_store`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dispatchbench.model.errors import InputError, SolverNotFound
from dispatchbench.bench.plugins import make_solver, make_solver_from, parse_spec, solver_origin, split_specs
from dispatchbench.model.problem_file import load_problem
from dispatchbench.bench.results_store import ResultsStore, file_sha256
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.bench.solver_api import Capabilities
from dispatchbench.model.state_file import load_states

DEFAULT_TIMEOUT_S = 60.0
COOPERATIVE_SHARE = 0.9  # solvers get time_limit = 0.9 * timeout, so they can stop before the kill
STARTUP_LIMIT_S = 180.0  # importing a backend (torch, pyomo) and loading a model, before any state
EXIT_WAIT_S = 10.0  # a child that answered every state gets this long to shut down before it is killed
SUCCESS = ("optimal", "feasible")
# imported once by the fork server (thread-free modules only: no torch)
PRELOAD = ("dispatchbench.bench.harness", "dispatchbench.formulations.compile_pyomo", "pyomo.contrib.solver.common.factory")


# ---- what to run ------------------------------------------------------------------------------

_SEEDS = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,2,5"`` → ``[0, 2, 5]``; ranges and lists mix (``"0-2,7"``)."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        match = _SEEDS.match(part)
        if not match or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise InputError("--seeds", repr(part), "is not a seed, a range lo-hi or a list",
                             'write e.g. "0-4" or "0,2,5" (non-negative integers)')
        lo = int(match.group(1))
        hi = lo if match.group(2) is None else int(match.group(2))
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class SolverPlan:
    """A solver spec as the run will use it: canonical spec string, name, all parameters, flags."""

    spec: str
    name: str
    params: dict[str, Any]
    capabilities: Capabilities
    origin: str  # plugin file or module:qualname, so the child imports only this plugin


@dataclass(frozen=True)
class InputFile:
    """A problem or state file with the hash that identifies its content in the results."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class StatesPlan:
    file: InputFile
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One solver spec and seed over one state file; ``todo`` are the state indices still to run."""

    solver: SolverPlan
    seed: int
    states: StatesPlan
    todo: tuple[int, ...]


@dataclass
class RunSummary:
    out_dir: Path
    run_id: str
    cells: int = 0
    rows_written: int = 0
    rows_skipped: int = 0  # already in the directory (--resume)
    statuses: Counter = field(default_factory=Counter)
    interrupted: bool = False


def plan_solvers(specs: str | Sequence[str]) -> list[SolverPlan]:
    """Instantiate every spec once in the parent: a typo fails here, before any work, in one line."""
    texts = split_specs(specs) if isinstance(specs, str) else [s for s in specs if s.strip()]
    if not texts:
        raise SolverNotFound("no solver given; write e.g. --solvers \"scip,pso[particles=40]\"")
    plans: dict[str, SolverPlan] = {}
    for text in texts:
        try:
            solver = make_solver(text)
        except SolverNotFound:
            raise
        except Exception as exc:  # a plugin whose constructor fails (e.g. a missing model directory)
            raise SolverNotFound(f"solver spec {text!r} cannot be created: {type(exc).__name__}: {exc}") from None
        spec = spec_label(text, solver.params)
        plans.setdefault(spec, SolverPlan(spec, solver.name, dict(solver.params), solver.capabilities,
                                          solver_origin(solver.name)))
    return list(plans.values())


def spec_label(text: str, params: dict[str, Any]) -> str:
    """The spec as stored and shown: the parameters the user wrote (typed, keys sorted), defaults
    included when written out — ``nlopt[algorithm=LD_SLSQP]`` stays that, so a table says which
    algorithm ran and the same string filters it — and ``pso[b=1, a=2]`` equals ``pso[a=2,b=1]``."""
    name, given = parse_spec(text)
    return name if not given else f"{name}[{','.join(f'{k}={params[k]}' for k in sorted(given))}]"


def plan_cells(solvers: Sequence[SolverPlan], seeds: Sequence[int], states: Sequence[StatesPlan],
               problem: InputFile, done: set) -> tuple[list[Cell], int]:
    """Cells with the states not yet done, and how many (spec, seed, state) were skipped as done."""
    cells, skipped = [], 0
    for sp in states:
        for solver in solvers:
            for seed in (seeds if solver.capabilities.stochastic else [0]):
                todo = tuple(i for i, label in enumerate(sp.labels)
                             if (problem.sha256, sp.file.sha256, label, solver.spec, seed) not in done)
                skipped += len(sp.labels) - len(todo)
                if todo:
                    cells.append(Cell(solver, seed, sp, todo))
    return cells, skipped


# ---- the child process ------------------------------------------------------------------------

@dataclass(frozen=True)
class CellJob:
    """Everything the child needs, as plain picklable values (paths and the spec string)."""

    origin: str
    cwd: str  # relative paths in a spec (e.g. a model directory) mean what they meant to the user
    problem_path: str
    states_path: str
    spec: str
    seed: int
    todo: tuple[int, ...]
    time_limit: float


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent: int) -> None:
    """Exit if the harness dies (e.g. SIGKILL): an orphaned, hung solver must not run forever."""
    def watch() -> None:
        while _alive(parent):
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # a clean exit if the main thread is in Python code
        time.sleep(2)
        os._exit(3)  # stuck in C code: leave without cleaning up
    threading.Thread(target=watch, daemon=True).start()


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the child through normal interpreter shutdown, so the semaphores that libraries
    (pyomo) create at import are released instead of reported as leaked."""
    raise SystemExit(128 + signum)


def cell_worker(conn, job: CellJob, parent: int) -> None:
    """Child process body: build the solver from its spec, then solve and send one state at a time."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # own process group: the parent can kill the solver and any helpers it forked
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _watch_parent(parent)
    os.chdir(job.cwd)
    try:
        problem = load_problem(job.problem_path)
        states = load_states(job.states_path, problem)
        solver = make_solver_from(job.origin, job.spec)
        prepared = time.perf_counter()
        if solver.skip(problem) is None:
            solver.prepare(problem)  # model loading etc.: kept out of every state's time
        prepare_s = time.perf_counter() - prepared
    except Exception as exc:
        conn.send(("fatal", f"could not start solver {job.spec!r}: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    for index in job.todo:
        start = time.perf_counter()
        record = solve_and_score(problem, [states[index]], solver, seed=job.seed, time_limit=job.time_limit)[0]
        wall = time.perf_counter() - start
        conn.send(("record", index, {
            "status": record.status, "cost": record.cost, "max_violation": record.max_violation,
            "time_s": wall, "reason": record.reason,
            "info": {**record.info, "solver_time_s": record.time_s, "prepare_s": prepare_s},
            "dispatch": None if record.dispatch is None else record.dispatch.to_json(problem),
        }))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # work done: let interpreter shutdown run undisturbed
    conn.send(("done",))


# ---- the parent: one cell under a hard limit --------------------------------------------------

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


@lru_cache(maxsize=1)
def process_context() -> mp.context.BaseContext:
    """``forkserver`` with the package and Pyomo preloaded where available, else ``spawn``.

    Both start cells from a clean process (never a fork of the harness with its threads and
    state). The fork server imports the heavy, thread-free modules once, so a cell starts in
    milliseconds instead of the ~2 s a spawned interpreter spends importing pandas and Pyomo.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def run_cell(cell: Cell, problem_path: Path, timeout: float,
             emit: Callable[[int, dict[str, Any]], None]) -> None:
    """Run one cell in a child process; call ``emit(state_index, result)`` for every state of
    ``cell.todo``, whatever happens to the child (results, or timeout/error rows)."""
    ctx = process_context()
    receiver, sender = ctx.Pipe(duplex=False)
    job = CellJob(cell.solver.origin, os.getcwd(), str(problem_path),
                  str(cell.states.file.path), cell.solver.spec, cell.seed, cell.todo, COOPERATIVE_SHARE * timeout)
    proc = ctx.Process(target=cell_worker, args=(sender, job, os.getpid()), daemon=True,
                       name=f"dispatchbench {cell.solver.spec} seed {cell.seed}")
    pending = list(cell.todo)

    def fail_rest(status: str, first_reason: str, first_time: float | None) -> None:
        head = cell.states.labels[pending[0]]
        emit(pending[0], _failure(status, first_reason, first_time))
        for index in pending[1:]:
            emit(index, _failure(status, f"not attempted: the cell stopped at state {head!r} ({first_reason})", None))
        pending.clear()

    proc.start()
    sender.close()
    finished = False
    try:
        started, limit, ready = time.perf_counter(), STARTUP_LIMIT_S, False
        while pending:
            left = started + limit - time.perf_counter()
            if left <= 0 or not receiver.poll(left):
                elapsed = time.perf_counter() - started
                _kill(proc)
                if ready:
                    fail_rest("timeout", f"no answer within the hard limit of {timeout:g} s; process killed", elapsed)
                else:
                    fail_rest("error", f"solver process did not start within {limit:g} s; process killed", None)
                break
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                proc.join(5)
                fail_rest("error", _exit_description(proc.exitcode), time.perf_counter() - started if ready else None)
                break
            if message[0] == "ready":
                ready, started, limit = True, time.perf_counter(), timeout
            elif message[0] == "record":
                _, index, result = message
                emit(index, result)
                pending.remove(index)
                started = time.perf_counter()
            elif message[0] == "fatal":
                fail_rest("error", message[1], None)
        else:
            finished = True
    finally:
        if finished:  # every state answered: give the child time to exit on its own
            proc.join(EXIT_WAIT_S)
        _kill(proc)
        receiver.close()


def _failure(status: str, reason: str, time_s: float | None) -> dict[str, Any]:
    return {"status": status, "cost": None, "max_violation": None, "time_s": time_s, "reason": reason,
            "info": {}, "dispatch": None}


# ---- the whole run ----------------------------------------------------------------------------

def run_benchmark(problem_path: str | Path, states_paths: Sequence[str | Path], solvers: str | Sequence[str],
                  seeds: Sequence[int], out_dir: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S,
                  resume: bool = False, force: bool = False, progress: bool = True) -> RunSummary:
    """Run every cell not yet done into ``out_dir``; see the module docstring for the rules.

    Raises :class:`InputError` / :class:`SolverNotFound` for bad input before any work starts.
    On Ctrl-C the child is killed, the Parquet table rebuilt, and the summary comes back with
    ``interrupted=True`` (everything finished so far is on disk; ``--resume`` continues).
    """
    if timeout <= 0:
        raise InputError("--timeout", str(timeout), "must be positive", "give the hard limit per state in seconds")
    problem_path = Path(problem_path).resolve()
    problem = load_problem(problem_path)
    problem_file = InputFile(problem_path, file_sha256(problem_path))
    if not states_paths:
        raise InputError("--states", "option", "missing", "give at least one state file (CSV)")
    states: dict[str, StatesPlan] = {}  # by content: a file given twice runs once
    for path in states_paths:
        path = Path(path).resolve()
        labels = tuple(s.label for s in load_states(path, problem))
        file = InputFile(path, file_sha256(path))
        states.setdefault(file.sha256, StatesPlan(file, labels))
    plans = plan_solvers(solvers)
    if not seeds:
        raise InputError("--seeds", "value", "no seeds", 'write e.g. "0-4"')

    store = ResultsStore(out_dir)
    if store.has_rows() and not resume:
        if not force:
            raise InputError(store.out_dir, "results", f"holds an earlier run ({len(store.read_rows())} rows)",
                             "add --resume to continue it, --force to overwrite it, or choose another --out")
        store.clear()
    store.out_dir.mkdir(parents=True, exist_ok=True)
    store.repair_tail()
    cells, skipped = plan_cells(plans, seeds, list(states.values()), problem_file, store.done_keys())

    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    summary = RunSummary(store.out_dir, run_id, cells=len(cells), rows_skipped=skipped)
    meta = {"run_id": run_id, "problem": problem.name, "problem_file": str(problem_file.path),
            "problem_sha256": problem_file.sha256, "timeout_s": timeout, **run_metadata()}
    bar = Progress(cells, enabled=progress)
    bar.note(f"{len(cells)} cells to run into {store.out_dir}" + (f" ({skipped} rows already done)" if skipped else ""))
    try:
        for cell in cells:
            bar.start(cell)

            def emit(index: int, result: dict[str, Any], cell: Cell = cell) -> None:
                row = make_row(meta, cell, index, result)
                store.append(row)
                summary.statuses[row["status"]] += 1
                summary.rows_written += 1
                bar.row(row["status"])

            run_cell(cell, problem_path, timeout, emit)
            store.write_parquet()
            bar.finish(cell)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        if store.has_rows():
            store.write_parquet()
    return summary


def make_row(meta: dict[str, Any], cell: Cell, index: int, result: dict[str, Any]) -> dict[str, Any]:
    """One results row: run and machine fields, what was solved, and the child's result."""
    caps = cell.solver.capabilities
    return {
        **meta, "timestamp": utc_timestamp(),
        "states_file": str(cell.states.file.path), "states_sha256": cell.states.file.sha256,
        "states_count": len(cell.states.labels), "state_index": index, "state": cell.states.labels[index],
        "solver": cell.solver.spec, "solver_name": cell.solver.name, "params": cell.solver.params,
        "exact": caps.exact, "stochastic": caps.stochastic, "learns": caps.learns, "seed": cell.seed,
        **result,
    }


class Progress:
    """The progress bar (states done, ETA; cells done and failed states in its postfix) and one
    line per finished cell. The bar redraws in place, so it only shows on a terminal; the lines
    always show (they are what a CI log keeps)."""

    def __init__(self, cells: Sequence[Cell], enabled: bool) -> None:
        self.cells, self.enabled = len(cells), enabled
        self.done = self.failed = 0
        self.counts: Counter = Counter()
        self.current = ""
        self.bar = tqdm(total=sum(len(c.todo) for c in cells), unit="state", desc="run", file=sys.stderr,
                        disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{self.done}/{self.cells} cells done, {self.failed} failed states; "
                                 f"now {self.current}")

    def note(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def start(self, cell: Cell) -> None:
        self.counts = Counter()
        self.current = f"{cell.solver.spec} seed {cell.seed}"
        self._postfix()

    def row(self, status: str) -> None:
        self.counts[status] += 1
        self.failed += status not in SUCCESS
        self.bar.update(1)
        self._postfix()

    def finish(self, cell: Cell) -> None:
        self.done += 1
        self.note(f"[{self.done}/{self.cells}] {self.current} on {cell.states.file.path.name}: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())))

    def close(self) -> None:
        self.bar.close()


__all__ = ["Cell", "RunSummary", "SolverPlan", "parse_seeds", "plan_cells", "plan_solvers", "run_benchmark"]
