"""The plan search MADRL-TVC's training imitates, scored by the true team cost: a classical method.

Plans (on/off per group) are cleared by whatever clearing the caller hands in — the team's
learned offers while TVC trains, the true price response (λ-iteration through the message-counted
distributed search) for the ``flip_search`` plugin — and scored with the evaluator's cost formula:
each agent's own bill, summed over the communication tree. Around each state's best plan so far,
a round tries sampled solo flips and hand-overs (one running agent stops, one stopped agent starts;
local partners first) and joins the improving moves of different regions into one more plan
(:func:`combine`); the best plan moves on while it improves. Nothing here is learned; it lives
below the learners so that a classical plugin and TVC's training share one implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
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
        self.record(rows, plans, self.clear([self.states[k] for k in rows], plans))

    def record(self, rows: Sequence[int], plans: np.ndarray, result: SearchResult) -> None:
        """Record the team costs of ``plans`` already cleared (``result``) at states ``rows``."""
        for k, plan, cost in zip(rows, plans, team_costs(self.problem, plans, result)):
            self.costs[k][plan.tobytes()] = float(cost)
        self.scored += len(rows)

    def score_fresh(self, rows: Sequence[int], plans: Sequence[np.ndarray] | np.ndarray) -> None:
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


def sample_flips(plan: np.ndarray, count: int, rng: np.random.Generator, first: np.ndarray | None = None) -> np.ndarray:
    """Agents whose solo flip of ``plan`` to try: all when there are at most ``count``, else
    ``first`` (chosen by the caller) and a random fill up to ``count``."""
    n = len(plan)
    if n <= count:
        return np.arange(n)
    chosen = list(dict.fromkeys(int(i) for i in (first if first is not None else ())))[:count]
    rest = np.setdiff1d(np.arange(n), chosen)
    fill: np.ndarray = rng.choice(rest, count - len(chosen), replace=False) if count > len(chosen) else np.zeros(0, int)
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
    taken, used = np.zeros_like(plan), set[int]()
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
    for start in starts:
        tried.score_fresh(range(batch), start)
    active = list(range(batch))
    for _ in range(budget.search_rounds):
        rows: list[int] = []
        plans: list[np.ndarray] = []
        before, offered = {}, {}
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
