"""``dispatchbench solve`` and ``dispatchbench.solve``: one solver spec over the states of one
file, in a child process — the same machinery as one cell of ``run``.

Why not in the calling process: importing the plugin is plugin code, which may hang, call
``sys.exit`` or print onto the stdout that ``solve --json`` reserves for its JSON, and a solver
may ignore the time limit it is given. In the child (:mod:`cell_runner`) the import runs under
the start-up limit, the plugin's prints go to stderr, and a crash costs rows, not the command.

The time limit, with and without ``--time-limit``:

* ``--time-limit S`` (``time_limit=S``) is ``run --timeout S``: a hard limit *per state*. The
  solver is asked to stop at 0.9·S and killed at S; that state is ``timeout``, the others
  ``timeout`` "not attempted".
* Without it the solver gets ``time_limit=None`` (its own default, e.g. SCIP's ``time_limit``
  parameter) and is never killed: the user asked for no limit, and Ctrl-C stops it. It still
  runs in the child, so the import limit and the stdout rule hold all the same.

The states are solved one at a time on one solver instance (as in a cell), the exact pre-check
runs here first (an infeasible state never reaches the plugin) and every answer is scored here
against this process's own problem and states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatchbench.bench.cell_runner import CellJob, cell_outcomes, probe_specs
from dispatchbench.bench.job_payload import Blob
from dispatchbench.bench.plugins import no_solver_named, parse_spec, plugin_origins
from dispatchbench.bench.scoring import Record, answer_from_raw, precheck, score_answer
from dispatchbench.contract.limits import STARTUP_LIMIT_S
from dispatchbench.contract.solver import Label
from dispatchbench.contract.status import Status
from dispatchbench.model.errors import SolverNotFound
from dispatchbench.model.problem import Problem, State


@dataclass
class Solved:
    """The records, one per state, and what the child said the solver is."""

    records: list[Record]
    solver: dict[str, Any]  # name, solver_spec (non-default values), label, family, params, capabilities
    skipped: str | None = None  # the solver declined the problem (its skip reason)


def _record(problem: Problem, state: State, label: str, exact: bool, outcome: dict[str, Any]) -> Record:
    if "skip" in outcome:
        return Record(state.label, label, Status.ERROR, None, None, 0.0, f"skipped: {outcome['skip']}")
    if "answer" not in outcome:
        time_s = outcome.get("time_s")
        return Record(
            state.label,
            label,
            Status(str(outcome.get("status", "error"))),
            None,
            None,
            float(time_s) if isinstance(time_s, int | float) else 0.0,
            str(outcome.get("reason", "")),
        )
    try:
        answer = answer_from_raw(problem, outcome["answer"])
    except ValueError as exc:
        return Record(state.label, label, Status.ERROR, None, None, float(outcome["time_s"]), f"unusable answer: {exc}")
    answer.time_s = float(outcome["time_s"])
    return score_answer(problem, state, answer, label, exact)


def solve_in_child(
    problem: Problem,
    problem_bytes: Blob,
    states: Sequence[State],
    states_bytes: Blob,
    spec: str,
    *,
    seed: int = 0,
    time_limit: float | None = None,
    startup_timeout: float = STARTUP_LIMIT_S,
) -> Solved:
    """Solve ``states`` with ``spec`` in a child process and score every answer here.

    ``problem_bytes`` and ``states_bytes`` are the files ``problem`` and ``states`` were read
    from (the child reads its own copy from them). Raises :class:`SolverNotFound` (one line)
    when no plugin has that name or the plugin cannot be imported or built within
    ``startup_timeout`` seconds."""
    name, _ = parse_spec(spec)
    origins = plugin_origins()
    if name not in origins:
        raise no_solver_named(name, origins)
    records: dict[int, Record] = {}
    todo: list[int] = []
    for i, state in enumerate(states):
        checked = precheck(problem, state, spec)
        if checked is None:
            todo.append(i)
        else:
            records[i] = checked
    described: list[dict[str, Any]] = []
    outcomes: list[tuple[int, dict[str, Any]]] = []
    if todo:
        job = CellJob(origins[name], problem_bytes, states_bytes, spec, seed, tuple(todo), time_limit, startup_timeout)
        outcomes = list(cell_outcomes(job, built=described.append))
    if not described:  # never built: a bad spec, or a plugin that fails, exits or hangs at import
        if outcomes:
            why = str(outcomes[0][1].get("reason") or "could not be started")
            raise SolverNotFound(why if why.startswith("could not start") else f"solver {spec!r}: {why}")
        entry = probe_specs({origins[name]: [spec]}, startup_timeout)[spec]
        if "error" in entry or "timeout" in entry:
            raise SolverNotFound(f"solver {spec!r}: {entry.get('error') or entry.get('timeout')}")
        described.append(entry)
    solver = described[0]
    label, exact = str(solver.get("solver_spec") or spec), bool(solver["capabilities"].get("exact"))
    shown = Label(str(solver["label"]), str(solver["family"])) if solver.get("label") else None
    skipped = None
    for i, outcome in outcomes:
        skipped = skipped or outcome.get("skip")
        records[i] = _record(problem, states[i], label, exact, outcome)
    for rec in records.values():
        rec.solver = label  # the pre-check's records too: the spec as the solver writes it
        rec.label = shown
    return Solved([records[i] for i in range(len(states))], solver, skipped)
