"""The one evaluator: cost recomputed from a dispatch, every constraint's violation measured.

No table, report or command prints a cost from anywhere else. A backend's own objective
value is never trusted: backends differ in how they model commitment and tolerances, and
the comparison is only fair if one piece of code applies the formulation to all of them.

The formulas are written once, for a batch of dispatches (:func:`evaluate_many`): re-scoring a
results folder of 50,000 rows one call at a time costs tens of seconds in NumPy's per-call
overhead, in one batch well under a second. :func:`evaluate` is that same code on a batch of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State

CONSTRAINTS = ("regional_balance", "grid_conservation", "cs_limit", "running_range", "v2g_availability")
# how a message names each family's largest violation ("regional balance at B")
_LOCATION = {
    "regional_balance": "regional balance",
    "grid_conservation": "grid conservation (sum of imports)",
    "cs_limit": "CS limit",
    "running_range": "running range",
    "v2g_availability": "V2G availability",
}


@dataclass(frozen=True)
class Evaluation:
    """The evaluator's verdict on one dispatch at one state."""

    cost: float  # recomputed objective (eq. 9), whatever the feasibility
    violations: dict[str, float]  # largest violation per constraint family, kW
    worst: str  # human-readable location of the largest violation ("" if none)
    tolerance: float
    group_costs: np.ndarray = field(repr=False)
    fed_back: np.ndarray = field(repr=False)  # F per group (0 for FDC/ASC)
    losses: np.ndarray = field(repr=False)  # L per group (0 for FDC/ASC)

    @property
    def max_violation(self) -> float:
        return max(self.violations.values())

    @property
    def feasible(self) -> bool:
        return self.max_violation <= self.tolerance


@dataclass(frozen=True)
class Evaluations:
    """The evaluator's verdicts on N dispatches, row ``i`` being dispatch ``i`` at state ``i``.

    ``finite`` is false for a dispatch holding NaN or an infinity: such a row has no verdict
    (its numbers are meaningless), and :meth:`one` refuses it as :func:`evaluate` does.
    """

    problem: Problem = field(repr=False)
    cost: np.ndarray  # (N,)
    violations: dict[str, np.ndarray]  # family -> (N,) largest violation, kW
    family_values: dict[str, np.ndarray] = field(repr=False)  # family -> (N, regions or groups) per entry
    tolerance: np.ndarray  # (N,)
    finite: np.ndarray  # (N,) bool
    group_costs: np.ndarray = field(repr=False)  # (N, G)
    fed_back: np.ndarray = field(repr=False)  # (N, G)
    losses: np.ndarray = field(repr=False)  # (N, G)

    def __len__(self) -> int:
        return len(self.cost)

    @property
    def max_violation(self) -> np.ndarray:
        return np.max(np.column_stack([self.violations[c] for c in CONSTRAINTS]), axis=1)

    @property
    def feasible(self) -> np.ndarray:
        return self.finite & (self.max_violation <= self.tolerance)

    def worst(self, i: int) -> str:
        """Where row ``i``'s largest violation is ("regional balance at B"), "" if it has none."""
        family = max(CONSTRAINTS, key=lambda c: self.violations[c][i])  # the first family on a tie
        if not self.violations[family][i] > 0:
            return ""
        if family == "grid_conservation":
            return _LOCATION[family]
        names = self.problem.region_names if family in ("regional_balance", "cs_limit") else self.problem.group_names
        return f"{_LOCATION[family]} at {names[int(np.argmax(self.family_values[family][i]))]}"

    def one(self, i: int) -> Evaluation:
        if not self.finite[i]:
            raise ValueError("dispatch contains NaN or infinite values")
        return Evaluation(
            cost=float(self.cost[i]),
            violations={c: float(self.violations[c][i]) for c in CONSTRAINTS},
            worst=self.worst(i),
            tolerance=float(self.tolerance[i]),
            group_costs=self.group_costs[i],
            fed_back=self.fed_back[i],
            losses=self.losses[i],
        )


def group_costs(problem: Problem, on: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Per-group cost ``u (a P^2 + b P + c)`` (V2G: ``a = 0, b = g, c = h``); any leading batch axes."""
    on = np.ones_like(on, dtype=bool) if not problem.commitment else np.asarray(on, dtype=bool)
    return np.where(on, problem.a * power**2 + problem.b * power + problem.c, 0.0)


def evaluate(problem: Problem, state: State, dispatch: Dispatch) -> Evaluation:
    """Score ``dispatch`` at ``state`` against the formulation (see ``docs/model.md``).

    With commitment switched off every group counts as on, whatever ``dispatch.on`` says.
    """
    n_groups, n_regions = len(problem.groups), len(problem.regions)
    batch = evaluate_many(
        problem,
        [state],
        np.asarray(dispatch.on, dtype=bool).reshape(1, n_groups),
        np.asarray(dispatch.power, dtype=float).reshape(1, n_groups),
        np.asarray(dispatch.imports, dtype=float).reshape(1, n_regions),
    )
    return batch.one(0)


def evaluate_many(
    problem: Problem, states: Sequence[State], on: np.ndarray, power: np.ndarray, imports: np.ndarray
) -> Evaluations:
    """Score N dispatches at once: ``on``/``power`` are ``(N, groups)``, ``imports`` ``(N, regions)``
    and ``states[i]`` the state of row ``i`` (the same state object may serve many rows)."""
    on = np.asarray(on, dtype=bool)
    power = np.asarray(power, dtype=float)
    imports = np.asarray(imports, dtype=float)
    n = len(states)
    if on.shape != (n, len(problem.groups)) or power.shape != on.shape or imports.shape != (n, len(problem.regions)):
        raise ValueError(f"a batch of {n} dispatches needs on/power of ({n}, groups) and imports of ({n}, regions)")
    if not problem.commitment:
        on = np.ones_like(on)
    finite = np.isfinite(power).all(axis=1) & np.isfinite(imports).all(axis=1)
    if not finite.all():  # a non-finite row gets no verdict; zeros keep warnings out of the others
        power = np.where(finite[:, None], power, 0.0)
        imports = np.where(finite[:, None], imports, 0.0)

    demand, available, tolerance = _state_arrays(problem, states)
    families: dict[str, np.ndarray] = {
        "regional_balance": np.abs(power @ problem.incidence.T + imports - demand),
        "grid_conservation": np.abs(imports.sum(axis=1, keepdims=True)),
        "cs_limit": np.maximum(np.abs(imports) - problem.cs_max, 0.0),
        "running_range": np.maximum(
            np.maximum(np.where(on, problem.p_min - power, power), np.where(on, power - problem.p_max, -power)), 0.0
        ),  # off: must be exactly 0
        "v2g_availability": np.where(problem.is_v2g, np.maximum(power - available, 0.0), 0.0),
    }
    violations = {
        name: np.maximum(values.max(axis=1), 0.0) if values.shape[1] else np.zeros(n)
        for name, values in families.items()
    }
    costs = group_costs(problem, on, power)
    fed = np.where(problem.is_v2g, problem.delivery * power, 0.0)
    return Evaluations(
        problem=problem,
        cost=costs.sum(axis=1),
        violations=violations,
        family_values=families,
        tolerance=tolerance,
        finite=finite,
        group_costs=costs,
        fed_back=fed,
        losses=np.where(problem.is_v2g, power - fed, 0.0),
    )


def _state_arrays(problem: Problem, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: demand ``(N, regions)``, V2G availability ``(N, groups)`` (inf where not V2G) and the
    tolerance, each distinct state worked out once."""
    if len(states) == 1:  # evaluate(): one state, no bookkeeping
        s = states[0]
        one_available = [s.v2g_available.get(g.name, np.inf) for g in problem.groups]
        return (
            problem.demand_vector(s)[None, :],
            np.array([one_available], dtype=float),
            np.array([problem.tolerance(s)]),
        )
    first: dict[int, int] = {}
    rows = np.array([first.setdefault(id(s), len(first)) for s in states], dtype=int)
    unique = list({id(s): s for s in states}.values())
    demand = np.array([problem.demand_vector(s) for s in unique], dtype=float).reshape(len(unique), -1)
    available = np.array(
        [[s.v2g_available.get(g.name, np.inf) for g in problem.groups] for s in unique], dtype=float
    ).reshape(len(unique), len(problem.groups))
    tolerance = np.array([problem.tolerance(s) for s in unique], dtype=float)
    return demand[rows], available[rows], tolerance[rows]
