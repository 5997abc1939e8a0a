"""A dispatch: what every backend returns for one state, and what the evaluator scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchbench.model.problem import Problem, State


@dataclass(frozen=True)
class Dispatch:
    """Commitment, power per group (battery-side ``x`` for V2G) and net import per region.

    Arrays follow the problem's group / region order.
    """

    on: np.ndarray  # bool, per group
    power: np.ndarray  # kW, per group
    imports: np.ndarray  # kW, per region (T_I > 0: region draws from the grid)

    @classmethod
    def from_power(cls, problem: Problem, state: State, power: np.ndarray, on: np.ndarray | None = None) -> Dispatch:
        """Complete a dispatch from powers alone: commitment from ``power > 0`` (if not given)
        and imports as whatever each region's local supply leaves of its demand.

        Backends that decide only powers (NLopt, PSO, agents) use this, so the evaluator
        then checks whether those imports respect the CS limits and sum to zero.
        """
        power = np.asarray(power, dtype=float)
        if on is None:
            on = power > 0
        if not problem.commitment:
            on = np.ones(len(problem.groups), dtype=bool)
        imports = problem.demand_vector(state) - problem.incidence @ power
        return cls(on=np.asarray(on, dtype=bool), power=power, imports=imports)

    def to_json(self, problem: Problem) -> dict[str, Any]:
        return {
            "dispatch": {
                g: {"on": bool(self.on[i]), "power": float(self.power[i])} for i, g in enumerate(problem.group_names)
            },
            "imports": {r: float(self.imports[i]) for i, r in enumerate(problem.region_names)},
        }

    @classmethod
    def from_json(cls, problem: Problem, data: dict[str, Any]) -> Dispatch:
        groups = data["dispatch"]
        return cls(
            on=np.array([bool(groups[g]["on"]) for g in problem.group_names]),
            power=np.array([float(groups[g]["power"]) for g in problem.group_names]),
            imports=np.array([float(data["imports"][r]) for r in problem.region_names]),
        )
