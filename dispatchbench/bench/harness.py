"""The run harness: every solver spec x seed x state of a run, each cell in its own process.

How a run is cut up, and why:

* A **cell** is one solver spec and one seed over one state file. It runs in a fresh child
  process (:mod:`cell_runner`), which imports that one plugin — the harness never imports a
  plugin itself, so a plugin whose import hangs or crashes costs its own rows, not the run, and
  no plugin code ever runs in the process that scores and writes. Before any cell, a *probe*
  child per plugin learns each spec's parameters and capabilities (a typo in a spec still fails
  here, before any work, in one line).
* Inside the cell the child solves **one state at a time** on one solver instance and sends each
  answer's raw numbers back as soon as it is ready. So per-state times are honest, a hang on
  state 50 keeps states 0-49, and a state's result does not depend on which states were solved
  before it in the same process — which is what makes ``--resume`` reproduce an uninterrupted
  run.
* **Scoring is the harness's.** The process that writes the rows loads the problem and states
  from the files itself and scores every answer with the evaluator (:mod:`scoring`); the
  child's copy is the child's. The exact pre-check runs here too: a state infeasible by the
  pre-check never reaches a plugin.
* The **hard limit** is per state: ``--timeout S`` seconds of wall clock from the moment the
  child is ready (or the previous state finished). Solvers are asked to stop by themselves at
  ``0.9·S``; a child that has not answered after ``S`` is killed with its process group. The
  state in flight is recorded as ``timeout``; the cell's remaining states as ``timeout`` "not
  attempted". A child that dies gives ``error`` rows the same way; an exception inside
  ``solve`` only costs that state. Importing the plugin and its set-up have their own limit
  (``startup_timeout``, 180 s by default).
* Deterministic solvers (``capabilities.stochastic`` false) run once per state with seed 0;
  stochastic ones once per seed.
* **Where cells run** is the executor's business (:mod:`executors`): one after the other here,
  ``--jobs N`` at once on this machine, or on a Dask cluster. Whatever runs them, this process
  is the only writer: rows go to ``rows.jsonl`` durably as they arrive, one Parquet part per
  finished cell, and ``results.parquet`` once at the end (see :mod:`results_store`). A lock on
  the output folder keeps a second run out.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dispatchbench.bench.cell_runner import CellJob, Outcome, probe_specs
from dispatchbench.bench.executors import EXECUTORS, check_scheduler, make_executor
from dispatchbench.bench.job_payload import Blob, PathPayload
from dispatchbench.bench.plugins import (
    PluginProvenance,
    no_solver_named,
    parse_spec,
    plugin_origins,
    plugin_provenance,
    split_specs,
)
from dispatchbench.bench.results_store import PlannedCell, ResultsStore, RowKey, row_key
from dispatchbench.bench.run_metadata import WORKER_COLUMNS, run_metadata, utc_timestamp
from dispatchbench.bench.scoring import answer_from_raw, precheck, score_answer
from dispatchbench.contract.limits import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, SEED_MAX, STARTUP_LIMIT_S
from dispatchbench.contract.solver import Capabilities
from dispatchbench.contract.status import SUCCESS, Status
from dispatchbench.instances.provenance import Provenance, read_sidecar
from dispatchbench.model.errors import InputError, SolverNotFound
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

MAX_SEEDS = 10_000  # "0-99999999" would plan a hundred million cells before saying anything


# ---- what to run ------------------------------------------------------------------------------

_SEEDS = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,2,5"`` → ``[0, 2, 5]``; ranges and lists mix (``"0-2,7"``).

    Seeds are 0..2**32-1 (what numpy's generators accept) and at most 10,000 of them.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        match = _SEEDS.match(part)
        if not match or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise InputError(
                "--seeds",
                repr(part),
                "is not a seed, a range lo-hi or a list",
                'write e.g. "0-4" or "0,2,5" (non-negative integers)',
            )
        lo = int(match.group(1))
        hi = lo if match.group(2) is None else int(match.group(2))
        if hi > SEED_MAX:
            raise InputError(
                "--seeds",
                repr(part),
                f"is above the largest seed {SEED_MAX} (2**32-1)",
                "give seeds between 0 and 4294967295",
            )
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise InputError("--seeds", repr(part), f"gives more than {MAX_SEEDS} seeds", "run fewer seeds at once")
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))


def check_timeout(value: float, option: str = "--timeout") -> float:
    """A per-state limit must be a finite positive number of seconds, at most a week (a number:
    not ``True``, not the text ``"60"``, which Python callers could otherwise slip through)."""
    try:
        seconds = math.nan if isinstance(value, (bool, str, bytes)) else float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise InputError(
            option,
            repr(value),
            f"is not a number of seconds in (0, {MAX_TIMEOUT_S:g}]",
            f"give the hard limit per state in seconds, e.g. {option} 60",
        )
    return seconds


def check_seeds(seeds: Sequence[int], option: str = "--seeds") -> list[int]:
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= int(s) <= SEED_MAX:
            raise InputError(option, repr(s), f"is not a seed in 0..{SEED_MAX}", 'write e.g. "0-4"')
        out.append(int(s))
    if not out:
        raise InputError(option, "value", "no seeds", 'write e.g. "0-4"')
    return out


@dataclass(frozen=True)
class SolverPlan:
    """A solver spec as the run will use it: canonical spec string, name, all parameters, flags,
    and the plugin's label for it (display name and family, stored on every row)."""

    spec: str
    name: str
    params: dict[str, Any]
    capabilities: Capabilities
    origin: str  # plugin file or module:qualname, so the child imports only this plugin
    failure: str | None = None  # the probe could not finish: every row of this spec is an error
    seeds: tuple[int, ...] | None = None  # the run's seeds unless set (reproduce: one seed per model)
    label: str | None = None  # Solver.label(params).name; None when the probe could not finish
    family: str | None = None  # Solver.label(params).family
    path_parameters: tuple[str, ...] = ()  # parameters naming a file or folder (sent by content)
    provenance: PluginProvenance | None = None  # which plugin code answers (stored on every row)


@dataclass(frozen=True)
class InputFile:
    """A problem or state file with the hash that identifies its content in the results."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class StatesPlan:
    file: InputFile
    labels: tuple[str, ...]
    provenance: Provenance = Provenance()  # split and replicate its states come from (every row says)


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
    statuses: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    refused: list[tuple[str, str]] = field(default_factory=list)  # (spec, why) left out by skip_bad_specs
    notes: list[str] = field(default_factory=list)  # what --resume did beyond skipping (also on stderr)
    rows_recomputed: int = 0  # stored rows superseded because their plugin changed (--resume)
    by_solver: dict[str, Counter[str]] = field(default_factory=dict)  # spec -> statuses of the rows written
    tracebacks: list[tuple[str, str, str]] = field(default_factory=list)  # (spec, state, a plugin's traceback)

    first_error: dict[str, str] = field(default_factory=dict)  # spec -> reason of its first error row

    def all_error(self) -> list[tuple[str, str]]:
        """(spec, first reason) of the specs every row of which, in this run, is ``error``."""
        return [
            (spec, self.first_error.get(spec, ""))
            for spec, counts in self.by_solver.items()
            if counts and set(counts) == {Status.ERROR.value}
        ]


def plan_solvers(
    specs: str | Sequence[str],
    *,
    startup_timeout: float = STARTUP_LIMIT_S,
    seeds_for: Mapping[str, Sequence[int]] | None = None,
    refused: list[tuple[str, str]] | None = None,
) -> list[SolverPlan]:
    """Probe every spec in child processes: a typo or a bad parameter fails here, before any work,
    in one line; a plugin whose import does not finish within ``startup_timeout`` gets a plan
    marked failed (its rows become errors) and the run goes on. With a ``refused`` list, a spec
    that cannot be created is appended to it (spec, reason) instead of stopping everything."""
    texts = split_specs(specs) if isinstance(specs, str) else [s.strip() for s in specs if s.strip()]
    if not texts:
        raise SolverNotFound('no solver given — fix: write e.g. --solvers "scip,pso[particles=40]"')
    origins = plugin_origins()
    provenance = {origin: plugin_provenance(origin) for origin in set(origins.values())}

    def refuse(text: str, why: str) -> None:
        if refused is None:
            raise SolverNotFound(why)
        refused.append((text, why))

    by_origin: dict[str, list[str]] = defaultdict(list)
    for text in list(texts):
        name, _ = parse_spec(text)
        if name not in origins:
            refuse(text, str(no_solver_named(name, origins)))
            texts.remove(text)
        elif text not in by_origin[origins[name]]:
            by_origin[origins[name]].append(text)
    probed = probe_specs(dict(by_origin), startup_timeout) if by_origin else {}
    plans: dict[str, SolverPlan] = {}
    for text in texts:
        name, _ = parse_spec(text)
        entry = probed[text]
        own_seeds = tuple(check_seeds(seeds_for[text])) if seeds_for and text in seeds_for else None
        if "error" in entry:
            refuse(text, f"solver spec {text!r} cannot be created: {entry['error']}")
            continue
        if "timeout" in entry:
            plans.setdefault(
                text,
                SolverPlan(
                    text,
                    name,
                    {},
                    Capabilities(),
                    origins[name],
                    entry["timeout"],
                    own_seeds,
                    provenance=provenance[origins[name]],
                ),
            )
            continue
        params = dict(entry["params"])
        spec = spec_label(text, params)
        plans.setdefault(
            spec,
            SolverPlan(
                spec,
                entry["name"],
                params,
                Capabilities(**entry["capabilities"]),
                origins[name],
                None,
                own_seeds,
                label=str(entry["label"]),
                family=str(entry["family"]),
                path_parameters=tuple(entry.get("path_parameters") or ()),
                provenance=provenance[origins[name]],
            ),
        )
    return list(plans.values())


def path_payloads(plan: SolverPlan) -> tuple[tuple[str, PathPayload], ...]:
    """The files and folders ``plan``'s path parameters name (a model folder), read here by
    content so that they travel with every cell; an empty value names nothing. Relative paths
    mean what they mean here, in the folder the run was started from. Raises InputError."""
    out = []
    for param in plan.path_parameters:
        value = plan.params.get(param)
        if isinstance(value, str | os.PathLike) and str(value) and Path(value).exists():
            out.append((param, PathPayload.of_path(Path(value).absolute(), f"{plan.spec}: parameter {param}")))
    return tuple(out)


def spec_label(text: str, params: dict[str, Any]) -> str:
    """The spec as stored and shown: the parameters the user wrote (typed, keys sorted), defaults
    included when written out — ``nlopt[algorithm=LD_SLSQP]`` stays that, so a table says which
    algorithm ran and the same string filters it — and ``pso[b=1, a=2]`` equals ``pso[a=2,b=1]``."""
    name, given = parse_spec(text)
    return name if not given else f"{name}[{','.join(f'{k}={params[k]}' for k in sorted(given))}]"


def plan_cells(
    solvers: Sequence[SolverPlan],
    seeds: Sequence[int],
    states: Sequence[StatesPlan],
    problem: InputFile,
    done: set[RowKey],
) -> tuple[list[Cell], int]:
    """Cells with the states not yet done, and how many (spec, seed, state) were skipped as done."""
    cells, skipped = [], 0
    for sp in states:
        for solver in solvers:
            run_seeds = solver.seeds if solver.seeds is not None else seeds
            for seed in run_seeds if solver.capabilities.stochastic else [0]:
                todo = tuple(
                    i
                    for i, label in enumerate(sp.labels)
                    if (problem.sha256, sp.file.sha256, label, solver.spec, seed) not in done
                )
                skipped += len(sp.labels) - len(todo)
                if todo:
                    cells.append(Cell(solver, seed, sp, todo))
    return cells, skipped


def changed_plugins(
    store: ResultsStore,
    solvers: Sequence[SolverPlan],
    seeds: Sequence[int],
    states: Sequence[StatesPlan],
    problem: InputFile,
) -> tuple[list[str], set[RowKey]]:
    """The stored rows this run would skip as done but whose plugin changed since they were
    written (another file hash, package or version), and one line per plugin saying so.

    A row's git revision names the toolkit, not the plugin, so without this a plugin edited
    between ``run`` and ``run --resume`` would keep its old rows beside new ones. Rows written
    before provenance was recorded cannot be compared: they are kept, and a line says so."""
    if not store.has_rows():
        return [], set()
    wanted = {
        (problem.sha256, sp.file.sha256, label, solver.spec, seed): solver
        for sp in states
        for solver in solvers
        for seed in ((solver.seeds if solver.seeds is not None else seeds) if solver.capabilities.stochastic else [0])
        for label in sp.labels
    }
    stale: dict[str, set[RowKey]] = defaultdict(set)
    was: dict[str, dict[str, None]] = defaultdict(dict)
    cells: dict[str, set[tuple[str, int, str]]] = defaultdict(set)
    unknown: Counter[str] = Counter()
    for row in store.read_checked().rows:
        key = row_key(row)
        plan = wanted.get(key)
        if plan is None or plan.provenance is None:
            continue
        stored = PluginProvenance.from_row(row)
        if stored is None:
            unknown[plan.name] += 1
        elif stored.identity != plan.provenance.identity:
            stale[plan.name].add(key)
            was[plan.name][stored.describe()] = None
            cells[plan.name].add((row["solver"], key[4], key[1]))
    current = {plan.name: plan.provenance for plan in solvers if plan.provenance is not None}
    notes = [
        f"plugin {name} changed since these rows ({' / '.join(was[name])} → {current[name].describe()}): "
        f"recomputing its {len(cells[name])} cell{'s' * (len(cells[name]) != 1)} ({len(stale[name])} rows)"
        for name in sorted(stale)
    ]
    notes += [
        f"plugin {name}: {n} rows were written before plugin provenance was recorded and are kept as they are "
        "(--force recomputes everything)"
        for name, n in sorted(unknown.items())
    ]
    return notes, set().union(*stale.values()) if stale else set()


def planned_cell(cell: Cell) -> PlannedCell:
    """A cell as the manifest records it: the rows it may write and the flags they carry."""
    caps = cell.solver.capabilities
    return PlannedCell(
        cell.solver.spec, cell.seed, cell.states.file.sha256, cell.todo, caps.exact, caps.stochastic, caps.learns
    )


# ---- from an outcome to a row ------------------------------------------------------------------


def _failure(status: Status, reason: str, time_s: float | None) -> dict[str, Any]:
    return {
        "status": status,
        "cost": None,
        "max_violation": None,
        "time_s": time_s,
        "reason": reason,
        "info": {},
        "dispatch": None,
    }


def score_outcome(problem: Problem, state: State, plan: SolverPlan, outcome: Outcome) -> dict[str, Any]:
    """A row's result fields from a cell's outcome, scored here by the evaluator on the harness's
    own problem and state (see :mod:`scoring`)."""
    if "skip" in outcome:
        return _failure(Status.ERROR, f"skipped: {outcome['skip']}", 0.0)
    if "answer" not in outcome:
        return _failure(
            Status(outcome.get("status", Status.ERROR)), str(outcome.get("reason", "")), outcome.get("time_s")
        )
    wall = outcome.get("time_s")
    try:
        answer = answer_from_raw(problem, outcome["answer"])
    except ValueError as exc:
        return _failure(Status.ERROR, f"unusable answer: {exc}", wall)
    answer.time_s = float(wall) if isinstance(wall, (int, float)) else answer.time_s
    record = score_answer(problem, state, answer, plan.spec, plan.capabilities.exact)
    return {
        "status": record.status,
        "cost": record.cost,
        "max_violation": record.max_violation,
        "time_s": record.time_s,
        "reason": record.reason,
        "info": record.info,
        "dispatch": None if record.dispatch is None else record.dispatch.to_json(problem),
    }


def make_row(
    meta: dict[str, Any], cell: Cell, index: int, result: dict[str, Any], outcome: Outcome | None = None
) -> dict[str, Any]:
    """One results row: run and machine fields, where the cell ran (the ``outcome``'s worker;
    null when no plugin ran for the row), what was solved, and the scored result."""
    caps = cell.solver.capabilities
    return {
        **meta,
        **{column: (outcome or {}).get(column) for column in WORKER_COLUMNS},
        "timestamp": utc_timestamp(),
        "states_file": str(cell.states.file.path),
        "states_sha256": cell.states.file.sha256,
        "states_count": len(cell.states.labels),
        "state_index": index,
        "state": cell.states.labels[index],
        "split": cell.states.provenance.split,
        "replicate": cell.states.provenance.replicate,
        "solver": cell.solver.spec,
        "solver_name": cell.solver.name,
        "label": cell.solver.label,
        "family": cell.solver.family,
        "params": cell.solver.params,
        "exact": caps.exact,
        "stochastic": caps.stochastic,
        "learns": caps.learns,
        "seed": cell.seed,
        **(cell.solver.provenance.columns() if cell.solver.provenance else {}),
        **result,
    }


# ---- the whole run ----------------------------------------------------------------------------


def check_out_dir(out_dir: str | Path) -> Path:
    """``--out`` must be a folder or not exist yet (its parent a folder we can create it in)."""
    out = Path(out_dir)
    if out.is_symlink():  # the rows would land wherever the link points
        raise InputError(
            out, "--out", "is a symbolic link", "give a real folder for the results (links are not followed)"
        )
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out", "is an existing file, not a folder", "give a folder for the results")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(out, "--out", f"{parent} is a file, not a folder", "give a folder for the results")
            break
    return out


# one provenance for every states file, or one per path (as given or resolved); Mapping is
# invariant in its key type, so both key types are spelled out
ProvenanceArg = Mapping[str, Provenance] | Mapping[Path, Provenance] | Provenance | None


def _given_provenance(given: ProvenanceArg, path: str | Path) -> Provenance | None:
    """The caller's provenance for ``path``: one for every file, or looked up by the path as given
    or resolved."""
    if given is None or isinstance(given, Provenance):
        return given
    resolved = Path(path).resolve()
    for key, value in given.items():
        if str(key) == str(path) or Path(key).resolve() == resolved:
            return value
    return None


def run_benchmark(
    problem_path: str | Path,
    states_paths: Sequence[str | Path],
    solvers: str | Sequence[str],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    startup_timeout: float = STARTUP_LIMIT_S,
    seeds_for: Mapping[str, Sequence[int]] | None = None,
    skip_bad_specs: bool = False,
    provenance: ProvenanceArg = None,
) -> RunSummary:
    """Run every cell not yet done into ``out_dir``; see the module docstring for the rules.

    ``jobs`` cells run at once (``executor="local"``: child processes of this one; ``"dask"``: a
    ``LocalCluster`` of ``jobs`` workers, or the cluster at ``scheduler``). ``seeds_for`` gives
    some specs (by the text passed in ``solvers``) their own seeds. With ``skip_bad_specs`` a spec
    that cannot be created is left out and listed in ``summary.refused`` instead of stopping the run.
    ``provenance`` says where the states come from (split, replicate), for every states file or
    per path; a file it does not cover is described by its ``.provenance.json`` sidecar, if any
    (:mod:`dispatchbench.instances.provenance`), and every row records it.

    Raises :class:`InputError` / :class:`SolverNotFound` for bad input before any work starts
    (including another run holding ``out_dir``). On Ctrl-C running cells are stopped, the Parquet
    table is written, and the summary comes back with ``interrupted=True`` (everything finished
    so far is on disk; ``--resume`` continues).
    """
    if resume and force:
        raise InputError(
            "--resume", "--force", "both given", "give --resume to continue the folder or --force to start over"
        )
    timeout = check_timeout(timeout)
    startup_timeout = check_timeout(startup_timeout, "--startup-timeout")
    seeds = check_seeds(seeds)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 1024:
        raise InputError("--jobs", repr(jobs), "is not a number of parallel cells in 1..1024", "give e.g. --jobs 2")
    if executor not in EXECUTORS:
        raise InputError("--executor", repr(executor), "is not an executor", f"use one of: {', '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise InputError("--scheduler", repr(scheduler), "needs the Dask executor", "add --executor dask")
    if scheduler is not None:  # an empty address is an error, not "start a local cluster"
        scheduler = check_scheduler(scheduler)  # a malformed or unreachable address fails here, in seconds
    out_dir = check_out_dir(out_dir)
    problem_path = Path(problem_path).resolve()
    problem = load_problem(problem_path)
    blobs: dict[str, Blob] = {}  # every input's bytes by hash: what the cells carry to their workers
    problem_blob = Blob.of_file(problem_path)
    blobs[problem_blob.sha256] = problem_blob
    problem_file = InputFile(problem_path, problem_blob.sha256)
    if not states_paths:
        raise InputError("--states", "option", "missing", "give at least one state file (CSV)")
    states: dict[str, StatesPlan] = {}  # by content: a file given twice runs once
    loaded: dict[str, list[State]] = {}  # the harness's own copy, which every answer is scored against
    for path in states_paths:
        given = _given_provenance(provenance, path)
        path = Path(path).resolve()
        sts = load_states(path, problem)
        origin = given or read_sidecar(path) or Provenance()
        blob = Blob.of_file(path)
        file = InputFile(path, blob.sha256)
        blobs.setdefault(blob.sha256, blob)
        states.setdefault(file.sha256, StatesPlan(file, tuple(s.label for s in sts), origin))
        loaded.setdefault(file.sha256, sts)
    refused: list[tuple[str, str]] | None = [] if skip_bad_specs else None
    plans = plan_solvers(solvers, startup_timeout=startup_timeout, seeds_for=seeds_for, refused=refused)
    paths = {plan.spec: path_payloads(plan) for plan in plans}  # a model folder is read once, here

    store = ResultsStore(out_dir)
    with store.locked():
        if store.has_rows() and not resume:
            if not force:
                raise InputError(
                    store.out_dir,
                    "results",
                    f"holds an earlier run ({store.row_count()} rows)",
                    "add --resume to continue it, --force to overwrite it, or choose another --out",
                )
            store.clear()
        store.repair_tail()
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        store.repair_parts(run_id)
        notes, stale = changed_plugins(store, plans, seeds, [*states.values()], problem_file) if resume else ([], set())
        for note in notes:
            print(note, file=sys.stderr)
        recomputed = store.supersede(stale)
        cells, skipped = plan_cells(plans, seeds, list(states.values()), problem_file, store.done_keys())
        if cells:  # the plan goes on disk before any row: a row it does not list was not written here
            labels = {sha: plan.labels for sha, plan in states.items()}
            store.record_run(run_id, problem_file.sha256, labels, [planned_cell(c) for c in cells])
        summary = RunSummary(
            store.out_dir,
            run_id,
            cells=len(cells),
            rows_skipped=skipped,
            refused=refused or [],
            notes=notes,
            rows_recomputed=recomputed,
        )
        meta = {
            "run_id": run_id,
            "problem": problem.name,
            "problem_file": str(problem_file.path),
            "problem_sha256": problem_file.sha256,
            "timeout_s": timeout,
            **run_metadata(),
        }
        _run_cells(
            cells,
            problem,
            loaded,
            meta,
            store,
            summary,
            blobs=blobs,
            paths=paths,
            timeout=timeout,
            startup_timeout=startup_timeout,
            progress=progress,
            jobs=jobs,
            executor=executor,
            scheduler=scheduler,
        )
    return summary


def _run_cells(
    cells: list[Cell],
    problem: Problem,
    loaded: dict[str, list[State]],
    meta: dict[str, Any],
    store: ResultsStore,
    summary: RunSummary,
    *,
    blobs: dict[str, Blob],
    paths: dict[str, tuple[tuple[str, PathPayload], ...]],
    timeout: float,
    startup_timeout: float,
    progress: bool,
    jobs: int,
    executor: str,
    scheduler: str | None,
) -> None:
    """Hand the cells to the executor and write every row as it comes back (the only writer)."""
    bar = Progress(cells, enabled=progress)
    where = f"{jobs} at a time" if executor == "local" else f"on Dask ({scheduler or f'LocalCluster of {jobs}'})"
    bar.note(
        f"{len(cells)} cells to run into {store.out_dir}, {where}"
        + (f" ({summary.rows_skipped} rows already done)" if summary.rows_skipped else "")
    )
    pending: dict[int, list[dict[str, Any]]] = defaultdict(list)  # rows of a cell not yet in a Parquet part

    def emit(k: int, index: int, result: dict[str, Any], outcome: Outcome | None = None) -> None:
        row = make_row(meta, cells[k], index, result, outcome)
        store.append(row)
        pending[k].append(row)
        summary.statuses[row["status"]] += 1
        declined = str(row.get("reason") or "").startswith("skipped: ")  # the plugin's own choice, not a failure
        summary.by_solver.setdefault(row["solver"], Counter())["skipped" if declined else str(row["status"])] += 1
        if row["status"] == Status.ERROR:
            summary.first_error.setdefault(row["solver"], str(row.get("reason") or ""))
        trace = row["info"].get("traceback") if isinstance(row.get("info"), dict) else None
        if isinstance(trace, str):
            summary.tracebacks.append((row["solver"], row["state"], trace))
        summary.rows_written += 1
        bar.row(k, row["status"])

    def finish(k: int) -> None:
        store.write_part(pending.pop(k, []), _cell_key(cells[k], meta["run_id"]))
        bar.finish(k, cells[k])

    plugin_files = {  # a plugin from a solver-path folder travels too: a worker may not have the folder
        plan.origin: Blob.of_file(plan.origin)
        for plan in {c.solver.origin: c.solver for c in cells}.values()
        if plan.origin.endswith(".py") and not plan.failure
    }
    jobs_list: list[CellJob] = []
    job_cell: list[int] = []
    try:
        for k, cell in enumerate(cells):  # what needs no plugin: pre-check failures, failed probes
            sts = loaded[cell.states.file.sha256]
            if cell.solver.failure:
                for i in cell.todo:
                    emit(k, i, _failure(Status.ERROR, cell.solver.failure, None))
                finish(k)
                continue
            todo = []
            for i in cell.todo:
                checked = precheck(problem, sts[i], cell.solver.spec)
                if checked is None:
                    todo.append(i)
                else:
                    emit(k, i, _failure(Status.INFEASIBLE, checked.reason, 0.0))
            if not todo:
                finish(k)
                continue
            jobs_list.append(
                CellJob(
                    cell.solver.origin,
                    blobs[meta["problem_sha256"]],
                    blobs[cell.states.file.sha256],
                    cell.solver.spec,
                    cell.seed,
                    tuple(todo),
                    timeout,
                    startup_timeout,
                    paths.get(cell.solver.spec, ()),
                    plugin_files.get(cell.solver.origin),
                )
            )
            job_cell.append(k)
        if jobs_list:
            with make_executor(executor, jobs, scheduler) as ex, closing(ex.run(jobs_list)) as events:
                for event in events:
                    k = job_cell[event.job]
                    if event.index is None:
                        finish(k)
                    else:
                        assert event.outcome is not None  # a state's event carries its outcome
                        sts = loaded[cells[k].states.file.sha256]
                        result = score_outcome(problem, sts[event.index], cells[k].solver, event.outcome)
                        emit(k, event.index, result, event.outcome)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        for k in list(pending):
            store.write_part(pending.pop(k), _cell_key(cells[k], meta["run_id"]))
        if store.has_rows():
            store.write_parquet()


def _cell_key(cell: Cell, run_id: str) -> str:
    """File name of a cell's Parquet part: the run, then a digest of (states, spec, seed)."""
    digest = hashlib.sha256(f"{cell.states.file.sha256}|{cell.solver.spec}|{cell.seed}".encode()).hexdigest()[:16]
    return f"{run_id}-{digest}"


class Progress:
    """The progress bar (states done, ETA; cells done and failed states in its postfix) and one
    line per finished cell. The bar redraws in place, so it only shows on a terminal; the lines
    always show (they are what a CI log keeps)."""

    def __init__(self, cells: Sequence[Cell], enabled: bool) -> None:
        self.cells, self.enabled = len(cells), enabled
        self.done = self.failed = 0
        self.counts: dict[int, Counter[str]] = defaultdict(Counter)
        self.bar = tqdm(
            total=sum(len(c.todo) for c in cells),
            unit="state",
            desc="run",
            file=sys.stderr,
            disable=not (enabled and sys.stderr.isatty()),
            dynamic_ncols=True,
        )

    def note(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def row(self, k: int, status: Status) -> None:
        self.counts[k][status] += 1
        self.failed += status not in SUCCESS
        self.bar.update(1)
        self.bar.set_postfix_str(f"{self.done}/{self.cells} cells done, {self.failed} failed states")

    def finish(self, k: int, cell: Cell) -> None:
        self.done += 1
        counts = self.counts.pop(k, Counter())
        self.note(
            f"[{self.done}/{self.cells}] {cell.solver.spec} seed {cell.seed} on {cell.states.file.path.name}: "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        )

    def close(self) -> None:
        self.bar.close()


__all__ = [
    "Cell",
    "RunSummary",
    "SolverPlan",
    "check_timeout",
    "parse_seeds",
    "plan_cells",
    "plan_solvers",
    "plugin_origins",
    "run_benchmark",
]
