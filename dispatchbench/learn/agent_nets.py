"""Per-agent networks evaluated in one batched matrix product.

Why: the learners (MADDPG, MADRL-TVC) give every charger group its own networks — nothing is
shared — but nine tiny separate networks cost nine Python-level calls per layer on two CPU cores.
Stacking the agents' weights along a leading axis and using one ``baddbmm`` keeps the parameters
independent while one call serves all of them. Both learner plugins import this module (plugins
are loaded as separate modules and must not import each other).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class AgentLinear(nn.Module):
    """``n`` independent linear layers applied at once: ``(n, B, in) -> (n, B, out)``.

    Slice ``i`` of the weights belongs to agent ``i`` alone: the loss is a sum of per-agent
    losses and Adam is element-wise, so each slice is trained exactly as a separate network on
    its agent's own data would be — the stacking only replaces ``n`` small matrix products by one.
    Initialised like ``nn.Linear`` (uniform in ``±1/sqrt(in)``).
    """

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / np.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def agent_mlp(n: int, d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """Two hidden ReLU layers per agent: ``(n, B, d_in) -> (n, B, d_out)``."""
    return nn.Sequential(
        AgentLinear(n, d_in, hidden),
        nn.ReLU(),
        AgentLinear(n, hidden, hidden),
        nn.ReLU(),
        AgentLinear(n, hidden, d_out),
    )
