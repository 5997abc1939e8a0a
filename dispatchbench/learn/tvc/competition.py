"""Target-value competition: plans tried at a state, scored by the team's true cost, compete.

At every training state the team tries plans — the policy's own, a margin rule's, and a local
search around the best one so far (sampled solo flips and hand-overs, improving moves of
different regions combined) — and the best sets every agent's targets. Two parts, kept apart on
purpose:

- **the plan search scored by the true team cost** (:class:`TriedPlans`, :func:`compete`, in
  ``formulations/plan_search.py``, since nothing in it is learned and the ``flip_search`` plugin
  runs it as a classical method): plans are cleared by whatever clearing the caller hands in (the
  team's learned offers while training) and scored with the evaluator's cost formula;
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

import numpy as np

from dispatchbench.formulations.plan_search import (  # the search itself (re-exported: TVC's names for it)
    ClearPlans,
    SearchBudget,
    TriedPlans,
    apply_swaps,
    combine,
    compete,
    flip_rows,
    sample_flips,
    sample_swaps,
    team_costs,
)
from dispatchbench.learn.tvc.features import HANDOVER, SOLO

__all__ = [
    "ClearPlans",
    "SearchBudget",
    "TriedPlans",
    "advantage",
    "apply_swaps",
    "combine",
    "commitment_targets",
    "compete",
    "flip_rows",
    "move_gains",
    "sample_flips",
    "sample_swaps",
    "state_unit",
    "team_costs",
]


def state_unit(tried: TriedPlans, k: int) -> float:
    """The unit of state ``k``'s targets: its best plan's team cost per agent (≥ 1e-9)."""
    return max(abs(tried.best(k)[1]) / max(len(tried.problem.groups), 1), 1e-9)


def advantage(cost: np.ndarray | float, best: float, unit: float, clip: float) -> np.ndarray:
    """``−(cost − best) / unit``, clipped at −``clip``; an infeasible plan (``inf``) counts −``clip``."""
    with np.errstate(invalid="ignore"):
        value = -(np.asarray(cost, dtype=float) - best) / unit
    return np.maximum(np.nan_to_num(value, nan=-clip, neginf=-clip, posinf=clip), -clip)


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
