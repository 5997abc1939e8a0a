"""Zones: the blocks of regions among which the agents pick one mover, or hear hand-over partners.

One block (one mover for the system) up to ``zone_regions`` regions — the paper's size — and a
block per ``zone_regions`` regions beyond it, so a large instance's many local choices are made in
the same few rounds. A zone's maximum is a tree maximum over its CS nodes.
"""

from __future__ import annotations

import numpy as np

from dispatchbench.model.problem import Problem


def zone_regions_of(problem: Problem, zone_regions: int) -> list[list[int]]:
    """Each zone's regions: blocks of ``zone_regions`` regions by region name, so the order a file
    lists them in does not matter."""
    names = sorted(range(len(problem.regions)), key=lambda r: problem.region_names[r])
    return [names[k : k + zone_regions] for k in range(0, len(names), zone_regions)]


def zone_blocks(problem: Problem, zone_regions: int) -> np.ndarray:
    """``(Z, K)`` each zone's agents, padded with ``G``."""
    n = len(problem.groups)
    blocks = zone_regions_of(problem, zone_regions)
    members = [np.flatnonzero(np.isin(problem.group_region, block)) for block in blocks]
    width = max(len(m) for m in members)
    return np.array([np.pad(m, (0, width - len(m)), constant_values=n) for m in members], dtype=int)


def zone_neighbours(problem: Problem, zone_regions: int) -> np.ndarray:
    """``(G, K)`` the regions of each agent's zone (its own among them), padded with ``R``: whose
    hand-over candidates its CS node hears."""
    regions = len(problem.regions)
    blocks = zone_regions_of(problem, zone_regions)
    width = max(len(b) for b in blocks)
    rows = np.full((regions, width), regions, dtype=int)
    for block in blocks:
        rows[block, : len(block)] = block
    return rows[problem.group_region]


def pick(values: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(B, G)`` values -> each zone's best agent and its value, ``(B, Z)`` each (an empty slot
    reads ``-inf``; its agent index is ``G``)."""
    padded = np.concatenate([values, np.full((len(values), 1), -np.inf)], -1)
    best = slots[np.arange(len(slots)), padded[:, slots].argmax(-1)]  # (B, Z)
    return best, np.take_along_axis(padded, best, 1)
