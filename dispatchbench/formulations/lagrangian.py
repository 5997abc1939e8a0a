"""Lagrangian relaxation of the balances: the classical distributed answer to unit commitment.

The textbook method for unit commitment (Muckstadt & Koenig 1977; Bertsekas, Lauer, Sandell &
Posbergh 1983; Zhuang & Galiana 1988; Wood & Wollenberg ch. 4): price the coupling constraints,
let every unit decide alone at its price, move the prices by subgradient steps, and repair the
last commitment into a feasible dispatch.

**Relaxation.** Each region's balance ``Σ_{g∈I} δ_g P_g + T_I = d_I`` gets a price ``λ_I`` and the
grid's conservation ``Σ_I T_I = 0`` a price ``μ``. The Lagrangian then splits into one problem
per agent:

- **group** ``g`` in region ``I``: ``min(0, min_{lb≤P≤ub} a P² + b P + c − λ_I δ_g P)`` — run (at
  its own best output) exactly when that is cheaper than staying off (self-commitment);
- **CS node** ``I``: ``min_{|T|≤cs_I} (μ − λ_I) T`` — import fully where the region's price is
  above the grid's, export fully where below (when equal: the import its balance asks for).

The dual function ``L(λ, μ) = Σ λ_I d_I + Σ_g (group terms) + Σ_I (CS terms)`` is a lower bound on
the optimum for *any* prices (weak duality); the best one seen is reported as ``dual_bound``.
Because on/off makes the problem non-convex, the bound is usually below the optimum (a duality
gap): it certifies how far the answer can be from optimal, no more.

**Prices.** Start: the self-commitment clearing — the hierarchical bisection of ``balancing.py``
on a response in which every group runs at the price iff running pays (monotone in the price), so
``λ_I`` and ``μ`` begin where the self-committed supply meets demand. Then Polyak subgradient
steps (Held, Wolfe & Crowder 1974): ``(λ, μ) += θ·(UB − L)/‖s‖² · s`` with ``s_I = d_I −
Σ δ P − T_I`` and ``s_μ = Σ T_I``, ``UB`` the best repaired cost so far; ``θ`` starts at
``step`` and halves after ``patience`` iterations without a better bound.

**Repair.** Every ``repair_every`` iterations (and after the last) the agents' current
commitment is made workable (:func:`~dispatchbench.formulations.merit_order.make_workable`,
ranking groups by their Lagrangian profit at the current prices, most profitable first) and
cleared at equal incremental cost (:func:`~dispatchbench.formulations.merit_order.clear`); the
cheapest repaired dispatch is the answer. A commitment already repaired is not cleared again.
With ``decommit`` each repaired dispatch then goes through the unit-decommitment pass of Tseng,
Li & Oren ("Solving the unit commitment problem by a unit decommitment method", 2000): running
groups are tried off, least profitable at the current prices first, while the cost falls
(:func:`~dispatchbench.formulations.merit_order.switch_off_pass`, the same pass as merit order's).

**Stopping rule.** Stop when ``(UB − LB) / UB ≤ tol`` (the dual bound proves the answer within
``tol``), after ``iterations`` price updates, or at the time limit (anytime: the best repaired
dispatch so far).

**Messages** (a scalar to a neighbour is 1; a tree sum over ``R`` CS nodes ``2(R − 1)``), per
price update: each CS node sends its price to its agents and hears each one's delivered power
(``2G``); the CS nodes add three scalars over the tree (squared mismatch, ``T_I`` and their dual
term: ``3·2(R − 1)``) and the root broadcasts the new ``μ`` and step (``2(R − 1)``): ``2G + 8(R −
1)``. The starting clearing, each repair's workability checks and clearings are counted as in
``merit_order.py`` (:class:`~dispatchbench.formulations.merit_order.Tally`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dispatchbench.formulations.balancing import balance, state_bounds
from dispatchbench.formulations.merit_order import (
    Clearing,
    Tally,
    clear,
    make_workable,
    priority_order,
    switch_off_pass,
)
from dispatchbench.model.problem import Problem, State


@dataclass(frozen=True)
class GroupPrices:
    """Every group's answer to regional prices: its best output and whether running pays."""

    problem: Problem
    lb: np.ndarray  # (B, G)
    ub: np.ndarray  # (B, G)

    def best(self, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``price`` per group ``(B, G)`` -> (output if running, profit term ``min_P cost − λδP``)."""
        p = self.problem
        value = price * p.delivery - p.b
        quad = np.divide(value, 2 * p.a, out=np.zeros_like(value), where=p.a > 0)
        power = np.clip(np.where(p.a > 0, quad, np.where(value > 0, self.ub, self.lb)), self.lb, self.ub)
        term = p.a * power**2 + p.b * power + p.c - price * p.delivery * power
        return power, term


@dataclass(frozen=True)
class SelfCommitResponse:
    """Monotone response for ``balance``: a group runs at its best output iff running pays."""

    groups: GroupPrices
    commitment: bool

    def power(self, s: np.ndarray) -> np.ndarray:
        price = np.broadcast_to(s, self.groups.lb.shape)
        power, term = self.groups.best(price)
        return power if not self.commitment else np.where(term < 0, power, 0.0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.groups.problem
        d = np.maximum(p.delivery, 1e-12)
        # at a price above every group's full-load average cost each one runs at ub; below every
        # marginal cost at lb, none runs
        ub = np.maximum(self.groups.ub, 1e-9)
        high = ((p.a * ub**2 + p.b * ub + p.c) / (d * ub) + 2 * p.a * ub / d).max(-1)
        low = ((p.b + 2 * p.a * self.groups.lb) / d).min(-1)
        return low - 1.0, high + 1.0


@dataclass(frozen=True)
class LagrangianResult:
    best: Clearing  # one row: the cheapest repaired dispatch (workable=False if none was)
    dual_bound: float
    iterations: int
    repairs: int
    messages: int
    clearings: int  # the starting clearing and every repair's (counted as merit_order.Tally does)
    picks: int  # workability steps of the repairs
    checks: int  # workability checks of the repairs
    stopped_at_budget: bool
    converged: bool  # the stopping rule's gap test was met


def lagrangian(
    problem: Problem,
    state: State,
    *,
    iterations: int = 100,
    step: float = 1.0,
    patience: int = 10,
    repair_every: int = 5,
    tol: float = 1e-4,
    decommit: bool = False,
    deadline: float = np.inf,
) -> LagrangianResult:
    """Lagrangian relaxation with subgradient prices and repair, for one state (module docstring)."""
    tally = Tally(problem)
    n_regions = len(problem.regions)
    region = problem.group_region
    demand, cs = problem.demand_vector(state), problem.cs_max
    lb, ub = state_bounds(problem, state, 1)
    groups = GroupPrices(problem, lb, ub)
    per_update = 2 * len(problem.groups) + 4 * tally.tree

    start = balance(problem, state, SelfCommitResponse(groups, problem.commitment))
    tally.cleared()
    lam, mu = start.region_signal[0].copy(), float(start.system_signal[0])

    best: Clearing | None = None
    tried: set[bytes] = set()
    lower, theta, since = -np.inf, step, 0
    done, stopped, converged = 0, False, False
    order_all = priority_order(problem, state)
    usable = np.zeros(len(problem.groups), dtype=bool)
    usable[order_all] = True

    def repair(on: np.ndarray, term: np.ndarray) -> None:
        nonlocal best
        ranked = np.argsort(term, kind="stable")  # most profitable first
        fixed = make_workable(problem, state, on & usable, ranked[usable[ranked]], tally)
        key = fixed.tobytes()
        if key in tried:
            return
        tried.add(key)
        trial = clear(problem, state, fixed)
        tally.cleared()
        if decommit and trial.workable[0] and problem.commitment:  # least profitable first
            trial = switch_off_pass(problem, state, trial, ranked[usable[ranked]], tally, deadline=deadline)[0]
        if trial.workable[0] and (best is None or trial.cost[0] < best.cost[0]):
            best = trial

    on = np.zeros(len(problem.groups), dtype=bool)
    term = np.zeros(len(problem.groups))
    while done < iterations:
        if time.perf_counter() > deadline:
            stopped = True
            break
        power, term = groups.best(lam[region][None, :])
        power, term = power[0], term[0]
        on = term < 0 if problem.commitment else np.ones(len(problem.groups), dtype=bool)
        supply = np.bincount(region, weights=np.where(on, problem.delivery * power, 0.0), minlength=n_regions)
        want = np.clip(demand - supply, -cs, cs)
        imports = np.where(lam > mu + 1e-12, cs, np.where(lam < mu - 1e-12, -cs, want))
        dual = float(lam @ demand + np.where(on, term, 0.0).sum() + ((mu - lam) * imports).sum())
        tally.messages += per_update
        done += 1
        if dual > lower + 1e-9 * max(1.0, abs(lower) if np.isfinite(lower) else 1.0):
            lower, since = dual, 0
        else:
            since += 1
            if since >= patience:
                theta, since = theta / 2, 0
        if done == 1 or done % repair_every == 0:
            repair(on, term)
        upper = best.cost[0] if best is not None else abs(dual) * 1.05 + 1.0
        if best is not None and (upper - lower) <= tol * abs(upper):
            converged = True
            break
        s_region = demand - supply - imports
        s_system = float(imports.sum())
        norm = float(s_region @ s_region + s_system**2)
        if norm <= 1e-18:  # the relaxed answer meets every balance: it is optimal for its commitment
            repair(on, term)
            break
        length = theta * max(upper - dual, 1e-9 * abs(upper)) / norm
        lam = lam + length * s_region
        mu = mu + length * s_system
    repair(on, term)
    final = best if best is not None else clear(problem, state, on)
    return LagrangianResult(
        final,
        float(lower),
        done,
        len(tried),
        tally.messages,
        tally.clearings,
        tally.picks,
        tally.checks,
        stopped,
        converged,
    )
