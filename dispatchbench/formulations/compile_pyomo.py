"""The problem compiled to a Pyomo model: binary commitment, semi-continuous running ranges,
regional balances and CS limits.

State data (demand, V2G availability) are mutable ``Param``s, so one model is built per problem
and a persistent solver re-solves it state after state without rebuilding it.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State


def build_model(problem: Problem) -> pyo.ConcreteModel:
    """Pyomo model of one interval; call :func:`set_state` before solving."""
    m = pyo.ConcreteModel(name=problem.name)
    m.G = pyo.Set(initialize=problem.group_names, ordered=True)
    m.R = pyo.Set(initialize=problem.region_names, ordered=True)
    groups = {g.name: g for g in problem.groups}
    regions = {r.name: r for r in problem.regions}

    m.demand = pyo.Param(m.R, mutable=True, initialize=0.0)
    m.upper = pyo.Param(m.G, mutable=True, initialize={g: groups[g].p_max for g in problem.group_names})

    m.P = pyo.Var(m.G, domain=pyo.NonNegativeReals, bounds=lambda _, g: (0.0, groups[g].p_max))
    m.u = pyo.Var(m.G, domain=pyo.Binary)
    m.T = pyo.Var(m.R, bounds=lambda _, r: (-regions[r].cs_max, regions[r].cs_max))
    if not problem.commitment:
        for g in m.G:
            m.u[g].fix(1)

    m.running_min = pyo.Constraint(m.G, rule=lambda m, g: m.P[g] >= groups[g].p_min * m.u[g])
    m.running_max = pyo.Constraint(m.G, rule=lambda m, g: m.P[g] <= m.upper[g] * m.u[g])
    m.regional_balance = pyo.Constraint(
        m.R,
        rule=lambda m, r: (
            sum(groups[g].delivery * m.P[g] for g in problem.group_names if groups[g].region == r) + m.T[r]
            == m.demand[r]
        ),
    )
    m.grid_conservation = pyo.Constraint(expr=sum(m.T[r] for r in m.R) == 0)
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


def read_dispatch(model: pyo.ConcreteModel, problem: Problem) -> Dispatch:
    """The solved values as a :class:`Dispatch` (tiny negative round-off clipped to 0)."""
    power = np.array([max(pyo.value(model.P[g]), 0.0) for g in problem.group_names])
    on = np.array([pyo.value(model.u[g]) > 0.5 for g in problem.group_names])
    power = np.where(on, power, 0.0)
    imports = np.array([pyo.value(model.T[r]) for r in problem.region_names])
    return Dispatch(on=on, power=power, imports=imports)
