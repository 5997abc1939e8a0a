"""The Python API: what the command line does, as functions that return DataFrames and paths.

A notebook user should not need to know the layer folders: ``dispatchbench.solve(...)`` is
``dispatchbench solve --json`` as a DataFrame, ``dispatchbench.run(...)`` is ``dispatchbench
run``, ``dispatchbench.load_results(...)`` reads what a run wrote and ``dispatchbench.list_solvers()``
is ``dispatchbench solvers --json``. The functions call the same modules as the CLI, so a cost
here is the evaluator's, exactly as on the command line. Bad input raises the same
:class:`~dispatchbench.model.errors.InputError` / ``SolverNotFound`` whose message the CLI prints.

Problem and state files may be given as paths or by the name of a bundled file
(``"paper-4region.toml"`` or ``"problems/paper-4region.toml"``); a path that exists wins.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatchbench.bench.cell_runner import STARTUP_LIMIT_S
from dispatchbench.bench.plugins import BrokenPlugin
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.contract.defaults import DEFAULT_SOLVER
from dispatchbench.contract.limits import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, SEED_MAX
from dispatchbench.contract.solver import Solver
from dispatchbench.model.bundled import find_input
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | Path

# The keys of one ``solve --json`` line (scoring.Record.to_json), in that order.
SOLVE_COLUMNS: tuple[str, ...] = (
    "state",
    "solver",
    "label",
    "family",
    "status",
    "cost",
    "max_violation",
    "time_s",
    "reason",
    "dispatch",
    "imports",
    "info",
)


def solve(
    problem: PathLike | Problem,
    states: PathLike | State | Sequence[State],
    solver: str | Solver = DEFAULT_SOLVER,
    seed: int = 0,
    time_limit: float | None = None,
    startup_timeout: float = STARTUP_LIMIT_S,
) -> pd.DataFrame:
    """Solve every state with one solver: one row per state, the columns of ``solve --json``.

    ``cost`` is the evaluator's (NaN unless the answer is feasible); ``dispatch``, ``imports`` and
    ``info`` hold the same dicts as the JSON. As ``dispatchbench solve``, a solver given by its
    spec runs in a child process: its import under ``startup_timeout``, and with ``time_limit``
    a hard limit per state (asked to stop at 0.9 of it, killed at it: that state ``timeout``).
    A :class:`Solver` object you built runs in this process, where its code already is: its
    ``time_limit`` is then only the solver's own.
    """
    import pandas as pd

    from dispatchbench.bench.input_files import problem_blob, states_blob
    from dispatchbench.bench.job_payload import Blob
    from dispatchbench.bench.solve_in_child import solve_in_child

    if isinstance(problem, Problem):
        prob, prob_bytes = problem, None
    else:
        path = find_input(problem)
        prob, prob_bytes = load_problem(path), Blob.of_file(path)
    if isinstance(states, State):
        sts: list[State] = [states]
        sts_bytes = None
    elif isinstance(states, (str, Path)):
        path = find_input(states)
        sts, sts_bytes = load_states(path, prob), Blob.of_file(path)
    else:
        sts, sts_bytes = list(states), None
        if not all(isinstance(s, State) for s in sts):
            raise TypeError("states: give a state file (path or bundled name), a State or a list of States")
    if not (isinstance(startup_timeout, (int, float)) and math.isfinite(startup_timeout) and startup_timeout > 0):
        raise InputError(
            "startup_timeout", repr(startup_timeout), "is not a positive number of seconds", "give e.g. 180"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InputError("seed", repr(seed), f"is not an integer in 0..{SEED_MAX}", "give e.g. seed=0")
    if time_limit is not None and not (
        isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and 0 < time_limit <= MAX_TIMEOUT_S
    ):
        raise InputError(
            "time_limit",
            repr(time_limit),
            f"is not a number of seconds in (0, {MAX_TIMEOUT_S:g}]",
            "give e.g. time_limit=60, or None for the solver's own default",
        )
    if isinstance(solver, Solver):
        records = solve_and_score(prob, sts, solver, seed=seed, time_limit=time_limit)
    else:
        records = solve_in_child(
            prob,
            prob_bytes or problem_blob(prob),
            sts,
            sts_bytes or states_blob(prob, sts),
            solver,
            seed=seed,
            time_limit=time_limit,
            startup_timeout=startup_timeout,
        ).records
    return pd.DataFrame([rec.to_json(prob) for rec in records], columns=list(SOLVE_COLUMNS))


def run(
    problem: PathLike | Problem,
    states: PathLike | State | Sequence[PathLike | State],
    solvers: str | Sequence[str],
    seeds: int | str | Iterable[int] = 0,
    *,
    out: PathLike,
    timeout: float = DEFAULT_TIMEOUT_S,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Run solvers x seeds x states into ``out`` as ``dispatchbench run`` does; return the folder.

    Each cell runs in its own process under the hard per-state ``timeout``; rows land in
    ``out/rows.jsonl`` and ``out/results.parquet`` (read them with :func:`load_results`).
    ``seeds`` is an int, a list of ints or the CLI's text (``"0-4"``, ``"0,2,5"``). ``problem``
    and ``states`` may be objects built in memory: they are written, exactly, into
    ``out/inputs/`` (``<name>-<sha256>.toml``, ``states-<sha256>.csv``: the rows record these
    files and hashes), and every ``State`` given joins one state file. Further
    keyword options go to the harness unchanged (its newer options, such as parallel jobs or
    an executor, without a change here). On Ctrl-C the rows finished so far are kept and
    ``KeyboardInterrupt`` is raised again, so a notebook cell does not look as if it completed.
    """
    from dispatchbench.bench.harness import parse_seeds, run_benchmark

    state_list = [states] if isinstance(states, (str, Path, State)) else list(states)
    problem_path, state_paths = _input_paths(problem, state_list, Path(out))
    if isinstance(seeds, str):
        seed_list = parse_seeds(seeds)
    elif isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seed_list = [int(seeds)]
    else:
        seed_list = list(seeds)
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seed_list):
        raise InputError("seeds", repr(seeds), "are not non-negative integers", 'give e.g. seeds="0-4" or [0, 1]')
    summary = run_benchmark(
        problem_path,
        state_paths,
        solvers,
        [int(s) for s in seed_list],
        Path(out),
        timeout=timeout,
        resume=resume,
        force=force,
        progress=progress,
        **options,
    )
    if summary.interrupted:
        raise KeyboardInterrupt(
            f"run interrupted; the finished rows are in {summary.out_dir} (continue with resume=True)"
        )
    return summary.out_dir


def _input_paths(problem: PathLike | Problem, states: list[Any], out: Path) -> tuple[Path, list[Path]]:
    """Paths for ``run``: files as given (or bundled by name); objects written into ``out/inputs``."""
    from dispatchbench.bench.input_files import problem_blob, states_blob, write_blob

    inputs = out / "inputs"
    objects = [s for s in states if isinstance(s, State)]
    if isinstance(problem, Problem):
        prob, problem_path = problem, None
    else:
        problem_path = find_input(problem)
        prob = load_problem(problem_path) if objects else None
    if problem_path is None:
        problem_path = write_blob(problem_blob(prob), inputs)
    paths = [find_input(s) for s in states if not isinstance(s, State)]
    if objects:
        paths.append(write_blob(states_blob(prob, objects, "states.csv"), inputs))
    return problem_path, paths


def load_results(folder: PathLike) -> pd.DataFrame:
    """The rows of a ``run`` (or ``reproduce``) output folder, one per solver x seed x state,
    re-scored by the evaluator as ``table`` and ``report`` do (``dispatchbench.bench.rescore``).

    ``status``, ``cost`` and ``max_violation`` are the evaluator's verdict on each stored dispatch;
    ``cost_check`` is ``ok``, ``no dispatch`` or what the stored result said instead, and ``source``
    the file and line of the row. ``params``, ``info`` and ``dispatch`` are JSON text, as in
    ``results.parquet``; the other columns are typed (costs float, nulls where a value is missing).
    A row that is unreadable, unplanned, repeated or claims a cost without a dispatch, and a
    problem or state file that is missing or changed since the run, raise :class:`InputError`.
    """
    from dispatchbench.bench.rescore import load_results as load_folder

    return load_folder(folder)


def list_solvers(startup_timeout: float = STARTUP_LIMIT_S) -> list[dict[str, Any]]:
    """Every solver plugin found: name, label and family (how a report names it with its
    defaults), description, parameters (defaults), their ranges and choices, capabilities, a
    learner's ``default_train_steps``, and where it comes from.

    ``source`` is ``bundled`` (shipped with dispatchbench), ``solver path`` (a folder on
    ``$DISPATCHBENCH_SOLVER_PATH``) or ``entry point`` (an installed package); ``origin`` is the
    plugin's file, or ``module:Class`` for an entry point. Each plugin is imported in a process
    of its own, under ``startup_timeout`` seconds: one that fails, exits or hangs at import is
    not listed and gives a warning with its error (``dispatchbench solvers --json`` lists them).
    ``pandas.DataFrame(list_solvers())`` gives a table.
    """
    solvers, broken = solver_catalogue(startup_timeout)
    for entry in broken:
        warnings.warn(f"solver plugin {entry['origin']} failed to load: {entry['error']}", stacklevel=2)
    return solvers


def solver_catalogue(startup_timeout: float = STARTUP_LIMIT_S) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(solvers, broken plugins)`` as JSON-ready dicts, as ``dispatchbench solvers --json``: each
    plugin imported in a child process of its own, under ``startup_timeout`` seconds."""
    from dispatchbench.bench.plugin_catalogue import plugin_catalogue

    catalogue = plugin_catalogue(startup_timeout)
    return catalogue.solvers, [_describe_broken(b) for b in catalogue.broken]


def _describe_broken(plugin: BrokenPlugin) -> dict[str, str]:
    return {"origin": plugin.origin, "error": plugin.error}
