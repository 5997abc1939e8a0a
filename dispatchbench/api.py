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
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatchbench.bench.plugins import BUNDLED_PACKAGE, BrokenPlugin, broken_plugins, discover, make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.contract.defaults import DEFAULT_SOLVER
from dispatchbench.contract.learner import Learner
from dispatchbench.contract.limits import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, SEED_MAX
from dispatchbench.contract.solver import Label, Solver
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
) -> pd.DataFrame:
    """Solve every state with one solver: one row per state, the columns of ``solve --json``.

    ``cost`` is the evaluator's (NaN unless the answer is feasible); ``dispatch``, ``imports`` and
    ``info`` hold the same dicts as the JSON. Runs in this process, like ``dispatchbench solve``:
    for hard time limits and crash isolation use :func:`run`.
    """
    import pandas as pd

    prob = problem if isinstance(problem, Problem) else load_problem(find_input(problem))
    if isinstance(states, State):
        sts: list[State] = [states]
    elif isinstance(states, (str, Path)):
        sts = load_states(find_input(states), prob)
    else:
        sts = list(states)
        if not all(isinstance(s, State) for s in sts):
            raise TypeError("states: give a state file (path or bundled name), a State or a list of States")
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
    backend = solver if isinstance(solver, Solver) else make_solver(solver)
    records = solve_and_score(prob, sts, backend, seed=seed, time_limit=time_limit)
    return pd.DataFrame([rec.to_json(prob) for rec in records], columns=list(SOLVE_COLUMNS))


def run(
    problem: PathLike,
    states: PathLike | Sequence[PathLike],
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
    ``seeds`` is an int, a list of ints or the CLI's text (``"0-4"``, ``"0,2,5"``). Further
    keyword options go to the harness unchanged (its newer options, such as parallel jobs or
    an executor, without a change here). On Ctrl-C the rows finished so far are kept and
    ``KeyboardInterrupt`` is raised again, so a notebook cell does not look as if it completed.
    """
    from dispatchbench.bench.harness import parse_seeds, run_benchmark

    if isinstance(problem, Problem):
        raise TypeError("run: give the problem as a file (path or bundled name); results record its file and hash")
    state_list = [states] if isinstance(states, (str, Path)) else list(states)
    if isinstance(seeds, str):
        seed_list = parse_seeds(seeds)
    elif isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seed_list = [int(seeds)]
    else:
        seed_list = list(seeds)
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seed_list):
        raise InputError("seeds", repr(seeds), "are not non-negative integers", 'give e.g. seeds="0-4" or [0, 1]')
    summary = run_benchmark(
        find_input(problem),
        [find_input(s) for s in state_list],
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


def load_results(folder: PathLike) -> pd.DataFrame:
    """The rows of a ``run`` (or ``reproduce``) output folder, one per solver x seed x state.

    ``params``, ``info`` and ``dispatch`` are JSON text, as in ``results.parquet``; the other
    columns are typed (costs float, nulls where a value is missing).
    """
    from dispatchbench.bench.results_store import load_results as load_folder

    return load_folder(folder)


def list_solvers() -> list[dict[str, Any]]:
    """Every solver plugin found: name, label and family (how a report names it with its
    defaults), description, parameters (defaults), their ranges and choices, capabilities, a
    learner's ``default_train_steps``, ``default_train_seconds`` (the wall-time cap of that
    default) and ``any_size`` (trains one model for any size), and where it comes from.

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
    label = _default_label(cls)
    return {
        "name": cls.name,
        "label": label.name if label else None,  # how a report names it with its defaults
        "family": label.family if label else None,
        "description": cls.description,
        "parameters": dict(cls.parameters),
        "parameter_ranges": {k: list(v) for k, v in cls.parameter_ranges.items()},
        "parameter_choices": {k: list(v) for k, v in cls.parameter_choices.items()},
        "capabilities": asdict(cls.capabilities),
        "default_train_steps": cls.default_train_steps if issubclass(cls, Learner) else None,
        "default_train_seconds": cls.default_train_seconds if issubclass(cls, Learner) else None,
        "any_size": bool(cls.any_size) if issubclass(cls, Learner) else None,
        "source": source,
        "origin": origin,
    }


def _default_label(cls: type[Solver]) -> Label | None:
    """The plugin's label for its default parameters; None if its ``label`` fails (plugin code:
    a listing must not stop at one plugin, and any spec of it is refused with the reason)."""
    try:
        label = cls.label(dict(cls.parameters))
    except Exception:
        return None
    return label if isinstance(label, Label) else None


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
