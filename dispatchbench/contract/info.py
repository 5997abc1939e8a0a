"""The ``info`` of an answer: which of a backend's details the package reads, and their types.

A plugin may put anything JSON can hold into ``Answer.info``; it is stored with the row as it
came. The keys below are the ones the harness writes or a report, table or benchmark reads, so a
plugin that wants its messages counted or its bound shown uses these names and types. Reading
goes through :func:`read_info`, which keeps only documented keys whose value has the documented
type: a row's ``info`` came from plugin code, and a ``"messages": "many"`` must read as absent,
not crash a report or be averaged as text.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypedDict


class AnswerInfo(TypedDict, total=False):
    """Documented keys of ``Answer.info`` and of a results row's ``info`` (every key optional)."""

    # written by a plugin
    messages: int  # scalars the distributed search sent for this decision (scaling report)
    iterations: int  # rounds an iterative method ran for this decision (price updates, ADMM steps, clearings)
    dual_bound: float | None  # an exact method's lower bound on the cost (scaling report: gap to bound)
    primal_bound: float | None  # the method's own objective of its incumbent (never shown as a cost)
    gap: float | None  # relative primal-dual gap the method reached
    rel_gap: float  # the relative gap the method was asked for
    build_s: float  # model build time of this state (SCIP; benchmarks/bench_scip.py)
    solve_s: float  # solve time after the build
    decision_s: float  # time of one decision, all agents and the search (learned methods)
    decision_s_batched: float  # the same when a batch of states is decided at once, per state
    time_limit_reached: bool  # the answer is the best one found when the limit struck
    time_budget_s: float | None  # the per-state time the method was given (None: no limit)
    stopped_at_budget: bool  # the method stopped because its budget ran out (anytime answer or timeout)
    note: str  # why a feasible answer is only that (a limit, a gap): kept where ``reason`` is not
    commitment_repaired: int  # commitment changes a repair made after the policy (learned methods)
    moved_mean_kw: float  # mean power the balancing search moved away from the policy's proposal
    moved_max_kw: float  # the largest such move
    # written by the harness, never by a plugin (a plugin's own value is overwritten)
    solver_time_s: float  # the plugin's own ``Answer.time_s``
    prepare_s: float  # the cell's one-off ``prepare`` (model loading), outside every state's time
    evaluated_cost: float  # the evaluator's cost of the dispatch, feasible or not


INFO_TYPES: dict[str, Any] = typing.get_type_hints(AnswerInfo)


def _fits(value: Any, kind: Any) -> bool:
    """``value`` is of the documented ``kind`` (``int`` never a bool; a float may be given as an int)."""
    if isinstance(kind, types.UnionType):
        return any(_fits(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def read_info(value: Any) -> AnswerInfo:
    """The documented fields of an answer's or a row's ``info`` (a dict, or the JSON text a
    results table holds), each of its documented type; anything else is left out."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return AnswerInfo()
    if not isinstance(value, Mapping):
        return AnswerInfo()
    out: dict[str, Any] = {}
    for key, kind in INFO_TYPES.items():
        if key in value and _fits(value[key], kind):
            item = value[key]
            if isinstance(item, int) and not isinstance(item, bool) and _fits(1.5, kind):
                item = float(item)  # a float field given as a JSON integer
            out[key] = item
    return typing.cast(AnswerInfo, out)
