"""The five outcomes of one (solver, state), defined once.

A status is what a row says happened; the tables, the harness's progress line, the scoring rules
and the reports all branch on it, so it is one enum rather than strings spelled in each of them.
It is a ``StrEnum``: a status compares equal to its value (``Status.FEASIBLE == "feasible"``),
so rows keep storing plain strings and older rows read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A backend's claim in an :class:`~dispatchbench.contract.solver.Answer`, and after scoring
    the verdict of a row (docs/model.md, "Statuses")."""

    OPTIMAL = "optimal"  # an exact method certified it, and the evaluator finds it feasible
    FEASIBLE = "feasible"  # the evaluator finds it feasible; optimality not certified
    INFEASIBLE = "infeasible"  # the state (pre-check or solver) or the dispatch (evaluator)
    TIMEOUT = "timeout"  # stopped at a limit without a dispatch
    ERROR = "error"  # raised, declined (skip), or returned nothing usable


SUCCESS: frozenset[Status] = frozenset({Status.OPTIMAL, Status.FEASIBLE})  # a row with a cost
FAILURES: tuple[Status, ...] = (Status.INFEASIBLE, Status.TIMEOUT, Status.ERROR)  # in table-column order
