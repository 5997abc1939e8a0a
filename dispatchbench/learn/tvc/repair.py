"""The repair by ratings: a plan made workable before it is cleared, from ratings and demand alone.

Whatever the learned policy proposes, a plan whose running groups' ranges cannot meet some
region's demand within its CS window (or the system's total) is repaired by flipping agents,
one at a time, each flip the one that removes the most shortfall. No cost enters (learned or
true): ``vector_form.shortfall`` needs only the ratings, the CS limits and the demand.
"""

from __future__ import annotations

import numpy as np

from dispatchbench.formulations.vector_form import shortfall
from dispatchbench.learn.tvc.plans import solo_flips
from dispatchbench.model.problem import Problem, State


def repair(problem: Problem, state: State, on: np.ndarray, willing: np.ndarray) -> tuple[np.ndarray, int]:
    """Make a plan workable by ratings alone, before clearing it: while the running groups'
    ranges cannot meet some region's demand within its CS window or the system's total
    (``vector_form.shortfall``, ratings and demand only), flip the agent whose flip removes the
    most shortfall, the most ``willing`` one among equals (a stopped agent that wants to run,
    a running one that wants to stop). Each CS node works out its own agents' flips from one
    tree sum of the regions' ranges; a tree maximum picks the flip. Returns the plan and the
    number of flips."""
    on = on.copy()
    n, flips = len(on), 0
    missing = float(shortfall(problem, state, on[None])[0])
    while missing > 1e-9 and flips < n:
        gain = missing - shortfall(problem, state, solo_flips(on))
        if gain.max() <= 1e-9:
            break
        tie = np.where(on, -willing, willing)
        k = int(np.argmax(np.where(gain >= gain.max() - 1e-9, tie, -np.inf)))
        on[k] = ~on[k]
        flips += 1
        missing -= float(gain[k])
    return on, flips


def repair_messages(flips: int, system_sum_messages: int) -> int:
    """Per repair flip: a tree sum of the regions' ranges, a tree maximum, a new bid and its reply."""
    return flips * (2 * system_sum_messages + 2)
