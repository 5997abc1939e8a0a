"""The problem compiled to a Pyomo model: binary commitment, semi-continuous running ranges,
regional balances and CS limits.

State data (demand, V2G availability) are mutable ``Param``s, so one model is built per problem
and a persistent solver re-solves it state after state without rebuilding it.

Formulations of the on/off cost ``a·P² + b·P + c·u`` over ``P ∈ {0} ∪ [p_min, p_max]``
(``benchmarks/bench_scip_best.py`` measures them; docs/classical-backends.md, "SCIP at its best"):

- ``bigm``: the textbook model, ``p_min·u ≤ P ≤ upper·u`` and the quadratic cost in the objective
  (Pyomo hands SCIP one epigraph row ``z ≥ Σ cost``);
- ``perspective``: each quadratic group's cost through its own epigraph ``s_g`` with the rotated
  cone ``P² ≤ s·u`` (the perspective of ``a·P²``: exact at ``u ∈ {0, 1}``, and its continuous
  relaxation is the convex hull of the on/off set, so the root bound is much tighter);
- ``epigraph``: the same per-group epigraphs without the perspective, ``P² ≤ s`` (it separates what
  splitting the cost row buys from what the cone buys).

``bounds="state"`` writes the state's V2G availability as a variable bound of ``P`` and keeps the
commitment rows' coefficients constant (``P ≤ p_max·u``); ``bounds="param"`` (today's) multiplies
the mutable parameter into the row, which Pyomo's persistent SCIP interface passes as a product
of two variables (a bilinear row) that SCIP's presolve must first linearise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State

FORMULATIONS = ("bigm", "perspective", "epigraph")
BOUNDS = ("param", "state")


def build_model(problem: Problem, formulation: str = "bigm", bounds: str = "param") -> pyo.ConcreteModel:
    """Pyomo model of one interval; call :func:`set_state` before solving."""
    if formulation not in FORMULATIONS or bounds not in BOUNDS:
        raise ValueError(f"formulation must be one of {FORMULATIONS} and bounds one of {BOUNDS}")
    m = pyo.ConcreteModel(name=problem.name)
    m.G = pyo.Set(initialize=problem.group_names, ordered=True)
    m.R = pyo.Set(initialize=problem.region_names, ordered=True)
    groups = {g.name: g for g in problem.groups}
    regions = {r.name: r for r in problem.regions}

    m.demand = pyo.Param(m.R, mutable=True, initialize=0.0)
    m.upper = pyo.Param(m.G, mutable=True, initialize={g: groups[g].p_max for g in problem.group_names})

    if bounds == "state":
        m.P = pyo.Var(m.G, domain=pyo.NonNegativeReals, bounds=lambda m, g: (0.0, m.upper[g]))
    else:
        m.P = pyo.Var(m.G, domain=pyo.NonNegativeReals, bounds=lambda _, g: (0.0, groups[g].p_max))
    m.u = pyo.Var(m.G, domain=pyo.Binary)
    m.T = pyo.Var(m.R, bounds=lambda _, r: (-regions[r].cs_max, regions[r].cs_max))
    if not problem.commitment:
        for g in m.G:
            m.u[g].fix(1)

    m.running_min = pyo.Constraint(m.G, rule=lambda m, g: m.P[g] >= groups[g].p_min * m.u[g])
    if bounds == "state":
        m.running_max = pyo.Constraint(m.G, rule=lambda m, g: m.P[g] <= groups[g].p_max * m.u[g])
    else:
        m.running_max = pyo.Constraint(m.G, rule=lambda m, g: m.P[g] <= m.upper[g] * m.u[g])
    m.regional_balance = pyo.Constraint(
        m.R,
        rule=lambda m, r: (
            sum(groups[g].delivery * m.P[g] for g in problem.group_names if groups[g].region == r) + m.T[r]
            == m.demand[r]
        ),
    )
    m.grid_conservation = pyo.Constraint(expr=sum(m.T[r] for r in m.R) == 0)
    if formulation in ("perspective", "epigraph"):
        quadratic = [g for g in problem.group_names if groups[g].quadratic_cost > 0]
        m.Q = pyo.Set(initialize=quadratic, ordered=True)
        m.s = pyo.Var(m.Q, bounds=lambda _, g: (0.0, groups[g].p_max ** 2))
        if formulation == "perspective":
            m.perspective = pyo.Constraint(m.Q, rule=lambda m, g: m.P[g] ** 2 <= m.s[g] * m.u[g])
        else:
            m.perspective = pyo.Constraint(m.Q, rule=lambda m, g: m.P[g] ** 2 <= m.s[g])
        m.cost = pyo.Objective(
            expr=sum(groups[g].quadratic_cost * m.s[g] for g in m.Q)
            + sum(groups[g].linear_cost * m.P[g] + groups[g].fixed_cost * m.u[g] for g in m.G),
            sense=pyo.minimize,
        )
    else:
        m.cost = pyo.Objective(
            expr=sum(
                groups[g].quadratic_cost * m.P[g] ** 2 + groups[g].linear_cost * m.P[g] + groups[g].fixed_cost * m.u[g]
                for g in m.G
            ),
            sense=pyo.minimize,
        )
    return m


def set_state(model: pyo.ConcreteModel, problem: Problem, state: State) -> None:
    """Load one interval's demand and V2G availability into the mutable parameters."""
    for r in problem.region_names:
        model.demand[r] = state.demand[r]
    for g, ub in zip(problem.group_names, problem.upper_bounds(state)):
        model.upper[g] = float(ub)


def _within(var: Any, value: float) -> float:
    """``value`` clipped to the variable's bounds: a balanced dispatch may sit a round-off past a
    CS limit (-140.00000000000003), which Pyomo warns about and SCIP only tolerates."""
    lb, ub = var.bounds
    return float(min(max(value, -np.inf if lb is None else lb), np.inf if ub is None else ub))


def add_start(solver: Any, model: pyo.ConcreteModel, problem: Problem, dispatch: Dispatch) -> None:
    """Hand SCIP a complete starting solution on Pyomo's persistent model.

    Why not Pyomo's ``warmstart_discrete_vars``: it adds a *partial* solution (the binaries only),
    and SCIP keeps partial solutions in its original-problem storage across re-solves of a
    persistent model, so after ``limits/maxorigsol`` (10) states every solve fails ("Cannot add
    partial solution to storage"). A complete solution has no such limit and needs no completion
    sub-MIP. It must give every SCIP variable a value, including those Pyomo adds behind the
    model's back: the mutable parameters (SCIP variables fixed to their value) and the objective's
    epigraph variable; those live in the interface's private maps, which is why this reaches in.
    The transformed problem is freed first: Pyomo frees it only when a parameter changed. A
    rebuilt model (``persistent=false``) gets no start: ``scip_direct`` makes SCIP's model inside
    its solve.
    """
    solver.update()  # Pyomo's pending parameter changes first: they free the transformed problem
    scip = solver._solver_model
    if scip.getStage() > 1:  # SCIP_STAGE_PROBLEM = 1: a start can only be added before transforming
        scip.freeTransform()
    for k, g in enumerate(problem.group_names):
        if not model.u[g].fixed:
            model.u[g].set_value(1 if dispatch.on[k] else 0)
        model.P[g].set_value(_within(model.P[g], dispatch.power[k]))
        if hasattr(model, "s") and g in model.s:
            model.s[g].set_value(float(dispatch.power[k]) ** 2)
    for k, r in enumerate(problem.region_names):
        model.T[r].set_value(_within(model.T[r], dispatch.imports[k]))
    sol = scip.createOrigSol()
    for var, scip_var in solver._pyomo_var_to_solver_var_map.items():
        scip.setSolVal(sol, scip_var, var.value)
    for param, scip_var in solver._pyomo_param_to_solver_param_map.items():
        scip.setSolVal(sol, scip_var, param.value)
    if getattr(solver, "_obj_var", None) is not None:
        scip.setSolVal(sol, solver._obj_var, pyo.value(model.cost))
    scip.addSol(sol, free=True)


def read_dispatch(model: pyo.ConcreteModel, problem: Problem) -> Dispatch:
    """The solved values as a :class:`Dispatch` (tiny negative round-off clipped to 0)."""
    power = np.array([max(pyo.value(model.P[g]), 0.0) for g in problem.group_names])
    on = np.array([pyo.value(model.u[g]) > 0.5 for g in problem.group_names])
    power = np.where(on, power, 0.0)
    imports = np.array([pyo.value(model.T[r]) for r in problem.region_names])
    return Dispatch(on=on, power=power, imports=imports)
