"""What an agent hears after a clearing: its features, as named columns.

The commitment and move networks read one row of numbers per agent; which number sits in which
column is decided here, once (``FEATURE_NAMES``), and every other module reads a column by its
name (:meth:`Features.column`), so no module depends on a position another one chose. The
networks' two outputs are named here too (``OFF``/``ON`` of the Q-network, ``SOLO``/``HANDOVER``
of the move network), without importing torch: the plan competition uses them as well.

Each agent computes its own row from its observation, its own ratings and curve and what its CS
node announces after the clearing (prices, the link's loading, whether the plan cleared); the
arithmetic is vectorised over agents, but no agent's row uses another agent's private numbers.
**Every column is a ratio** — of the agent's own ratings or curve, of its region's capacity, of
the system's — so the same network reads an agent of a 4-region instance and of a 512-region one
alike (``share="type"``): nothing here grows with the number of regions or groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dispatchbench.formulations.balancing import States, demand_rows, state_bounds
from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.formulations.vector_form import RegionRanges, flip_shortfalls, handover_shortfalls
from dispatchbench.learn.tvc.offers import OfferBook
from dispatchbench.learn.tvc.zones import pick
from dispatchbench.model.problem import Problem

if TYPE_CHECKING:
    from dispatchbench.learn.tvc.curves import CostCurves

OFF, ON = 0, 1  # the Q-network's outputs: the value of playing off, of playing on
SOLO, HANDOVER = 0, 1  # the move network's outputs: the team gain of a solo flip, of starting a hand-over

FEATURE_NAMES = (
    "total_demand",  # total demand / system capacity
    "own_demand_or_v2g",  # region demand / (region capacity + CS limit); V2G: own availability / p_max
    "third_observation",  # region V2G availability / its V2G p_max; V2G: region demand ratio (marl_env)
    "status",  # 1 if the agent runs in the plan just cleared (all run in the trial clearing)
    "region_price",  # the cleared regional price, placed in the agent's own marginal-cost range
    "system_price",  # the same for the system price (differs when the CS link binds)
    "offer",  # the output it would offer at its regional price, / p_max
    "margin",  # λ_I·delivered − own cost at that output, / its own bill at full output
    "cs_loading",  # its region's import / CS limit (−1 export limit … 1 import limit)
    "cover",  # could the rest replace its output (region's spare + what its CS link brings in)? 10·(ratio − 1)
    "cleared",  # 1 if the plan met every balance
    "flip_workable",  # 1 if the plan with its own status flipped could still serve the demand (ratings only)
    "handover_saving",  # stopped: the dearest loss in its zone that cannot stop alone but could if it started
    "turndown",  # rating: least output / p_max
    "size",  # rating: its delivered p_max / its region's capacity (local + CS limit)
    "capacity",  # rating: p_max / 1000 kW
)
ABLATABLE = (
    "flip_workable",
    "cover",
    "handover_saving",
)  # features an ablation may switch off (``drop=``: the column reads 0)
N_FEATURES = len(FEATURE_NAMES)
COLUMN = {name: k for k, name in enumerate(FEATURE_NAMES)}
OBSERVATION_COLUMNS = FEATURE_NAMES[:3]  # the agent's observation, in marl_env's order


@dataclass(frozen=True)
class Features:
    """Every agent's features at every state of a batch: ``values`` is ``(B, G, F)``, its last axis
    laid out as ``FEATURE_NAMES``; read a column with :meth:`column`."""

    values: np.ndarray

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray]) -> Features:
        """Stack ``(B, G)`` columns given by name; every name, and no other, must be given."""
        if set(columns) != set(FEATURE_NAMES):
            missing, extra = sorted(set(FEATURE_NAMES) - set(columns)), sorted(set(columns) - set(FEATURE_NAMES))
            raise ValueError(f"feature columns: missing {missing}, unknown {extra}")
        return cls(np.stack([columns[name] for name in FEATURE_NAMES], -1))

    def column(self, name: str) -> np.ndarray:
        """``(B, G)``: the named feature of every agent at every state."""
        return self.values[..., COLUMN[name]]

    def by_agent(self) -> np.ndarray:
        """``(G, B, F)``: each agent's rows together (the stacked networks' input layout)."""
        return np.swapaxes(self.values, 0, 1)


def ratings(problem: Problem) -> np.ndarray:
    """``(G, 3)`` what each agent knows of itself (``turndown``, ``size``, ``capacity``): ratings only."""
    delivered = problem.delivery * problem.p_max
    region_cap = np.bincount(problem.group_region, weights=delivered, minlength=len(problem.regions)) + problem.cs_max
    return np.stack(
        [
            problem.lower_bounds() / np.maximum(problem.p_max, 1e-9),
            delivered / np.maximum(region_cap[problem.group_region], 1e-9),
            problem.p_max / 1000.0,
        ],
        -1,
    )


def after_clearing(
    problem: Problem,
    book: OfferBook,
    curves: CostCurves,
    own: np.ndarray,
    slots: np.ndarray,
    states: States,
    obs: np.ndarray,
    on: np.ndarray,
    result: SearchResult,
    neighbours: np.ndarray,
    drop: frozenset[str] = frozenset(),
) -> Features:
    """Every agent's features after the clearing ``result`` of plan ``on`` (``obs``: ``(B, G, 3)``;
    ``own``: :func:`ratings`; ``slots``: each region's agents, ``distributed_search.region_slots``;
    ``neighbours``: the regions of each agent's zone, ``zones.zone_neighbours``; ``drop``: columns
    an ablation switches off, read as 0)."""
    b = result.balanced
    region_of = problem.group_region
    lb, ub = state_bounds(problem, states, len(on))
    region_price = heard_prices(problem, b.region_signal, b.imports, b.system_signal)[:, region_of]
    system_price = np.broadcast_to(b.system_signal[:, None], region_price.shape)
    span = np.maximum(book.price_hi - book.price_lo, 1e-6)
    offer = np.clip(book.power_at(region_price), lb, ub)
    margin = (region_price * curves.delivery * offer - curves.cost(offer)) / curves.scale  # its own bill, its own unit
    cs = np.where(problem.cs_max > 0, problem.cs_max, 1.0)
    # what the CS nodes add: their region's spare output and how much of it could leave the
    # region (a tree sum), so an agent hears whether the others could replace its output
    delivery = problem.delivery
    spare = np.where(on, (ub - b.power) * delivery, 0.0)
    region_spare = np.concatenate([spare, np.zeros((len(spare), 1))], -1)[:, slots].sum(-1)  # (B, R)
    movable = np.clip(np.minimum(region_spare, b.imports + problem.cs_max), 0.0, None)  # (B, R)
    elsewhere = movable.sum(-1, keepdims=True) - movable  # (B, R): what other regions could send
    replace = region_spare[:, region_of] - spare + np.minimum(problem.cs_max - b.imports, elsewhere)[:, region_of]
    cover = replace / np.maximum(offer * delivery, 1e-6)
    # whether its own start or stop keeps the plan workable by ratings: its CS node works it
    # out from one tree sum of the regions' ranges (a knife edge a few kW wide on busy
    # evenings, where a V2G group's last kW decide whether an FDC group must run)
    demand = demand_rows(problem, states)
    ranges = RegionRanges.of(problem, demand, on, ub)  # one tree sum serves both checks
    flip_ok = flip_shortfalls(problem, demand, on, ub, ranges) <= 1e-9
    saving = handover_savings(problem, demand, on, ub, np.clip(margin, -5.0, 5.0), flip_ok, slots, neighbours, ranges)
    observed = obs.astype(float)
    shape = offer.shape
    columns = {
        **{name: observed[..., k] for k, name in enumerate(OBSERVATION_COLUMNS)},
        "status": on.astype(float),
        "region_price": np.clip((region_price - book.price_lo) / span, -3.0, 3.0),
        "system_price": np.clip((system_price - book.price_lo) / span, -3.0, 3.0),
        "offer": offer / np.maximum(problem.p_max, 1e-9),
        "margin": np.clip(margin, -5.0, 5.0),
        "cs_loading": np.clip(b.imports / cs, -1.0, 1.0)[:, region_of],
        "cover": np.clip(10.0 * (cover - 1.0), -5.0, 5.0),  # sharp where it matters: at ratio 1
        "cleared": np.broadcast_to(b.feasible[:, None], shape).astype(float),
        "flip_workable": flip_ok.astype(float),
        "handover_saving": saving,
        **{name: np.broadcast_to(own[:, k], shape) for k, name in enumerate(("turndown", "size", "capacity"))},
    }
    for name in drop:
        columns[name] = np.zeros(shape)
    return Features.from_columns(columns)


def heard_prices(
    problem: Problem, region_signal: np.ndarray, imports: np.ndarray, system_signal: np.ndarray
) -> np.ndarray:
    """``(B, R)`` the price a region's CS node announces: its own signal where its CS link binds
    (the market splits there), the system's elsewhere.

    Why: the clearing's inner bisection pins a region's signal only where its local supply answers
    to it. A region with no running agent, or whose running agents all sit at a bound, ends at the
    edge of the bracket, so on quiet nights a whole region heard a price below every offer while the
    system paid 6.9: a stopped V2G group there read a margin of its fixed cost alone, though its
    start saved 1.3 % (paper instance, validation state night_heavy_d0_t29)."""
    binding = np.abs(imports) >= problem.cs_max - 1e-6 * np.maximum(problem.cs_max, 1.0)
    return np.where(binding, region_signal, system_signal[:, None])


def handover_savings(
    problem: Problem,
    demand: np.ndarray,
    on: np.ndarray,
    ub: np.ndarray,
    margin: np.ndarray,
    flip_ok: np.ndarray,
    slots: np.ndarray,
    neighbours: np.ndarray,
    ranges: RegionRanges | None = None,
) -> np.ndarray:
    """``(B, G)``: for a stopped agent, the largest ``−margin`` among the hand-over candidates of
    its zone whose stop its own start would make workable (ratings only), else 0; 0 for a running
    agent.

    Why: the worst paper-size states (validation) were hand-overs — a dear group running at a
    loss (FDC2 at cs_binding peaks, ASC7 at 03:30 on base-load days) that cannot stop alone,
    where a cheaper stopped group's start would let it. The stopped agent's other features say
    nothing about that, so its learned hand-over gain could not see it. Each region's candidate is
    its running agent with the most negative margin among those whose stop alone is unworkable
    (every agent reports its margin to its CS node). The candidates' ranges go to the other CS
    nodes of their zone, and each stopped agent's CS node checks each pair from the regions' terms
    it already holds (``vector_form.handover_shortfalls``) and keeps the dearest workable one.

    One partner per zone (the zone's dearest stuck agent) was tried first: at the paper's size it
    is the same, but with zones of 8 regions it mostly sat where no start of a given agent let
    it stop, and the any-size model was worse at 32–128 regions than without the feature
    (validation, s12)."""
    n = on.shape[1]
    ranges = ranges or RegionRanges.of(problem, demand, on, ub)  # the regions' terms, built once for every pair check
    loss = np.where(on & ~flip_ok & (margin < 0), -margin, -np.inf)
    candidate, value = pick(loss, slots)  # (B, R): each region's dearest stuck agent
    candidate = np.concatenate([candidate, np.full((len(on), 1), n)], -1)  # padding region R: none
    value = np.concatenate([value, np.full((len(on), 1), -np.inf)], -1)
    best = np.zeros(on.shape)
    for k in range(neighbours.shape[1]):
        partner, saving = candidate[:, neighbours[:, k]], value[:, neighbours[:, k]]  # (B, G)
        workable = handover_shortfalls(problem, demand, on, ub, partner, ranges) <= 1e-9
        best = np.maximum(best, np.where(workable & np.isfinite(saving), saving, 0.0))
    return best
