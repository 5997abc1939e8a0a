"""Turning a learned commitment that cannot meet the balances into one that can, without costs.

Why: the actors decide on/off one agent at a time, so now and then their joint commitment leaves a
region short (too little capacity on for its demand minus its CS import limit) or long (the minima
of its running groups exceed its demand plus its export limit), or the system as a whole short or
long. The old repair tried one switch at a time and ran the whole distributed search for each try:
up to ``2G`` searches per state, which at 128 regions outran the harness's time limit and left
states unanswered (issue 19). Whether a *fixed* commitment can meet the balances needs no search:
each region's delivered supply can take any value in ``[L_r, U_r]`` (the sums of its running
groups' least and largest delivered power), it must lie in the CS window ``[d_r − cs_r, d_r + cs_r]``,
and the clipped intervals must add up to the total demand (``Σ T = 0``). That is a handful of sums
per candidate, so the repair below tests candidates with it and runs the search once, at the end.

The repair is cost-blind: it orders switches by the actors' *eagerness* to run (MADDPG's on/off
logit margin), most eager first on, least eager first off, region by region and then across regions.
When that greedy pass finds nothing, an exact pass enumerates each region's subsets of groups
(regions of at most ``MAX_EXACT_GROUPS`` groups; the generated instances have 2–4) and picks, by a
backward pass over the regions' reachable totals, one subset per region that meets the total demand,
preferring the fewest eager switches. So every feasible state (``model.feasibility``) gets a workable
commitment whenever its regions are of that size.

Messages (counted like the search's, docs/learning.md): each CS node knows its region's ``L_r``,
``U_r`` from the agents' bids, so testing a candidate costs one CS-to-CS sum of the clipped
intervals (``DistributedSearch.system_sum_messages``) and every switched agent costs two messages
(the order to switch and its new bid); the exact pass sends each region's list of intervals up the
CS tree and the choice back down (one CS-to-CS sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from dispatchbench.model.problem import Problem, State

MAX_EXACT_GROUPS = 12  # subsets enumerated per region in the exact pass (2**12 candidates at most)


@dataclass(frozen=True)
class Repair:
    """A repaired commitment (``None``: none found), the candidates tested and the groups switched."""

    on: np.ndarray | None
    checks: int
    switched: int
    exact: bool  # the greedy pass failed and the exact pass decided

    def messages(self, system_sum_messages: int) -> int:
        """Messages the repair costs on the default graph (module docstring)."""
        return (self.checks + int(self.exact)) * system_sum_messages + 2 * self.switched


class SupplyWindows:
    """Each region's supply interval for a commitment, clipped to its CS window, at one state."""

    def __init__(self, problem: Problem, state: State) -> None:
        self.problem = problem
        ub = problem.upper_bounds(state)
        self.low = problem.delivery * problem.lower_bounds()  # delivered kW of each group at its minimum
        self.high = problem.delivery * ub
        demand = problem.demand_vector(state)
        self.window_low = demand - problem.cs_max
        self.window_high = demand + problem.cs_max
        self.total = float(demand.sum())
        self.tol = 1e-9  # kW: the search's own test (balancing.balance), so a workable commitment is one it accepts
        self.regions = [np.flatnonzero(problem.group_region == r) for r in range(len(problem.regions))]

    def region_sums(self, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.regions)
        on = np.asarray(on, dtype=bool)
        low = np.bincount(self.problem.group_region, weights=np.where(on, self.low, 0.0), minlength=n)
        high = np.bincount(self.problem.group_region, weights=np.where(on, self.high, 0.0), minlength=n)
        return low, high

    def clipped(self, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per region, the delivered supply it can take within its CS window (empty when lo > hi)."""
        low, high = self.region_sums(on)
        return np.maximum(low, self.window_low), np.minimum(high, self.window_high)

    def region_ok(self, on: np.ndarray) -> np.ndarray:
        lo, hi = self.clipped(on)
        return lo <= hi + self.tol

    def workable(self, on: np.ndarray) -> bool:
        """Can the search meet every balance with this commitment? (exact, for a fixed commitment)"""
        lo, hi = self.clipped(on)
        if np.any(lo > hi + self.tol):
            return False
        return bool(lo.sum() - self.tol <= self.total <= hi.sum() + self.tol)


def repair_commitment(problem: Problem, state: State, on: np.ndarray, eagerness: np.ndarray) -> Repair:
    """A workable commitment close to ``on``, chosen by ``eagerness`` alone (module docstring)."""
    windows = SupplyWindows(problem, state)
    on = np.asarray(on, dtype=bool).copy()
    checks = 1
    if not problem.commitment or windows.workable(on):
        return Repair(on, checks, 0, exact=False)
    start = on.copy()
    eager = np.asarray(eagerness, dtype=float)

    # 1. each region inside its own CS window
    for r, members in enumerate(windows.regions):
        if windows.region_ok(on)[r]:
            continue
        low, high = windows.region_sums(on)
        if high[r] < windows.window_low[r]:  # short: switch on its most eager idle groups
            for g in members[np.argsort(-eager[members])]:
                if not on[g]:
                    on[g] = True
                    checks += 1
                    if windows.region_sums(on)[1][r] >= windows.window_low[r]:
                        break
        if windows.region_sums(on)[0][r] > windows.window_high[r]:  # long: switch off its least eager minima
            for g in members[np.argsort(eager[members])]:
                if on[g] and windows.low[g] > 0:
                    on[g] = False
                    checks += 1
                    if windows.region_sums(on)[1][r] < windows.window_low[r]:
                        on[g] = True  # that switch would leave the region short: keep it on
                    elif windows.region_ok(on)[r]:
                        break

    # 2. the regions together meet the total demand
    order = np.argsort(-eager)
    for _ in range(len(on)):
        lo, hi = windows.clipped(on)
        if hi.sum() + windows.tol < windows.total:  # short: most eager idle group that adds usable supply
            moved = _first_switch(windows, on, order, switch_on=True, gain=lambda new, old: new[1] > old[1] + 1e-9)
        elif lo.sum() - windows.tol > windows.total:  # long: least eager running group that lowers the minimum
            moved = _first_switch(
                windows, on, order[::-1], switch_on=False, gain=lambda new, old: new[0] < old[0] - 1e-9
            )
        else:
            break
        if moved is None:
            break
        checks += moved[1]
    if windows.workable(on):
        return Repair(on, checks, int(np.sum(on != start)), exact=False)

    # 3. exact: one subset per region, fewest eager switches first
    exact = _exact_commitment(windows, start, eager)
    if exact is None:
        return Repair(None, checks, 0, exact=True)
    return Repair(exact, checks, int(np.sum(exact != start)), exact=True)


def _first_switch(windows: SupplyWindows, on: np.ndarray, order: np.ndarray, *, switch_on: bool, gain):
    """Switch the first group in ``order`` whose switch keeps its region workable and improves the
    system's clipped total (``gain(new, old)`` on the sums ``(Σ lo, Σ hi)``); ``(group, checks)``."""
    lo, hi = windows.clipped(on)
    old = (lo.sum(), hi.sum())
    checks = 0
    for g in order:
        if bool(on[g]) == switch_on:
            continue
        on[g] = switch_on
        checks += 1
        lo, hi = windows.clipped(on)
        if np.all(lo <= hi + windows.tol) and gain((lo.sum(), hi.sum()), old):
            return int(g), checks
        on[g] = not switch_on
    return None


def _exact_commitment(windows: SupplyWindows, start: np.ndarray, eager: np.ndarray) -> np.ndarray | None:
    """One subset of groups per region whose clipped intervals can add up to the total demand."""
    candidates: list[list[tuple[float, float, float, np.ndarray]]] = []  # per region: (switch cost, lo, hi, on)
    for r, members in enumerate(windows.regions):
        if len(members) > MAX_EXACT_GROUPS:
            return None
        options = []
        for k in range(len(members) + 1):
            for chosen in combinations(members, k):
                sub = np.zeros(len(members), dtype=bool)
                sub[[list(members).index(g) for g in chosen]] = True
                lo = max(windows.low[members][sub].sum(), windows.window_low[r])
                hi = min(windows.high[members][sub].sum(), windows.window_high[r])
                if lo <= hi + windows.tol:
                    flips = sub != start[members]
                    options.append((float(np.sum((np.abs(eager[members]) + 1.0) * flips)), lo, hi, sub))
        if not options:
            return None
        options.sort(key=lambda o: o[0])
        candidates.append(options)
    # forward: the totals reachable by the first r regions, as merged intervals
    reach: list[list[tuple[float, float]]] = [[(0.0, 0.0)]]
    for options in candidates:
        sums = [(a + lo, b + hi) for a, b in reach[-1] for _, lo, hi, _ in options]
        reach.append(_merge(sums, windows.tol))
    remaining = windows.total
    if not any(a - windows.tol <= remaining <= b + windows.tol for a, b in reach[-1]):
        return None
    # backward: for each region the cheapest option that leaves a reachable remainder
    on = start.copy()
    for r in range(len(candidates) - 1, -1, -1):
        for _, lo, hi, sub in candidates[r]:
            pick = _meet(lo, hi, remaining, reach[r], windows.tol)
            if pick is not None:
                on[windows.regions[r]] = sub
                remaining -= pick
                break
        else:  # cannot happen: the forward pass said the remainder is reachable
            return None
    return on


def _meet(lo: float, hi: float, remaining: float, reachable: list[tuple[float, float]], tol: float) -> float | None:
    """A value ``x`` in ``[lo, hi]`` with ``remaining − x`` inside one of the ``reachable`` intervals."""
    for a, b in reachable:
        x_lo, x_hi = max(lo, remaining - b), min(hi, remaining - a)
        if x_lo <= x_hi + tol:
            return 0.5 * (x_lo + max(x_lo, x_hi))
    return None


def _merge(intervals: list[tuple[float, float]], tol: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + tol:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
