"""The commitment and move networks of every agent, and the gossip ring that may mix them.

One slice per agent of stacked layers (``dispatchbench.learn.agent_nets``): nothing is shared,
one matrix product serves all agents. The Q-network says how much the team loses by each of the
agent's two actions; the move network, how much the team gains when the agent alone changes its
mind (a solo flip) or starts so that another can stop (a hand-over).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.tvc.features import N_FEATURES
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.model.problem import Problem


class CommitmentLearners(nn.Module):
    """Every agent's commitment Q-network (one slice each, stacked: ``dispatchbench.learn.agent_nets``).

    ``Q_i(f_i, u)`` is agent ``i``'s estimate of the team advantage of playing ``u ∈ {off, on}``
    given its features ``f_i`` (``features.FEATURE_NAMES``): the best team reward of a plan in which
    it plays ``u``, minus the best team reward of any plan tried at that state (≤ 0), in % of
    that state's cost, log-compressed (:meth:`compress`). Both actions have a target at every
    stored state (the competition among the tried plans settles both), so the loss covers both
    outputs. Slice ``i`` is trained only on agent ``i``'s own buffer (``tests/test_madrl_tvc.py``
    checks this).

    With ``gossip > 0`` each agent, after each update, averages its parameters with its two
    neighbours on a ring through the agents of its own type (``gossip_ring``) — decentralised
    training in which same-type agents pool what they learn without a parameter server; the
    features are normalised by each agent's own ratings and learned curves, so one type's
    networks can agree. At 32–128 regions that multiplies the data behind each network.
    """

    def __init__(self, n: int, hp: Hyperparameters, mixing: np.ndarray | None = None) -> None:
        super().__init__()
        self.hp = hp
        self.q = agent_mlp(n, N_FEATURES, hp.q_hidden, 2)
        self.move = agent_mlp(n, N_FEATURES, hp.q_hidden, 2)  # team gains of a solo move and of a hand-over
        self.q_opt = torch.optim.Adam(self.parameters(), lr=hp.q_lr)
        self.mixing = (
            None
            if mixing is None or hp.gossip == 0
            else torch.as_tensor(np.linalg.matrix_power(mixing, hp.gossip), dtype=torch.float32)
        )

    def compress(self, advantage: np.ndarray) -> np.ndarray:
        """``sign(A)·log(1 + |A| / resolution)``: the sign is all a decision needs, and a V2G group
        that wastes 1 % when it runs idle must be told apart from a group whose stop breaks a
        balance (−20 %); regressing raw percentages spends the network on the large ones.
        Monotone, so the best plan's action keeps the highest value, a preference or a move's
        gain keeps its sign, and the largest gain stays the largest."""
        return np.sign(advantage) * np.log1p(np.abs(advantage) / self.hp.advantage_resolution)

    @torch.no_grad()
    def values(self, features: np.ndarray) -> np.ndarray:
        """``features (G, B, F) -> (G, B, 2)`` each agent's values of off / on (in the network's
        own precision: double once loaded for execution, so batched and single decisions agree)."""
        dtype = next(self.q.parameters()).dtype
        return self.q(torch.as_tensor(features, dtype=dtype)).numpy()

    @torch.no_grad()
    def gains(self, features: np.ndarray) -> np.ndarray:
        """``features (G, B, F) -> (G, B, 2)`` each agent's learned team gains of flipping its
        status (``SOLO``) and of starting for a hand-over (``HANDOVER``)."""
        dtype = next(self.move.parameters()).dtype
        return self.move(torch.as_tensor(features, dtype=dtype)).numpy()

    def update(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        move_features: torch.Tensor | None = None,
        move_gains: torch.Tensor | None = None,
    ) -> float:
        """One update of every agent from its own mini-batches: ``features (G, B, F)``,
        ``targets (G, B, 2)``, and ``move_features (G, B, F)``, ``move_gains (G, B, 2)`` once the
        move rounds have data. Returns the loss summed over agents."""
        loss = ((self.q(features) - targets) ** 2).mean((-1, -2)).sum()
        if move_features is not None:
            loss = loss + ((self.move(move_features) - move_gains) ** 2).mean((-1, -2)).sum()
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        if self.mixing is not None:
            with torch.no_grad():  # each agent: a weighted average of itself and its two ring neighbours
                for param in self.parameters():
                    param.copy_(torch.einsum("ij,j...->i...", self.mixing.to(param.dtype), param))
        return float(loss.detach())


def gossip_ring(problem: Problem) -> np.ndarray:
    """``(G, G)`` doubly stochastic mixing: each agent and its two neighbours on a ring through the
    agents of its type (listed region by region), weight 1/3 each (1/2 with one neighbour)."""
    n = len(problem.groups)
    mixing = np.zeros((n, n))
    kinds = [g.type for g in problem.groups]
    for kind in set(kinds):
        ring = sorted((i for i in range(n) if kinds[i] == kind), key=lambda i: (problem.group_region[i], i))
        size = len(ring)
        for k, i in enumerate(ring):
            peers = {ring[(k - 1) % size], ring[(k + 1) % size]} - {i}
            for j in peers:
                mixing[i, j] = 1.0 / (1 + len(peers))
            mixing[i, i] = 1.0 - mixing[i].sum()
    return mixing
