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
from dispatchbench.learn.tvc.zones import pick
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


def move_messages(team: Team, zone_count: int, system_pick: bool) -> int:
    """One move decision point: the features, every agent's gain to its CS node, each zone's
    maximum over a tree of its CS nodes (``2(R − Z)`` in all; the system's: ``2(R − 1)``) and a
    word to each zone's mover."""
    regions = len(team.problem.regions)
    zones_ = 1 if system_pick else zone_count
    return team.feature_messages + team.size + 2 * (regions - zones_) + zones_


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
    can stop (a *hand-over*, the joint move solo flips cannot make). The zones (``zones.py``)
    are blocks of ``zone_regions`` regions — one mover for the system at the paper's size, one
    per block of regions on a large instance, all blocks at once, so its many local mistakes are
    fixed in the same few rounds — except while the plan did not clear: then the whole system is
    one zone (a tree maximum picks one mover), because every start that adds capacity anywhere
    fixes the same shortfall, and zones moving at once would all start. Each zone's largest gain
    wins; if it is positive:

    - a solo move: that agent flips;
    - a hand-over: the agent starts; after the clearing, every zone's running agent with the
      largest positive solo gain to stop now stops (the partner may sit in another region of
      the zone: a hand-over between regions). The starter is not its own partner — it started so
      that someone else could stop; picking it let a near tie undo a hand-over that paid (paper
      instance, validation state random_86: FDC4 should start so that ASC8 stops). If nobody else
      expects a gain, the starter stops again: the hand-over is undone, and its zone's moves end
      (the same hand-over would come up again).

    A state whose plan comes back to one the move rounds were already at is done
    (:func:`close_circles`); at a decision with one mover for the system, the plan then stands at
    the one of the rounds' path the agents were least eager to leave (:func:`least_eager`).

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
    blocks = team.zones  # (Z, K), padded with n
    whole = np.arange(n)[None]
    open_zones = np.ones((batch, len(blocks)), dtype=bool)  # zones whose moves are not over
    history: list[Visit] = []  # every round's starting plan, its clearing and the best bid to leave it
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
        history.append(Visit(on, result, np.where(active, value.max(1), np.inf)))
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
            # a starter is not its own partner: it started so that someone else could stop
            b, z = np.nonzero(hands)
            stop[b, mover[b, z]] = -np.inf
            # one mover for the system: the running agent with the largest positive stop gain
            one, one_value = pick(stop, whole)
            partner = np.where(one_value[:, 0] > 0, one[:, 0], mover[:, 0])
            rows_one = hand_rows & system
            on[rows_one, partner[rows_one]] = False
            open_zones[rows_one, 0] &= partner[rows_one] != mover[rows_one, 0]
            # zones: every zone's best positive stop — the partner may be in another zone; if
            # nobody stops, the hand-over is undone and that zone's moves end
            best, value = pick(stop, blocks)
            stops = (value > 0) & (hand_rows & ~system)[:, None]
            undone = hands & ~system[:, None] & ~stops.any(1)[:, None]
            b, z = np.nonzero(stops)
            on[b, best[b, z]] = False
            b, z = np.nonzero(undone)
            on[b, mover[b, z]] = False
            open_zones &= ~undone
            result = clear_again(team, states, on, result, hand_rows, ledger, exact_sums=exact_sums)
        on, result, circled = close_circles(team, history, on, result, ledger)
        open_zones[circled] = False
    if len(blocks) == 1 and history and explore is None:  # one mover for the system, at a decision
        on, result = least_eager(team, states, obs, history, on, result, ledger)
    return MoveRun(on=on, result=result, points=points, moves=ledger.clearings - before, ledger=ledger)


@dataclass(frozen=True)
class Visit:
    """A plan the move rounds started a round from: its clearing, and the largest bid to leave it
    (``(B,)``; ``inf`` for a state whose moves were over)."""

    plan: np.ndarray  # (B, G)
    result: SearchResult
    bid: np.ndarray  # (B,)


def close_circles(
    team: Team, history: list[Visit], on: np.ndarray, result: SearchResult, ledger: MessageLedger
) -> tuple[np.ndarray, SearchResult, np.ndarray]:
    """The states whose plan ``on`` is one a round already started from have gone round in a
    circle: each goes back to the plan of that circle the agents were least eager to leave (the
    smallest of the winning bids heard there), with the clearing it had, and is done. Returns the
    plans, their clearing and the mask of those states.

    Why: on the paper instance's validation states the learned gains circled between near-tied
    plans (random_86: FDC4 out; FDC4 in for ASC8 — the optimum —; ASC8 in for FDC4; skewed_d1_t53:
    ASC7 in, out, in), and the third move decided which plan stood: 0.98 % and 0.68 % off. The
    bids are the policy's own (the maxima were already heard), nothing is priced. Ending the moves
    when any agent flipped back instead cost 0.15 points at 128 regions, where the other zones'
    moves change the plan around it: that is not a circle. The choice goes to every CS node over
    the tree (``2(R − 1)`` messages); the agents take their setpoints of that plan again."""
    circled = np.zeros(len(on), dtype=bool)
    moved = ~(history[-1].plan == on).all(1)  # a state this round left as it was did not circle
    back = np.full(len(on), -1)
    for k, visit in enumerate(history):
        here = (visit.plan == on).all(1) & moved & ~circled
        if here.any():  # the circle: visits k … last; go back to the least eager one
            bids = np.stack([v.bid for v in history[k:]])  # (V, B)
            back[here] = k + bids[:, here].argmin(0)
            circled |= here
    return (*go_back(team, history, back, on, result, ledger), circled)


def least_eager(
    team: Team,
    states: Sequence[State],
    obs: np.ndarray,
    history: list[Visit],
    on: np.ndarray,
    result: SearchResult,
    ledger: MessageLedger,
) -> tuple[np.ndarray, SearchResult]:
    """At a decision with one mover for the system: once the move rounds are over, the plan stands
    at the one of their whole path the agents were least eager to leave (the smallest winning bid
    heard there). A last plan the rounds left with their moves spent is heard once more first.

    Why: the three moves can end on a worse plan than one they passed. On the paper instance's
    validation state night_heavy_d2_t81 (seed 2, 1.92 % off) they reached the optimum (bid 0.27 to
    leave it), then a hand-over and a stop left V2G5 off with its start bid at 4.15 and no move
    left; going back takes the optimum. On 1,540 validation states this changed only such states
    (worst 1.92 % → 0.42 % on that seed, the two others unchanged). Only where one mover serves the
    system: with zones, a plan's bid is a maximum over other zones' moves, and two plans' bids do
    not compare. Decision time only: training's moves explore, and their targets are set by the
    competition."""
    spent = np.ones(len(on), dtype=bool)
    for visit in history:
        spent &= ~(visit.plan == on).all(1)  # a plan no round started from: its bid is not heard yet
    last = np.full(len(on), np.inf)
    if spent.any():
        rows = np.flatnonzero(spent)
        feats = team.features([states[int(j)] for j in rows], obs[rows], on[rows], result.take(rows))
        gain = team.gains(feats)
        last[rows] = np.maximum(gain[..., SOLO], np.where(on[rows], -np.inf, gain[..., HANDOVER])).max(1)
        ledger.heard(rows, move_messages(team, 1, True))
    best = np.stack([v.bid for v in history] + [last]).argmin(0)
    back = np.where(best < len(history), best, -1)
    for j in np.flatnonzero(back >= 0):  # already there: nothing to choose
        if (history[int(back[j])].plan[j] == on[j]).all():
            back[j] = -1
    return go_back(team, history, back, on, result, ledger)


def go_back(
    team: Team, history: list[Visit], back: np.ndarray, on: np.ndarray, result: SearchResult, ledger: MessageLedger
) -> tuple[np.ndarray, SearchResult]:
    """Every state with ``back[j] ≥ 0`` takes the plan of round ``back[j]`` again, with the clearing
    it had (the agents take their setpoints of that plan again); the choice goes to every CS node
    over the tree (``2(R − 1)`` messages)."""
    rows = np.flatnonzero(back >= 0)
    if not len(rows):
        return on, result
    on = on.copy()
    for j in rows:
        visit = history[int(back[j])]
        on[j] = visit.plan[j]
        result = result.with_rows(np.array([j]), visit.result.row(int(j)))
    ledger.returned(rows, 2 * (len(team.problem.regions) - 1))
    return on, result


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
