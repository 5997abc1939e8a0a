"""The team: the agents of one problem and what they do together around one clearing.

Each agent owns its cost curve (``curves.py``, its own measurement) and runs the policy networks
of its slice (its type's, or its own: ``policy.py``). Offers at a shared price are cleared by the
hierarchical distributed binary search; after a clearing every agent hears its features and reads
its networks (a preference between off and on, the gains of a move). The arithmetic is
vectorised over agents, each agent's row its own; the rounds that string clearings into a
decision are in ``rounds.py`` and ``decision.py``. A team of another instance shares the same
networks (``share="type"``): that is what makes one model decide any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dispatchbench.formulations.balancing import States, balance, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult, region_slots
from dispatchbench.learn.tvc.curves import CostCurves
from dispatchbench.learn.tvc.features import OFF, ON, Features, after_clearing, ratings
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters, dropped
from dispatchbench.learn.tvc.offers import LearnedPriceResponse, OfferBook
from dispatchbench.learn.tvc.policy import PolicyNets, slice_index
from dispatchbench.learn.tvc.repair import repair_messages
from dispatchbench.learn.tvc.zones import zone_blocks, zone_neighbours, zone_regions_of
from dispatchbench.model.problem import Problem, State


class SlotSums:
    """Exact sums for training's plain-sum clearings: each region's delivered supply added over its
    own agents (a padded gather, ``distributed_search.region_slots``) — at 128 regions the dense
    ``(B, G) @ (G, R)`` product of ``balancing.ExactSums`` was most of a clearing's time."""

    def __init__(self, problem: Problem) -> None:
        self.delivery = problem.delivery
        self.slots = region_slots(problem)

    def regional(self, power: np.ndarray) -> np.ndarray:
        delivered = power * self.delivery
        padded = np.concatenate([delivered, np.zeros(delivered.shape[:-1] + (1,))], -1)
        return padded[..., self.slots].sum(-1)

    def system(self, per_region: np.ndarray) -> np.ndarray:
        return per_region.sum(-1)


class Team:
    """The agents of one problem: their curves and offers, their clearing, their networks' slices."""

    def __init__(self, problem: Problem, hp: Hyperparameters, nets: PolicyNets, curves: CostCurves) -> None:
        self.problem, self.hp, self.nets, self.curves = problem, hp, nets, curves
        self.slices = slice_index(problem, hp.share)  # which network slice each agent runs
        self.search = DistributedSearch(problem, iterations=hp.search_iterations)
        self.book = OfferBook.build(*curves.price_table(hp.table_points))  # every agent's offer curve
        self.drop = dropped(hp)
        self._slots = region_slots(problem)  # each region's agents, for its CS node's sums
        self._sums = SlotSums(problem)
        self._own = ratings(problem)
        self._zones: tuple[int, np.ndarray, np.ndarray] | None = None
        self.calibration: Any = None  # an any-size model's calibration on this instance (model.Calibration)

    def _zoning(self) -> tuple[int, np.ndarray, np.ndarray]:
        if self._zones is None or self._zones[0] != self.hp.zone_regions:
            size = self.hp.zone_regions
            self._zones = (size, zone_blocks(self.problem, size), zone_neighbours(self.problem, size))
        return self._zones

    @property
    def zones(self) -> np.ndarray:
        """``(Z, K)`` the zones' agents, padded with ``G`` (``zones.py``), for the current
        ``zone_regions``."""
        return self._zoning()[1]

    @property
    def neighbours(self) -> np.ndarray:
        """``(G, K)`` the regions of each agent's zone, padded with ``R`` (``zones.zone_neighbours``)."""
        return self._zoning()[2]

    @property
    def size(self) -> int:
        return len(self.problem.groups)

    # ---- clearing ---------------------------------------------------------------------------
    def clear(self, state: States, on: np.ndarray, *, exact_sums: bool = False) -> SearchResult:
        """Offers at a shared price, cleared by the hierarchical distributed binary search.
        ``state`` is one state for every row of ``on`` or one state per row (a batch of decisions).

        ``exact_sums`` (training only) runs the same search with plain sums instead of simulated
        message passing, and ``train_search_iterations`` bisection steps: prices to ~1e-7 of the
        bracket, plenty to rank plans, at a fraction of the time (its messages are counted by the
        training's own ledger, ``accounting.py``)."""
        on = np.atleast_2d(on).astype(bool)
        lb, ub = state_bounds(self.problem, state, len(on))
        response = LearnedPriceResponse(self.book, lb, ub, on)
        if exact_sums:
            balanced = balance(
                self.problem, state, response, iterations=self.hp.train_search_iterations, reducer=self._sums
            )
            return SearchResult(balanced=balanced, messages=0, consensus_rounds=0, sign_disagreements=0)
        return self.search.run(state, response)

    def clear_for_training(self, states: Sequence[State], plans: np.ndarray) -> SearchResult:
        """Plans ranked while training (``competition.TriedPlans``): plain sums, fewer bisection steps."""
        return self.clear(list(states), plans, exact_sums=True)

    # ---- what the agents hear and read ---------------------------------------------------------
    def features(self, states: States, obs: np.ndarray, on: np.ndarray, result: SearchResult) -> Features:
        """Every agent's features after the clearing ``result`` of plan ``on`` (``features.py``)."""
        return after_clearing(
            self.problem,
            self.book,
            self.curves,
            self._own,
            self._slots,
            states,
            obs,
            on,
            result,
            self.neighbours,
            self.drop,
        )

    def preferences(self, features: Features) -> np.ndarray:
        """``(B, G)`` each agent's ``Q(on) − Q(off)`` from its network on its own features."""
        values = self.nets.values(features.by_agent(), self.slices)  # (G, B, 2): each agent its own row
        return (values[..., ON] - values[..., OFF]).T

    def gains(self, features: Features) -> np.ndarray:
        """``(B, G, 2)`` each agent's learned team gains of a solo move and of a hand-over, as the
        network gives them (compressed, monotone): every agent of a state reads its gain in the
        same unit (``competition.state_unit``), so a CS node compares them as they come."""
        return np.swapaxes(self.nets.gains(features.by_agent(), self.slices), 0, 1)

    # ---- what hearing costs ------------------------------------------------------------------
    @property
    def feature_messages(self) -> int:
        """What hearing the features costs beyond the clearing: a tree sum between the CS nodes
        for each of the regions' spare output (``cover``) and the regions' ranges
        (``flip_workable``); for ``handover_saving`` every agent's margin to its CS node and each
        region's candidate's range to the other CS nodes of its zone (``G + Σ_z R_z(R_z − 1)``,
        linear in G + R: a zone has at most ``zone_regions`` regions) — fewer when an ablation
        drops a feature."""
        sums = sum(name not in self.drop for name in ("cover", "flip_workable"))
        spread = sum(len(z) * (len(z) - 1) for z in zone_regions_of(self.problem, self.hp.zone_regions))
        handover = 0 if "handover_saving" in self.drop else self.size + spread
        return sums * self.search.system_sum_messages + handover

    @property
    def sum_messages(self) -> int:
        """One team-wide sum or maximum (every agent's report to its CS node, then the tree)."""
        return self.search.sum_messages

    def repair_messages(self, flips: int, passes: int) -> int:
        """A repair's messages (``repair.repair_messages``: ``passes · 2·2(R − 1) + 2·flips`` on the tree)."""
        return repair_messages(flips, passes, self.search.system_sum_messages)
