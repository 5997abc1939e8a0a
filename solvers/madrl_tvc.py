"""MADRL-TVC: fully distributed multi-agent RL with target-value competition.

One file, read top to bottom: hyper-parameters, the per-agent networks, the agent (its own replay
buffers and update), the learned price response the distributed search clears, the training loop
(``fit``) and execution (``solve``). The design, and why it is shaped this way, is in
``docs/madrl-tvc.md``; in short, every charger group is one agent that owns

- a **cost network** ``C_i(o_i, P_i)``: its own operating cost, learned from its own bills
  (the reward term a station measures itself), input-convex in its own power. Its value network
  is ``Q_i = −C_i``; at a shared price ``λ`` the agent offers ``argmax_P Q_i + λ·delivered(P)``,
  solved on its own learned marginal-cost curve, so offers are monotone in ``λ`` and the
  hierarchical distributed binary search (``dispatchbench.formulations.distributed_search``) meets every
  balance and CS limit exactly;
- a **commitment Q-network** ``Q^u_i(o_i, u)`` (``u`` = off/on), its **target network** and a
  **reward network**, trained on the *team* reward (minus the total cost after balancing, heard as
  a sum over the communication tree) relative to the best plan the team tried at the same state.
  The target value of an update is settled by a competition: a sample's reward competes with the reward network's estimate (rewards
  below what the agent can expect are filtered out — they come from partners' exploration), and the
  update is hysteretic around the target network's value (weight ``τ`` upwards, ``1 − τ``
  downwards). That makes each agent an optimistic independent learner, which in a deterministic
  cooperative game recovers its part of the best joint commitment.

At execution the learned commitment is cleared by the price search — by default that is all
(``refine=0``: the learned policy alone, the method's headline row). ``madrl_tvc[refine=3]``
("TVC + local search", a separate row) adds up to ``refine`` rounds of *learned flip tests*: each
agent's solo flip is cleared and priced on the agents' own cost networks, summed over the
communication tree, and the best improving flip is taken. A day's states are decided in one batch
(networks on every state at once, one vectorised price search); a state whose commitment needs
repair, or flip tests, continues on its own with the same steps, so batched answers equal
one-by-one answers.

Nothing is shared: every agent has its own modules, optimisers, buffers and random generator, and
learns from its own observation, its own power, its own bill and scalars heard from neighbours
(the team reward and the cleared price). No agent ever reads a cost coefficient; costs enter only
through rewards computed by the environment's evaluator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dispatchbench.learn import lifecycle
from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.lifecycle import COUNT, FRACTION, NON_NEGATIVE, POSITIVE
from dispatchbench.formulations.balancing import States, balance, state_bounds
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult
from dispatchbench.model.evaluate import evaluate
from dispatchbench.learn.marl_env import (OBS_DIM, RewardConfig, StateSampler, map_actions, monitor_states,
                                          observation_matrix, observation_names)
from dispatchbench.model.problem import Problem, State
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.bench.solver_api import Answer, Capabilities, FitReport, Solver
from dispatchbench.learn.training_log import TrainingLog

OFF, ON = 0, 1


# =============================================================================================
# Hyper-parameters
# =============================================================================================
@dataclass
class Hyperparameters:
    # cost network (input-convex in the agent's own power)
    cost_knots: int = 8  # softplus ramps of the convex part
    cost_batch: int = 1024  # replay mini-batch of one cost-network fit (L-BFGS: slopes must be precise)
    cost_iterations: int = 25  # L-BFGS iterations per fit
    cost_every: int = 50  # training steps between fits (bills never change: the curve settles early)
    # commitment networks (Q, target, reward)
    q_hidden: int = 64
    q_lr: float = 1e-3
    tau_optimism: float = 0.9  # hysteresis: weight of updates that raise the value (1 − τ lowers it)
    polyak: float = 0.02  # target-network soft-update rate
    advantage_clip: float = 20.0  # team advantages (≤ 0) in % of the typical team cost, clipped below at −this
    # exploration and data
    warmup_states: int = 400  # states explored with uniform random actions before learning offers
    warmup_actions: int = 8  # random action profiles per warm-up state
    states_per_step: int = 4  # states visited per training step
    joint_explorations: int = 6  # per state, besides the greedy plan and one solo flip per agent
    flip_prob: float = 0.15  # each agent flips its greedy on/off with this probability, independently
    batch_size: int = 256
    updates_per_step: int = 4  # commitment-network updates per training step
    buffer_size: int = 20_000
    # execution
    table_points: int = 2049  # resolution of each agent's learned marginal-cost table
    search_iterations: int = 40  # bisection steps per level (bracket / 2^40, then exact interpolation)
    log_every: int = 100
    checkpoint_every: int = 1000

    @property
    def reward(self) -> RewardConfig:
        return RewardConfig()  # the environment's penalty per kW of violation for infeasible plans


# Checked when a spec is parsed (``madrl_tvc[q_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES = {
    "cost_knots": COUNT, "cost_batch": COUNT, "cost_iterations": COUNT, "cost_every": COUNT, "q_hidden": COUNT,
    "q_lr": POSITIVE, "tau_optimism": FRACTION, "polyak": FRACTION, "advantage_clip": NON_NEGATIVE,
    "warmup_states": COUNT, "warmup_actions": COUNT, "states_per_step": COUNT, "joint_explorations": NON_NEGATIVE,
    "flip_prob": FRACTION, "batch_size": COUNT, "updates_per_step": COUNT, "buffer_size": COUNT,
    "table_points": (2, None), "search_iterations": COUNT, "log_every": COUNT, "checkpoint_every": COUNT,
}


# =============================================================================================
# Networks (one set per agent, never shared)
# =============================================================================================
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


class CommitmentLearners(nn.Module):
    """Every agent's commitment Q-network, target network and reward network (one slice each).

    Stacked per-agent layers (``dispatchbench.learn.agent_nets``): slice ``i`` is agent ``i``'s own
    network, trained only on its own data (``tests/test_madrl_tvc.py`` checks this).
    ``Q_i(o_i, u)`` is agent ``i``'s optimistic estimate of the team advantage of playing
    ``u ∈ {off, on}`` — the team reward minus the best team reward among the plans tried at the
    same state (≤ 0; 0 = "the best plan seen here agrees with me"), in % of a typical team cost. The update is the *target-value competition*:

    1. the reward network ``R_i(o_i, u)`` regresses the observed advantages (mean): what the team
       gets when I play ``u`` while my partners keep exploring;
    2. the target value is ``y = max(r, R_i(o_i, u))``: a sample worse than that expectation is
       blamed on the partners' exploration and filtered out;
    3. ``Q_i`` moves towards ``y`` with weight ``τ`` when ``y`` is above the target network's
       value ``Q'_i(o_i, u)`` and ``1 − τ`` when below (hysteresis: raised fast, lowered slowly),
       and ``Q'_i`` follows ``Q_i`` softly, so the target settles progressively.
    """

    def __init__(self, n: int, hp: Hyperparameters) -> None:
        super().__init__()
        self.hp = hp
        self.q = agent_mlp(n, OBS_DIM, hp.q_hidden, 2)
        self.q_target = agent_mlp(n, OBS_DIM, hp.q_hidden, 2)
        self.q_target.load_state_dict(self.q.state_dict())
        self.reward = agent_mlp(n, OBS_DIM, hp.q_hidden, 2)
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=hp.q_lr)
        self.reward_opt = torch.optim.Adam(self.reward.parameters(), lr=hp.q_lr)

    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        """``obs (G, B, 3) -> (G, B, 2)`` each agent's values of off / on (in the network's own
        precision: double once loaded for execution, so batched and single decisions agree)."""
        dtype = next(self.q.parameters()).dtype
        return self.q(torch.as_tensor(obs, dtype=dtype)).numpy()

    def update(self, obs: torch.Tensor, u: torch.Tensor, adv: torch.Tensor) -> float:
        """One update of every agent from its own mini-batch: ``obs (G, B, 3)``, ``u, adv (G, B)``.
        Returns the total Q loss (sum over agents)."""
        pick = u[..., None]
        expected = self.reward(obs).gather(-1, pick)[..., 0]
        r_loss = ((expected - adv) ** 2).mean(-1).sum()
        self.reward_opt.zero_grad()
        r_loss.backward()
        self.reward_opt.step()
        with torch.no_grad():
            target = torch.maximum(adv, self.reward(obs).gather(-1, pick)[..., 0])
            stable = self.q_target(obs).gather(-1, pick)[..., 0]
            tau = self.hp.tau_optimism
            weight = torch.where(target >= stable, tau, 1.0 - tau)
        value = self.q(obs).gather(-1, pick)[..., 0]
        q_loss = (2.0 * weight * (target - value) ** 2).mean(-1).sum()
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        with torch.no_grad():
            for t, src in zip(self.q_target.parameters(), self.q.parameters()):
                t.lerp_(src, self.hp.polyak)
        return float(q_loss.detach())


# =============================================================================================
# The agent: its own networks, buffers, scales and update
# =============================================================================================
class Agent:
    """One charger group. Knows its own ratings (range, delivery) — never its cost coefficients."""

    def __init__(self, problem: Problem, index: int, hp: Hyperparameters, seed: int) -> None:
        group = problem.groups[index]
        self.name, self.index, self.hp = group.name, index, hp
        self.p_low, self.p_max, self.delivery = group.p_min, group.p_max, group.delivery
        self.rng = np.random.default_rng(seed)
        self.cost = ConvexCost(hp.cost_knots)
        self.bills = ReplayBuffer(hp.buffer_size, {"obs": (OBS_DIM,), "x": (), "bill": ()}, seed + 1,
                                  dtypes={"obs": np.float64, "x": np.float64, "bill": np.float64})
        self.plans = ReplayBuffer(hp.buffer_size, {"obs": (OBS_DIM,), "u": (), "adv": ()}, seed + 2,
                                  dtypes={"u": np.int64})
        self.bill_scale = 0.0  # set from the agent's own first bills (0: not yet)
        self.team_scale = 0.0  # set from the first team rewards it hears (0: not yet)
        self.cost_loss = 0.0  # last fit's loss (logged every step for Fig. 5)

    # ---- what the agent saves -----------------------------------------------------------
    def extra(self, with_buffers: bool) -> dict:
        out = {"bill_scale": self.bill_scale, "team_scale": self.team_scale, "rng": self.rng.bit_generator.state}
        if with_buffers:
            out.update(bills=self.bills.state_dict(), plans=self.plans.state_dict())
        return out

    def load_extra(self, extra: dict) -> None:
        self.bill_scale, self.team_scale = extra["bill_scale"], extra["team_scale"]
        self.rng.bit_generator.state = extra["rng"]
        if "bills" in extra:
            self.bills.load_state_dict(extra["bills"])
            self.plans.load_state_dict(extra["plans"])

    # ---- acting ---------------------------------------------------------------------------
    def offer_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(power grid, price per delivered kW)``: the agent's learned marginal cost, inverted by
        interpolation to answer any price — ``argmax_P Q_i(P) + λ·delivered(P)``."""
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

    def remember_plans(self, obs: np.ndarray, u: np.ndarray, adv: np.ndarray) -> None:
        self.plans.add(obs=obs, u=u.astype(np.int64), adv=adv)

    def update_cost(self) -> float:
        """Fit the cost network to a replay mini-batch of the agent's own bills (L-BFGS: the fit is
        a smooth, nearly linear least-squares problem, where first-order steps leave the slope —
        the offer — inaccurate long after the values look right)."""
        if len(self.bills) == 0:
            return 0.0
        b = self.bills.sample(self.hp.cost_batch)
        obs, x = torch.as_tensor(b["obs"], dtype=torch.float64), torch.as_tensor(b["x"], dtype=torch.float64)
        bill = torch.as_tensor(b["bill"], dtype=torch.float64)
        opt = torch.optim.LBFGS(self.cost.parameters(), max_iter=self.hp.cost_iterations, history_size=20,
                                tolerance_grad=1e-14, tolerance_change=1e-18, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.mse_loss(self.cost(obs, x), bill)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return float(F.mse_loss(self.cost(obs, x), bill))

    def plan_batch(self) -> dict[str, np.ndarray]:
        return self.plans.sample(self.hp.batch_size)


# =============================================================================================
# The learned price response the distributed binary search clears
# =============================================================================================
@dataclass(frozen=True)
class OfferBook:
    """Every agent's learned offer curve (power <-> price per delivered kW) in one flat table.

    Each agent's table is shifted onto its own stretch of one increasing axis, so one
    ``np.interp`` answers all agents at once; the numbers in each stretch are that agent's own.
    """

    power_keys: np.ndarray  # agent g's power grid, shifted by g·power_span
    price_keys: np.ndarray  # agent g's prices, shifted by g·price_span
    power_lo: np.ndarray  # (G,) first grid power
    price_lo: np.ndarray  # (G,) lowest price
    price_hi: np.ndarray  # (G,) highest price
    power_span: float
    price_span: float

    @classmethod
    def build(cls, tables: Sequence[tuple[np.ndarray, np.ndarray]]) -> OfferBook:
        p_span = max(float(p[-1] - p[0]) for p, _ in tables) + 1.0
        m_span = max(float(m[-1] - m[0]) for _, m in tables) + 1.0
        return cls(power_keys=np.concatenate([p - p[0] + g * p_span for g, (p, _) in enumerate(tables)]),
                   price_keys=np.concatenate([m - m[0] + g * m_span for g, (_, m) in enumerate(tables)]),
                   power_lo=np.array([p[0] for p, _ in tables]), price_lo=np.array([m[0] for _, m in tables]),
                   price_hi=np.array([m[-1] for _, m in tables]), power_span=p_span, price_span=m_span)

    @property
    def offset(self) -> np.ndarray:
        return np.arange(len(self.price_lo), dtype=float)

    def power_at(self, price: np.ndarray) -> np.ndarray:
        """Each agent's offer (kW) at ``price`` ``(B, G)``: its learned marginal cost inverted."""
        key = np.clip(price, self.price_lo, self.price_hi) - self.price_lo + self.offset * self.price_span
        return np.interp(key, self.price_keys, self.power_keys) - self.offset * self.power_span + self.power_lo

    def price_at(self, power: np.ndarray) -> np.ndarray:
        """Each agent's learned marginal price at ``power`` ``(B, G)``."""
        top = self.power_lo + self.power_span - 1.0
        key = np.clip(power, self.power_lo, top) - self.power_lo + self.offset * self.power_span
        return np.interp(key, self.power_keys, self.price_keys) - self.offset * self.price_span + self.price_lo


@dataclass(frozen=True)
class LearnedPriceResponse:
    """Each running agent's offer at price ``s``, from its learned marginal-cost table.

    Same interface as ``balancing.PriceResponse`` (``power(s)``, ``bracket()``), so the
    hierarchical distributed search meets every balance and CS limit exactly. Offers never
    decrease in ``s`` and always lie in the agent's own range (``0`` when off).
    """

    book: OfferBook
    lb: np.ndarray  # (B, G)
    ub: np.ndarray  # (B, G)
    on: np.ndarray  # (B, G) bool

    def power(self, s: np.ndarray) -> np.ndarray:
        p = self.book.power_at(np.broadcast_to(s, self.lb.shape))
        return np.where(self.on, np.clip(p, self.lb, self.ub), 0.0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.where(self.on, self.book.price_at(self.lb), np.inf).min(axis=-1)
        hi = np.where(self.on, self.book.price_at(self.ub), -np.inf).max(axis=-1)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        return lo - 1.0, hi + 1.0


# =============================================================================================
# The team: agents acting together (distributed; the loops over agents are each agent's own step)
# =============================================================================================
class Team:
    """The agents of one problem and the distributed procedures they run together."""

    def __init__(self, problem: Problem, hp: Hyperparameters, seed: int) -> None:
        self.problem, self.hp = problem, hp
        self.agents = [Agent(problem, i, hp, seed=seed * 1000 + 17 * i + 1) for i in range(len(problem.groups))]
        self.commitment = CommitmentLearners(len(self.agents), hp)
        self.search = DistributedSearch(problem, iterations=hp.search_iterations)
        self._sum_messages = self.search.sum_messages  # one team-wide sum or maximum (star + tree)
        self._book: OfferBook | None = None

    def networks(self) -> dict[str, nn.Module]:
        return {"commitment": self.commitment, **{f"{a.name}/cost": a.cost for a in self.agents}}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"commitment_q": self.commitment.q_opt, "commitment_reward": self.commitment.reward_opt}

    def update_commitment(self) -> float:
        """Every agent updates its commitment networks from a mini-batch of its own buffer."""
        batches = [a.plan_batch() for a in self.agents]
        stack = {k: torch.as_tensor(np.stack([b[k] for b in batches])) for k in batches[0]}
        return self.commitment.update(stack["obs"], stack["u"], stack["adv"])

    def refresh_offers(self) -> None:
        """Each agent rebuilds its offer table from its current cost network."""
        self._book = OfferBook.build([a.offer_table() for a in self.agents])

    def greedy_commitment(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs (B, G, 3)`` -> on ``(B, G)`` and each agent's preference ``Q(on) − Q(off)``.
        A tie goes to "on" (the safe side for serving demand)."""
        if not self.problem.commitment:
            return np.ones(obs.shape[:2], bool), np.zeros(obs.shape[:2])
        values = self.commitment.values(np.swapaxes(obs, 0, 1))  # (G, B, 2): each agent on its own row
        pref = (values[..., ON] - values[..., OFF]).T
        return pref >= 0, pref

    def clear(self, state: States, on: np.ndarray, *, exact_sums: bool = False) -> SearchResult:
        """Offers at a shared price, cleared by the hierarchical distributed binary search.
        ``state`` is one state for every row of ``on`` or one state per row (a batch of decisions).

        ``exact_sums`` (training only) runs the same search with plain sums instead of simulated
        message passing: the same results up to rounding, half the time."""
        if self._book is None:
            self.refresh_offers()
        on = np.atleast_2d(on).astype(bool)
        lb, ub = state_bounds(self.problem, state, len(on))
        response = LearnedPriceResponse(self._book, lb, ub, on)
        if exact_sums:
            return SearchResult(balance(self.problem, state, response, iterations=self.hp.search_iterations), 0, 0, 0)
        return self.search.run(state, response)

    def decide(self, state: State, obs: np.ndarray, *, refine: int = 0) -> tuple[Dispatch, dict]:
        """Execution at one state (``obs`` is ``(G, 3)``): a batch of one."""
        return self.decide_batch([state], obs[None], refine=refine)[0]

    def decide_batch(self, states: Sequence[State], obs: np.ndarray, *, refine: int = 0) -> list[tuple[Dispatch, dict]]:
        """Execution at many states (``obs`` is ``(B, G, 3)``): every agent's commitment network on
        all its observations at once and one price search over all states; then, per state, a
        repair if the commitment cannot serve the demand and up to ``refine`` rounds of learned
        flip tests. Messages are counted per state (each state runs the protocol once)."""
        on, pref = self.greedy_commitment(obs)
        result = self.clear(list(states), on)
        return [self._finish(state, obs[j], on[j], pref[j], result.row(j), refine)
                for j, state in enumerate(states)]

    def _finish(self, state: State, obs: np.ndarray, on: np.ndarray, pref: np.ndarray, result: SearchResult,
                refine: int) -> tuple[Dispatch, dict]:
        info = {"messages": result.messages, "searches": 1, "commitment_repaired": 0, "refined_flips": 0}
        while not result.feasible[0] and info["commitment_repaired"] < len(self.agents):
            on, result = self._repair_step(state, on, pref, info)
        for _ in range(refine if self.problem.commitment else 0):
            flipped, better = self._flip_test(state, obs, on, result, info)
            if flipped is None:
                break
            on, result = flipped, better
        info["balanced"] = bool(result.feasible[0])  # False: even the repaired commitment cannot meet the balances
        info["price"] = float(result.balanced.system_signal[0])
        info["iterations"] = 2 * self.hp.search_iterations * info["searches"]
        info["messages"] = int(info["messages"])
        return result.dispatch(self.problem, on), info

    def _flips(self, state: State, on: np.ndarray, info: dict) -> tuple[np.ndarray, SearchResult]:
        """Every agent's solo flip of ``on``, cleared in parallel (one search per agent)."""
        n = len(self.agents)
        trials = np.repeat(on[None], n, 0)
        trials[np.arange(n), np.arange(n)] ^= True
        result = self.clear(state, trials)
        info["messages"] += result.messages * n
        info["searches"] += n
        return trials, result

    def _violation(self, state: State, result: SearchResult) -> np.ndarray:
        """kW the CS links are overdrawn / the grid is unbalanced, as the CS nodes measure it."""
        imports = result.balanced.imports
        return np.maximum(np.abs(imports.sum(-1)), np.maximum(np.abs(imports) - self.problem.cs_max, 0).max(-1))

    def _repair_step(self, state: State, on: np.ndarray, pref: np.ndarray, info: dict):
        """The commitment cannot meet the balances: every agent tries flipping; among the flips that
        restore feasibility the agent that minds it least (smallest |preference|, found by a
        maximum over the communication tree) flips; if none does, the flip that leaves the least violation."""
        trials, result = self._flips(state, on, info)
        order = np.where(result.feasible, np.abs(pref), np.inf)
        k = int(np.argmin(order)) if np.isfinite(order).any() else int(np.argmin(self._violation(state, result)))
        chosen = self.clear(state, trials[k])
        info["messages"] += chosen.messages + self._sum_messages  # + the maximum over the tree
        info["searches"] += 1
        info["commitment_repaired"] += 1
        return trials[k], chosen

    def _flip_test(self, state: State, obs: np.ndarray, on: np.ndarray, current: SearchResult, info: dict):
        """The agents test their solo flips against the plan with their *learned* costs: each flip
        is cleared, each agent prices its own output on its own cost network, the team sums the
        estimates over the communication tree, and the best flip that lowers the estimate is taken."""
        trials, result = self._flips(state, on, info)
        plans = np.concatenate([on[None], trials])
        power = np.concatenate([current.balanced.power, result.balanced.power])
        feasible = np.concatenate([current.feasible, result.feasible])
        estimate = np.zeros(len(plans))
        for i, agent in enumerate(self.agents):  # each agent's own estimate of its own bill
            own = agent.learned_cost(np.repeat(obs[i][None], len(plans), 0), power[:, i])
            estimate += np.where(plans[:, i], own, 0.0)
        info["messages"] += len(plans) * self._sum_messages
        estimate = np.where(feasible, estimate, np.inf)
        k = int(np.argmin(estimate))
        if k == 0 or not estimate[k] < estimate[0] - 1e-9 * abs(estimate[0]):
            return None, None
        info["refined_flips"] += 1
        return plans[k], self.clear(state, plans[k])

# =============================================================================================
# Training
# =============================================================================================
def _team_rewards(problem: Problem, state: State, on: np.ndarray, result, penalty: float):
    """Team cost (+ penalty per kW of violation) of each row, from the evaluator; and the bills."""
    costs, bills = [], []
    for k in range(len(on)):
        ev = evaluate(problem, state, result.dispatch(problem, on[k], k))
        costs.append(ev.cost + penalty * sum(ev.violations.values()))
        bills.append(ev.group_costs)
    return -np.array(costs), np.array(bills)


def exploration_plans(greedy: np.ndarray, rngs: Sequence[np.random.Generator], hp: Hyperparameters) -> np.ndarray:
    """The joint commitments tried at one state: row 0 is the greedy plan; in row ``1 + i`` agent
    ``i`` alone flips (a round-robin every agent follows by its own index, no coordinator); in
    the last ``joint_explorations`` rows every agent flips independently with ``flip_prob``
    (joint moves, which single flips cannot find). Each agent draws its flips from its own RNG."""
    n = len(greedy)
    plans = np.repeat(greedy[None], 1 + n + hp.joint_explorations, 0)
    plans[1 + np.arange(n), np.arange(n)] ^= True
    for i, rng in enumerate(rngs):
        plans[1 + n:, i] ^= rng.random(hp.joint_explorations) < hp.flip_prob
    return plans


def train(problem: Problem, team: Team, sampler: StateSampler, rng: np.random.Generator, start: int, steps: int,
          log: TrainingLog, save) -> None:
    """The loop: warm-up exploration of offers, then commitment exploration with the greedy plan
    as the team's reference, one update of every agent's networks per step."""
    hp, n = team.hp, len(team.agents)
    penalty = hp.reward.penalty_per_kw
    monitor = monitor_states(problem)
    monitor_obs = observation_matrix(problem, monitor)
    if start == 0:  # warm-up: uniform random actions, mapped and projected by the environment's search
        for state in sampler.sample_many(hp.warmup_states):
            raw = rng.uniform(-0.3, 1.0, size=(hp.warmup_actions, n))
            mapped = map_actions(problem, [state] * hp.warmup_actions, raw)
            result = team.search.project(state, mapped.on, mapped.power)  # the environment's own closing
            rewards, bills = _team_rewards(problem, state, mapped.on, result, penalty)
            obs = observation_matrix(problem, [state])[0]
            for i, agent in enumerate(team.agents):
                running = mapped.on[:, i]
                if agent.team_scale == 0.0:
                    agent.team_scale = float(max(np.mean(-rewards), 1.0)) / 100.0  # advantages in % of cost
                agent.remember_bills(np.repeat(obs[i][None], running.sum(), 0), result.balanced.power[running, i],
                                     bills[running, i])
        for _ in range(5):
            for agent in team.agents:
                agent.cost_loss = agent.update_cost()
    team.refresh_offers()
    for step in range(start + 1, steps + 1):
        for state in sampler.sample_many(hp.states_per_step):
            obs = observation_matrix(problem, [state])[0]
            greedy, _ = team.greedy_commitment(obs[None])
            plans = exploration_plans(greedy[0], [a.rng for a in team.agents], hp) if problem.commitment else greedy
            result = team.clear(state, plans, exact_sums=True)
            rewards, bills = _team_rewards(problem, state, plans, result, penalty)
            for i, agent in enumerate(team.agents):
                adv = np.maximum((rewards - rewards.max()) / agent.team_scale, -hp.advantage_clip)
                if problem.commitment:
                    agent.remember_plans(np.repeat(obs[i][None], len(plans), 0), plans[:, i], adv)
                running = plans[:, i]
                agent.remember_bills(np.repeat(obs[i][None], running.sum(), 0), result.balanced.power[running, i],
                                     bills[running, i])
        refit = step % hp.cost_every == 0
        for agent in team.agents:
            if refit:
                agent.cost_loss = agent.update_cost()
        if refit:
            team.refresh_offers()
        loss = sum(a.cost_loss for a in team.agents)
        if problem.commitment:
            loss += sum(team.update_commitment() for _ in range(hp.updates_per_step)) / hp.updates_per_step
        log.loss(step, loss)
        if log.due(step) or step == steps:
            log.rewards(step, [_monitor_reward(problem, team, s, monitor_obs[j]) for j, s in enumerate(monitor)])
        if step % hp.checkpoint_every == 0 or step == steps:
            save(step)


def _monitor_reward(problem: Problem, team: Team, state: State, obs: np.ndarray) -> float:
    """Fig. 5 quantity: the shared probe reward of the current greedy decision at a fixed state."""
    dispatch, _ = team.decide(state, obs)
    return lifecycle.probe_reward(problem, state, dispatch)


# =============================================================================================
# The plugin
# =============================================================================================
class MadrlTvc(lifecycle.LearnerPlugin, Solver):
    name = "madrl_tvc"
    description = "MADRL-TVC: fully distributed learners, learned offers + optimistic learned commitment"
    hyperparameter_class = Hyperparameters
    parameters = lifecycle.spec_parameters(Hyperparameters, model="", refine=0)  # 0: the learned policy alone
    default_train_steps = 1200  # the budget the tables report (docs/madrl-tvc.md)
    parameter_ranges = {"refine": NON_NEGATIVE, **HYPERPARAMETER_RANGES}
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True)

    def fit(self, problem: Problem, *, seed: int, steps: int, out_dir: Path, resume: bool = False,
            progress: bool = False, **options) -> FitReport:
        out_dir = Path(out_dir)
        problem, ckpt, hp = self.begin_fit(problem, out_dir, resume=resume, options=options)
        lifecycle.seed_everything(seed)
        team = Team(problem, hp, seed)
        sampler = StateSampler(problem, seed=seed)
        rng = np.random.default_rng(seed)
        start, elapsed = 0, 0.0
        if ckpt:
            start, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
            _restore(team, ckpt, with_optimizers=True)
            sampler.rng.bit_generator.state = ckpt.state["sampler_rng"]
            lifecycle.restore_rng(ckpt.state["rng"], {"loop": rng})
        log = TrainingLog(out_dir, problem=problem, monitor=monitor_states(problem), total_steps=steps,
                          every=hp.log_every, resume=resume, progress=progress, start_step=start, elapsed_s=elapsed)
        t0 = time.perf_counter()

        def save(step: int) -> None:
            state = {"sampler_rng": sampler.rng.bit_generator.state, "rng": lifecycle.capture_rng({"loop": rng}),
                     "agents": {a.name: a.extra(with_buffers=True) for a in team.agents}}
            meta = lifecycle.model_meta(
                solver=self.name, spec=lifecycle.training_spec(self.name, hp), problem=problem, hyperparameters=hp,
                seed=seed, train_time_s=elapsed + time.perf_counter() - t0,
                observation={a: list(observation_names(problem, a)) for a in problem.group_names},
                sampler=sampler.box.to_json(problem))
            lifecycle.save(out_dir, step=step, networks=team.networks(), optimizers=team.optimizers(), state=state,
                           meta=meta)

        try:
            if start < steps:
                train(problem, team, sampler, rng, start, steps, log, save)
        finally:
            log.close()
        total = elapsed + time.perf_counter() - t0
        return FitReport(model_path=out_dir, steps=steps, time_s=total,
                         info={"train_time_s": total, "seed": seed, "hyperparameters": asdict(hp)})

    def load(self, problem: Problem) -> Team:
        """The trained team, read from disk once per (model folder, problem); it acts on the problem
        listed in its training order (``team.problem``), whatever order ``problem`` lists groups in."""
        folder = Path(self.params["model"])
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)

        def build(ckpt: Checkpoint) -> Team:
            hp = self.trained_hyperparameters(ckpt, folder)
            team = Team(problem, hp, seed=int(ckpt.meta["seed"]))
            _restore(team, ckpt, with_optimizers=False)
            team.commitment.q.double()  # execution only: float32 products round differently per batch size
            team.refresh_offers()
            return team

        return self._model.get(folder, problem, self.name, build)

    def prepare(self, problem: Problem) -> None:
        self.load(problem)

    def solve(self, problem: Problem, states: Sequence[State], *, seed: int = 0,
              time_limit: float | None = None) -> list[Answer]:
        torch.set_num_threads(1)
        team = self.load(problem)
        trained = team.problem  # the same groups, listed as at training (agents keyed by name)
        start = time.perf_counter()
        obs = observation_matrix(trained, states)  # every agent's own observation, all states at once
        decided = team.decide_batch(states, obs, refine=self.params["refine"]) if len(states) else []
        decided = [(lifecycle.to_problem_order(d, trained, problem), info) for d, info in decided]
        batch_s = (time.perf_counter() - start) / max(len(states), 1)
        answers = []
        for dispatch, info in decided:
            info["decision_s"] = info["decision_s_batched"] = batch_s  # all agents and the search, per state
            if info["balanced"]:
                answers.append(Answer(dispatch, "feasible", "", batch_s, info))
            else:  # the claim must match the dispatch: the evaluator will find it infeasible
                answers.append(Answer(dispatch, "error", "no repaired commitment met the balances", batch_s, info))
        return answers


def _restore(team: Team, ckpt: Checkpoint, *, with_optimizers: bool) -> None:
    for key, module in team.networks().items():
        module.load_state_dict(ckpt.networks[key])
    for agent in team.agents:
        agent.load_extra(ckpt.state["agents"][agent.name] if with_optimizers else
                         {k: v for k, v in ckpt.state["agents"][agent.name].items() if k not in {"bills", "plans"}})
    if with_optimizers:
        for key, opt in team.optimizers().items():
            opt.load_state_dict(ckpt.optimizers[key])
