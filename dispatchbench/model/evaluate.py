"""The one evaluator: cost recomputed from a dispatch, every constraint's violation measured.

No table, report or command prints a cost from anywhere else. A backend's own objective
value is never trusted: backends differ in how they model commitment and tolerances, and
the comparison is only fair if one piece of code applies the formulation to all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State

CONSTRAINTS = ("regional_balance", "grid_conservation", "cs_limit", "running_range", "v2g_availability")


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


def group_costs(problem: Problem, on: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Per-group cost ``u (a P^2 + b P + c)`` (V2G: ``a = 0, b = g, c = h``)."""
    on = np.ones_like(on, dtype=bool) if not problem.commitment else np.asarray(on, dtype=bool)
    return np.where(on, problem.a * power**2 + problem.b * power + problem.c, 0.0)


def evaluate(problem: Problem, state: State, dispatch: Dispatch) -> Evaluation:
    """Score ``dispatch`` at ``state`` against the formulation (see ``docs/model.md``).

    With commitment switched off every group counts as on, whatever ``dispatch.on`` says.
    """
    n_groups, n_regions = len(problem.groups), len(problem.regions)
    on = np.asarray(dispatch.on, dtype=bool).reshape(n_groups)
    power = np.asarray(dispatch.power, dtype=float).reshape(n_groups)
    imports = np.asarray(dispatch.imports, dtype=float).reshape(n_regions)
    if not problem.commitment:
        on = np.ones(n_groups, dtype=bool)
    if not (np.all(np.isfinite(power)) and np.all(np.isfinite(imports))):
        raise ValueError("dispatch contains NaN or infinite values")

    located: dict[str, tuple[float, str]] = {}

    def record(family: str, values: np.ndarray, names: tuple[str, ...], what: str) -> None:
        k = int(np.argmax(values)) if len(values) else 0
        worst = float(values[k]) if len(values) else 0.0
        located[family] = (max(worst, 0.0), f"{what} at {names[k]}" if len(values) else "")

    demand = problem.demand_vector(state)
    balance = np.abs(problem.incidence @ power + imports - demand)
    record("regional_balance", balance, problem.region_names, "regional balance")
    located["grid_conservation"] = (abs(float(imports.sum())), "grid conservation (sum of imports)")
    record("cs_limit", np.maximum(np.abs(imports) - problem.cs_max, 0.0), problem.region_names, "CS limit")
    below = np.where(on, problem.p_min - power, power)  # off: must be exactly 0
    above = np.where(on, power - problem.p_max, -power)
    record("running_range", np.maximum(np.maximum(below, above), 0.0), problem.group_names, "running range")
    avail = np.array([state.v2g_available.get(g.name, np.inf) for g in problem.groups])
    record(
        "v2g_availability",
        np.where(problem.is_v2g, np.maximum(power - avail, 0.0), 0.0),
        problem.group_names,
        "V2G availability",
    )

    violations = {name: v for name, (v, _) in located.items()}
    worst_family = max(violations, key=violations.__getitem__)
    worst = located[worst_family][1] if violations[worst_family] > 0 else ""
    costs = group_costs(problem, on, power)
    fed = np.where(problem.is_v2g, problem.delivery * power, 0.0)
    return Evaluation(
        cost=float(costs.sum()),
        violations=violations,
        worst=worst,
        tolerance=problem.tolerance(state),
        group_costs=costs,
        fed_back=fed,
        losses=np.where(problem.is_v2g, power - fed, 0.0),
    )
