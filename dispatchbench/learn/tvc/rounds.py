"""The team's decision rounds: a trial clearing, simultaneous policy rounds, then move rounds.

Every agent offers (the trial clearing); ``rounds`` times every agent reads its features and
picks on/off by its Q-network and the plan is cleared; then up to ``moves`` move rounds in which
the agent with the largest positive learned gain of each zone (the system, or a block of regions
on a large instance) moves and the plan is cleared again. All states of a batch run at once, but
each state's protocol is its own: a state whose move rounds are over is not cleared again, and
the :class:`~ledger.MessageLedger` charges every state only for what it ran.
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
    team: Team,
    states: Sequence[State],
    obs: np.ndarray,
    *,
    exact_sums: bool = False,
    explore: np.random.Generator | None = None,
) -> PolicyRun:
    """The trial clearing (everyone offers), then ``rounds`` times: every agent reads its
    features and picks on/off (a tie goes to "on", the safe side for serving demand), and the
    plan is cleared. Then ``moves`` move rounds (:func:`move_rounds`). ``explore`` (training, a
    generator): each agent flips its pick with ``flip_prob``."""
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
        if explore is not None:
            on ^= explore.random(on.shape) < hp.flip_prob
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


def zones(team: Team) -> np.ndarray:
    """``(Z, K)`` the agents among which one mover is picked per move round, padded with ``G``:
    blocks of ``zone_regions`` regions (by region name, so the order a file lists them in does not
    matter) — one block, i.e. one mover for the system, up to that many regions (the paper's
    size), a mover per block of regions beyond it."""
    problem, size = team.problem, team.hp.zone_regions
    names = sorted(range(len(problem.regions)), key=lambda r: problem.region_names[r])
    blocks = [names[k : k + size] for k in range(0, len(names), size)]
    members = [np.flatnonzero(np.isin(problem.group_region, block)) for block in blocks]
    width = max(len(m) for m in members)
    return np.array([np.pad(m, (0, width - len(m)), constant_values=team.size) for m in members], dtype=int)


def move_messages(team: Team, zone_count: int, system_pick: bool) -> int:
    """One move decision point: the features, every agent's gain to its CS node, each zone's
    maximum over a tree of its CS nodes (``2(R − Z)`` in all; the system's: ``2(R − 1)``) and a
    word to each zone's mover."""
    regions = len(team.problem.regions)
    zones_ = 1 if system_pick else zone_count
    return team.feature_messages + team.size + 2 * (regions - zones_) + zones_


def pick(values: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(B, G)`` values -> each zone's best agent and its value, ``(B, Z)`` each (an empty slot
    reads ``-inf``; its agent index is ``G``)."""
    padded = np.concatenate([values, np.full((len(values), 1), -np.inf)], -1)
    best = slots[np.arange(len(slots)), padded[:, slots].argmax(-1)]  # (B, Z)
    return best, np.take_along_axis(padded, best, 1)


def move_rounds(
    team: Team,
    states: Sequence[State],
    obs: np.ndarray,
    on: np.ndarray,
    result: SearchResult,
    *,
    ledger: MessageLedger | None = None,
    exact_sums: bool = False,
    explore: np.random.Generator | None = None,
) -> MoveRun:
    """Up to ``moves`` rounds in which one agent per zone changes its mind. Every agent reads its
    features after the last clearing, and its move network predicts two team gains: of flipping
    its own status (a *solo* move), and — a stopped agent — of starting so that a running agent
    can stop (a *hand-over*, the joint move solo flips cannot make). The zones (:func:`zones`)
    are blocks of ``zone_regions`` regions — one mover for the system at the paper's size, one
    per block of regions on a large instance, all blocks at once, so its many local mistakes are
    fixed in the same few rounds — except while the plan did not clear: then the whole system is
    one zone (a tree maximum picks one mover), because every start that adds capacity anywhere
    fixes the same shortfall, and zones moving at once would all start. Each zone's largest gain
    wins; if it is positive:

    - a solo move: that agent flips;
    - a hand-over: the agent starts; after the clearing, every zone's running agent with the
      largest positive solo gain to stop now stops (the partner may sit in another region of
      the zone: a hand-over between regions). If nobody expects a gain, or the starter's own
      zone picks the starter, the starter stops again: the hand-over is undone, and its zone's
      moves end (the same hand-over would come up again).

    One mover per zone at a time breaks the ties simultaneous rounds cannot (two near-identical
    groups that could each stop would both stop, or both run). The gains are learned from the
    team cost of sampled solo flips and hand-overs of the plans the move rounds start from
    (training); at decision time nothing is priced or compared — it is the policy. ``explore``
    (training): on average ``move_explore`` agents per state and round bid an unbeatable solo gain.

    A state none of whose zones finds a mover is done. ``ledger`` (a new one when not given) is
    charged per state for the hearings and the clearings."""
    batch, n = on.shape
    ledger = ledger if ledger is not None else MessageLedger.open(batch)
    before = ledger.clearings.copy()
    points: list[Round] = []
    blocks = zones(team)  # (Z, K), padded with n
    whole = np.arange(n)[None]
    open_zones = np.ones((batch, len(blocks)), dtype=bool)  # zones whose moves are not over
    for _ in range(team.hp.moves if team.problem.commitment else 0):
        active = np.asarray(open_zones.any(1))
        if not active.any():  # every state is done
            break
        system: np.ndarray = ~result.feasible | (len(blocks) == 1)  # (B,) one zone: the system
        feats = team.features(states, obs, on, result)
        points.append(Round(feats, on.copy()))
        gain = team.gains(feats)
        _hear(team, ledger, active, system, len(blocks))
        solo, handover = gain[..., SOLO].copy(), np.where(on, -np.inf, gain[..., HANDOVER])
        if explore is not None:  # an agent that explores bids an unbeatable solo gain
            solo[explore.random(solo.shape) < team.hp.move_explore / n] = np.inf
        bid = np.maximum(solo, handover)
        mover, value = pick(bid, blocks)
        one, one_value = pick(bid, whole)  # (B, 1)
        mover = np.where(system[:, None], np.pad(one, ((0, 0), (0, len(blocks) - 1)), constant_values=n), mover)
        value = np.where(
            system[:, None], np.pad(one_value, ((0, 0), (0, len(blocks) - 1)), constant_values=-np.inf), value
        )
        padded_h, padded_s = _pad(handover), _pad(solo)
        moving = np.where(system[:, None], active[:, None], open_zones) & (value > 0)
        hands = moving & (
            np.take_along_axis(padded_h, mover, 1) > np.maximum(np.take_along_axis(padded_s, mover, 1), 0.0)
        )
        open_zones &= moving | system[:, None]  # a zone where nobody expects a gain is done
        open_zones[system & ~moving.any(1)] = False  # an unworkable plan nobody can fix: done
        rows = np.asarray(moving.any(1))
        if not rows.any():  # nobody expects a gain: every plan stands
            break
        on = on.copy()
        b, z = np.nonzero(moving)
        on[b, mover[b, z]] ^= True
        result = clear_again(team, states, on, result, rows, ledger, exact_sums=exact_sums)
        if hands.any():  # the second half of a hand-over: who stops, or the starter stops again
            feats = team.features(states, obs, on, result)
            points.append(Round(feats, on.copy()))
            stop = np.where(on, team.gains(feats)[..., SOLO], -np.inf)
            hand_rows = hands.any(1)
            _hear(team, ledger, hand_rows, system, len(blocks))
            on = on.copy()
            # one mover for the system: the running agent with the largest positive stop gain
            one, one_value = pick(stop, whole)
            partner = np.where(one_value[:, 0] > 0, one[:, 0], mover[:, 0])
            rows_one = hand_rows & system
            on[rows_one, partner[rows_one]] = False
            open_zones[rows_one, 0] &= partner[rows_one] != mover[rows_one, 0]
            # zones: every zone's best positive stop — the partner may be in another zone; if
            # nobody stops, or the starter's own zone picks the starter, the hand-over is undone
            # and that zone's moves end
            best, value = pick(stop, blocks)
            stops = (value > 0) & (hand_rows & ~system)[:, None]
            undone = hands & ~system[:, None] & (~stops.any(1)[:, None] | (best == mover))
            b, z = np.nonzero(stops)
            on[b, best[b, z]] = False
            b, z = np.nonzero(undone)
            on[b, mover[b, z]] = False
            open_zones &= ~undone
            result = clear_again(team, states, on, result, hand_rows, ledger, exact_sums=exact_sums)
    return MoveRun(on=on, result=result, points=points, moves=ledger.clearings - before, ledger=ledger)


def _hear(team: Team, ledger: MessageLedger, rows: np.ndarray, system: np.ndarray, zone_count: int) -> None:
    """Charge the states in ``rows`` one move decision point (one zone for the system where the plan
    did not clear, the blocks of regions otherwise)."""
    for one_zone in (False, True):
        these = rows & (system == one_zone)
        if these.any():
            ledger.heard(these, move_messages(team, 1 if one_zone else zone_count, one_zone))


def _pad(values: np.ndarray) -> np.ndarray:
    """``(B, G)`` -> ``(B, G + 1)``: one ``-inf`` column for the padded slots of a zone."""
    return np.concatenate([values, np.full((len(values), 1), -np.inf)], -1)


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
