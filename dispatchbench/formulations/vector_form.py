"""The dispatch for one state and one *fixed* commitment, as plain vectors.

Continuous optimisers (NLopt) and swarms (PSO) cannot branch on on/off decisions; they work
on a commitment chosen outside and the powers of the groups that run. Both need the same two
things, kept here so they are built one way only:

- :func:`shortfall` — how many kW an on/off pattern is short of serving the state (0 when it
  can), batched over patterns. For a fixed commitment every region's local supply is one
  interval ``[Σ lb, Σ δ·ub]`` (the running groups are continuous), so the pattern can serve
  the state exactly when each region's interval meets its CS window ``[d − cs, d + cs]`` and
  total demand lies in the sum of those intersections. This is the fixed-commitment case of
  ``feasibility.py`` (which takes the union over all commitments), vectorised so 2^G patterns
  or a whole swarm are checked in one call; its size is also the PSO penalty.
- :class:`VectorForm` — bounds, cost with its analytic gradient, the system balance as one
  linear equality, and the CS limits as linear inequalities, over ``x`` = powers of the
  running groups. The imports are eliminated (``T_I = d_I − local_I``): the regional balances
  then hold by construction, ``Σ T = 0`` becomes ``Σ δ·x = Σ d`` and ``|T_I| ≤ cs_I`` becomes
  ``|d_I − local_I| ≤ cs_I``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State


def all_patterns(n_groups: int) -> np.ndarray:
    """Every on/off pattern of ``n_groups`` groups, ``(2^n, n)`` bool, all-on first."""
    codes = np.arange(2**n_groups)[::-1]
    return ((codes[:, None] >> np.arange(n_groups)) & 1).astype(bool)


def shortfall(problem: Problem, state: State, on: np.ndarray) -> np.ndarray:
    """kW by which each pattern in ``on`` (``(B, G)`` bool) misses serving ``state``; 0 = it can.

    Sums each region's distance to its CS window and the system's distance from total demand,
    so it grows with how far a commitment is from workable (a usable penalty, not just a flag).
    """
    on = np.atleast_2d(np.asarray(on, dtype=bool))
    delivered = problem.incidence.T  # (G, R)
    lo = (on * problem.lower_bounds()) @ delivered  # (B, R)
    hi = (on * problem.upper_bounds(state)) @ delivered
    demand, cs = problem.demand_vector(state), problem.cs_max
    regional, low, high = (t.sum(-1) for t in window_terms(lo, hi, demand - cs, demand + cs))
    return total_miss((regional, low, high), state.total_demand)


def window_terms(
    lo: np.ndarray, hi: np.ndarray, floor: np.ndarray, ceiling: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per region: how far its running range ``[lo, hi]`` misses its CS window ``[floor,
    ceiling]`` (kW), and the nearest workable low and high totals (summed for the system term)."""
    regional = np.maximum(np.maximum(lo - ceiling, floor - hi), 0.0)
    return regional, np.minimum(np.maximum(lo, floor), ceiling), np.maximum(np.minimum(hi, ceiling), floor)


def total_miss(summed: Sequence[Any], total: Any) -> Any:
    """:func:`shortfall` from the regions' summed window terms ``(misses, low, high)``: their
    misses plus the system's distance from total demand ``total``."""
    regional, low, high = summed
    return regional + np.maximum(np.maximum(low - total, total - high), 0.0)


@dataclass(frozen=True)
class RegionRanges:
    """Plans' regional running ranges and their window terms (each ``(B, R)``), and what each
    agent adds to its own region's range (``(B, G)``): what a CS node holds after one tree sum of
    the regions' terms, from which it answers for its own agents' flips and hand-overs."""

    region: np.ndarray  # (G,) each agent's region
    floor: np.ndarray
    ceiling: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    lo_each: np.ndarray
    hi_each: np.ndarray
    terms: tuple[np.ndarray, np.ndarray, np.ndarray]  # window_terms of the plans

    @classmethod
    def of(cls, problem: Problem, demand: np.ndarray, on: np.ndarray, ub: np.ndarray) -> RegionRanges:
        """Plans ``on`` (``(B, G)``) with demands ``(B, R)`` and upper bounds ``ub`` ``(B, G)``."""
        region = problem.group_region
        own = problem.incidence[region, np.arange(len(region))]  # (G,) delivered kW per kW of each group
        lo_each, hi_each = np.broadcast_to(problem.lower_bounds() * own, on.shape), ub * own
        delivered = problem.incidence.T
        lo, hi = (on * problem.lower_bounds()) @ delivered, (on * ub) @ delivered
        floor, ceiling = demand - problem.cs_max, demand + problem.cs_max
        return cls(region, floor, ceiling, lo, hi, lo_each, hi_each, window_terms(lo, hi, floor, ceiling))

    def flipped(self, on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each ``(B, G)``: the window terms of every agent's region after its own flip."""
        region, sign = self.region, np.where(on, -1.0, 1.0)
        return window_terms(
            self.lo[:, region] + sign * self.lo_each,
            self.hi[:, region] + sign * self.hi_each,
            self.floor[:, region],
            self.ceiling[:, region],
        )


def flip_shortfalls(
    problem: Problem, demand: np.ndarray, on: np.ndarray, ub: np.ndarray, ranges: RegionRanges | None = None
) -> np.ndarray:
    """``(B, G)``: per plan (``on``, ``(B, G)``, with demands ``(B, R)`` and upper bounds ``ub``
    ``(B, G)``), the :func:`shortfall` of the plan with one agent's status flipped, for every agent.

    A flip changes only its own region's range, so each CS node can answer for its agents from
    one tree sum of the regions' terms (the regional misses and the workable totals): what an
    agent needs to know whether its own start or stop keeps the plan workable by ratings."""
    on = np.atleast_2d(np.asarray(on, dtype=bool))
    ranges = ranges or RegionRanges.of(problem, demand, on, ub)
    region = ranges.region
    summed = [t.sum(-1, keepdims=True) - t[:, region] + f for t, f in zip(ranges.terms, ranges.flipped(on))]
    return total_miss(summed, demand.sum(-1, keepdims=True))


def handover_shortfalls(
    problem: Problem,
    demand: np.ndarray,
    on: np.ndarray,
    ub: np.ndarray,
    partner: np.ndarray,
    ranges: RegionRanges | None = None,
) -> np.ndarray:
    """``(B, G)``: per plan, the :func:`shortfall` of the plan with agent ``i`` started and agent
    ``partner[b, i]`` stopped (a hand-over), for every stopped ``i``; running agents and a
    ``partner`` of ``G`` (none) read ``inf``.

    A hand-over changes at most two regions' ranges, so — as in :func:`flip_shortfalls` — the
    CS nodes answer from one tree sum of the regions' terms plus the partner's own range."""
    on = np.atleast_2d(np.asarray(on, dtype=bool))
    batch, n = on.shape
    r = ranges or RegionRanges.of(problem, demand, on, ub)
    rows = np.arange(batch)[:, None]
    valid = ~on & (partner < n)
    p = np.where(valid, partner, 0)
    r_start, r_stop = np.broadcast_to(r.region, on.shape), r.region[p]
    same = r_start == r_stop
    lo_p, hi_p = r.lo_each[rows, p], r.hi_each[rows, p]
    start_terms = window_terms(
        r.lo[rows, r_start] + r.lo_each - same * lo_p,
        r.hi[rows, r_start] + r.hi_each - same * hi_p,
        r.floor[rows, r_start],
        r.ceiling[rows, r_start],
    )
    stop_terms = window_terms(
        r.lo[rows, r_stop] - lo_p, r.hi[rows, r_stop] - hi_p, r.floor[rows, r_stop], r.ceiling[rows, r_stop]
    )
    summed = [
        t.sum(-1, keepdims=True) - t[rows, r_start] + f + np.where(same, 0.0, g - t[rows, r_stop])
        for t, f, g in zip(r.terms, start_terms, stop_terms)
    ]
    return np.where(valid, total_miss(summed, demand.sum(-1, keepdims=True)), np.inf)


def cost_floor(problem: Problem, on: np.ndarray) -> np.ndarray:
    """A lower bound on the cost of any dispatch with commitment ``on`` (``(B, G)``).

    Each running group at the minimum of its own cost over its running range ``[p_min, p_max]``
    (the vertex of a convex quadratic, clipped to the range; an end point for a linear cost, so
    a negative ``b`` is handled too): enumerations skip patterns whose floor is already above the
    best evaluated answer, without ever losing a better one. ``p_max`` is the widest range any
    state allows, so the bound holds for every state.
    """
    lb, ub, a, b = problem.lower_bounds(), problem.p_max, problem.a, problem.b
    vertex = np.divide(-b, 2 * a, out=np.where(b >= 0, lb, ub), where=a > 0)
    best = np.clip(vertex, lb, ub)
    cheapest = a * best**2 + b * best + problem.c
    return np.atleast_2d(np.asarray(on, dtype=bool)) @ cheapest


@dataclass(frozen=True)
class VectorForm:
    """``min Σ a x² + b x + c  s.t.  lb ≤ x ≤ ub,  Σ δ x = Σ d,  |d_I − local_I(x)| ≤ cs_I``."""

    on: np.ndarray  # (G,) bool: the fixed commitment
    index: np.ndarray  # (n,) group index of each variable
    lb: np.ndarray  # (n,)
    ub: np.ndarray  # (n,)
    a: np.ndarray  # (n,)
    b: np.ndarray  # (n,)
    fixed_cost: float  # Σ c over running groups
    delivery: np.ndarray  # (n,) delivered kW per unit of x
    regional: np.ndarray  # (R, n) delivered kW into each region per unit of x
    demand: np.ndarray  # (R,)
    cs: np.ndarray  # (R,)

    @classmethod
    def build(cls, problem: Problem, state: State, on: np.ndarray) -> VectorForm:
        on = np.asarray(on, dtype=bool)
        if not problem.commitment:
            on = np.ones(len(problem.groups), dtype=bool)
        idx = np.flatnonzero(on)
        return cls(
            on=on,
            index=idx,
            lb=problem.lower_bounds()[idx],
            ub=problem.upper_bounds(state)[idx],
            a=problem.a[idx],
            b=problem.b[idx],
            fixed_cost=float(problem.c[idx].sum()),
            delivery=problem.delivery[idx],
            regional=problem.incidence[:, idx],
            demand=problem.demand_vector(state),
            cs=problem.cs_max,
        )

    @property
    def size(self) -> int:
        return len(self.index)

    # ---- objective -------------------------------------------------------------------
    def cost(self, x: np.ndarray) -> float:
        return float(self.a @ x**2 + self.b @ x + self.fixed_cost)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self.a * x + self.b

    # ---- constraints -----------------------------------------------------------------
    def balance(self, x: np.ndarray) -> float:
        """``Σ δ x − Σ d``: zero when the imports the regions need sum to zero."""
        return float(self.delivery @ x - self.demand.sum())

    def cs_limits(self, x: np.ndarray) -> np.ndarray:
        """``(2R,)``, ≤ 0 when every region's import is within its CS limit (export rows first)."""
        local = self.regional @ x
        return np.concatenate([local - self.demand - self.cs, self.demand - local - self.cs])

    @property
    def cs_jacobian(self) -> np.ndarray:
        return np.vstack([self.regional, -self.regional])  # (2R, n)

    def violation(self, x: np.ndarray) -> float:
        """Largest breach (kW) of the balance, the CS limits and the bounds."""
        bounds = np.concatenate([self.lb - x, x - self.ub, [0.0]])
        return max(abs(self.balance(x)), float(self.cs_limits(x).max(initial=0.0)), float(bounds.max()))

    # ---- points ----------------------------------------------------------------------
    def balanced_start(self) -> np.ndarray:
        """``lb + θ (ub − lb)`` with the one θ ∈ [0, 1] that meets the system balance if any:
        a start inside the bounds and on (or nearest to) the equality."""
        low, span = self.delivery @ self.lb, self.delivery @ (self.ub - self.lb)
        theta = 0.5 if span <= 0 else float(np.clip((self.demand.sum() - low) / span, 0.0, 1.0))
        return self.lb + theta * (self.ub - self.lb)

    def dispatch(self, problem: Problem, state: State, x: np.ndarray) -> Dispatch:
        """The full dispatch: ``x`` for running groups, 0 for the others, imports completed."""
        power = np.zeros(len(problem.groups))
        power[self.index] = x
        return Dispatch.from_power(problem, state, power, on=self.on)
