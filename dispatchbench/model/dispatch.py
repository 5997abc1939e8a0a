"""A dispatch: what every backend returns for one state, and what the evaluator scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchbench.model.problem import Problem, State


def name_span(names: Sequence[str]) -> str:
    """``FDC1 … ASC9`` for a long list, every name for a short one: enough for a plugin author
    to see which order a vector follows without a wall of names in a one-line error."""
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"


class DispatchShapeError(ValueError):
    """A vector handed to :meth:`Dispatch.from_power` has the wrong length: said in the plugin's
    terms (which vector, how many entries, which names it should follow) instead of NumPy's
    ``matmul`` complaint about core dimensions."""


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
        names = problem.group_names
        for what, vector in (("power", power), ("on", on)):
            if vector is None:
                continue
            size = len(vector) if np.ndim(vector) == 1 else np.size(vector)
            if np.ndim(vector) != 1 or size != len(names):
                raise DispatchShapeError(
                    f"Dispatch.from_power: {what} has {size} entries, expected {len(names)} ({name_span(names)})"
                    " — fix: one value per group, in problem.group_names order"
                )
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
