"""The team: the agents of one problem and what they do together around one clearing.

Offers at a shared price are cleared by the hierarchical distributed binary search; after a
clearing every agent hears its features and reads its own networks (a preference between off
and on, the gains of a move). The loops over agents are each agent's own step, vectorised; the
rounds that string clearings into a decision are in ``rounds.py`` and ``decision.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dispatchbench.formulations.balancing import States, balance, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult, region_slots
from dispatchbench.learn.tvc.agent import Agent
from dispatchbench.learn.tvc.commitment import CommitmentLearners, gossip_ring
from dispatchbench.learn.tvc.features import OFF, ON, Features, after_clearing
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.offers import LearnedPriceResponse, OfferBook
from dispatchbench.learn.tvc.repair import repair_messages
from dispatchbench.model.problem import Problem, State


class Team:
    """The agents of one problem, their commitment networks, their offers and their clearing."""

    def __init__(self, problem: Problem, hp: Hyperparameters, seed: int) -> None:
        self.problem, self.hp = problem, hp
        self.agents = [Agent(problem, i, hp, seed=seed * 1000 + 17 * i + 1) for i in range(len(problem.groups))]
        self.commitment = CommitmentLearners(len(self.agents), hp, gossip_ring(problem))
        self.search = DistributedSearch(problem, iterations=hp.search_iterations)
        self._book: OfferBook | None = None
        self._slots = region_slots(problem)  # each region's agents, for its CS node's sums

    def networks(self) -> dict[str, nn.Module]:
        return {"commitment": self.commitment, **{f"{a.name}/cost": a.cost for a in self.agents}}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"commitment_q": self.commitment.q_opt}

    def update_commitment(self) -> float:
        """Every agent updates its commitment network from a mini-batch of its own buffer."""
        batches = [a.plans.sample(self.hp.batch_size) for a in self.agents]
        stack = {k: torch.as_tensor(np.stack([b[k] for b in batches])) for k in batches[0]}
        if not len(self.agents[0].moves):
            return self.commitment.update(stack["features"], stack["targets"])
        moves = [a.moves.sample(self.hp.batch_size) for a in self.agents]
        return self.commitment.update(
            stack["features"],
            stack["targets"],
            torch.as_tensor(np.stack([b["features"] for b in moves])),
            torch.as_tensor(np.stack([b["gain"] for b in moves])),
        )

    # ---- offers and clearing ---------------------------------------------------------------
    @property
    def book(self) -> OfferBook:
        """Every agent's current offer curve (built on first use)."""
        if self._book is None:
            self.refresh_offers()
        return self._book  # type: ignore[return-value]

    def refresh_offers(self) -> None:
        """Each agent rebuilds its offer table from its current cost network."""
        self._book = OfferBook.build([a.offer_table() for a in self.agents])

    def clear(self, state: States, on: np.ndarray, *, exact_sums: bool = False) -> SearchResult:
        """Offers at a shared price, cleared by the hierarchical distributed binary search.
        ``state`` is one state for every row of ``on`` or one state per row (a batch of decisions).

        ``exact_sums`` (training only) runs the same search with plain sums instead of simulated
        message passing, and ``train_search_iterations`` bisection steps: prices to ~1e-7 of the
        bracket, plenty to rank plans, at a fraction of the time."""
        on = np.atleast_2d(on).astype(bool)
        lb, ub = state_bounds(self.problem, state, len(on))
        response = LearnedPriceResponse(self.book, lb, ub, on)
        if exact_sums:
            balanced = balance(self.problem, state, response, iterations=self.hp.train_search_iterations)
            return SearchResult(balanced=balanced, messages=0, consensus_rounds=0, sign_disagreements=0)
        return self.search.run(state, response)

    def clear_for_training(self, states: Sequence[State], plans: np.ndarray) -> SearchResult:
        """Plans ranked while training (``competition.TriedPlans``): plain sums, fewer bisection steps."""
        return self.clear(list(states), plans, exact_sums=True)

    # ---- what the agents hear and read ---------------------------------------------------------
    def features(self, states: States, obs: np.ndarray, on: np.ndarray, result: SearchResult) -> Features:
        """Every agent's features after the clearing ``result`` of plan ``on`` (``features.py``)."""
        return after_clearing(self.problem, self.book, self.agents, self._slots, states, obs, on, result)

    def preferences(self, features: Features) -> np.ndarray:
        """``(B, G)`` each agent's ``Q(on) − Q(off)`` from its own network on its own features."""
        values = self.commitment.values(features.by_agent())  # (G, B, 2): each agent its own row
        return (values[..., ON] - values[..., OFF]).T

    def gains(self, features: Features) -> np.ndarray:
        """``(B, G, 2)`` each agent's learned team gains of a solo move and of a hand-over."""
        return np.swapaxes(self.commitment.gains(features.by_agent()), 0, 1)

    # ---- what hearing costs ------------------------------------------------------------------
    @property
    def feature_messages(self) -> int:
        """What hearing the features costs beyond the clearing: three tree sums or maxima between
        the CS nodes (the regions' spare output, the peak price, the regions' ranges)."""
        return 3 * self.search.system_sum_messages

    @property
    def sum_messages(self) -> int:
        """One team-wide sum or maximum (every agent's report to its CS node, then the tree)."""
        return self.search.sum_messages

    def repair_messages(self, flips: int) -> int:
        return repair_messages(flips, self.search.system_sum_messages)
