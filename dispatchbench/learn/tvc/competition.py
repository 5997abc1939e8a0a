"""Target-value competition: plans tried at a state, scored by the team's true cost, compete.

At every training state the team tries plans — the policy's own and a local search around the
best one so far (solo flips and hand-overs) — and the best sets every agent's targets. Two parts,
kept apart on purpose:

- **the plan search scored by the true team cost** (:class:`TriedPlans` ``score``/``best``,
  :func:`compete`): plans are cleared by whatever clearing the caller hands in (the team's
  learned offers while training) and scored with the evaluator's cost formula. Nothing in it is
  learned, so the same search can run on the true price response as a solver of its own;
- **the learning targets read from it** (:meth:`TriedPlans.targets`, :meth:`TriedPlans.move_gains`):
  the team advantage of each agent's actions and moves, in % of the state's best cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.learn.tvc.features import HANDOVER, OFF, ON, SOLO
from dispatchbench.learn.tvc.plans import neighbours, solo_flips
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
    """Every plan cleared at each state of a batch, with its team cost."""

    def __init__(self, problem: Problem, states: Sequence[State], clear: ClearPlans) -> None:
        self.problem, self.states, self.clear = problem, list(states), clear
        self.costs: list[dict[bytes, float]] = [{} for _ in self.states]

    def score(self, rows: Sequence[int], plans: np.ndarray) -> None:
        """Clear ``plans`` (one per row, at state ``rows[k]``) and record their team costs."""
        if not len(rows):
            return
        result = self.clear([self.states[k] for k in rows], plans)
        for k, plan, cost in zip(rows, plans, team_costs(self.problem, plans, result)):
            self.costs[k][plan.tobytes()] = float(cost)

    def best(self, k: int) -> tuple[np.ndarray, float]:
        key = min(self.costs[k], key=self.costs[k].__getitem__)
        return np.frombuffer(key, dtype=bool).copy(), self.costs[k][key]

    def advantage(self, k: int, plans: np.ndarray, clip: float) -> np.ndarray:
        """Each (scored) plan's team advantage at state ``k`` in % of its best cost, ≥ −``clip``."""
        cost = np.array([self.costs[k][plan.tobytes()] for plan in plans])
        return percent_advantage(cost, min(self.costs[k].values()), clip)

    def move_gains(self, k: int, start: np.ndarray, handovers: np.ndarray, clip: float) -> np.ndarray:
        """``(G, 2)``: each agent's team gain (in % of the state's cost, advantages clipped at
        −``clip``) from plan ``start`` of flipping its own status (``SOLO``; every solo flip is
        scored) and, a stopped agent, of the best scored hand-over it starts (``HANDOVER``: it
        starts and one running agent stops; −``clip`` when it runs or none was tried)."""
        base = self.advantage(k, start[None], clip)[0]
        out = np.full((len(start), 2), -clip)
        out[:, SOLO] = self.advantage(k, solo_flips(start), clip) - base
        if len(handovers):
            starter = (handovers & ~start).argmax(1)
            np.maximum.at(out[:, HANDOVER], starter, self.advantage(k, handovers, clip) - base)
        return out

    def targets(self, k: int, clip: float) -> np.ndarray | None:
        """``(G, 2)``: for every agent and action, the best tried plan's advantage (≤ 0) in % of
        the state's best cost; ``None`` when no tried plan met the balances."""
        keys = list(self.costs[k])
        plans = np.frombuffer(b"".join(keys), dtype=bool).reshape(len(keys), -1)
        costs = np.array([self.costs[k][key] for key in keys])
        best = costs.min()
        if not np.isfinite(best):
            return None
        with_u = np.stack([np.where(plans == bool(u), costs[:, None], np.inf).min(0) for u in (OFF, ON)], -1)
        return percent_advantage(with_u, best, clip)


def percent_advantage(cost: np.ndarray, best: float, clip: float) -> np.ndarray:
    """``−(cost − best) / best`` in %, an infeasible or untried cost (``inf``) and anything below
    counted at −``clip``."""
    return np.maximum(np.nan_to_num(-(cost - best) / max(abs(best), 1e-9) * 100.0, nan=-clip, neginf=-clip), -clip)


def score_fresh(tried: TriedPlans, rows: Sequence[int], plans: Sequence[np.ndarray] | np.ndarray) -> None:
    """Score, in one batch, the plans (at states ``rows``) not tried yet."""
    fresh = {(k, p.tobytes()): (k, p) for k, p in zip(rows, plans) if p.tobytes() not in tried.costs[k]}
    if fresh:
        tried.score([k for k, _ in fresh.values()], np.array([p for _, p in fresh.values()]))


def compete(
    tried: TriedPlans, starts: Sequence[np.ndarray], rng: np.random.Generator, budget: SearchBudget
) -> TriedPlans:
    """The plans of one batch compete: the starts (``(B, G)`` each) are cleared, then each
    state's best plan moves to its best neighbour while that lowers the team cost
    (``budget.search_rounds`` at most). All states' candidates are cleared in one batch per round.
    Plans already in ``tried`` compete too."""
    batch = len(tried.states)
    for start in starts:
        score_fresh(tried, range(batch), start)
    active = list(range(batch))
    for _ in range(budget.search_rounds):
        rows, plans, before = [], [], {}
        for k in active:
            best, cost = tried.best(k)
            before[k] = cost
            fresh = [
                p
                for p in neighbours(best, budget.max_flips, budget.max_swaps, rng)
                if p.tobytes() not in tried.costs[k]
            ]
            rows += [k] * len(fresh)
            plans += fresh
        if not plans:
            break
        tried.score(rows, np.array(plans))
        active = [k for k in active if tried.best(k)[1] < before[k] - 1e-9 * abs(before[k])]
        if not active:
            break
    return tried
