"""The repair by ratings: a plan made workable before it is cleared, from ratings and demand alone.

Whatever the learned policy proposes, a plan whose running groups' ranges cannot meet some
region's demand within its CS window (or the system's total) is repaired by flipping agents in
the policy's order: of the flips that remove some shortfall, those their agents are most willing
to make. No cost enters (learned or true): ``vector_form.shortfall`` needs only the ratings, the
CS limits and the demand; who goes first is the policy's own order.

Why willingness first, not the flip that removes the most shortfall: a large shortfall (a
low-load trough of a 128-region instance, where the rounds left a quarter of the demand
uncovered) was refilled by the biggest groups whatever they cost, and the repaired plans were
10.8–23.8 % off. Taking the agents in the policy's order fills it like a merit order by the
learned values: on ``generate_problem(128, 1000)``'s 70 validation states the same model went
from 1.72 % to 0.71 % mean, night_heavy from 7.4 % to 1.5 %
(``benchmarks/results/tvc-repair-validation-128.json``).

Why several flips per pass (issue 19: messages per decision linear in groups + regions): the
repair used to flip one agent per tree pass, so a plan that left many regions short needed as
many passes as flips (~7 on average at 512 regions, more the more regions were short) and a
decision's messages grew faster than G + R. A flip changes only its own region's range
(``vector_form.flip_shortfalls``), so the regions can each make one flip in the same pass; the
passes then grow with the flips one region needs, not with the number of regions short. On
validation states (``generate_problem(512, 1000)``, the scaling study's three any-size models,
``benchmarks/results/tvc-repair-passes-validation.json``) a repair made 7.7–11.1 flips in
1.06–1.27 passes on average (at most 2). The gaps to SCIP are the same at 64 regions; at 128,
7 of 210 model-states changed (0.353–0.393 % mean against 0.354–0.393 %, one seed's worst
state 2.06 % against 1.95 %). The repair was never most
of a decision's messages, though: those still grow faster than G + R (228, 308 and 382 per
group or region at 64, 128 and 512 regions, against 228, 310 and 389) because a decision
runs more clearings there (about 8, 11 and 13), a repair bringing one more clearing and the
move rounds once more.
"""

from __future__ import annotations

import numpy as np

from dispatchbench.formulations.vector_form import RegionRanges, shortfall, total_miss
from dispatchbench.learn.tvc.plans import solo_flips
from dispatchbench.model.problem import Problem, State


def repair(
    problem: Problem, state: State, on: np.ndarray, willing: np.ndarray, *, largest_first: bool = False
) -> tuple[np.ndarray, int, int]:
    """Make a plan workable by ratings alone, before clearing it. Returns the plan, the flips
    and the tree passes it took (``repair_messages`` counts them).

    While the running groups' ranges cannot meet some region's demand within its CS window or
    the system's total (``vector_form.shortfall``, ratings and demand only), one pass:

    1. a tree sum of the regions' ranges tells every CS node the system's workable totals, so
       it knows what each of its own agents' flips would leave (``vector_form.flip_shortfalls``);
    2. each CS node proposes at most one flip: its most ``willing`` agent (a stopped agent that
       wants to run, a running one that wants to stop; the lower index on a tie) among those
       whose flip lowers the total shortfall — and, if the region misses its own window, lowers
       that miss (a region out of its window fixes itself first; one within it helps the
       system's total);
    3. the root gathers the proposals (each with its region's terms after the flip) and accepts
       them in willingness order while each still lowers the total shortfall given those
       already accepted (the flips are in distinct regions, so their effects add region by
       region): a short system total is filled by the most willing regions, not overshot by all
       of them starting at once; the decisions go back down and the accepted agents send their
       new bids.

    Passes repeat until the plan is workable or no proposal helps (that last pass is counted
    too). If the willing order walks into a plan no flip improves (a start that adds a region's
    surplus while it fills the system's shortage), the repair starts over, largest first, and
    both attempts' flips and passes are counted (their messages were sent).

    ``largest_first``: one flip per pass, the one that removes the most shortfall, willingness
    only breaking ties (the rule before; training's margin-rule start keeps it, so the models
    trained are the ones validated before the decisions' rule changed). Its passes are its flips
    (plus a last one that found no flip when it stops short)."""
    start = on
    on = on.copy()
    n, flips, passes = len(on), 0, 0
    missing = float(shortfall(problem, state, on[None])[0])
    if largest_first:
        while missing > 1e-9 and flips < n:
            gain = missing - shortfall(problem, state, solo_flips(on))
            passes += 1
            if gain.max() <= 1e-9:
                break
            tie = np.where(on, -willing, willing)
            candidates = gain >= gain.max() - 1e-9
            k = int(np.argmax(np.where(candidates, tie, -np.inf)))
            on[k] = ~on[k]
            flips += 1
            missing -= float(gain[k])
        return on, flips, passes
    region = problem.group_region
    ub, demand = problem.upper_bounds(state)[None], problem.demand_vector(state)[None]
    total = float(demand.sum())
    while missing > 1e-9 and passes < n:
        passes += 1
        # 1. the tree sum of the regions' window terms; each CS node: its agents' regions after a flip
        ranges = RegionRanges.of(problem, demand, on[None], ub)
        terms = [t[0] for t in ranges.terms]  # the regions' miss, workable low and high
        flipped = [f[0] for f in ranges.flipped(on[None])]
        sums = [float(t.sum()) for t in terms]
        now = float(total_miss(sums, total))
        solo = total_miss([s - t[region] + f for s, t, f in zip(sums, terms, flipped)], total)
        # 2. each region's proposal: its most willing agent whose flip helps
        miss = terms[0][region]
        helps = (solo < now - 1e-9) & ((miss <= 1e-9) | (flipped[0] < miss - 1e-9))
        order = np.lexsort((np.arange(n), -np.where(on, -willing, willing)))  # most willing first
        order = order[helps[order]]
        order = order[np.sort(np.unique(region[order], return_index=True)[1])]  # each region's first
        # 3. the root accepts them in that order while each still lowers the total shortfall
        accepted: list[int] = []
        for k in (int(i) for i in order):
            then = [s - t[region[k]] + f[k] for s, t, f in zip(sums, terms, flipped)]
            after = float(total_miss(then, total))
            if after < now - 1e-9:
                sums, now = then, after
                accepted.append(k)
        if not accepted:
            break
        on[accepted] = ~on[accepted]
        flips += len(accepted)
        missing = float(shortfall(problem, state, on[None])[0])
    if missing > 1e-9:
        on, more, again = repair(problem, state, start, willing, largest_first=True)
        flips, passes = flips + more, passes + again
    return on, flips, passes


def repair_messages(flips: int, passes: int, system_sum_messages: int) -> int:
    """Messages of a repair (``system_sum_messages``: one CS-to-CS tree sum, ``2(R − 1)`` on the
    default tree). Per pass, a tree sum of the regions' ranges and a gather of the CS nodes'
    proposals up the tree with the root's decisions back down (a convergecast and broadcast:
    what a tree sum costs); per flip, the agent's new bid and its reply:
    ``passes · 2·system_sum_messages + 2·flips`` — ``passes · 4(R − 1) + 2·flips`` on the tree.
    With one flip per pass (``largest_first``) that is the earlier ``flips · (2·2(R − 1) + 2)``."""
    return passes * 2 * system_sum_messages + 2 * flips
