"""The repair by ratings: a plan made workable before it is cleared, from ratings and demand alone.

Whatever the learned policy proposes, a plan whose running groups' ranges cannot meet some
region's demand within its CS window (or the system's total) is repaired by flipping agents,
one at a time: of the flips that remove some shortfall, the one its agent is most willing to
make. No cost enters (learned or true): ``vector_form.shortfall`` needs only the ratings, the
CS limits and the demand; who goes first is the policy's own order.

Why willingness first, not the flip that removes the most shortfall: a large shortfall (a
low-load trough of a 128-region instance, where the rounds left a quarter of the demand
uncovered) was refilled by the biggest groups whatever they cost, and the repaired plans were
10.8–23.8 % off. Taking the agents in the policy's order fills it like a merit order by the
learned values: on ``generate_problem(128, 1000)``'s 70 validation states the same model went
from 1.72 % to 0.71 % mean, night_heavy from 7.4 % to 1.5 %
(``benchmarks/results/tvc-repair-validation-128.json``).
"""

from __future__ import annotations

import numpy as np

from dispatchbench.formulations.vector_form import shortfall
from dispatchbench.learn.tvc.plans import solo_flips
from dispatchbench.model.problem import Problem, State


def repair(
    problem: Problem, state: State, on: np.ndarray, willing: np.ndarray, *, largest_first: bool = False
) -> tuple[np.ndarray, int]:
    """Make a plan workable by ratings alone, before clearing it: while the running groups'
    ranges cannot meet some region's demand within its CS window or the system's total
    (``vector_form.shortfall``, ratings and demand only), flip the most ``willing`` agent among
    those whose flip removes some shortfall (a stopped agent that wants to run, a running one
    that wants to stop). Each CS node works out its own agents' flips from one tree sum of the
    regions' ranges; a tree maximum picks the flip. Returns the plan and the number of flips.

    ``largest_first``: the flip that removes the most shortfall goes first, willingness only
    breaking ties (the rule before; training's margin-rule start keeps it, so the models trained
    are the ones validated before the decisions' rule changed)."""
    start = on
    on = on.copy()
    n, flips = len(on), 0
    missing = float(shortfall(problem, state, on[None])[0])
    while missing > 1e-9 and flips < n:
        gain = missing - shortfall(problem, state, solo_flips(on))
        if gain.max() <= 1e-9:
            break
        tie = np.where(on, -willing, willing)
        candidates = gain >= gain.max() - 1e-9 if largest_first else gain > 1e-9
        k = int(np.argmax(np.where(candidates, tie, -np.inf)))
        on[k] = ~on[k]
        flips += 1
        missing -= float(gain[k])
    if missing > 1e-9 and not largest_first:
        # the willing order can walk into a plan no single flip improves (a start that adds a
        # region's surplus while it fills the system's shortage): start over, largest first,
        # and count both passes' flips (their messages were sent)
        on, more = repair(problem, state, start, willing, largest_first=True)
        flips += more
    return on, flips


def repair_messages(flips: int, system_sum_messages: int) -> int:
    """Per repair flip: a tree sum of the regions' ranges, a tree maximum, a new bid and its reply."""
    return flips * (2 * system_sum_messages + 2)
