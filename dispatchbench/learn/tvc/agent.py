"""One agent (a charger group): its own networks' data, buffers, random generator and fits.

An agent knows its own ratings (range, delivery), never its cost coefficients. It keeps its own
bills (to fit its cost network), its own commitment targets and move gains (to fit its slice of
the commitment networks), and its own random generator for exploration; nothing is shared.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dispatchbench.learn.marl_env import OBS_DIM
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.learn.tvc.cost_network import ConvexCost
from dispatchbench.learn.tvc.features import N_FEATURES
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.model.problem import Problem


class Agent:
    """One charger group. Knows its own ratings (range, delivery) — never its cost coefficients."""

    def __init__(self, problem: Problem, index: int, hp: Hyperparameters, seed: int) -> None:
        group = problem.groups[index]
        self.name, self.index, self.hp = group.name, index, hp
        self.p_low, self.p_max, self.delivery = group.p_min, group.p_max, group.delivery
        self.rng = np.random.default_rng(seed)
        self.cost = ConvexCost(hp.cost_knots)
        self.bills = ReplayBuffer(
            hp.buffer_size,
            {"obs": (OBS_DIM,), "x": (), "bill": ()},
            seed + 1,
            dtypes={"obs": np.float64, "x": np.float64, "bill": np.float64},
        )
        self.plans = ReplayBuffer(hp.buffer_size, {"features": (N_FEATURES,), "targets": (2,)}, seed + 2)
        self.moves = ReplayBuffer(hp.buffer_size, {"features": (N_FEATURES,), "gain": (2,)}, seed + 3)
        self.bill_scale = 0.0  # set from the agent's own first bills (0: not yet)
        self.cost_loss = 0.0  # last fit's loss (logged every step for Fig. 5)

    # ---- what the agent saves -----------------------------------------------------------
    def extra(self, with_buffers: bool) -> dict:
        out = {"bill_scale": self.bill_scale, "rng": self.rng.bit_generator.state}
        if with_buffers:
            out.update(bills=self.bills.state_dict(), plans=self.plans.state_dict(), moves=self.moves.state_dict())
        return out

    def load_extra(self, extra: dict) -> None:
        self.bill_scale = extra["bill_scale"]
        self.rng.bit_generator.state = extra["rng"]
        if "bills" in extra:
            self.bills.load_state_dict(extra["bills"])
            self.plans.load_state_dict(extra["plans"])
            self.moves.load_state_dict(extra["moves"])

    # ---- acting ---------------------------------------------------------------------------
    def offer_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(power grid, price per delivered kW)``: the agent's learned marginal cost, inverted by
        interpolation to answer any price — ``argmin_P C_i(P) − λ·delivered(P)``."""
        grid = np.linspace(self.p_low, self.p_max, self.hp.table_points)
        m = self.cost.marginal(torch.as_tensor(grid / self.p_max)).numpy()
        m = m * self.bill_scale / self.p_max / max(self.delivery, 1e-12)
        return grid, m + 1e-9 * np.arange(len(m))  # strictly increasing for the interpolation

    @torch.no_grad()
    def learned_cost(self, obs: np.ndarray, power: np.ndarray) -> np.ndarray:
        """The agent's own estimate of its bill at ``power`` (cost units)."""
        x = torch.as_tensor(np.asarray(power, dtype=float) / self.p_max)
        return self.cost(torch.as_tensor(obs, dtype=torch.float64), x).numpy() * self.bill_scale

    # ---- learning -------------------------------------------------------------------------
    def remember_bills(self, obs: np.ndarray, power: np.ndarray, bill: np.ndarray) -> None:
        if self.bill_scale == 0.0 and len(bill):
            self.bill_scale = float(max(np.max(bill), 1.0))
        self.bills.add(obs=obs, x=power / self.p_max, bill=bill / self.bill_scale)

    def update_cost(self) -> float:
        """Fit the cost network to a replay mini-batch of the agent's own bills (L-BFGS: the fit is
        a smooth, nearly linear least-squares problem, where first-order steps leave the slope —
        the offer — inaccurate long after the values look right)."""
        if len(self.bills) == 0:
            return 0.0
        b = self.bills.sample(self.hp.cost_batch)
        obs, x = torch.as_tensor(b["obs"], dtype=torch.float64), torch.as_tensor(b["x"], dtype=torch.float64)
        bill = torch.as_tensor(b["bill"], dtype=torch.float64)
        opt = torch.optim.LBFGS(
            self.cost.parameters(),
            max_iter=self.hp.cost_iterations,
            history_size=20,
            tolerance_grad=1e-14,
            tolerance_change=1e-18,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.mse_loss(self.cost(obs, x), bill)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return float(F.mse_loss(self.cost(obs, x), bill))
