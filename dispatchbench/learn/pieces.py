"""Pieces of one instance: sub-problems made of a few of its regions, to train on.

Per-instance training on a large instance is slow per step: every state clears all its agents,
and the counterfactual plans multiply that (at 128 regions, 68 steps fit into 14 minutes and
the policy ended 6.8 % off). An any-size model trained on generated instances of 4-32 regions
decides 128 regions within 1 %, because a policy whose inputs do not depend on the size, shared
by the agents of a type, learns as much from a small instance as from a large one at a fraction
of the cost per step. A piece brings that to one instance without leaving it: the same agents,
with their own ratings and their own metered cost curves, grouped by their regions into smaller
problems (every region with all its groups and its CS limit; the main grid still only moves
power between the piece's regions). Training visits pieces of 4, 8, ... regions; the model then
decides the whole instance, like the any-size model but having seen only this instance's
stations. Nothing here reads a state: the pieces' states come from their own samplers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dispatchbench.model.problem import Problem

SMALLEST = 4  # regions in the smallest piece (the any-size model's smallest training size)


def piece_sizes(regions: int, largest: int) -> list[int]:
    """Piece sizes 4, 8, 16, ... up to ``largest`` regions, each below the instance's ``regions``
    (empty when the instance is not larger than ``largest``: it is trained whole)."""
    if largest <= 0 or regions <= largest:
        return []
    sizes, size = [], SMALLEST
    while size <= largest and size < regions:
        sizes.append(size)
        size *= 2
    return sizes


def piece_regions(problem: Problem, sizes: Sequence[int], per_size: int, seed: int) -> list[tuple[int, ...]]:
    """``per_size`` random region sets of each size (indices into ``problem.regions``, in file
    order), drawn by the run's seed, sizes interleaved so steps that take turns over them visit
    every size equally often whenever they stop."""
    rng = np.random.default_rng([seed, 23])
    count = len(problem.regions)
    drawn = {k: [tuple(sorted(rng.choice(count, k, replace=False).tolist())) for _ in range(per_size)] for k in sizes}
    return [drawn[k][j] for j in range(per_size) for k in sizes]


def cut(problem: Problem, regions: Sequence[int], label: str) -> tuple[Problem, np.ndarray]:
    """The piece of ``problem`` made of ``regions`` (their groups and CS limits), and the indices
    of its groups in ``problem.groups`` (so each agent keeps its own curve)."""
    kept = [problem.regions[i] for i in sorted(regions)]
    names = {r.name for r in kept}
    index = np.array([j for j, g in enumerate(problem.groups) if g.region in names], dtype=np.int64)
    piece = Problem(
        name=f"{problem.name} [{label}]",
        regions=tuple(kept),
        groups=tuple(problem.groups[j] for j in index),
        commitment=problem.commitment,
        source=problem.source,
    )
    return piece, index
