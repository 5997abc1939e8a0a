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

import inspect
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatchbench.bench.plugins import BrokenPlugin
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.contract.limits import DEFAULT_TIMEOUT_S, STARTUP_LIMIT_S
from dispatchbench.contract.solver import Solver
from dispatchbench.model.bundled import find_input
from dispatchbench.model.errors import InputError
from dispatchbench.model.paths import check_path, exists
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import load_problem as load_problem_file
from dispatchbench.model.state_file import load_states as load_states_file

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
    solver: str | Solver | None = None,
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

    from dispatchbench.bench.harness import check_seeds, check_timeout
    from dispatchbench.bench.input_files import problem_blob, states_blob
    from dispatchbench.bench.job_payload import Blob
    from dispatchbench.bench.solve_in_child import solve_in_child

    if isinstance(problem, Problem):
        prob, prob_bytes = problem, None
    else:
        path = find_input(_path(problem, "problem"))
        prob, prob_bytes = load_problem_file(path), Blob.of_file(path)
    if isinstance(states, State):
        sts: list[State] = [states]
        sts_bytes = None
    elif isinstance(states, (str, Path)):
        path = find_input(states)
        sts, sts_bytes = load_states_file(path, prob), Blob.of_file(path)
    else:
        sts, sts_bytes = (
            _sequence(states, "states", "a state file (path or bundled name), a State or a list of States"),
            None,
        )
        if not all(isinstance(s, State) for s in sts):
            bad = next(s for s in sts if not isinstance(s, State))
            raise InputError("states", _shown(bad), "is not a State", "give a state file, a State or a list of States")
    if not sts:
        raise InputError("states", "[]", "is empty: nothing to solve", "give at least one state")
    check_seeds([seed], "seed")
    if time_limit is not None:
        time_limit = check_timeout(time_limit, "time_limit")  # the CLI's --time-limit check
    startup_timeout = check_timeout(startup_timeout, "startup_timeout")
    if solver is None:  # required; a keyword with no default would give Python's TypeError without a fix
        raise InputError("solver", "missing", "no solver given", 'give solver=, e.g. solver="scip"')
    if not isinstance(solver, (str, Solver)):
        raise InputError(
            "solver", _shown(solver), "is not a solver spec", 'give e.g. solver="scip" or "pso[particles=40]"'
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


_RUN_ARGUMENTS = (
    "problem_path",
    "states_paths",
    "solvers",
    "seeds",
    "out_dir",
    "timeout",
    "resume",
    "force",
    "progress",
)


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
    from dispatchbench.bench.harness import check_seeds, parse_seeds, run_benchmark

    if not isinstance(problem, Problem):
        problem = _path(problem, "problem")
    state_list = [states] if isinstance(states, (str, Path, State)) else _sequence(states, "states", "state files")
    if not state_list:
        raise InputError("states", "[]", "is empty: nothing to run", "give at least one state file")
    state_list = [s if isinstance(s, State) else _path(s, "states") for s in state_list]
    if isinstance(solvers, str):
        if not solvers.strip():
            raise InputError("solvers", "''", "is empty", 'give e.g. solvers="scip,pso"')
    else:
        solvers = _sequence(solvers, "solvers", "solver specs")
        if not solvers or not all(isinstance(x, str) and x.strip() for x in solvers):
            raise InputError("solvers", _shown(solvers), "is not a list of solver specs", 'give e.g. ["scip", "pso"]')
    if isinstance(seeds, str):
        seed_list = parse_seeds(seeds)
    elif isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seed_list = [int(seeds)]
    else:
        seed_list = _sequence(seeds, "seeds", "seeds")
    check_seeds(seed_list, "seeds")  # the harness checks them again: the same function
    for name, flag in (("resume", resume), ("force", force), ("progress", progress)):
        if not isinstance(flag, bool):
            raise InputError(name, _shown(flag), "is not True or False", f"give {name}=True or {name}=False")
    harness_options = set(inspect.signature(run_benchmark).parameters) - set(_RUN_ARGUMENTS)
    unknown = sorted(set(options) - harness_options)
    if unknown:
        raise InputError(
            unknown[0], "option", "is not an option of run", f"use one of: {', '.join(sorted(harness_options))}"
        )
    problem_path, state_paths = _input_paths(problem, state_list, _path(out, "out"))  # objects written last
    summary = run_benchmark(
        problem_path,
        state_paths,
        solvers,
        [int(s) for s in seed_list],
        _path(out, "out"),
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
    prob: Problem | None
    problem_path: Path | None
    if isinstance(problem, Problem):
        prob, problem_path = problem, None
    else:
        problem_path = find_input(problem)
        prob = load_problem_file(problem_path) if objects else None
    if problem_path is None:
        assert prob is not None  # a Problem object was given
        problem_path = write_blob(problem_blob(prob), inputs)
    paths = [find_input(s) for s in states if not isinstance(s, State)]
    if objects:
        assert prob is not None  # loaded above whenever State objects were given
        paths.append(write_blob(states_blob(prob, objects, "states.csv"), inputs))
    return problem_path, paths


def load_problem(path: PathLike) -> Problem:
    """A problem file, by path or by the name of a bundled one (``"paper-4region.toml"``), as
    ``solve -p`` takes it: a path that exists wins, so a script reads what the command line would."""
    return load_problem_file(_input(path, "problem"))


def load_states(path: PathLike, problem: Problem) -> list[State]:
    """The states of a state file for ``problem``, by path or by the name of a bundled one
    (``"paper-4region-tableIV.csv"``), as ``solve -s`` takes it."""
    if not isinstance(problem, Problem):
        raise InputError("problem", _shown(problem), "is not a Problem", "give the Problem load_problem returned")
    return load_states_file(_input(path, "states"), problem)


def _input(value: Any, argument: str) -> Path:
    """A problem or state file as the CLI finds it: the path as given when it exists (errors then
    name it as written), else the bundled file of that name."""
    path = _path(value, argument)
    return path if exists(path) else find_input(path)


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

    folder = _path(folder, "folder")
    if not exists(folder):
        raise InputError(folder, "folder", "not found", "give the out folder of a run")
    return load_folder(folder)


def _path(value: Any, argument: str) -> Path:
    """A path argument checked as the CLI's are (type, length, names' lengths)."""
    if not isinstance(value, (str, Path)):
        raise InputError(argument, _shown(value), "is not a path", f"give {argument} as a str or pathlib.Path")
    return check_path(value, argument)


def _sequence(value: Any, argument: str, what: str) -> list[Any]:
    """``value`` as a list when it is a list-like of items (not text, not a mapping), else one line."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InputError(argument, _shown(value), f"is not a list of {what}", f"give {argument} as a list")
    return list(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def list_solvers(startup_timeout: float = STARTUP_LIMIT_S) -> list[dict[str, Any]]:
    """Every solver plugin found: name, label and family (how a report names it with its
    defaults), description, parameters (defaults), their ranges and choices, capabilities, a
    learner's ``default_train_steps``, ``default_train_seconds`` (the wall-time cap of that
    default) and ``any_size`` (trains one model for any size), and where it comes from.

    ``source`` is ``bundled`` (shipped with dispatchbench), ``solver path`` (a folder on
    ``$DISPATCHBENCH_SOLVER_PATH``) or ``entry point`` (an installed package); ``origin`` is the
    plugin's file, or ``module:Class`` for an entry point. Each plugin is imported in a process
    of its own, under ``startup_timeout`` seconds: one that fails, exits or hangs at import is
    not listed and gives a warning with its error (``dispatchbench solvers --json`` lists them).
    ``pandas.DataFrame(list_solvers())`` gives a table.
    """
    from dispatchbench.bench.harness import check_timeout

    solvers, broken = solver_catalogue(check_timeout(startup_timeout, "startup_timeout"))
    for entry in broken:
        warnings.warn(f"solver plugin {entry['origin']} failed to load: {entry['error']}", stacklevel=2)
    from dispatchbench.bench.plugins import discovery_warnings

    for line in discovery_warnings():  # a missing solver-path folder, a shadowed plugin
        warnings.warn(line, stacklevel=2)
    return solvers


def solver_catalogue(startup_timeout: float = STARTUP_LIMIT_S) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(solvers, broken plugins)`` as JSON-ready dicts, as ``dispatchbench solvers --json``: each
    plugin imported in a child process of its own, under ``startup_timeout`` seconds."""
    from dispatchbench.bench.plugin_catalogue import plugin_catalogue

    catalogue = plugin_catalogue(startup_timeout)
    return catalogue.solvers, [_describe_broken(b) for b in catalogue.broken]


def _describe_broken(plugin: BrokenPlugin) -> dict[str, str]:
    return {"origin": plugin.origin, "error": plugin.error}
