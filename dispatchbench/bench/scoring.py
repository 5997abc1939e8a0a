"""From a backend's answers to scored records: the pre-check, the evaluator, the verdict.

Every command and the harness go through this module, so the rules for what counts as
optimal, feasible or infeasible live in exactly one place. Two ways in:

* :func:`solve_and_score` (``dispatchbench solve``, the Python API): the plugin runs in this
  process, on *deep copies* of the problem and states, so a plugin that edits what it was handed
  (zeroes a demand) cannot change what its answer is scored against.
* :func:`raw_answer` in the harness's per-cell child, :func:`answer_from_raw` and
  :func:`score_answer` in the process that writes the rows: the child sends back only plain
  numbers (JSON, never a pickle that could run code on arrival) and the harness scores them
  against its own copy of the problem and states, loaded from the files. Nothing a plugin does
  to its inputs or to imported modules (patching this module, say) reaches that copy.

The evaluator is bound once, at import, under a private name: patching ``scoring.evaluate``
afterwards in the same process does not change what :func:`score_answer` calls.
"""

from __future__ import annotations

import copy
import json
import math
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dispatchbench.bench.json_values import json_default
from dispatchbench.contract.answer_checks import PluginAnswerError, checked_answers
from dispatchbench.contract.solver import Answer, Label, Solver, label_of
from dispatchbench.contract.status import Status
from dispatchbench.model.dispatch import Dispatch, DispatchShapeError
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import Problem, State

_evaluate = evaluate  # see the module docstring
_infeasibility_reason = infeasibility_reason


def success_status(claimed: str, exact: bool) -> Status:
    """The status of an answer whose dispatch the evaluator found feasible: ``optimal`` only when
    the plugin claimed it and declares itself exact (a heuristic cannot know it is optimal)."""
    return Status.OPTIMAL if claimed == Status.OPTIMAL and exact else Status.FEASIBLE


def violation_reason(worst: str, max_violation: float, tolerance: float) -> str:
    return f"answer violates {worst} by {max_violation:.6g} kW (tolerance {tolerance:.3g} kW)"


@dataclass
class Record:
    """One scored (solver, state) result, as printed by ``solve --json`` and stored by ``run``."""

    state: str
    solver: str
    status: Status
    cost: float | None
    max_violation: float | None
    time_s: float
    reason: str = ""
    dispatch: Dispatch | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)
    label: Label | None = None  # the solver's display name and family (``solve --json`` shows them)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a plain string (benchmarks build records) becomes a Status

    def to_json(self, problem: Problem) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "solver": self.solver,
            "label": None if self.label is None else self.label.name,
            "family": None if self.label is None else self.label.family,
            "status": self.status.value,
            "cost": self.cost,
            "max_violation": self.max_violation,
            "time_s": self.time_s,
            "reason": self.reason,
        }
        if self.dispatch is not None:
            out.update(self.dispatch.to_json(problem))
        else:
            out.update({"dispatch": None, "imports": None})
        out["info"] = self.info
        return out


def precheck(problem: Problem, state: State, spec: str) -> Record | None:
    """The record of a state no solver needs to see (infeasible by the exact pre-check), or None."""
    why = _infeasibility_reason(problem, state)
    if not why:
        return None
    return Record(
        state=state.label,
        solver=spec,
        status=Status.INFEASIBLE,
        cost=None,
        max_violation=None,
        time_s=0.0,
        reason=f"state infeasible: {why}",
    )


def score_answer(problem: Problem, state: State, answer: Answer, spec: str, exact: bool) -> Record:
    """Turn a raw answer into a record whose cost and feasibility come from the evaluator.

    ``exact`` is the plugin's declared capability: only an exact method's ``optimal`` claim is
    kept (after the evaluator agrees the dispatch is feasible); anything else is ``feasible``.
    """
    info = dict(answer.info)

    def record(
        status: Status, cost: float | None, max_violation: float | None, reason: str, dispatch: Dispatch | None = None
    ) -> Record:
        return Record(
            state=state.label,
            solver=spec,
            status=status,
            cost=cost,
            max_violation=max_violation,
            time_s=answer.time_s,
            reason=reason,
            dispatch=dispatch,
            info=info,
        )

    if answer.dispatch is None:
        status = answer.status if answer.status in {Status.INFEASIBLE, Status.TIMEOUT, Status.ERROR} else Status.ERROR
        reason = answer.message or ("no dispatch returned" if status == Status.ERROR else "")
        if status == Status.INFEASIBLE:
            why = _infeasibility_reason(problem, state)
            reason = (
                f"state infeasible: {why}"
                if why
                else f"solver reported infeasible, but the state is feasible ({reason})"
            )
        return record(status, None, None, reason)
    try:
        ev = _evaluate(problem, state, answer.dispatch)
    except ValueError as exc:
        return record(Status.ERROR, None, None, f"unusable dispatch: {exc}")
    info["evaluated_cost"] = ev.cost
    if not ev.feasible:
        reason = violation_reason(ev.worst, ev.max_violation, ev.tolerance)
        if answer.status == Status.TIMEOUT:
            reason = f"time limit reached; {reason}"
        return record(Status.INFEASIBLE, None, ev.max_violation, reason, answer.dispatch)
    reason = answer.message if answer.status == Status.TIMEOUT else ""
    return record(success_status(answer.status, exact), ev.cost, ev.max_violation, reason, answer.dispatch)


_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _plugin_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback in the plugin's own code (not in this package, whose
    line — a check in ``Dispatch.from_power``, say — tells the plugin's author nothing); the
    innermost frame of all when every frame is the package's."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if not path.is_relative_to(_PACKAGE_DIR) or path.is_relative_to(_PACKAGE_DIR / "solvers"):
            return frame
    return frames[-1] if frames else None


def crash_answer(exc: BaseException, elapsed: float, where: str = "") -> Answer:
    """An ``error`` answer naming the exception and the plugin's line it came from, prefixed with
    ``where`` (``merit_order.solve: state 'tableIV': ``); the full traceback is kept in
    ``info["traceback"]`` (``--traceback`` prints it)."""
    if isinstance(exc, PluginAnswerError):  # names the plugin and what it returned already
        where, msg = "", str(exc)
    elif isinstance(exc, DispatchShapeError):  # already in the plugin's terms
        msg = str(exc)
    else:
        msg = f"raised {type(exc).__name__}: {exc}".strip() if where else f"{type(exc).__name__}: {exc}".strip()
    frame = _plugin_frame(exc)
    at = f" (at {frame.filename}:{frame.lineno})" if frame and not isinstance(exc, PluginAnswerError) else ""
    what, fix, how = msg.partition(" — fix: ")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Answer(None, Status.ERROR, where + what + at + fix + how, elapsed, {"traceback": text})


def solve_and_score(
    problem: Problem, states: Sequence[State], solver: Solver, *, seed: int = 0, time_limit: float | None = None
) -> list[Record]:
    """Pre-check every state, solve the feasible ones, score every answer.

    Infeasible states are reported with the pre-check's reason and never reach the solver, so
    one bad interval cannot stop a day. A solver that raises is recorded as ``error`` for the
    states it was given. The solver gets deep copies of the problem and states; scoring uses
    the originals.
    """
    records: dict[int, Record] = {}
    todo: list[int] = []
    skip = solver.skip(copy.deepcopy(problem))
    for i, state in enumerate(states):
        if skip:
            records[i] = Record(
                state=state.label,
                solver=solver.spec,
                status=Status.ERROR,
                cost=None,
                max_violation=None,
                time_s=0.0,
                reason=f"skipped: {skip}",
            )
            continue
        checked = precheck(problem, state, solver.spec)
        if checked is not None:
            records[i] = checked
        else:
            todo.append(i)
    if todo:
        start = time.perf_counter()
        try:
            handed = copy.deepcopy((problem, [states[i] for i in todo]))
            given = [states[i] for i in todo]
            answers = checked_answers(
                solver.name, problem, given, solver.solve(handed[0], handed[1], seed=seed, time_limit=time_limit)
            )
        except Exception as exc:  # a crashing backend is a result, not a crash of the run
            answers = [
                crash_answer(
                    exc, (time.perf_counter() - start) / len(todo), f"{solver.name}.solve: state {states[i].label!r}: "
                )
                for i in todo
            ]
        for i, answer in zip(todo, answers):
            try:
                answer = answer_from_raw(problem, json.loads(json.dumps(raw_answer(answer))))
            except (TypeError, ValueError, AttributeError) as exc:
                answer = Answer(dispatch=None, status=Status.ERROR, message=f"unusable answer: {exc}")
            records[i] = score_answer(problem, states[i], answer, solver.spec, solver.capabilities.exact)
    label = label_of(solver)
    for record in records.values():
        record.label = label
    return [records[i] for i in range(len(states))]


# ---- the raw numbers a cell's child sends back ----------------------------------------------------


def raw_answer(answer: Answer) -> dict[str, Any]:
    """An answer as plain JSON values: the plugin's status claim, on/off, powers, imports, its
    message, info and its own time. No cost: the plugin's objective never travels."""
    d = answer.dispatch
    info = json.loads(json.dumps(answer.info if isinstance(answer.info, dict) else {}, default=json_default))
    return {
        "status": str(answer.status),  # a Status is a str: its value
        "message": str(answer.message or ""),
        "time_s": float(answer.time_s or 0.0),
        "info": info,
        "on": None if d is None else [bool(x) for x in np.asarray(d.on).ravel()],
        "power": None if d is None else [float(x) for x in np.asarray(d.power, dtype=float).ravel()],
        "imports": None if d is None else [float(x) for x in np.asarray(d.imports, dtype=float).ravel()],
    }


def _floats(values: Any, n: int, what: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(f"{what} must be a list of {n} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} holds a value that is not a number")
    return np.array(values, dtype=float)


def answer_from_raw(problem: Problem, raw: Any) -> Answer:
    """Rebuild an :class:`Answer` from :func:`raw_answer`'s output, checking every field (shape,
    type); a malformed one raises ``ValueError``. Non-finite numbers pass through: the evaluator
    rejects them with its own reason."""
    if not isinstance(raw, dict):
        raise ValueError("answer is not an object")
    status = raw.get("status")
    if not isinstance(status, str) or status not in set(Status):
        raise ValueError(f"status {status!r} is not one of {', '.join(s.value for s in Status)}")
    time_s = raw.get("time_s", 0.0)
    time_s = float(time_s) if isinstance(time_s, (int, float)) and math.isfinite(time_s) else 0.0
    raw_info = raw.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    dispatch = None
    if raw.get("power") is not None or raw.get("on") is not None or raw.get("imports") is not None:
        n_groups, n_regions = len(problem.groups), len(problem.regions)
        on = raw.get("on")
        if not isinstance(on, list) or len(on) != n_groups or not all(isinstance(v, bool) for v in on):
            raise ValueError(f"on/off must be a list of {n_groups} booleans")
        dispatch = Dispatch(
            on=np.array(on, dtype=bool),
            power=_floats(raw.get("power"), n_groups, "power"),
            imports=_floats(raw.get("imports"), n_regions, "imports"),
        )
    return Answer(
        dispatch=dispatch, status=Status(status), message=str(raw.get("message") or ""), time_s=time_s, info=info
    )
