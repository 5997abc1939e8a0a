"""Cheap, exact feasibility check of a state, before any solver runs.

With commitment, a region's local supply can take any value in a union of intervals (one per
set of running groups). Intersecting that with the CS window ``[d - cs_max, d + cs_max]``
and adding the regions up (a Minkowski sum of interval unions) tells exactly whether the
regional and grid balances can both hold — and, when they cannot, *which* region fails and by
how much, which is what a user needs to hear instead of "SCIP: infeasible".
"""

from __future__ import annotations

from itertools import combinations

from dispatchbench.model.problem import Problem, State
from dispatchbench.model.tolerance import ROUNDING_KW, feasibility_tolerance, service_margin

Intervals = list[tuple[float, float]]
_MAX_SUBSET_GROUPS = 16  # beyond this a region's union is replaced by its hull (still a valid necessary check)


def _merge(intervals: Intervals, eps: float) -> Intervals:
    out: Intervals = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + eps:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def local_supply_set(problem: Problem, state: State, region: str, eps: float = 1e-9) -> Intervals:
    """Every delivered local supply (kW) the region's groups can produce, as merged intervals."""
    groups = problem.groups_in(region)
    ub = dict(zip(problem.group_names, problem.upper_bounds(state)))
    v2g_top = sum(g.delivery * ub[g.name] for g in groups if g.is_v2g)
    units = [(g.p_min, ub[g.name]) for g in groups if not g.is_v2g]
    if not problem.commitment:
        lo = sum(u[0] for u in units)
        return [(lo, sum(u[1] for u in units) + v2g_top)]
    if len(units) > _MAX_SUBSET_GROUPS:
        return [(0.0, sum(u[1] for u in units) + v2g_top)]
    spans = [
        (sum(u[0] for u in chosen), sum(u[1] for u in chosen) + v2g_top)
        for k in range(len(units) + 1)
        for chosen in combinations(units, k)
    ]
    return _merge(spans, eps)


def _clip(intervals: Intervals, lo: float, hi: float) -> Intervals:
    return [(max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) >= max(a, lo)]


def _minkowski(x: Intervals, y: Intervals, eps: float) -> Intervals:
    return _merge([(a + c, b + d) for a, b in x for c, d in y], eps)


def import_margin(cs_max: float) -> float:
    """How far below its CS import limit ``cs_max`` a generated state keeps a region (kW, at most ``cs_max``)."""
    return min(service_margin(cs_max), cs_max)


def infeasibility_reason(problem: Problem, state: State, *, margin: bool = False) -> str | None:
    """``None`` if some dispatch serves the state, else why not (region and kW).

    The tolerance (:func:`~dispatchbench.model.tolerance.feasibility_tolerance`, the evaluator's)
    is applied once, to the grid balance; each region's CS window is exact (up to float noise).
    Loosening every region *and* the total, as this check once did, called states feasible that
    SCIP proves infeasible. ``margin=True`` is the generator's stricter test: the state must be
    served with every region importing at least :func:`import_margin` below its CS limit and the
    total at least :func:`~dispatchbench.model.tolerance.service_margin` below the most the regions
    can deliver, no tolerance anywhere (``docs/generator.md``).
    """
    demand = state.total_demand
    tol = feasibility_tolerance(demand)
    eps = ROUNDING_KW * max(1.0, demand)
    total: Intervals = [(0.0, 0.0)]
    for region in problem.regions:
        d = state.demand[region.name]
        mu = import_margin(region.cs_max) if margin else 0.0
        supply = local_supply_set(problem, state, region.name)
        window = _clip(supply, d - region.cs_max + mu - eps, d + region.cs_max + eps)
        if not window:
            top, bottom = supply[-1][1], supply[0][0]
            limit = region.cs_max - mu
            kept = f" less the generator's margin {mu:g} kW" if mu else ""
            if top < d - limit:
                short = d - limit - top
                return (
                    f"region {region.name}: demand {d:g} kW exceeds local capacity {top:g} kW "
                    f"plus CS import limit {region.cs_max:g} kW{kept} (shortfall {short:g} kW)"
                )
            if bottom > d + region.cs_max:
                surplus = bottom - d - region.cs_max
                return (
                    f"region {region.name}: minimum local output {bottom:g} kW exceeds demand {d:g} kW "
                    f"plus CS export limit {region.cs_max:g} kW (surplus {surplus:g} kW)"
                )
            return (
                f"region {region.name}: no set of running groups delivers between "
                f"{d - limit:g} and {d + region.cs_max:g} kW (demand {d:g} kW ± CS limit{kept})"
            )
        total = _minkowski(total, window, ROUNDING_KW)
    if margin:
        top_margin = service_margin(demand)
        # An upper edge at 0 kW (nothing running, nothing asked) needs no margin: it is exact.
        if any(lo - eps <= demand <= max(hi - top_margin, 0.0) for lo, hi in total):
            return None
    elif any(lo - tol <= demand <= hi + tol for lo, hi in total):
        return None
    top, bottom = total[-1][1], total[0][0]
    if demand > top - (service_margin(demand) if margin else 0.0):
        kept = f" less the generator's margin {service_margin(demand):g} kW" if margin else ""
        return (
            f"total demand {demand:g} kW exceeds the {top:g} kW all regions can deliver within "
            f"their CS limits{kept} (shortfall {demand - top:g} kW)"
        )
    if demand < bottom:
        return (
            f"total demand {demand:g} kW is below the {bottom:g} kW minimum output of the running "
            f"groups (surplus {bottom - demand:g} kW)"
        )
    reachable = ", ".join(f"{float(lo):.6g}-{float(hi):.6g}" for lo, hi in total)
    return f"total demand {demand:g} kW falls in a gap between feasible totals ({reachable} kW)"
