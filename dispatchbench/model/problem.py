"""The problem model: regions, charger groups and one interval's state.

Every backend compiles from these objects and the evaluator scores against them, so they
carry the data only; the meaning of each field is the formulation in ``docs/model.md``.
The vector views (``group_region``, ``p_min`` ...) exist because NumPy-based backends and the
evaluator all want the same arrays and must not each rebuild them slightly differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np

from dispatchbench.model.tolerance import feasibility_tolerance


class GroupType(str, Enum):  # noqa: UP042 (str() of a StrEnum member differs; files and rows keep the value)
    """Charger-group types of the paper: fast DC, AC slow, bidirectional V2G."""

    FDC = "FDC"
    ASC = "ASC"
    V2G = "V2G"


@dataclass(frozen=True)
class Region:
    """A region with its charging-station dispatch centre (CS) to the main grid."""

    name: str
    cs_max: float  # kW, limit on |net import| through the CS (eq. 8)


@dataclass(frozen=True)
class Group:
    """One charger group, one agent.

    FDC/ASC groups use ``a, b, c, p_min, p_max`` (quadratic cost, running range when on).
    V2G groups use ``g, h, efficiency, p_max`` (linear cost on battery-side power ``x``;
    ``p_min`` is 0). For an ASC, ``p_min = min_ratio * p_max`` is resolved at load time so
    that every consumer sees one running range.
    """

    name: str
    type: GroupType
    region: str
    p_max: float
    p_min: float = 0.0
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    g: float = 0.0
    h: float = 0.0
    efficiency: float = 1.0
    min_ratio: float | None = None
    h_max: float | None = None  # Table III's heat column: kept, unused by the model

    @property
    def is_v2g(self) -> bool:
        return self.type is GroupType.V2G

    @property
    def fixed_cost(self) -> float:
        """Cost of being on at zero output (c for FDC/ASC, h for V2G)."""
        return self.h if self.is_v2g else self.c

    @property
    def linear_cost(self) -> float:
        return self.g if self.is_v2g else self.b

    @property
    def quadratic_cost(self) -> float:
        return 0.0 if self.is_v2g else self.a

    @property
    def delivery(self) -> float:
        """kW delivered into the region per kW of the group's decision variable."""
        return self.efficiency if self.is_v2g else 1.0


@dataclass(frozen=True)
class State:
    """One 15-minute interval: regional demand and V2G availability (kW)."""

    label: str
    demand: dict[str, float]  # region -> d_I
    v2g_available: dict[str, float] = field(default_factory=dict)  # V2G group -> v_g

    @property
    def total_demand(self) -> float:
        return float(sum(self.demand.values()))


@dataclass(frozen=True)
class Problem:
    """A charging-dispatch instance: regions, groups and whether commitment is modelled."""

    name: str
    regions: tuple[Region, ...]
    groups: tuple[Group, ...]
    commitment: bool = True
    source: str = ""  # file it was loaded from, for messages

    # ---- index helpers -------------------------------------------------------------
    @cached_property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    @cached_property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @cached_property
    def v2g_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups if g.is_v2g)

    @cached_property
    def region_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.region_names)}

    def groups_in(self, region: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.region == region)

    # ---- vector views (one entry per group, in file order) ---------------------------
    @cached_property
    def group_region(self) -> np.ndarray:
        return np.array([self.region_index[g.region] for g in self.groups], dtype=int)

    @cached_property
    def is_v2g(self) -> np.ndarray:
        return np.array([g.is_v2g for g in self.groups], dtype=bool)

    @cached_property
    def a(self) -> np.ndarray:
        return np.array([g.quadratic_cost for g in self.groups], dtype=float)

    @cached_property
    def b(self) -> np.ndarray:
        return np.array([g.linear_cost for g in self.groups], dtype=float)

    @cached_property
    def c(self) -> np.ndarray:
        return np.array([g.fixed_cost for g in self.groups], dtype=float)

    @cached_property
    def p_min(self) -> np.ndarray:
        return np.array([g.p_min for g in self.groups], dtype=float)

    @cached_property
    def p_max(self) -> np.ndarray:
        return np.array([g.p_max for g in self.groups], dtype=float)

    @cached_property
    def delivery(self) -> np.ndarray:
        return np.array([g.delivery for g in self.groups], dtype=float)

    @cached_property
    def cs_max(self) -> np.ndarray:
        return np.array([r.cs_max for r in self.regions], dtype=float)

    @cached_property
    def incidence(self) -> np.ndarray:
        """``(regions x groups)`` matrix: delivered kW into each region per unit decision."""
        m = np.zeros((len(self.regions), len(self.groups)))
        m[self.group_region, np.arange(len(self.groups))] = self.delivery
        return m

    # ---- state helpers ---------------------------------------------------------------
    def demand_vector(self, state: State) -> np.ndarray:
        return np.array([state.demand[r] for r in self.region_names], dtype=float)

    def upper_bounds(self, state: State) -> np.ndarray:
        """Largest decision per group in this state: ``p_max``, or ``min(p_max, v_g)`` for V2G."""
        ub = self.p_max.copy()
        for i, g in enumerate(self.groups):
            if g.is_v2g:
                ub[i] = min(g.p_max, state.v2g_available[g.name])
        return ub

    def lower_bounds(self) -> np.ndarray:
        """Least decision per group while on (V2G may run at 0)."""
        return self.p_min.copy()

    def tolerance(self, state: State) -> float:
        """Feasibility tolerance of the spec, in kW (:func:`~dispatchbench.model.tolerance.feasibility_tolerance`)."""
        return feasibility_tolerance(state.total_demand)
