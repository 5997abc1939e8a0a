"""From the actors' raw actions to answers: the mapping, one vectorised search, the repair.

Shared by both MADDPG modes (one network per agent, or one per group type) and by the reference
MADDPG benchmark, which scores a library's actions through the same path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from dispatchbench.contract.solver import Answer
from dispatchbench.contract.status import Status
from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.learn.maddpg.commitment_repair import repair_commitment
from dispatchbench.learn.marl_env import map_actions
from dispatchbench.model.problem import Problem, State


def raw_actions(on: np.ndarray, u: np.ndarray, commitment: bool) -> np.ndarray:
    """The environment's raw action in [-1, 1] (``marl_env.map_actions``) from the two parts:
    off is ``-1``; on runs at ``lb + u·(ub − lb)``; without commitment every group runs."""
    if not commitment:
        return 2.0 * u - 1.0
    return np.where(on > 0.5, u, -1.0)


def decide_batch(
    problem: Problem,
    states: Sequence[State],
    raw: np.ndarray,
    search: DistributedSearch,
    start: float,
    eagerness: np.ndarray | None = None,
    extra_messages: int = 0,
) -> list[Answer]:
    """Actors' raw actions ``(B, G)`` -> mapping -> one distributed search over all states; where a
    learned commitment cannot meet the balances, the cost-blind repair
    (``commitment_repair.repair_commitment``: switches in the order of ``eagerness`` to run —
    default the raw actions; MADDPG passes its on/off logit margin — tested without a search, then
    one search) decides that state alone. Each state's answer equals its one-by-one answer;
    messages are counted per state (``extra_messages``: what the observations cost, added to each)."""
    eagerness = raw if eagerness is None else eagerness
    mapped = map_actions(problem, states, raw)
    batch = search.project(list(states), mapped.on, mapped.power)
    answers = []
    for j, state in enumerate(states):
        on, result = mapped.on[j].copy(), batch.row(j)
        messages, repaired, exact = result.messages + extra_messages, 0, False
        if not result.feasible[0]:
            fix = repair_commitment(problem, state, on, eagerness[j])
            messages += fix.messages(search.system_sum_messages)
            if fix.on is not None:
                repaired, exact = max(fix.switched, 1), fix.exact
                retry = search.project(state, fix.on, mapped.power[j])
                messages += retry.messages
                if retry.feasible[0]:
                    on, result = fix.on, retry
        dispatch = result.dispatch(problem, on)
        moved = np.abs(mapped.power[j] - dispatch.power)
        answers.append(
            (
                dispatch,
                result,
                {
                    "moved_mean_kw": float(moved.mean()),
                    "moved_max_kw": float(moved.max()),
                    "messages": int(messages),
                    "commitment_repaired": repaired,
                    "repair_exact": exact,
                    "raw_actions": {g: float(a) for g, a in zip(problem.group_names, raw[j])},
                },
            )
        )
    elapsed = (time.perf_counter() - start) / len(states)  # all agents and the search, per state
    out = []
    for dispatch, result, info in answers:
        info["decision_s"] = info["decision_s_batched"] = elapsed
        if not result.feasible[0]:  # the claim must match the dispatch: the evaluator will find it infeasible
            out.append(Answer(dispatch, Status.ERROR, "no repaired commitment met the balances", elapsed, info))
        else:
            out.append(Answer(dispatch, Status.FEASIBLE, "", elapsed, info))
    return out
