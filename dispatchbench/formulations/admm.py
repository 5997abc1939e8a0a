"""ADMM on the regional and grid balances, with each agent's on/off inside its own proximal step.

Consensus ADMM in the form of Boyd, Parikh, Chu, Peleato & Eckstein, "Distributed Optimization
and Statistical Learning via the Alternating Direction Method of Multipliers" (2011), §7 (sharing
/ exchange): every constraint keeps its own copy of each member's contribution, projects the
copies onto itself, and each member pulls its decision towards its copies.

- **Members.** Region ``I``'s balance ``Σ_{g∈I} δ_g P_g + T_I = d_I`` has its groups and its CS
  import as members; the grid's ``Σ_I T_I = 0`` has every CS import.
- **x-step (each agent, in parallel).** Group ``g``: ``min f_g(P) + ρ/2 (δ_g P − z_g + u_g)²``
  over its own set ``{0} ∪ [lb, ub]`` — both pieces solved in closed form and the cheaper kept,
  so each group commits itself (the non-convex ADMM heuristic of Takapoui, Moehle, Boyd &
  Bemporad, "A simple effective heuristic for embedded mixed-integer quadratic programming",
  2020). CS node ``I``: ``T_I`` = the clipped mean of its two targets.
- **z-step (each constraint).** Projection of the members' ``x + u`` onto the constraint: each
  copy moves by the constraint's excess divided by its member count (computed at the CS node for
  a region, by a tree sum over the CS nodes for the grid).
- **u-step.** ``u += x − z`` (scaled duals; ``−ρ u`` is the constraint's price).

**Warm start.** Copies and duals start from the self-commitment clearing
(:class:`~dispatchbench.formulations.lagrangian.SelfCommitResponse`): ``z`` its outputs and
imports, ``u = −λ_I/ρ`` (region copies) and ``μ/ρ`` (grid copies), the fixed point's relation
between scaled duals and prices.

**Commitment: relax-and-fix.** ADMM only settles the commitment heuristically (the sets are not
convex), so the answer is fixed from it: every ``repair_every`` iterations and after the last,
the groups' current on/off is made workable
(:func:`~dispatchbench.formulations.merit_order.make_workable`, ranking groups by how much their
own proximal step preferred running) and dispatched exactly by the price clearing
(:func:`~dispatchbench.formulations.merit_order.clear`); the cheapest such dispatch is returned.
``ρ`` grows by ``growth`` per iteration (a common device for non-convex ADMM: it forces the
copies together and the commitment to settle).

**Stopping rule.** Boyd et al.'s §3.3 test with ``ε_abs = tol·√n`` kW and ``ε_rel = tol``:
primal residual ``‖x − z‖ ≤ ε_pri`` and dual residual ``ρ‖z − z_prev‖ ≤ ε_dual``, or
``iterations`` steps, or the time limit (anytime: the best fixed dispatch so far).

**Messages** (a scalar to a neighbour is 1, a tree sum over ``R`` CS nodes ``2(R − 1)``), per
iteration: each group sends its ``δP`` to its CS node and hears its new target ``z − u`` (``2G``);
the grid's projection is a tree sum of ``T_I + u_I`` (``2(R − 1)``); the two residuals are two
more tree sums (``4(R − 1)``): ``2G + 6(R − 1)``. The warm start and the repairs are counted as in
``merit_order.py`` (:class:`~dispatchbench.formulations.merit_order.Tally`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from dispatchbench.formulations.balancing import balance, state_bounds
from dispatchbench.formulations.lagrangian import GroupPrices, SelfCommitResponse
from dispatchbench.formulations.merit_order import Clearing, Tally, clear, make_workable, priority_order
from dispatchbench.model.problem import Problem, State


@dataclass(frozen=True)
class AdmmResult:
    best: Clearing  # one row: the cheapest fixed dispatch (workable=False if none was)
    iterations: int
    repairs: int
    messages: int
    clearings: int  # the starting clearing and every repair's (counted as merit_order.Tally does)
    picks: int  # workability steps of the repairs
    checks: int  # workability checks of the repairs
    primal_residual: float  # kW, at the last iteration
    converged: bool
    stopped_at_budget: bool


def group_prox(
    problem: Problem, lb: np.ndarray, ub: np.ndarray, target: np.ndarray, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Every group's ``argmin f(P) + ρ/2 (δP − target)²`` over ``{0} ∪ [lb, ub]``: (output,
    preference for running = value on − value off; negative when running is chosen)."""
    a, b, c, d = problem.a, problem.b, problem.c, problem.delivery
    p_on = np.clip((rho * d * target - b) / (2 * a + rho * d**2), lb, ub)
    value_on = a * p_on**2 + b * p_on + c + 0.5 * rho * (d * p_on - target) ** 2
    value_off = 0.5 * rho * target**2
    prefer = value_on - value_off
    if not problem.commitment:
        return p_on, np.full_like(prefer, -np.inf)
    return np.where(prefer < 0, p_on, 0.0), prefer


def admm(
    problem: Problem,
    state: State,
    *,
    rho: float = 0.03,
    growth: float = 1.0,
    iterations: int = 200,
    repair_every: int = 10,
    tol: float = 1e-4,
    deadline: float = np.inf,
) -> AdmmResult:
    """ADMM with relax-and-fix for one state (module docstring)."""
    tally = Tally(problem)
    n_groups, n_regions = len(problem.groups), len(problem.regions)
    region = problem.group_region
    demand, cs, delivery = problem.demand_vector(state), problem.cs_max, problem.delivery
    lb2, ub2 = state_bounds(problem, state, 1)
    lb, ub = lb2[0], ub2[0]
    members = np.bincount(region, minlength=n_regions) + 1.0  # groups and the CS import
    per_iteration = 2 * n_groups + 3 * tally.tree

    start = balance(problem, state, SelfCommitResponse(GroupPrices(problem, lb2, ub2), problem.commitment))
    tally.cleared()
    lam, mu = start.region_signal[0], float(start.system_signal[0])
    z_g = delivery * start.power[0]  # region copies of the groups' delivered power
    z_r = start.imports[0].copy()  # region copies of the imports
    z_s = start.imports[0].copy()  # grid copies of the imports
    u_g, u_r, u_s = -lam[region] / rho, -lam / rho, np.full(n_regions, mu / rho)

    usable = np.zeros(n_groups, dtype=bool)
    usable[priority_order(problem, state)] = True
    best: Clearing | None = None
    tried: set[bytes] = set()

    def repair(on: np.ndarray, prefer: np.ndarray) -> None:
        nonlocal best
        ranked = np.argsort(prefer, kind="stable")
        fixed = make_workable(problem, state, on & usable, ranked[usable[ranked]], tally)
        key = fixed.tobytes()
        if key in tried:
            return
        tried.add(key)
        trial = clear(problem, state, fixed)
        tally.cleared()
        if trial.workable[0] and (best is None or trial.cost[0] < best.cost[0]):
            best = trial

    done, converged, stopped, r_norm = 0, False, False, math.inf
    on = np.zeros(n_groups, dtype=bool)
    prefer = np.zeros(n_groups)
    scale = math.sqrt(n_groups + 2 * n_regions)
    while done < iterations:
        if time.perf_counter() > deadline:
            stopped = True
            break
        # x-step: every agent alone
        power, prefer = group_prox(problem, lb, ub, z_g - u_g, rho)
        on = power > 0 if problem.commitment else np.ones(n_groups, dtype=bool)
        x_g = delivery * power
        imports = np.clip(0.5 * ((z_r - u_r) + (z_s - u_s)), -cs, cs)
        # z-step: project onto each constraint
        old = np.concatenate([z_g, z_r, z_s])
        w_g, w_r, w_s = x_g + u_g, imports + u_r, imports + u_s
        excess = np.bincount(region, weights=w_g, minlength=n_regions) + w_r - demand
        z_g, z_r = w_g - (excess / members)[region], w_r - excess / members
        z_s = w_s - w_s.sum() / n_regions
        # u-step
        u_g, u_r, u_s = u_g + x_g - z_g, u_r + imports - z_r, u_s + imports - z_s
        tally.messages += per_iteration
        done += 1
        x_all = np.concatenate([x_g, imports, imports])
        z_all = np.concatenate([z_g, z_r, z_s])
        r_norm = float(np.linalg.norm(x_all - z_all))
        s_norm = rho * float(np.linalg.norm(z_all - old))
        if done % repair_every == 0:
            repair(on, prefer)
        eps_pri = tol * scale + tol * max(float(np.linalg.norm(x_all)), float(np.linalg.norm(z_all)))
        eps_dual = tol * scale + tol * rho * float(np.linalg.norm(np.concatenate([u_g, u_r, u_s])))
        if r_norm <= eps_pri and s_norm <= eps_dual:
            converged = True
            break
        if growth != 1.0:  # scaled duals follow ρ: u = y / ρ
            rho_next = rho * growth
            u_g, u_r, u_s = u_g * rho / rho_next, u_r * rho / rho_next, u_s * rho / rho_next
            rho = rho_next
    repair(on, prefer)
    final = best if best is not None else clear(problem, state, on)
    return AdmmResult(
        final, done, len(tried), tally.messages, tally.clearings, tally.picks, tally.checks, r_norm, converged, stopped
    )
