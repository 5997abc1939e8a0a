"""What a shared MADDPG actor sees and what its critic hears about the others — at any size.

Why: one actor per group *type* decides for every group of that type, on instances of 4 or 512
regions alike, so nothing it reads may grow with the number of regions or groups. Every input is
a ratio of two quantities of the same reach (a region's demand to that region's capacity, the
system's demand to the system's capacity) or one of the agent's own ratings, which is what lets
one network serve a 200 kW and a 600 kW fast-charger group.

Actor inputs (``FEATURES``; the agent measures its own, hears its region's from its CS node and
the two system totals from one tree sum each):

- ``total_demand / system capacity`` and ``system available capacity / system capacity``;
- ``region demand / region capacity``, ``region available capacity / region capacity``,
  ``region V2G available / region V2G p_max`` (0 without V2G) and ``cs_max / region capacity``;
- its own ``available / p_max`` (V2G: ``min(v, p_max) / p_max``; FDC and ASC: 1), ``p_min / p_max``,
  ``p_max / region capacity`` and ``p_max / 1000 kW`` (its size in absolute terms);

where capacity is delivered kW at full output (``Σ efficiency · p_max``), a region's includes its CS
limit (what it can serve), and *available* uses this interval's V2G availability.

What running costs (``cost_inputs``, ``COST_FEATURES``). The inputs above are ratings only, and on
an instance the model never saw, ratings do not say which group is cheap: the released model of
2026-12-03 switched on about the right capacity of each type but the wrong groups (at 32 regions,
22.5 of its 24.0 % validation gap was commitment). So, like MADRL-TVC's agents (``tvc/curves.py``),
each agent *meters its own bill* — at its full available output and at 90 % of it, never a cost
coefficient — and hears summaries of the others' bills:

- ``own``: its average cost per delivered kW at full output over the system's (one more tree sum:
  the system's bill and delivered kW at full output), and its metered marginal cost over its
  average (how much of its bill is fixed);
- ``merit`` (default): also the delivered available capacity of the agents whose average cost is
  strictly below its own, over the system capacity and, within its region, over the region
  capacity — its place in the system's and its region's merit order, read against the demand
  ratios above. It takes one tree gather of (average cost, available kW) pairs, whose messages
  carry lists (counted as messages, not scalars: ``shared.observation_messages``). It is what the
  priority-list heuristic (``merit_order``) reads, so the actor starts from the merit order and
  learns what the list ignores: minimum outputs, CS limits, V2G availability, the power split.

The critic (centralised, CTDE) adds mean-field summaries of the *other* agents' actions, excluding
the agent itself, so a critic trained with 10 agents reads 300 (``MEAN_FIELD``): the capacity they
have switched on, their running minimum and the power they propose, delivered kW, over the system
(divided by the system capacity) and over the agent's region (divided by the region capacity).

Which problems a shared model may decide (the group types and ratings it trained on) is every
any-size learner's check: ``lifecycle.rating_coverage`` and ``lifecycle.uncovered``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dispatchbench.model.evaluate import group_costs  # the station's meter: its own bill at an output
from dispatchbench.model.problem import GroupType, Problem, State

TYPES: tuple[str, ...] = tuple(t.value for t in GroupType)  # FDC, ASC, V2G: one actor and one critic each
FEATURES = (
    "total_demand/system_capacity",
    "system_available/system_capacity",
    "region_demand/region_capacity",
    "region_available/region_capacity",
    "region_v2g_available/region_v2g_pmax",
    "cs_max/region_capacity",
    "own_available/p_max",
    "p_min/p_max",
    "p_max/region_capacity",
    "p_max/1000kW",
)
MEAN_FIELD = (
    "others_on_capacity/system_capacity",
    "others_on_minimum/system_capacity",
    "others_proposed/system_capacity",
    "region_others_on_capacity/region_capacity",
    "region_others_on_minimum/region_capacity",
    "region_others_proposed/region_capacity",
)
COST_FEATURES: dict[str, tuple[str, ...]] = {
    "none": (),
    "own": ("own_cost_per_kw/system_cost_per_kw", "own_marginal/own_average"),
    "merit": (
        "own_cost_per_kw/system_cost_per_kw",
        "own_marginal/own_average",
        "cheaper_available/system_capacity",
        "region_cheaper_available/region_capacity",
    ),
}
N_FEATURES, N_MEAN_FIELD = len(FEATURES), len(MEAN_FIELD)


def feature_names(cost_inputs: str) -> tuple[str, ...]:
    """The actor's input columns with ``cost_inputs`` (module docstring), in order."""
    return FEATURES + COST_FEATURES[cost_inputs]


KW_UNIT = 1000.0  # the unit of p_max/1000kW: a fixed rating scale, the same for every instance


@dataclass(frozen=True)
class Layout:
    """The capacities every feature is divided by, from ratings only (never costs)."""

    type_index: np.ndarray  # (G,) index into TYPES
    region_of: np.ndarray  # (G,)
    n_regions: int
    system_capacity: float
    region_capacity: np.ndarray  # (G,) the group's region: Σ delivered p_max + cs_max
    region_v2g_pmax: np.ndarray  # (G,)
    cs_share: np.ndarray  # (G,) cs_max / region capacity

    @property
    def n_agents(self) -> int:
        return len(self.type_index)


@functools.lru_cache(maxsize=64)
def layout(problem: Problem) -> Layout:
    cap = problem.delivery * problem.p_max
    n = len(problem.regions)
    region_of = problem.group_region
    region_cap = np.bincount(region_of, weights=cap, minlength=n) + problem.cs_max
    v2g = np.bincount(region_of, weights=np.where(problem.is_v2g, problem.p_max, 0.0), minlength=n)
    return Layout(
        type_index=np.array([TYPES.index(g.type.value) for g in problem.groups], dtype=int),
        region_of=region_of,
        n_regions=n,
        system_capacity=float(max(cap.sum(), 1.0)),
        region_capacity=np.maximum(region_cap[region_of], 1.0),
        region_v2g_pmax=np.maximum(v2g[region_of], 1.0),
        cs_share=(problem.cs_max / np.maximum(region_cap, 1.0))[region_of],
    )


def upper_rows(problem: Problem, states: Sequence[State]) -> np.ndarray:
    """``(B, G)`` largest power of each group while on (V2G: ``min(p_max, v)``)."""
    return np.array([problem.upper_bounds(s) for s in states], dtype=float).reshape(len(states), -1)


def agent_features(
    problem: Problem, states: Sequence[State], ub: np.ndarray | None = None, cost_inputs: str = "none"
) -> np.ndarray:
    """``(B, G, len(feature_names(cost_inputs)))`` float32 actor inputs of every agent at every
    state (module docstring)."""
    lay = layout(problem)
    ub = upper_rows(problem, states) if ub is None else ub
    demand = np.array([problem.demand_vector(s) for s in states], dtype=float).reshape(len(states), -1)
    delivered_ub = ub * problem.delivery  # (B, G)
    region_avail = _region_sum(lay, delivered_ub)  # (B, R)
    v2g_avail = _region_sum(lay, np.where(problem.is_v2g, ub, 0.0))
    own = lambda x: np.broadcast_to(x, ub.shape)  # noqa: E731 (a per-group constant on every row)
    columns = [
        own(demand.sum(-1, keepdims=True) / lay.system_capacity),
        own(delivered_ub.sum(-1, keepdims=True) / lay.system_capacity),
        demand[:, lay.region_of] / lay.region_capacity,
        region_avail[:, lay.region_of] / lay.region_capacity,
        v2g_avail[:, lay.region_of] / lay.region_v2g_pmax,
        own(lay.cs_share),
        ub / np.maximum(problem.p_max, 1e-9),
        own(problem.p_min / np.maximum(problem.p_max, 1e-9)),
        own(problem.p_max * problem.delivery / lay.region_capacity),
        own(problem.p_max / KW_UNIT),
    ]
    if cost_inputs != "none":
        columns += _cost_columns(problem, lay, ub, delivered_ub, merit=cost_inputs == "merit")
    return np.stack(columns, axis=-1).astype(np.float32)


def _cost_columns(
    problem: Problem, lay: Layout, ub: np.ndarray, delivered_ub: np.ndarray, merit: bool
) -> list[np.ndarray]:
    """The ``own``/``merit`` columns from each agent's metered bills (module docstring)."""
    full = np.where(ub > problem.lower_bounds(), ub, problem.p_max)  # a V2G group with nothing available: its rating
    on = np.ones(problem.p_max.shape, dtype=bool)
    bill, bill_90 = group_costs(problem, on, full), group_costs(problem, on, 0.9 * full)
    delivered = np.maximum(full * problem.delivery, 1e-9)
    average = bill / delivered
    marginal = (bill - bill_90) / (0.1 * delivered)
    system = bill.sum(-1, keepdims=True) / delivered.sum(-1, keepdims=True)
    columns = [average / np.maximum(system, 1e-9), marginal / np.maximum(average, 1e-9)]
    if merit:
        everyone = np.zeros(lay.n_agents, dtype=int)
        cheaper = np.stack([_cheaper(a, w, everyone) for a, w in zip(average, delivered_ub)])
        region_cheaper = np.stack([_cheaper(a, w, lay.region_of) for a, w in zip(average, delivered_ub)])
        columns += [cheaper / lay.system_capacity, region_cheaper / lay.region_capacity]
    return columns


def _cheaper(values: np.ndarray, weights: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """``(G,)``: the summed ``weights`` of the members of each one's group with a strictly lower
    value (ties count for neither, so an instance copied twice over gives the same ratios)."""
    order = np.lexsort((values, group_of))
    v, w, g = values[order], weights[order], group_of[order]
    cum = np.concatenate([[0.0], np.cumsum(w)])
    idx = np.arange(len(v))
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_run = new_group | np.r_[True, v[1:] != v[:-1]]
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))
    out = np.empty(len(v))
    out[order] = cum[run_start] - cum[group_start]
    return out


def mean_field(problem: Problem, on: np.ndarray, power: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``(B, G, N_MEAN_FIELD)`` summaries of every *other* agent's action (module docstring).

    ``on`` (bool), ``power`` (the proposal in kW, 0 when off), ``lb``, ``ub`` are ``(B, G)``."""
    lay = layout(problem)
    d = problem.delivery
    parts = np.stack([on * d * ub, on * d * lb, on * d * power], axis=-1)  # (B, G, 3)
    system = parts.sum(1, keepdims=True) - parts  # (B, G, 3): everyone but the agent
    region = np.zeros((parts.shape[0], lay.n_regions, 3))
    np.add.at(region, (slice(None), lay.region_of), parts)  # type: ignore[arg-type]
    region = region[:, lay.region_of] - parts
    out = np.concatenate([system / lay.system_capacity, region / lay.region_capacity[None, :, None]], axis=-1)
    return out.astype(np.float32)


def _region_sum(lay: Layout, values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0], lay.n_regions))
    np.add.at(out, (slice(None), lay.region_of), values)  # type: ignore[arg-type]
    return out
