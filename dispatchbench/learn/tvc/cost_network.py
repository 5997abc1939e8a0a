"""The cost network: an agent's own bill as a function of its own power, convex by construction.

Learned from the agent's own bills (the reward term a station measures itself). Convexity in the
agent's power makes its marginal cost non-decreasing, so its offers (``offers.py``) are monotone
in the price — what the binary price search needs to meet the balances exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dispatchbench.learn.marl_env import OBS_DIM


class ConvexCost(nn.Module):
    """``C(o, x) = h(o) + c₁·x + q·x² + Σ_k w_k·softplus(β(x − t_k))/β`` with ``q, w_k ≥ 0``.

    ``x = P / p_max`` is the agent's own normalised power and the output is its bill in units of
    its own ``bill_scale``. The part in ``x`` is an input-convex network (one hidden layer of
    softplus ramps at fixed knots with non-negative output weights, plus a non-negative quadratic
    unit), so its marginal cost is non-decreasing and offers at a price are monotone — what the
    binary search needs. ``h(o)`` (affine) lets the value depend on the observation (a
    state-dependent fixed part); it cannot change the marginal cost, so offers use one table per
    agent. Double precision: offers need the *slope* of the fitted curve to ~1e-4 relative.
    """

    knots: torch.Tensor  # a buffer (moves with the module, saved with its state), not a parameter

    def __init__(self, knots: int) -> None:
        super().__init__()
        self.register_buffer("knots", torch.linspace(0.0, 1.0, knots + 2, dtype=torch.float64)[1:-1])
        self.beta = 4.0 * (knots + 1)
        self.linear = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
        self.quad_raw = nn.Parameter(torch.tensor(-2.0, dtype=torch.float64))
        self.ramp_raw = nn.Parameter(torch.full((knots,), -4.0, dtype=torch.float64))
        self.context = nn.Linear(OBS_DIM, 1, dtype=torch.float64)

    def forward(self, obs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ramps = F.softplus(self.beta * (x[:, None] - self.knots)) / self.beta
        convex = self.linear * x + F.softplus(self.quad_raw) * x**2 + ramps @ F.softplus(self.ramp_raw)
        return self.context(obs)[:, 0] + convex

    @torch.no_grad()
    def marginal(self, x: torch.Tensor) -> torch.Tensor:
        """``∂C/∂x`` in closed form (non-decreasing in ``x`` by construction)."""
        steps = torch.sigmoid(self.beta * (x[:, None] - self.knots))
        return self.linear + 2 * F.softplus(self.quad_raw) * x + steps @ F.softplus(self.ramp_raw)
