"""The team's decision rounds: a trial clearing, simultaneous policy rounds, then move rounds.

Every agent offers (the trial clearing); ``rounds`` times every agent reads its features and
picks on/off by its Q-network and the plan is cleared; then up to ``moves`` move rounds in which
the one agent with the largest positive learned gain (a tree maximum) moves and the plan is
cleared again. All states of a batch run at once, but each state's protocol is its own: a state
whose move rounds are over is not cleared again, and the :class:`~ledger.MessageLedger` charges
every state only for what it ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.learn.tvc.features import HANDOVER, SOLO, Features
from dispatchbench.learn.tvc.ledger import EVERY, MessageLedger
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import State


@dataclass(frozen=True)
class Round:
    """One decision point of a batch: what every agent heard, and the plan concerned — in a policy
    round the plan the agents chose after hearing, in a move round the plan they heard it at."""

    features: Features
    plan: np.ndarray  # (B, G)


@dataclass(frozen=True)
class MoveRun:
    """What the move rounds of one batch produced."""

    on: np.ndarray  # (B, G) the last plan
    result: SearchResult  # its clearing
    points: list[Round]  # every move decision point (training stores them)
    moves: np.ndarray  # (B,) clearings the move rounds made per state
    ledger: MessageLedger  # per state, the whole protocol so far


@dataclass(frozen=True)
class PolicyRun:
    """What the policy rounds of one batch produced: the last plan and its clearing, the agents'
    preferences behind it, and every round's features and plan (training stores them)."""

    on: np.ndarray  # (B, G) the last plan
    result: SearchResult  # its clearing
    preference: np.ndarray  # (B, G) Q(on) − Q(off) behind the last plan (0 without commitment)
    trial: SearchResult  # the trial clearing (everyone offers)
    rounds: list[Round]  # the policy rounds
    move_points: list[Round]  # the move rounds' decision points
    moves: np.ndarray  # (B,) clearings the move rounds made per state
    ledger: MessageLedger  # per state: the trial clearing, every round's and every move's


def policy_rounds(
    team: Team, states: Sequence[State], obs: np.ndarray, *, exact_sums: bool = False, explore: bool = False
) -> PolicyRun:
    """The trial clearing (everyone offers), then ``rounds`` times: every agent reads its
    features and picks on/off (a tie goes to "on", the safe side for serving demand), and the
    plan is cleared. Then ``moves`` move rounds (:func:`move_rounds`). ``explore``
    (training): each agent flips its pick with ``flip_prob``."""
    hp = team.hp
    batch, n = obs.shape[:2]
    ledger = MessageLedger.open(batch)
    on = np.ones((batch, n), dtype=bool)
    trial = result = team.clear(list(states), on, exact_sums=exact_sums)
    ledger.cleared(EVERY, trial.messages)
    pref = np.zeros((batch, n))
    rounds = []
    for _ in range(hp.rounds if team.problem.commitment else 0):
        feats = team.features(states, obs, on, result)
        ledger.send(EVERY, team.feature_messages)
        pref = team.preferences(feats)
        on = pref >= 0
        if explore:
            for i, agent in enumerate(team.agents):
                on[:, i] ^= agent.rng.random(batch) < hp.flip_prob
        result = team.clear(list(states), on, exact_sums=exact_sums)
        ledger.cleared(EVERY, result.messages)
        rounds.append(Round(feats, on.copy()))
    moved = move_rounds(team, states, obs, on, result, ledger=ledger, exact_sums=exact_sums, explore=explore)
    return PolicyRun(
        on=moved.on,
        result=moved.result,
        preference=pref,
        trial=trial,
        rounds=rounds,
        move_points=moved.points,
        moves=moved.moves,
        ledger=ledger,
    )


def move_rounds(
    team: Team,
    states: Sequence[State],
    obs: np.ndarray,
    on: np.ndarray,
    result: SearchResult,
    *,
    ledger: MessageLedger | None = None,
    exact_sums: bool = False,
    explore: bool = False,
) -> MoveRun:
    """Up to ``moves`` rounds in which one agent per state changes its mind. Every agent reads
    its features after the last clearing, and its move network predicts two team gains: of
    flipping its own status (a *solo* move), and — a stopped agent — of starting so that a
    running agent can stop (a *hand-over*, the joint move solo flips cannot make). A tree
    maximum picks the largest; if it is positive:

    - a solo move: that agent flips, and the plan is cleared again;
    - a hand-over: the agent starts, the plan is cleared, and the running agent with the
      largest positive solo gain to stop now stops and the plan is cleared again. If that is
      the starter itself, or nobody expects a gain, the starter stops again: the hand-over
      is undone, and that state's moves end (the same hand-over would come up again).

    One mover at a time is what breaks ties the simultaneous rounds cannot: two near-identical
    groups that could each stop would both stop (or both run) when they decide at once. The
    gains are learned from the team cost of every solo flip and hand-over of the plans the
    move rounds start from (training); at decision time nothing is priced or compared — it is
    the policy. ``explore`` (training): with ``move_explore`` a random agent makes a solo move.

    A state whose round finds no mover is done. ``ledger`` (a new one when not given) is charged
    per state for the hearings and the clearings."""
    batch, n = on.shape
    ledger = ledger if ledger is not None else MessageLedger.open(batch)
    before = ledger.clearings.copy()
    points: list[Round] = []
    hear = team.feature_messages + team.sum_messages + 1  # features, the maximum, the mover told
    active = np.ones(batch, dtype=bool)
    for _ in range(team.hp.moves if team.problem.commitment else 0):
        if not active.any():  # every state is done
            break
        feats = team.features(states, obs, on, result)
        points.append(Round(feats, on.copy()))
        gain = team.gains(feats)
        ledger.heard(active, hear)
        solo, handover = gain[..., SOLO].copy(), np.where(on, -np.inf, gain[..., HANDOVER])
        if explore:  # an agent that explores bids an unbeatable solo gain (each its own draw)
            for i, agent in enumerate(team.agents):
                solo[agent.rng.random(batch) < team.hp.move_explore / n, i] = np.inf
        best_solo, best_handover = solo.max(1), handover.max(1)
        hands = active & (best_handover > np.maximum(best_solo, 0.0))
        active &= hands | (best_solo > 0)
        if not active.any():  # nobody expects a gain: every plan stands
            break
        mover = np.where(hands, handover.argmax(1), solo.argmax(1))
        on = on.copy()
        on[active, mover[active]] ^= True
        result = clear_again(team, states, on, result, active, ledger, exact_sums=exact_sums)
        if hands.any():  # the second half of a hand-over: who stops, or the starter stops again
            feats = team.features(states, obs, on, result)
            points.append(Round(feats, on.copy()))
            stop_gain = np.where(on, team.gains(feats)[..., SOLO], -np.inf)
            ledger.heard(hands, hear)
            partner = np.where(stop_gain.max(1) > 0, stop_gain.argmax(1), mover)
            active &= ~(hands & (partner == mover))  # undone: the same hand-over would come up again
            on = on.copy()
            on[hands, partner[hands]] = False
            result = clear_again(team, states, on, result, hands, ledger, exact_sums=exact_sums)
    return MoveRun(on=on, result=result, points=points, moves=ledger.clearings - before, ledger=ledger)


def clear_again(
    team: Team,
    states: Sequence[State],
    on: np.ndarray,
    result: SearchResult,
    rows: np.ndarray,
    ledger: MessageLedger,
    *,
    exact_sums: bool = False,
) -> SearchResult:
    """Clear the plans of the states in mask ``rows`` only (the others keep their clearing: a
    state's search never depends on another's) and charge those states for it."""
    index = np.flatnonzero(rows)
    fresh = team.clear([states[int(j)] for j in index], on[index], exact_sums=exact_sums)
    ledger.cleared(index, fresh.messages)
    return result.with_rows(index, fresh)
