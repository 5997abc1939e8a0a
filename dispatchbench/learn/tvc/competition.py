"""Target-value competition: plans tried at a state, scored by the team's true cost, compete.

At every training state the team tries plans — the policy's own, a margin rule's, and a local
search around the best one so far (sampled solo flips and hand-overs, improving moves of
different regions combined) — and the best sets every agent's targets. Two parts, kept apart on
purpose:

- **the plan search scored by the true team cost** (:class:`TriedPlans` ``score``/``best``,
  :func:`compete`): plans are cleared by whatever clearing the caller hands in (the team's
  learned offers while training) and scored with the evaluator's cost formula — each agent's own
  bill, summed over the tree. Nothing in it is learned;
- **the learning targets read from it** (:func:`commitment_targets`, :func:`move_gains`): the
  team advantage of each agent's actions and moves **per agent's share of the state's cost**
  (:func:`state_unit`: the best plan's team cost over the number of agents, a tree sum and a
  tree count). In % of the state's cost a flip would shrink ~1/N; per agent's share it reads
  the same at 512 regions as at 4, a cheap night state still weighs like a busy afternoon, and
  every agent of a state compares its gains in one unit. A mask says which targets were
  actually tried.

Counterfactuals are *sampled*: a state of a large instance tries a few dozen flips and
hand-overs per plan, not every one, and an agent whose flip was not tried gets no target for
the action it did not take (a plan far away, with other agents' mistakes in it, would wrongly
blame it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.learn.tvc.features import HANDOVER, SOLO
from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem, State

ClearPlans = Callable[[list[State], np.ndarray], SearchResult]  # plans (one per state given) -> their clearing


class SearchBudget(Protocol):
    """How far :func:`compete` searches (MADRL-TVC's ``Hyperparameters`` has these fields)."""

    search_rounds: int
    max_flips: int
    max_swaps: int


def team_costs(problem: Problem, plans: np.ndarray, result: SearchResult) -> np.ndarray:
    """The environment's team cost of each cleared plan (the evaluator's cost formula; ``inf``
    where the plan cannot meet the balances). Agents hear only this number, never a coefficient."""
    cost = group_costs(problem, plans, result.balanced.power).sum(-1)
    return np.where(result.feasible, cost, np.inf)


class TriedPlans:
    """Every plan cleared at each state of a batch, with its team cost; ``scored`` counts them."""

    def __init__(self, problem: Problem, states: Sequence[State], clear: ClearPlans) -> None:
        self.problem, self.states, self.clear = problem, list(states), clear
        self.costs: list[dict[bytes, float]] = [{} for _ in self.states]
        self.scored = 0  # true-cost evaluations (each one clearing and one tree sum of bills)
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def score(self, rows: Sequence[int], plans: np.ndarray) -> None:
        """Clear ``plans`` (one per row, at state ``rows[k]``) and record their team costs."""
        if not len(rows):
            return
        result = self.clear([self.states[k] for k in rows], plans)
        for k, plan, cost in zip(rows, plans, team_costs(self.problem, plans, result)):
            self.costs[k][plan.tobytes()] = float(cost)
        self.scored += len(rows)

    def score_fresh(self, rows: Sequence[int], plans: Sequence[np.ndarray]) -> None:
        """Score, in one batch, the plans (at states ``rows``) not tried yet."""
        fresh = {(k, p.tobytes()): (k, p) for k, p in zip(rows, plans) if p.tobytes() not in self.costs[k]}
        if fresh:
            self.score([k for k, _ in fresh.values()], np.array([p for _, p in fresh.values()]))

    def best(self, k: int) -> tuple[np.ndarray, float]:
        key = min(self.costs[k], key=self.costs[k].__getitem__)
        return np.frombuffer(key, dtype=bool).copy(), self.costs[k][key]

    def table(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(plans (N, G), costs (N,))`` tried at state ``k`` (kept until more are scored there)."""
        cached = self._tables.get(k)
        if cached is not None and len(cached[1]) == len(self.costs[k]):
            return cached
        keys = list(self.costs[k])
        plans = np.frombuffer(b"".join(keys), dtype=bool).reshape(len(keys), -1)
        self._tables[k] = (plans, np.array([self.costs[k][key] for key in keys]))
        return self._tables[k]

    def cost_of(self, k: int, plans: np.ndarray) -> np.ndarray:
        """Team costs of ``plans (N, G)`` at state ``k`` (``nan`` for a plan not tried)."""
        return np.array([self.costs[k].get(p.tobytes(), np.nan) for p in plans])


def state_unit(tried: TriedPlans, k: int) -> float:
    """The unit of state ``k``'s targets: its best plan's team cost per agent (≥ 1e-9)."""
    return max(abs(tried.best(k)[1]) / max(len(tried.problem.groups), 1), 1e-9)


def advantage(cost: np.ndarray | float, best: float, unit: float, clip: float) -> np.ndarray:
    """``−(cost − best) / unit``, clipped at −``clip``; an infeasible plan (``inf``) counts −``clip``."""
    with np.errstate(invalid="ignore"):
        value = -(np.asarray(cost, dtype=float) - best) / unit
    return np.maximum(np.nan_to_num(value, nan=-clip, neginf=-clip, posinf=clip), -clip)


# ---- the plan search ---------------------------------------------------------------------------
def sample_flips(plan: np.ndarray, count: int, rng: np.random.Generator, first: np.ndarray | None = None) -> np.ndarray:
    """Agents whose solo flip of ``plan`` to try: all when there are at most ``count``, else
    ``first`` (chosen by the caller) and a random fill up to ``count``."""
    n = len(plan)
    if n <= count:
        return np.arange(n)
    chosen = list(dict.fromkeys(int(i) for i in (first if first is not None else ())))[:count]
    rest = np.setdiff1d(np.arange(n), chosen)
    fill = rng.choice(rest, count - len(chosen), replace=False) if count > len(chosen) else []
    return np.sort(np.concatenate([np.asarray(chosen, dtype=int), np.asarray(fill, dtype=int)]))


def sample_swaps(
    plan: np.ndarray, count: int, region: np.ndarray, rng: np.random.Generator, starters: np.ndarray | None = None
) -> np.ndarray:
    """``(S, 2)`` hand-overs of ``plan`` to try, ``(stopper, starter)``: every pair when there are
    at most ``count``; else for starters (``starters``, or stopped agents at random) a running
    agent of the same region and one elsewhere, alternately, until ``count`` — the joint moves
    solo flips cannot make, local ones first (the ones a hand-over in a region needs)."""
    running, stopped = np.flatnonzero(plan), np.flatnonzero(~plan)
    if not len(running) or not len(stopped) or count <= 0:
        return np.zeros((0, 2), dtype=int)
    if len(running) * len(stopped) <= count:
        return np.array([(i, j) for i in running for j in stopped], dtype=int)
    pool = stopped if starters is None else np.intersect1d(starters, stopped)
    if not len(pool):
        return np.zeros((0, 2), dtype=int)
    pairs: set[tuple[int, int]] = set()
    for _ in range(4 * count):
        if len(pairs) >= count:
            break
        j = int(rng.choice(pool))
        local = running[region[running] == region[j]]
        near = len(pairs) % 2 == 0 and len(local)
        i = int(rng.choice(local if near else running))
        pairs.add((i, j))
    return np.array(sorted(pairs), dtype=int).reshape(-1, 2)


def apply_swaps(plan: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    swaps = np.repeat(plan[None], len(pairs), 0)
    swaps[np.arange(len(pairs)), pairs[:, 0]] = False
    swaps[np.arange(len(pairs)), pairs[:, 1]] = True
    return swaps


def flip_rows(plan: np.ndarray, agents: np.ndarray) -> np.ndarray:
    flips = np.repeat(plan[None], len(agents), 0)
    flips[np.arange(len(agents)), agents] ^= True
    return flips


def combine(
    plan: np.ndarray, cost: float, candidates: np.ndarray, costs: np.ndarray, region: np.ndarray
) -> np.ndarray | None:
    """The improving moves of one round, at most one per region, joined into one plan (best
    first, a move whose regions another taken move already touched skipped); ``None`` unless
    at least two could be joined. On a large instance the local mistakes are many and far apart:
    one move per round would fix one of them."""
    order = np.argsort(costs)
    taken, used = np.zeros_like(plan), set()
    for k in order:
        if not costs[k] < cost - 1e-9 * abs(cost):
            break
        changed = np.flatnonzero(candidates[k] != plan)
        regions = set(region[changed].tolist())
        if regions & used:
            continue
        used |= regions
        taken[changed] = True
    if taken.sum() < 2 or len(used) < 2:
        return None
    return plan ^ taken


def compete(
    tried: TriedPlans, starts: Sequence[np.ndarray], rng: np.random.Generator, budget: SearchBudget
) -> TriedPlans:
    """The plans of one batch compete: the starts (``(B, G)`` each) are scored, then for up to
    ``budget.search_rounds`` rounds each state's best plan tries ``max_flips`` solo flips and
    ``max_swaps`` hand-overs (sampled when there are more), and the improving ones of different
    regions are joined into one more plan (:func:`combine`); the best plan so far moves on. All
    states' candidates are scored in one batch per round. Plans already in ``tried`` compete too."""
    batch, region = len(tried.states), tried.problem.group_region
    for plans in starts:
        tried.score_fresh(range(batch), plans)
    active = list(range(batch))
    for _ in range(budget.search_rounds):
        rows, plans, before, offered = [], [], {}, {}
        for k in active:
            best, cost = tried.best(k)
            before[k] = (best, cost)
            moves = np.concatenate(
                [
                    flip_rows(best, sample_flips(best, budget.max_flips, rng)),
                    apply_swaps(best, sample_swaps(best, budget.max_swaps, region, rng)),
                ]
            )
            offered[k] = moves
            fresh = [p for p in moves if p.tobytes() not in tried.costs[k]]
            rows += [k] * len(fresh)
            plans += fresh
        if not plans:
            break
        tried.score(rows, np.array(plans))
        joined_rows, joined = [], []
        for k in active:
            best, cost = before[k]
            mixed = combine(best, cost, offered[k], tried.cost_of(k, offered[k]), region)
            if mixed is not None:
                joined_rows.append(k)
                joined.append(mixed)
        tried.score_fresh(joined_rows, joined)
        active = [k for k in active if tried.best(k)[1] < before[k][1] - 1e-9 * abs(before[k][1])]
        if not active:
            break
    return tried


# ---- the targets read from the competition -------------------------------------------------------
def commitment_targets(tried: TriedPlans, k: int, clip: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``(targets (G, 2), mask (G, 2))`` at state ``k``: for every agent and action, the best
    tried plan in which it plays that action, relative to the best plan ``P*`` (≤ 0), in the
    state's unit (:func:`state_unit`). The action it plays in ``P*`` has target 0; the other has a target (mask 1) only
    when its flip of ``P*`` or a hand-over of ``P*`` it takes part in was tried — else the best
    plan with it flipped lies far from ``P*`` and carries other agents' mistakes. ``None`` when
    no tried plan met the balances."""
    plans, costs = tried.table(k)
    best_at = int(np.argmin(costs))
    best = costs[best_at]
    if not np.isfinite(best):
        return None
    star = plans[best_at]
    n = len(star)
    with_u = np.stack([np.where(plans == bool(u), costs[:, None], np.inf).min(0) for u in (0, 1)], -1)  # (G, 2)
    targets = advantage(with_u, best, state_unit(tried, k), clip)
    diff = plans ^ star  # (N, G)
    near = diff & (diff.sum(1) <= 2)[:, None]  # the flips and hand-overs of P* each agent took part in
    mask = np.zeros((n, 2), dtype=bool)
    mask[np.arange(n), star.astype(int)] = True  # the action it plays in P*: target 0
    mask[np.arange(n), 1 - star.astype(int)] = near.any(0)
    return targets, mask


def move_gains(tried: TriedPlans, k: int, start: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gains (G, 2), mask (G, 2))`` from plan ``start`` at state ``k``, in the state's unit
    (:func:`state_unit`; advantages relative to the state's best plan, clipped at −``clip``): the team gain of
    flipping its own status (``SOLO``, where that flip was tried) and — a stopped agent — of the
    best tried hand-over it starts (``HANDOVER``: it starts and one running agent stops); a
    running agent's hand-over target is −``clip`` (it cannot start)."""
    _, best = tried.best(k)
    n, unit = len(start), state_unit(tried, k)
    base = float(advantage(tried.cost_of(k, start[None])[0], best, unit, clip))
    gains = np.full((n, 2), -clip)
    mask = np.zeros((n, 2), dtype=bool)
    solo = tried.cost_of(k, flip_rows(start, np.arange(n)))  # nan where not tried
    seen = ~np.isnan(solo)
    gains[:, SOLO] = np.where(seen, advantage(np.where(seen, solo, np.inf), best, unit, clip) - base, -clip)
    mask[:, SOLO] = seen
    plans, costs = tried.table(k)
    diff = plans ^ start
    handover = (diff.sum(1) == 2) & (diff & plans).any(1) & (diff & ~plans).any(1)  # one starts, one stops
    if handover.any():
        starter = (diff[handover] & plans[handover]).argmax(1)
        value = np.full(n, -np.inf)
        np.maximum.at(value, starter, advantage(costs[handover], best, unit, clip) - base)
        tried_h = np.isfinite(value) & ~start
        gains[tried_h, HANDOVER] = value[tried_h]
        mask[tried_h, HANDOVER] = True
    mask[start, HANDOVER] = True  # a running agent cannot start: −clip
    return gains, mask
