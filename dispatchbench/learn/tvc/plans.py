"""The neighbourhood of an on/off plan: solo flips and hand-overs (coordinated swaps).

Plans are ``(G,)`` boolean arrays, one status per agent. The same neighbourhood serves the
repair by ratings (``repair.py``), the decision-time search (``decision.py``, ``refine``) and
the plan competition that sets the training targets (``competition.py``). Nothing here is
learned.
"""

from __future__ import annotations

import numpy as np


def solo_flips(plan: np.ndarray) -> np.ndarray:
    """``(G, G)``: row ``i`` is ``plan`` with agent ``i``'s status flipped."""
    flips = np.repeat(plan[None], len(plan), 0)
    flips[np.arange(len(plan)), np.arange(len(plan))] ^= True
    return flips


def handovers_of(plan: np.ndarray, max_swaps: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_swaps`` coordinated swaps of ``plan`` (one stopped agent starts while one
    running agent stops — the joint moves single flips cannot make); a random subset when there
    are more."""
    running, stopped = np.flatnonzero(plan), np.flatnonzero(~plan)
    pairs = np.array([(i, j) for i in running for j in stopped], dtype=int).reshape(-1, 2)
    if len(pairs) > max_swaps:
        pairs = pairs[rng.choice(len(pairs), max_swaps, replace=False)]
    swaps = np.repeat(plan[None], len(pairs), 0)
    swaps[np.arange(len(pairs)), pairs[:, 0]] = False
    swaps[np.arange(len(pairs)), pairs[:, 1]] = True
    return swaps


def neighbours(plan: np.ndarray, max_flips: int, max_swaps: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_flips`` solo flips of ``plan`` (all of them when there are no more agents) and
    up to ``max_swaps`` coordinated swaps (``handovers_of``)."""
    n = len(plan)
    who = np.arange(n) if n <= max_flips else np.sort(rng.choice(n, max_flips, replace=False))
    return np.concatenate([solo_flips(plan)[who], handovers_of(plan, max_swaps, rng)])
