"""The dispatch problem as a multi-agent environment: observations, actions, reward, sampler.

One agent per charger group; every decision is one static step (paper IV.A: a fresh state per
decision, no history). The pieces an agent needs at execution — its observation, the mapping of
its raw action into its own feasible set — are plain functions, so a trained solver uses exactly
what the environment used during training without building an environment. The reward is the
only place cost coefficients enter: learners see rewards, never ``a, b, c, g, h``.

The same pieces wrapped as a PettingZoo ``ParallelEnv`` (for MARL libraries) are in
``pettingzoo_env.py``; this module needs neither PettingZoo nor gymnasium, so the learners
import it without them.

See ``docs/learning.md`` for the setting in prose.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.instances.protocol import TRAINING
from dispatchbench.instances.state_families import FAMILIES, INTERVALS, MAX_DAYS, generate_interval
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import Evaluation, evaluate
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import Problem, State

OBS_DIM = 3


# ---- observations -------------------------------------------------------------------------
def agent_ids(problem: Problem) -> list[str]:
    """Agents are the charger groups, named as in the problem file."""
    return list(problem.group_names)


def observation_names(problem: Problem, agent: str) -> tuple[str, str, str]:
    g = problem.groups[problem.group_names.index(agent)]
    if g.is_v2g:
        return ("total_demand", f"v2g_available_{g.name}", f"demand_{g.region}")
    return ("total_demand", f"demand_{g.region}", f"v2g_available_region_{g.region}")


@functools.lru_cache(maxsize=32)
def _scales(problem: Problem) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed observation scales from capacities only (no costs): system capacity, each group's
    region capacity (local + CS limit), its region's V2G p_max total, its own p_max."""
    cap = problem.delivery * problem.p_max
    region_cap = np.bincount(problem.group_region, weights=cap, minlength=len(problem.regions)) + problem.cs_max
    v2g_pmax = np.bincount(
        problem.group_region, weights=np.where(problem.is_v2g, problem.p_max, 0.0), minlength=len(problem.regions)
    )
    region_of = problem.group_region
    return (
        float(max(cap.sum(), 1.0)),
        np.maximum(region_cap[region_of], 1.0),
        np.maximum(v2g_pmax[region_of], 1.0),
        np.maximum(problem.p_max, 1.0),
    )


def _state_arrays(problem: Problem, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray]:
    """``(B, R)`` demand and ``(B, G)`` V2G availability (0 for FDC/ASC)."""
    demand = np.array([problem.demand_vector(s) for s in states], dtype=float).reshape(len(states), -1)
    avail = np.array(
        [[s.v2g_available.get(g.name, 0.0) if g.is_v2g else 0.0 for g in problem.groups] for s in states], dtype=float
    ).reshape(len(states), -1)
    return demand, avail


def observation_matrix(problem: Problem, states: Sequence[State]) -> np.ndarray:
    """``(B, G, 3)`` float32 observations of every agent at every state (layout: docs/learning.md)."""
    s_total, s_region, s_v2g_region, s_own = _scales(problem)
    demand, avail = _state_arrays(problem, states)
    region_of = problem.group_region
    total = demand.sum(-1, keepdims=True) / s_total  # (B, 1)
    own_region = demand[:, region_of] / s_region  # (B, G)
    region_v2g = np.zeros_like(demand)
    np.add.at(region_v2g.T, region_of, avail.T)  # region totals of V2G availability
    region_v2g_obs = region_v2g[:, region_of] / s_v2g_region
    first = np.broadcast_to(total, own_region.shape)
    second = np.where(problem.is_v2g, avail / s_own, own_region)
    third = np.where(problem.is_v2g, own_region, region_v2g_obs)
    return np.stack([first, second, third], axis=-1).astype(np.float32)


def observations(problem: Problem, state: State) -> dict[str, np.ndarray]:
    matrix = observation_matrix(problem, [state])[0]
    return {a: matrix[i] for i, a in enumerate(agent_ids(problem))}


# ---- action-space mapping -----------------------------------------------------------------
@dataclass(frozen=True)
class MappedActions:
    """Raw actions mapped into each agent's own feasible set ``{0} ∪ [lb, ub]``."""

    on: np.ndarray  # (B, G) bool
    power: np.ndarray  # (B, G) kW (V2G: battery-side x)
    lb: np.ndarray  # (B, G)
    ub: np.ndarray  # (B, G)


def action_bounds(problem: Problem, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray]:
    """``(B, G)`` least and largest power of each group while on, per state."""
    ub = np.array([problem.upper_bounds(s) for s in states], dtype=float).reshape(len(states), -1)
    return np.broadcast_to(problem.lower_bounds(), ub.shape).copy(), ub


def map_actions(problem: Problem, states: Sequence[State], raw: np.ndarray) -> MappedActions:
    """The action-space mapping: raw ``a ∈ [-1, 1]`` per agent -> a power in its feasible set.

    With commitment, ``a < 0`` is off and ``a ≥ 0`` runs at ``lb + a·(ub − lb)``; without
    commitment every group runs at ``lb + (a + 1)/2·(ub − lb)``. No mapped action is ever
    infeasible on its own; only the balances (closed by the search) couple the agents.
    """
    lb, ub = action_bounds(problem, states)
    a = np.clip(np.asarray(raw, dtype=float).reshape(lb.shape), -1.0, 1.0)
    if problem.commitment:
        on = a >= 0
        power = np.where(on, lb + np.clip(a, 0.0, 1.0) * (ub - lb), 0.0)
    else:
        on = np.ones_like(a, dtype=bool)
        power = lb + 0.5 * (a + 1.0) * (ub - lb)
    return MappedActions(on=on, power=power, lb=lb, ub=ub)


# ---- reward -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward (paper IV.A.4), all in cost units before normalisation."""

    own_weight: float = 0.1  # the agent's own cost C_i
    team_weight: float = 1.0  # the shared team cost C_total: makes the agents cooperative
    penalty_per_kw: float = 50.0  # per kW of violation the search could not remove
    move_weight: float = 0.0  # per kW the search moved this agent's own action


@functools.lru_cache(maxsize=32)
def cost_scale(problem: Problem) -> float:
    """Environment-side normaliser: the cost of every group at full output. Learners never see it."""
    full = problem.a * problem.p_max**2 + problem.b * problem.p_max + problem.c
    return float(max(full.sum(), 1.0))


@dataclass(frozen=True)
class Outcome:
    """Everything that follows from one action profile at one state."""

    mapped: MappedActions  # one row
    dispatch: Dispatch  # balanced by the search, commitment as mapped
    evaluation: Evaluation
    feasible_commitment: bool
    moved_kw: np.ndarray  # (G,) |mapped − balanced|
    violation_kw: float  # sum over the evaluator's violation families
    rewards: np.ndarray  # (G,)
    team_reward: float
    messages: int


def outcome(
    problem: Problem,
    state: State,
    raw: np.ndarray,
    *,
    reward: RewardConfig = RewardConfig(),
    search: DistributedSearch | None = None,
) -> Outcome:
    """Map ``raw`` (G,), close the balances with the distributed search, score with the evaluator."""
    search = search or _default_search(problem)
    mapped = map_actions(problem, [state], np.asarray(raw).reshape(1, -1))
    result = search.project(state, mapped.on, mapped.power)
    dispatch = result.dispatch(problem, mapped.on[0])
    ev = evaluate(problem, state, dispatch)
    violation = float(sum(ev.violations.values()))
    moved = np.abs(mapped.power[0] - dispatch.power)
    scale = cost_scale(problem)
    team_cost = ev.cost + reward.penalty_per_kw * violation
    rewards = (
        -(reward.own_weight * ev.group_costs + reward.team_weight * team_cost + reward.move_weight * moved) / scale
    )
    return Outcome(
        mapped=mapped,
        dispatch=dispatch,
        evaluation=ev,
        feasible_commitment=bool(result.feasible[0]),
        moved_kw=moved,
        violation_kw=violation,
        rewards=rewards.astype(np.float32),
        team_reward=float(-team_cost / scale),
        messages=result.messages,
    )


@functools.lru_cache(maxsize=32)
def _default_search(problem: Problem) -> DistributedSearch:
    return DistributedSearch(problem)


# ---- training distribution ----------------------------------------------------------------
@dataclass(frozen=True)
class StateBox:
    """Uniform box of training states: demand per region and V2G availability per V2G group."""

    demand_low: np.ndarray  # (R,)
    demand_high: np.ndarray
    v2g_low: np.ndarray  # (V,) problem.v2g_names order
    v2g_high: np.ndarray

    @classmethod
    def from_problem(cls, problem: Problem) -> StateBox:
        """Every demand a region could be served at (local capacity + CS limit), V2G up to 2·p_max."""
        cap = np.bincount(
            problem.group_region, weights=problem.delivery * problem.p_max, minlength=len(problem.regions)
        )
        v2g_pmax = np.array([g.p_max for g in problem.groups if g.is_v2g])
        return cls(np.zeros(len(problem.regions)), cap + problem.cs_max, np.zeros(len(v2g_pmax)), 2.0 * v2g_pmax)

    def to_json(self, problem: Problem) -> dict[str, Any]:
        return {
            **{
                f"d_{r}": [float(lo), float(hi)]
                for r, lo, hi in zip(problem.region_names, self.demand_low, self.demand_high)
            },
            **{f"v_{g}": [float(lo), float(hi)] for g, lo, hi in zip(problem.v2g_names, self.v2g_low, self.v2g_high)},
        }


def _state_vector(problem: Problem, state: State) -> np.ndarray:
    return np.concatenate([problem.demand_vector(state), [state.v2g_available[g] for g in problem.v2g_names]])


class StateSampler:
    """Seeded uniform draws from a :class:`StateBox`, keeping only feasible states.

    The training distribution is defined by the box (default :meth:`StateBox.from_problem`: every
    demand the problem's ratings can serve) and the seed alone — never by state files found beside
    the problem file, which used to widen the box and changed what a model learned depending on the
    folder it was trained from (issue 10). Draws are continuous, so they never reproduce a labelled
    evaluation state; ``excluded`` (empty unless a caller passes states) additionally refuses an
    L∞ neighbourhood of ``exclusion_radius_kw`` around given states.

    ``generated_share`` (default 0: the box alone) mixes in states of the day generator: with
    that probability a draw is one interval of one day of a family drawn uniformly, generated with
    a *training* seed (``instances.protocol.TRAINING``, 0–999) — the generator's day shapes (night
    loads, one busy region, binding CS links) that a uniform box rarely draws, still never a
    validation or test state. Such a draw is relabelled ``sampledN``; ``last_source`` says which
    ``(family, seed, day, interval)`` it was.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int,
        box: StateBox | None = None,
        excluded: Sequence[State] = (),
        exclusion_radius_kw: float = 1.0,
        max_tries: int = 100_000,
        generated_share: float = 0.0,
    ) -> None:
        if not 0.0 <= generated_share <= 1.0:
            raise ValueError(f"generated_share={generated_share}: must lie in [0, 1]")
        self.problem = problem
        self.generated_share = generated_share
        self.last_source: tuple[str, int, int, int] | None = None
        self.excluded = list(excluded)
        self.box = box if box is not None else StateBox.from_problem(problem)
        self.exclusion_radius_kw = exclusion_radius_kw
        self.max_tries = max_tries
        self._excluded = (
            np.array([_state_vector(problem, s) for s in self.excluded])
            if self.excluded
            else np.zeros((0, len(problem.regions) + len(problem.v2g_names)))
        )
        self._low = np.concatenate([self.box.demand_low, self.box.v2g_low])
        self._high = np.concatenate([self.box.demand_high, self.box.v2g_high])
        self._count = 0
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def is_excluded(self, vector: np.ndarray) -> bool:
        if not len(self._excluded):
            return False
        return bool((np.abs(self._excluded - vector).max(-1) <= self.exclusion_radius_kw).any())

    def sample(self) -> State:
        n_regions = len(self.problem.regions)
        if self.generated_share > 0 and self.rng.random() < self.generated_share:  # no draw at share 0
            return self._generated()
        self.last_source = None
        for _ in range(self.max_tries):
            x = self.rng.uniform(self._low, self._high)
            if self.is_excluded(x):
                continue
            self._count += 1
            state = State(
                label=f"sampled{self._count}",
                demand=dict(zip(self.problem.region_names, map(float, x[:n_regions]))),
                v2g_available=dict(zip(self.problem.v2g_names, map(float, x[n_regions:]))),
            )
            if infeasibility_reason(self.problem, state) is None:
                return state
        raise RuntimeError(f"no feasible state found in {self.max_tries} draws from the box {self.box}")

    def sample_many(self, n: int) -> list[State]:
        return [self.sample() for _ in range(n)]

    def _generated(self) -> State:
        """One interval of a generated day, drawn with a training seed (see the class docstring)."""
        for _ in range(self.max_tries):
            family = str(self.rng.choice(sorted(FAMILIES)))
            seed = int(self.rng.integers(TRAINING.first, TRAINING.last + 1))
            day, t = int(self.rng.integers(MAX_DAYS)), int(self.rng.integers(INTERVALS))
            state = generate_interval(self.problem, family, seed, day, t)
            if self.is_excluded(_state_vector(self.problem, state)):
                continue
            self._count += 1
            self.last_source = (family, seed, day, t)
            return State(f"sampled{self._count}", dict(state.demand), dict(state.v2g_available))
        raise RuntimeError(f"no generated state outside the excluded ones in {self.max_tries} draws")


MONITOR_SEED = 20240601
MONITOR_TRIES = 200  # uniform draws per monitor state before the generator's days are used instead


def monitor_states(problem: Problem, n: int = 10, seed: int = MONITOR_SEED) -> list[State]:
    """The fixed random states whose reward the training log tracks (paper Fig. 5): uniform draws
    from the problem's box, or, where such draws are almost never feasible (every region must be
    servable at once: at 512 regions 100,000 draws took minutes and found none), intervals of
    generated days with training seeds, which are feasible by construction."""
    try:
        states = StateSampler(problem, seed=seed, max_tries=MONITOR_TRIES).sample_many(n)
    except RuntimeError:
        states = StateSampler(problem, seed=seed, generated_share=1.0).sample_many(n)
    return [State(f"monitor{i}", s.demand, s.v2g_available) for i, s in enumerate(states)]
