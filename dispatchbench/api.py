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
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatchbench.bench.plugins import BUNDLED_PACKAGE, BrokenPlugin, broken_plugins, discover, make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.bench.solver_api import Solver
from dispatchbench.model.bundled import find_input
from dispatchbench.model.errors import InputError
from dispatchbench.model.paths import check_path, exists
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
    solver: str | Solver = "scip",
    seed: int = 0,
    time_limit: float | None = None,
) -> pd.DataFrame:
    """Solve every state with one solver: one row per state, the columns of ``solve --json``.

    ``cost`` is the evaluator's (NaN unless the answer is feasible); ``dispatch``, ``imports`` and
    ``info`` hold the same dicts as the JSON. Runs in this process, like ``dispatchbench solve``:
    for hard time limits and crash isolation use :func:`run`.
    """
    import pandas as pd

    from dispatchbench.bench.harness import check_seeds, check_timeout

    prob = problem if isinstance(problem, Problem) else load_problem(find_input(_path(problem, "problem")))
    if isinstance(states, State):
        sts: list[State] = [states]
    elif isinstance(states, (str, Path)):
        sts = load_states(find_input(states), prob)
    else:
        sts = _sequence(states, "states", "a state file (path or bundled name), a State or a list of States")
        if not all(isinstance(s, State) for s in sts):
            bad = next(s for s in sts if not isinstance(s, State))
            raise InputError("states", _shown(bad), "is not a State", "give a state file, a State or a list of States")
    if not sts:
        raise InputError("states", "[]", "is empty: nothing to solve", "give at least one state")
    check_seeds([seed], "seed")
    if time_limit is not None:
        time_limit = check_timeout(time_limit, "time_limit")  # the CLI's --time-limit check
    if not isinstance(solver, (str, Solver)):
        raise InputError(
            "solver", _shown(solver), "is not a solver spec", 'give e.g. solver="scip" or "pso[particles=40]"'
        )
    backend = solver if isinstance(solver, Solver) else make_solver(solver)
    records = solve_and_score(prob, sts, backend, seed=seed, time_limit=time_limit)
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
    problem: PathLike,
    states: PathLike | Sequence[PathLike],
    solvers: str | Sequence[str],
    seeds: int | str | Iterable[int] = 0,
    *,
    out: PathLike,
    timeout: float = 60.0,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Run solvers x seeds x states into ``out`` as ``dispatchbench run`` does; return the folder.

    Each cell runs in its own process under the hard per-state ``timeout``; rows land in
    ``out/rows.jsonl`` and ``out/results.parquet`` (read them with :func:`load_results`).
    ``seeds`` is an int, a list of ints or the CLI's text (``"0-4"``, ``"0,2,5"``). Further
    keyword options go to the harness unchanged (its newer options, such as parallel jobs or
    an executor, without a change here). On Ctrl-C the rows finished so far are kept and
    ``KeyboardInterrupt`` is raised again, so a notebook cell does not look as if it completed.
    """
    from dispatchbench.bench.harness import check_seeds, parse_seeds, run_benchmark

    if isinstance(problem, Problem):
        raise InputError(
            "problem",
            repr(problem.name),
            "is a Problem object; run records the file and its hash",
            "give the problem as a file (path or bundled name)",
        )
    problem = _path(problem, "problem")
    state_list = [states] if isinstance(states, (str, Path)) else _sequence(states, "states", "state files")
    if not state_list:
        raise InputError("states", "[]", "is empty: nothing to run", "give at least one state file")
    state_list = [_path(s, "states") for s in state_list]
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
    summary = run_benchmark(
        find_input(problem),
        [find_input(s) for s in state_list],
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


def load_results(folder: PathLike) -> pd.DataFrame:
    """The rows of a ``run`` (or ``reproduce``) output folder, one per solver x seed x state.

    ``params``, ``info`` and ``dispatch`` are JSON text, as in ``results.parquet``; the other
    columns are typed (costs float, nulls where a value is missing).
    """
    from dispatchbench.bench.results_store import load_results as load_folder

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


def list_solvers() -> list[dict[str, Any]]:
    """Every solver plugin found: name, description, parameters (defaults), their ranges and
    choices, capabilities, and where it comes from.

    ``source`` is ``bundled`` (shipped with dispatchbench), ``solver path`` (a folder on
    ``$DISPATCHBENCH_SOLVER_PATH``) or ``entry point`` (an installed package); ``origin`` is the
    plugin's file, or ``module:Class`` for an entry point. Plugins that fail to import are not
    listed; each gives a warning with its error (``dispatchbench solvers --json`` lists them).
    ``pandas.DataFrame(list_solvers())`` gives a table.
    """
    for broken in broken_plugins():
        warnings.warn(f"solver plugin {broken.origin} failed to load: {broken.error}", stacklevel=2)
    return solver_catalogue()[0]


def solver_catalogue() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(solvers, broken plugins)`` as JSON-ready dicts, for :func:`list_solvers` and the CLI."""
    solvers = [describe_solver(cls) for _, cls in sorted(discover().items())]
    broken = [_describe_broken(b) for b in broken_plugins()]
    return solvers, broken


def describe_solver(cls: type[Solver]) -> dict[str, Any]:
    source, origin = solver_source(cls)
    return {
        "name": cls.name,
        "description": cls.description,
        "parameters": dict(cls.parameters),
        "parameter_ranges": {k: list(v) for k, v in cls.parameter_ranges.items()},
        "parameter_choices": {k: list(v) for k, v in cls.parameter_choices.items()},
        "capabilities": asdict(cls.capabilities),
        "source": source,
        "origin": origin,
    }


def solver_source(cls: type[Solver]) -> tuple[str, str]:
    """(``bundled`` / ``solver path`` / ``entry point``, file or ``module:Class``) of a plugin class.

    Read from the module the class lives in: discovery imports bundled plugins as
    ``dispatchbench.solvers.<file>`` and plugins from other folders under a private prefix.
    """
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if cls.__module__.startswith(BUNDLED_PACKAGE + "."):
        return "bundled", str(Path(file).resolve()) if file else cls.__module__
    if cls.__module__.startswith("dispatchbench_plugin_") and file:
        return "solver path", str(Path(file).resolve())
    return "entry point", f"{cls.__module__}:{cls.__qualname__}"


def _describe_broken(plugin: BrokenPlugin) -> dict[str, str]:
    return {"origin": plugin.origin, "error": plugin.error}
