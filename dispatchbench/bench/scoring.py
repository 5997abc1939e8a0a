"""From a backend's answers to scored records: the pre-check, the evaluator, the verdict.

Every command and the harness go through :func:`solve_and_score`, so the rules for what
counts as optimal, feasible or infeasible live in exactly one place.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import Problem, State
from dispatchbench.bench.solver_api import Answer, Solver


@dataclass
class Record:
    """One scored (solver, state) result, as printed by ``solve --json`` and stored by ``run``."""

    state: str
    solver: str
    status: str
    cost: float | None
    max_violation: float | None
    time_s: float
    reason: str = ""
    dispatch: Dispatch | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self, problem: Problem) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state, "solver": self.solver, "status": self.status, "cost": self.cost,
            "max_violation": self.max_violation, "time_s": self.time_s, "reason": self.reason,
        }
        if self.dispatch is not None:
            out.update(self.dispatch.to_json(problem))
        else:
            out.update({"dispatch": None, "imports": None})
        out["info"] = self.info
        return out


def score_answer(problem: Problem, state: State, answer: Answer, solver: Solver) -> Record:
    """Turn a raw answer into a record whose cost and feasibility come from the evaluator."""
    base = dict(state=state.label, solver=solver.spec, time_s=answer.time_s, info=dict(answer.info))
    if answer.dispatch is None:
        status = answer.status if answer.status in {"infeasible", "timeout", "error"} else "error"
        reason = answer.message or ("no dispatch returned" if status == "error" else "")
        if status == "infeasible":
            why = infeasibility_reason(problem, state)
            reason = f"state infeasible: {why}" if why else f"solver reported infeasible, but the state is feasible ({reason})"
        return Record(status=status, cost=None, max_violation=None, reason=reason, **base)
    try:
        ev = evaluate(problem, state, answer.dispatch)
    except ValueError as exc:
        return Record(status="error", cost=None, max_violation=None, reason=f"unusable dispatch: {exc}", **base)
    base["info"]["evaluated_cost"] = ev.cost
    if not ev.feasible:
        reason = f"answer violates {ev.worst} by {ev.max_violation:.6g} kW (tolerance {ev.tolerance:.3g} kW)"
        if answer.status == "timeout":
            reason = f"time limit reached; {reason}"
        return Record(status="infeasible", cost=None, max_violation=ev.max_violation, reason=reason,
                      dispatch=answer.dispatch, **base)
    status = "optimal" if (answer.status == "optimal" and solver.capabilities.exact) else "feasible"
    reason = answer.message if answer.status == "timeout" else ""
    return Record(status=status, cost=ev.cost, max_violation=ev.max_violation, reason=reason,
                  dispatch=answer.dispatch, **base)


def solve_and_score(problem: Problem, states: Sequence[State], solver: Solver, *, seed: int = 0,
                    time_limit: float | None = None) -> list[Record]:
    """Pre-check every state, solve the feasible ones, score every answer.

    Infeasible states are reported with the pre-check's reason and never reach the solver, so
    one bad interval cannot stop a day. A solver that raises is recorded as ``error`` for the
    states it was given; the records of states already scored are kept by the caller.
    """
    records: dict[int, Record] = {}
    todo: list[int] = []
    skip = solver.skip(problem)
    for i, state in enumerate(states):
        if skip:
            records[i] = Record(state=state.label, solver=solver.spec, status="error", cost=None,
                                max_violation=None, time_s=0.0, reason=f"skipped: {skip}")
            continue
        why = infeasibility_reason(problem, state)
        if why:
            records[i] = Record(state=state.label, solver=solver.spec, status="infeasible", cost=None,
                                max_violation=None, time_s=0.0, reason=f"state infeasible: {why}")
        else:
            todo.append(i)
    if todo:
        start = time.perf_counter()
        try:
            answers = solver.solve(problem, [states[i] for i in todo], seed=seed, time_limit=time_limit)
            if len(answers) != len(todo):
                raise RuntimeError(f"returned {len(answers)} answers for {len(todo)} states")
        except Exception as exc:  # a crashing backend is a result, not a crash of the run
            elapsed = (time.perf_counter() - start) / len(todo)
            msg = f"{type(exc).__name__}: {exc}".strip()
            last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
            where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
            answers = [Answer(dispatch=None, status="error", message=msg + where, time_s=elapsed) for _ in todo]
        for i, answer in zip(todo, answers):
            records[i] = score_answer(problem, states[i], answer, solver)
    return [records[i] for i in range(len(states))]
