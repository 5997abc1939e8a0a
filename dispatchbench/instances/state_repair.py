"""Making a drawn state feasible without changing its shape more than needed.

A family draws demand and V2G availability from smooth profiles; near the edges (a high-demand
evening, a region asked to import right up to its CS limit, a convex problem whose forced
minimum outputs exceed a quiet night) a draw can be one no dispatch serves. The generator never
writes such a state. It repairs in two steps, each checked with the exact pre-check
(:func:`dispatchbench.model.feasibility.infeasibility_reason` with ``margin=True``: served with
every region importing at least 0.01 % of its CS limit below it and the total 0.01 % below the most
the regions can deliver, so no solver's tolerance decides whether the state is served):

1. **clip**: each region's demand is moved to the nearest value its own groups plus its CS link
   can serve (local supply set ⊕ [−cs_max, +cs_max − margin]); other regions are untouched.
2. **scale**: if the regions together still cannot be balanced, the demands are moved toward an
   anchor that is always feasible (all demand 0 with commitment; every region's forced minimum
   output without it) by bisection on the fraction kept, keeping the largest feasible fraction
   found (30 halvings, so within 1e-9 of the boundary found).

V2G availability is never changed. Values are rounded to 0.01 kW before every check, so the
state written to the file is exactly the state that was checked.
"""

from __future__ import annotations

import math

import numpy as np

from dispatchbench.model.feasibility import import_margin, infeasibility_reason, local_supply_set
from dispatchbench.model.problem import Problem, State

DECIMALS = 2
_BISECTIONS = 30


def make_state(problem: Problem, label: str, demand: np.ndarray, v2g: np.ndarray) -> State:
    """A :class:`State` with values rounded as they will be written (0.01 kW, never negative)."""
    d = np.maximum(np.round(demand, DECIMALS), 0.0)
    v = np.maximum(np.round(v2g, DECIMALS), 0.0)
    return State(
        label=label,
        demand={r: float(x) for r, x in zip(problem.region_names, d)},
        v2g_available={g: float(x) for g, x in zip(problem.v2g_names, v)},
    )


def anchor_demand(problem: Problem) -> np.ndarray:
    """A demand every V2G availability can serve: 0 with commitment, the forced minimum without."""
    if problem.commitment:
        return np.zeros(len(problem.regions))
    return np.array([sum(g.p_min for g in problem.groups_in(r)) for r in problem.region_names])


def _nearest(value: float, intervals: list[tuple[float, float]]) -> float:
    """Nearest point of a union of intervals, rounded inward so rounding cannot step outside."""
    best, best_dist = value, math.inf
    scale = 10.0**DECIMALS
    for lo, hi in intervals:
        lo_r, hi_r = math.ceil(lo * scale) / scale, math.floor(hi * scale) / scale
        if lo_r > hi_r:
            continue
        point = min(max(value, lo_r), hi_r)
        if abs(point - value) < best_dist:
            best, best_dist = point, abs(point - value)
    return best


def clip_regions(problem: Problem, state: State) -> np.ndarray:
    """Each region's demand moved to the nearest value it can serve on its own + its CS link."""
    out = problem.demand_vector(state)
    for i, region in enumerate(problem.regions):
        supply = local_supply_set(problem, state, region.name)
        top = region.cs_max - import_margin(region.cs_max)
        servable = [(max(lo - region.cs_max, 0.0), hi + top) for lo, hi in supply]
        out[i] = _nearest(out[i], servable)
    return out


def repair(problem: Problem, label: str, demand: np.ndarray, v2g: np.ndarray) -> tuple[State, str]:
    """A feasible state as close to the draw as the two steps get, and which step was needed:
    ``""`` (none), ``"clip"`` or ``"scale"``."""
    state = make_state(problem, label, demand, v2g)
    if infeasibility_reason(problem, state, margin=True) is None:
        return state, ""
    clipped = make_state(problem, label, clip_regions(problem, state), v2g)
    if infeasibility_reason(problem, clipped, margin=True) is None:
        return clipped, "clip"
    anchor = anchor_demand(problem)
    target = problem.demand_vector(clipped)
    best = make_state(problem, label, anchor, v2g)
    reason = infeasibility_reason(problem, best, margin=True)
    if reason is not None:  # cannot happen for a valid problem; say so rather than write it
        raise RuntimeError(f"state {label}: the repair anchor is infeasible ({reason})")
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        trial = make_state(problem, label, anchor + mid * (target - anchor), v2g)
        if infeasibility_reason(problem, trial, margin=True) is None:
            lo, best = mid, trial
        else:
            hi = mid
    return best, "scale"
