"""What a plugin's ``solve`` returned, checked at the boundary and refused in the plugin's terms.

Without these checks a plugin author's mistake surfaced deep inside the package, in its words:
a ``Dispatch`` returned instead of an ``Answer`` was an ``AttributeError`` in the scorer, power
for 7 groups instead of 9 a NumPy ``matmul`` complaint. Every answer passes through
:func:`checked_answers` before it is turned into numbers and scored (in the cell's child for
``solve`` and ``run``, in the calling process for a ``Solver`` object), so each mistake becomes
one line naming the plugin, the state, the field and the fix:
``merit_order.solve: state 'tableIV': power has 7 entries, expected 9 (FDC1 … ASC9)``.

An answer that breaks the contract becomes an ``error`` answer carrying that line; a return
value that is not one answer per state (a bare ``Dispatch``, two answers for one state) raises
:class:`PluginAnswerError` for the whole call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dispatchbench.contract.solver import Answer
from dispatchbench.contract.status import Status
from dispatchbench.model.dispatch import Dispatch, name_span
from dispatchbench.model.problem import Problem, State

WRAP_FIX = "fix: return [Answer(Dispatch.from_power(problem, state, power), Status.FEASIBLE)], one per state"


class PluginAnswerError(ValueError):
    """``solve`` returned something that is not one :class:`Answer` per state; the message is
    one line in the plugin's terms (which plugin, what it returned, the fix)."""


def _kind(value: Any) -> str:
    return type(value).__name__


def _vector_problem(what: str, value: Any, names: Sequence[str], numbers: bool) -> str | None:
    """Why ``value`` is not one entry per name (finite numbers when ``numbers``), or None."""
    try:
        array = np.asarray(value, dtype=float if numbers else None)
    except (TypeError, ValueError):
        return f"{what} holds a value that is not a number — fix: one float per entry ({name_span(names)})"
    if array.ndim != 1:
        return (
            f"{what} has shape {array.shape}, expected {len(names)} entries ({name_span(names)}) — fix: a flat vector"
        )
    if len(array) != len(names):
        return f"{what} has {len(array)} entries, expected {len(names)} ({name_span(names)})"
    if numbers:
        bad = [i for i, v in enumerate(array) if not math.isfinite(v)]
        if bad:
            return f"{what}[{bad[0]}] ({names[bad[0]]}) is {array[bad[0]]} — fix: finite numbers only"
    return None


def answer_problem(problem: Problem, answer: Any) -> str | None:
    """The first way ``answer`` breaks the contract, as ``what — fix: how``; None when it keeps it."""
    if isinstance(answer, Dispatch):
        return "returned a Dispatch, not an Answer — fix: wrap it: Answer(dispatch, Status.FEASIBLE)"
    if not isinstance(answer, Answer):
        return f"returned a {_kind(answer)}, not an Answer — {WRAP_FIX}"
    try:
        status = Status(answer.status)
    except ValueError:
        return f"status {answer.status!r} is not one of {', '.join(s.value for s in Status)}"
    if not isinstance(answer.info, dict):
        return f"info is a {_kind(answer.info)}, not a dict — fix: info={{'key': value, ...}} or leave it out"
    if isinstance(answer.time_s, bool) or not isinstance(answer.time_s, (int, float)) or not answer.time_s >= 0:
        return f"time_s is {answer.time_s!r}, not a number of seconds — fix: a float >= 0, or leave it out"
    dispatch = answer.dispatch
    if dispatch is None:
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            return (
                f"status {status.value!r} without a dispatch — fix: give the Dispatch, or status "
                "infeasible, timeout or error with a message"
            )
        return None
    if not isinstance(dispatch, Dispatch):
        return f"dispatch is a {_kind(dispatch)}, not a Dispatch — fix: Dispatch.from_power(problem, state, power)"
    groups, regions = problem.group_names, problem.region_names
    return (
        _vector_problem("power", dispatch.power, groups, numbers=True)
        or _vector_problem("on", dispatch.on, groups, numbers=False)
        or _vector_problem("imports", dispatch.imports, regions, numbers=True)
    )


def checked_answers(name: str, problem: Problem, states: Sequence[State], answers: Any) -> list[Answer]:
    """``answers`` when they keep the contract; an answer that breaks it is replaced by an
    ``error`` answer whose message is ``NAME.solve: state 'LABEL': what — fix: how``.

    Raises :class:`PluginAnswerError` when ``answers`` is not a list of one answer per state."""
    n = len(states)
    if isinstance(answers, (Answer, Dispatch)):
        raise PluginAnswerError(f"{name}.solve returned a {_kind(answers)}, not a list of Answer — {WRAP_FIX}")
    if isinstance(answers, (str, bytes, dict)) or not isinstance(answers, Sequence):
        raise PluginAnswerError(f"{name}.solve returned a {_kind(answers)}, not a list of Answer — {WRAP_FIX}")
    if len(answers) != n:
        raise PluginAnswerError(
            f"{name}.solve returned {len(answers)} answers for {n} state{'s' if n != 1 else ''}"
            " — fix: one Answer per state, in the order given"
        )
    out: list[Answer] = []
    for state, answer in zip(states, answers):
        why = answer_problem(problem, answer)
        if why is None:
            out.append(answer)
        else:
            out.append(Answer(None, Status.ERROR, message=f"{name}.solve: state {state.label!r}: {why}"))
    return out
