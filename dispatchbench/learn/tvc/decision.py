"""A decision at execution: the rounds, a repair by ratings where needed, and optionally a search.

The policy and move rounds (``rounds.py``) run on all states of a call at once; then, per
state, a plan that cannot meet the balances is repaired by ratings (``repair.py``) before one
more clearing and the move rounds once more (:func:`moves_after_repair`), and with
``refine > 0`` ("TVC + local search", a row of its own) up to ``refine`` rounds of flip and
hand-over tests priced on the agents' own learned costs. Each state's answer equals its
one-by-one answer; its messages are counted per state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.learn.tvc.ledger import MessageLedger
from dispatchbench.learn.tvc.plans import neighbours
from dispatchbench.learn.tvc.repair import repair
from dispatchbench.learn.tvc.rounds import clear_again, move_rounds, policy_rounds
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import State

REFINE_SWAPS = 64  # hand-overs a decision-time search tests per round (a fixed sample when there are more)


@dataclass
class Decision:
    """One state's dispatch (in the team's group order) and what deciding it took."""

    dispatch: Dispatch
    # info: messages, searches, moves, move_hearings, move_returns, commitment_repaired (the repair's
    # flips), repair_passes, refined_flips, balanced (False: even the repaired plan cannot meet the
    # balances), price, iterations
    info: dict[str, Any]


def decide(team: Team, state: State, obs: np.ndarray, *, refine: int = 0) -> Decision:
    """Execution at one state (``obs`` is ``(G, 3)``): a batch of one."""
    return decide_batch(team, [state], obs[None], refine=refine)[0]


def decide_batch(team: Team, states: Sequence[State], obs: np.ndarray, *, refine: int = 0) -> list[Decision]:
    """Execution at many states (``obs`` is ``(B, G, 3)``): the policy rounds on all states at
    once (every network on all its features, one vectorised price search per round); then,
    per state, a repair if the plan cannot serve the demand and up to ``refine`` rounds of
    learned flip tests."""
    run = policy_rounds(team, states, obs)
    ledger = run.ledger
    on, result, flips, passes = repair_batch(team, states, run.on, run.preference, run.result, ledger)
    on, result, moves_after = moves_after_repair(team, states, obs, on, result, flips, ledger)
    decisions = []
    for j, state in enumerate(states):
        plan, cleared, refined = on[j], result.row(j), 0
        for _ in range(refine if team.problem.commitment else 0):
            better = flip_test(team, state, obs[j], plan, cleared, ledger, j)
            if better is None:
                break
            (plan, cleared), refined = better, refined + 1
        searches = int(ledger.clearings[j])
        info = {
            "messages": int(ledger.messages[j]),
            "searches": searches,
            "moves": int(run.moves[j] + moves_after[j]),
            "move_hearings": int(ledger.hearings[j]),
            "move_returns": int(ledger.returns[j]),
            "commitment_repaired": int(flips[j]),
            "repair_passes": int(passes[j]),
            "refined_flips": refined,
            "balanced": bool(cleared.feasible[0]),
            "price": float(cleared.balanced.system_signal[0]),
            "iterations": 2 * team.hp.search_iterations * searches,
        }
        decisions.append(Decision(dispatch=cleared.dispatch(team.problem, plan), info=info))
    return decisions


def repair_batch(
    team: Team,
    states: Sequence[State],
    on: np.ndarray,
    preference: np.ndarray,
    result: SearchResult,
    ledger: MessageLedger,
) -> tuple[np.ndarray, SearchResult, np.ndarray, np.ndarray]:
    """Every state whose plan cannot meet the balances is repaired by ratings (``repair.py``,
    the agents' ``preference`` setting the order) and the repaired plans are cleared in one
    batch. Returns the plans, their clearing, and the flips and tree passes per state. A repair
    that flipped nothing (no flip helped) is charged its passes, and its plan is not cleared again."""
    on = on.copy()
    flips = np.zeros(len(states), dtype=np.int64)
    passes = np.zeros(len(states), dtype=np.int64)
    for j in (int(i) for i in np.flatnonzero(~result.feasible)) if team.problem.commitment else ():
        on[j], flips[j], passes[j] = repair(team.problem, states[j], on[j], preference[j])
        ledger.send(j, team.repair_messages(int(flips[j]), int(passes[j])))
    if flips.any():
        result = clear_again(team, states, on, result, flips > 0, ledger)
    return on, result, flips, passes


def moves_after_repair(
    team: Team,
    states: Sequence[State],
    obs: np.ndarray,
    on: np.ndarray,
    result: SearchResult,
    flips: np.ndarray,
    ledger: MessageLedger,
) -> tuple[np.ndarray, SearchResult, np.ndarray]:
    """The move rounds once more, on every plan the repair made workable.

    Why: while a plan does not clear, the move rounds have one mover for the whole system
    (``rounds.move_rounds``), so on a large instance whose low-load plan left many regions short
    they fix a few groups and the repair by ratings does the rest, in the policy's order: small
    V2G groups first, and more of them than the optimum runs (75 against SCIP's 55 at a 128-region
    trough). Nothing took the surplus back. Once the repaired plan clears, the zones move at once
    and stop what is not needed. Chosen on validation states only (``generate_problem(128, 1000)``,
    70 states; docs/madrl-tvc.md, Limits): the study's three models of replicate 4 went from
    1.02 % to 0.50 % mean (seed 0: 0.88 % to 0.60 %). A
    plan the moves leave unworkable is dropped for the repaired one (each CS node knows whether
    its plan cleared). Returns the plans, their clearing and the clearings the moves made."""
    moved_clearings = np.zeros(len(states), dtype=np.int64)
    rows = np.flatnonzero((flips > 0) & result.feasible)
    if not len(rows):
        return on, result, moved_clearings
    own = MessageLedger.open(len(rows))
    moved = move_rounds(team, [states[int(j)] for j in rows], obs[rows], on[rows], result.take(rows), ledger=own)
    ledger.add(rows, own)
    moved_clearings[rows] = moved.moves
    keep = np.flatnonzero(moved.result.feasible)
    on = on.copy()
    on[rows[keep]] = moved.on[keep]
    return on, result.with_rows(rows[keep], moved.result.take(keep)), moved_clearings


def flip_test(
    team: Team,
    state: State,
    obs: np.ndarray,
    on: np.ndarray,
    current: SearchResult,
    ledger: MessageLedger,
    row: int,
) -> tuple[np.ndarray, SearchResult] | None:
    """Decision-time search (``refine``): the agents test their solo flips and hand-overs (one
    stops, one starts; up to ``REFINE_SWAPS``, a fixed sample when there are more) against the
    plan with their *learned* costs: each candidate is cleared, each agent prices its own
    output on its own cost network, the team sums the estimates over the tree, and the best
    candidate that lowers the estimate is taken (``None``: none does). Hand-overs get a plan out
    of the states where every solo flip is worse (a repaired plan with the wrong group of a
    region running). ``row``: the state's row in ``ledger``."""
    trials = neighbours(on, team.size, REFINE_SWAPS, np.random.default_rng(0))
    result = team.clear(state, trials)
    ledger.cleared(row, result.messages * len(trials), clearings=len(trials))
    plans = np.concatenate([on[None], trials])
    power = np.concatenate([current.balanced.power, result.balanced.power])
    feasible = np.concatenate([current.feasible, result.feasible])
    estimate = np.where(plans, team.curves.cost(power), 0.0).sum(-1)  # each agent prices its own output
    ledger.send(row, len(plans) * team.sum_messages)
    estimate = np.where(feasible, estimate, np.inf)
    k = int(np.argmin(estimate))
    if k == 0 or not estimate[k] < estimate[0] - 1e-9 * abs(estimate[0]):
        return None
    return plans[k], team.clear(state, plans[k])  # the chosen candidate's clearing, as the agents heard it
