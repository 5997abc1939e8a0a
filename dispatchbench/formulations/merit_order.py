"""The priority-list (merit-order) heuristic, and the clearing and repair the classical methods share.

A power engineer's first answer to unit commitment (Wood & Wollenberg, *Power Generation,
Operation and Control*, ch. 4, "priority-list methods"):

1. **Priority list.** Rank the groups by their full-load average cost per delivered kW,
   ``(a·ub² + b·ub + c) / (δ·ub)`` at this state's upper bound ``ub`` (a V2G group's ``ub`` is
   what its vehicles can give now; one with nothing to give is never committed).
2. **Commit in merit order until every region can be served**: starting from all off, repeatedly
   switch on the first group of the list whose start lowers the commitment's
   :func:`~dispatchbench.formulations.vector_form.shortfall` (the kW by which it cannot serve the
   state within the CS limits); stop when the shortfall is 0 (:func:`make_workable`, which also
   switches groups *off* — in reverse order — when too much minimum output is the problem).
3. **Economic dispatch** of that commitment: the price clearing (λ-iteration with CS limits,
   :func:`clear`), which gives each region its price ``λ_I``.
4. **Switch-off pass**: in reverse merit order, every running group whose stop keeps the
   commitment workable is tried off, and kept off when the cleared cost falls; passes repeat
   until one changes nothing (at most ``passes``).

Step 4 written naively clears once per running group and pass (56 s per state at 128 regions,
issue 21). Two things make it cheap without changing its answer:

- **a bound that skips hopeless trials**: for a fixed commitment the least cost is convex in each
  region's demand with slope ``λ_I``, so stopping group ``g`` (which serves ``δ_g·P_g`` kW at
  cost ``C_g(P_g)``) saves at most ``C_g(P_g) − λ_I·δ_g·P_g``. A group whose bound is not
  positive cannot lower the cost; it is skipped without a clearing;
- **vectorised clearings**: the next ``batch`` candidates that pass the bound are cleared together
  in one batched :func:`~dispatchbench.formulations.balancing.balance` call; the first of them (in
  list order) that lowers the cost is accepted, and the pass continues after it from the new
  commitment — the same sequence of decisions as the one-by-one pass.

**Messages** (the counting rules of TVC's ledger and ``distributed_search``: a scalar to a
neighbour is one message, a tree sum over ``n`` CS nodes ``2(n − 1)``), for a dispatch centre
per region connected by the CS tree: every agent sends its bid once and hears its setpoint
(``2G``); every clearing costs the distributed search's messages beyond the bids; choosing the
next group of the list is a tree minimum (``2(R − 1)``) and checking a commitment's workability
three tree sums of the regions' window terms (``6(R − 1)``), so a choice with its check costs
``8(R − 1)``; comparing a trial's cost with the
incumbent's a tree sum (``2(R − 1)``). :class:`Tally` keeps the count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatchbench.contract.solver import Answer
from dispatchbench.contract.status import Status
from dispatchbench.formulations.balancing import PriceResponse, balance, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.formulations.vector_form import flip_shortfalls, shortfall
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem, State


@dataclass(frozen=True)
class Clearing:
    """Economic dispatch of a batch of commitments (``(B, ...)`` arrays)."""

    on: np.ndarray  # (B, G) bool
    power: np.ndarray  # (B, G)
    imports: np.ndarray  # (B, R)
    price: np.ndarray  # (B, R) each region's λ_I per delivered kW
    cost: np.ndarray  # (B,) running cost; inf where the commitment cannot serve the state
    workable: np.ndarray  # (B,) bool

    def row(self, k: int) -> Clearing:
        parts = (self.on, self.power, self.imports, self.price, self.cost, self.workable)
        return Clearing(*(x[k : k + 1] for x in parts))

    def dispatch(self) -> Dispatch:
        return Dispatch(on=self.on[0].copy(), power=self.power[0].copy(), imports=self.imports[0].copy())

    def answer(
        self, problem: Problem, state: State, elapsed: float, info: dict[str, Any], *, unserved: str, stopped: str
    ) -> Answer:
        """The plugins' answer from their best clearing: ``infeasible`` with the shortfall when the
        commitment cannot serve the state (``unserved`` says what found none), else ``feasible``,
        noting ``stopped`` (what was cut short) when the time budget ended the search."""
        if not self.workable[0]:
            short = float(shortfall(problem, state, self.on)[0])
            message = f"{unserved} (short by {short:.3g} kW)"
            return Answer(self.dispatch(), Status.INFEASIBLE, message, elapsed, info)
        message = ""
        if info.get("stopped_at_budget"):
            message = f"time limit {info.get('time_budget_s'):g} s reached {stopped}"
            info["time_limit_reached"] = True
            info["note"] = message
        return Answer(self.dispatch(), Status.FEASIBLE, message, elapsed, info)


def clear(problem: Problem, state: State, on: np.ndarray, iterations: int = 60) -> Clearing:
    """The price clearing (λ-iteration with CS limits) of each commitment in ``on`` (``(B, G)``):
    the economic optimum of that commitment (``balancing.py``), with its cost and regional prices."""
    on = np.atleast_2d(np.asarray(on, dtype=bool))
    if not problem.commitment:
        on = np.ones_like(on)
    lb, ub = state_bounds(problem, state, len(on))
    response = PriceResponse(a=problem.a, b=problem.b, delivery=problem.delivery, lb=lb, ub=ub, on=on)
    result = balance(problem, state, response, iterations=iterations)
    workable = result.feasible & (shortfall(problem, state, on) <= problem.tolerance(state))
    cost = np.where(workable, group_costs(problem, on, result.power).sum(-1), np.inf)
    return Clearing(on, result.power, result.imports, result.region_signal, cost, workable)


def priority_order(problem: Problem, state: State) -> np.ndarray:
    """Group indices, cheapest full-load average cost per delivered kW first; groups that can
    deliver nothing in this state (V2G with no vehicles) are left out."""
    ub = problem.upper_bounds(state)
    full = problem.a * ub**2 + problem.b * ub + problem.c
    delivered = problem.delivery * ub
    average = np.divide(full, delivered, out=np.full_like(full, np.inf), where=delivered > 0)
    order = np.argsort(average, kind="stable")
    return order[np.isfinite(average[order])]


@dataclass
class Tally:
    """Messages of one decision, counted by the rules in the module docstring."""

    problem: Problem
    iterations: int = 60
    messages: int = 0
    clearings: int = 0
    picks: int = 0
    checks: int = 0
    clearing_messages: int = field(init=False)
    tree: int = field(init=False)

    def __post_init__(self) -> None:
        search = DistributedSearch(self.problem, iterations=self.iterations)
        bids = 2 * len(self.problem.groups)
        self.clearing_messages = search.messages_per_decision() - bids
        self.tree = search.system_sum_messages
        self.messages = bids  # every agent's bid and setpoint, once per decision

    def cleared(self, count: int = 1) -> None:
        self.messages += count * (self.clearing_messages + self.tree)  # the clearing and its cost's tree sum
        self.clearings += count

    def picked(self, count: int = 1) -> None:
        """``count`` choices of a next group (tree minimum) with a workability check (3 tree sums)."""
        self.messages += count * 4 * self.tree
        self.picks += count

    def checked(self) -> None:
        """One workability check of a commitment: three tree sums of the regions' window terms."""
        self.messages += 3 * self.tree
        self.checks += 1


def make_workable(
    problem: Problem, state: State, on: np.ndarray, order: np.ndarray, tally: Tally | None = None
) -> np.ndarray:
    """``on`` changed one group at a time until it can serve ``state`` (shortfall 0): each step
    switches on the first group of ``order`` whose start lowers the shortfall, or, when no start
    does, switches off the last running group of ``order`` whose stop lowers it. Returns the
    commitment (unchanged if already workable; the best reached if none is)."""
    on = np.asarray(on, dtype=bool).copy()
    if not problem.commitment:
        return np.ones_like(on)
    tol = problem.tolerance(state)
    demand = problem.demand_vector(state)[None, :]
    ub = problem.upper_bounds(state)[None, :]
    allowed = np.zeros(len(on), dtype=bool)
    allowed[order] = True
    rank = np.empty(len(on), dtype=int)
    rank[order] = np.arange(len(order))
    now = float(shortfall(problem, state, on)[0])
    if tally is not None:
        tally.checked()
    for _ in range(2 * len(on)):
        if now <= tol:
            break
        after = flip_shortfalls(problem, demand, on[None, :], ub)[0]
        better = after < now - 1e-9
        starts = np.flatnonzero(better & ~on & allowed)
        stops = np.flatnonzero(better & on)
        if tally is not None:
            tally.picked()
        if len(starts):
            g = starts[np.argmin(rank[starts])]
        elif len(stops):
            g = stops[np.argmax(np.where(allowed[stops], rank[stops], len(on)))]
        else:
            break
        on[g] = ~on[g]
        now = float(after[g])
    return on


@dataclass(frozen=True)
class MeritOrderResult:
    best: Clearing  # one row
    order: np.ndarray
    messages: int
    clearings: int
    picks: int
    checks: int
    switched_off: int  # groups the switch-off pass stopped
    skipped_by_bound: int  # trials the saving bound ruled out without a clearing
    passes: int
    stopped_at_budget: bool


def switch_off_pass(
    problem: Problem,
    state: State,
    incumbent: Clearing,
    order: np.ndarray,
    tally: Tally,
    *,
    batch: int = 8,
    passes: int = 3,
    use_bound: bool = True,
    start: bool = False,
    deadline: float = np.inf,
) -> tuple[Clearing, int, int, int, bool]:
    """Step 4 of the module docstring from the one-row clearing ``incumbent``: (best clearing,
    groups switched, trials skipped by the bound, passes run, stopped at the deadline).
    ``use_bound=False, batch=1`` is the naive pass (one clearing per trial), kept to measure
    what the bound and the batches save. ``start=True`` is the mirror pass: groups that are off
    tried *on* in merit order while the cost falls, skipped when their best profit at their
    region's price, ``max_P λ_I δ P − C_g(P)``, is not positive (by the same convexity, starting
    a group saves at most that)."""
    tol = problem.tolerance(state)
    demand = problem.demand_vector(state)[None, :]
    ub = problem.upper_bounds(state)[None, :]
    region = problem.group_region
    usable = np.zeros(len(problem.groups), dtype=bool)
    usable[order] = True
    switched = skipped = done = 0
    for _ in range(passes):
        done += 1
        changed = False
        queue = [int(g) for g in (order if start else order[::-1]) if incumbent.on[0, g] != start]
        while queue:
            if time.perf_counter() > deadline:
                return incumbent, switched, skipped, done, True
            on, power, price = incumbent.on[0], incumbent.power[0], incumbent.price[0]
            stays = flip_shortfalls(problem, demand, on[None, :], ub)[0] <= tol
            if start:
                bound = _best_profit(problem, price[region], ub[0])
            else:
                own = problem.a * power**2 + problem.b * power + problem.c
                bound = own - price[region] * problem.delivery * power  # saving can be at most this
            margin = 1e-9 * max(1.0, float(incumbent.cost[0]))
            candidates: list[int] = []
            while queue and len(candidates) < batch:
                g = queue.pop(0)
                if on[g] == start or not stays[g] or not usable[g]:
                    continue
                if use_bound and bound[g] <= margin:
                    skipped += 1
                    continue
                candidates.append(g)
            tally.picked(max(len(candidates), 1))  # the root learns the next candidates, one tree minimum each
            if not candidates:
                continue
            trial_on = np.repeat(on[None, :], len(candidates), axis=0)
            trial_on[np.arange(len(candidates)), candidates] = start
            trials = clear(problem, state, trial_on, tally.iterations)
            tally.cleared(len(candidates))
            better = np.flatnonzero(trials.cost < incumbent.cost[0] - margin)
            if len(better):
                k = int(better[0])
                incumbent = trials.row(k)
                switched += 1
                changed = True
                queue = [int(g) for g in candidates[k + 1 :]] + queue  # continue after the accepted one
        if not changed:
            break
    return incumbent, switched, skipped, done, False


def _best_profit(problem: Problem, price: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``max_{lb ≤ P ≤ ub} price·δ·P − (a P² + b P + c)`` per group."""
    lb, a, b, d = problem.lower_bounds(), problem.a, problem.b, problem.delivery
    value = price * d - b
    vertex = np.divide(value, 2 * a, out=np.where(value > 0, ub, lb), where=a > 0)
    p = np.clip(vertex, lb, np.maximum(ub, lb))
    return price * d * p - (a * p**2 + b * p + problem.c)


def merit_order(
    problem: Problem,
    state: State,
    *,
    batch: int = 8,
    passes: int = 3,
    use_bound: bool = True,
    switch_on: bool = False,
    iterations: int = 60,
    deadline: float = np.inf,
) -> MeritOrderResult:
    """Steps 1–4 of the module docstring for one state. ``switch_on`` then alternates a
    switch-on pass (merit order) and a switch-off pass while either changes the commitment (at
    most ``passes`` rounds): not part of the textbook heuristic, kept as a variant."""
    tally = Tally(problem, iterations)
    order = priority_order(problem, state)
    all_off = np.zeros(len(problem.groups), dtype=bool)
    on = make_workable(problem, state, all_off, order, tally)
    first = clear(problem, state, on, iterations)
    tally.cleared()
    if not first.workable[0] or not problem.commitment:
        return MeritOrderResult(
            first, order, tally.messages, tally.clearings, tally.picks, tally.checks, 0, 0, 0, False
        )

    def run(incumbent: Clearing, start: bool = False) -> tuple[Clearing, int, int, int, bool]:
        return switch_off_pass(
            problem, state, incumbent, order, tally,
            batch=batch, passes=passes, use_bound=use_bound, start=start, deadline=deadline,
        )  # fmt: skip

    best, switched, skipped, passes_run, stopped = run(first)
    for _ in range(passes if switch_on else 0):
        if stopped:
            break
        best, started, more, runs, stopped = run(best, start=True)
        switched, skipped, passes_run = switched + started, skipped + more, passes_run + runs
        if not started or stopped:
            break
        best, stopped_now, more, runs, stopped = run(best)
        switched, skipped, passes_run = switched + stopped_now, skipped + more, passes_run + runs
    return MeritOrderResult(
        best, order, tally.messages, tally.clearings, tally.picks, tally.checks, switched, skipped, passes_run, stopped
    )
