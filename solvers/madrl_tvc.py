"""MADRL-TVC: fully distributed multi-agent RL with target-value competition.

One file, read top to bottom: hyper-parameters, the per-agent networks, the agent (its own replay
buffers and fits), the learned price response the distributed search clears, the team's
decision procedure, the training loop (``fit``) and the plugin (``solve``). The design, and why it
is shaped this way, is in ``docs/madrl-tvc.md``; in short, every charger group is one agent that
owns

- a **cost network** ``C_i(o_i, P_i)``: its own operating cost, learned from its own bills
  (the reward term a station measures itself), input-convex in its own power. At a shared price
  ``λ`` the agent offers ``argmin_P C_i(P) − λ·delivered(P)`` from its own learned marginal-cost
  curve, so offers are monotone in ``λ`` and the hierarchical distributed binary search
  (``dispatchbench.formulations.distributed_search``) meets every balance and CS limit exactly;
- a **commitment Q-network** ``Q_i(f_i, u)`` (``u`` = off/on) on what the agent can hear cheaply
  after a clearing (``COMMITMENT_FEATURES``): its own observation and status, the regional and
  system prices relative to its own learned marginal-cost range, the output it would offer at its
  regional price and its learned margin there, its CS link's loading, whether the plan cleared
  and whether it would still be workable with the agent's own status flipped;
- a **move network** ``M_i(f_i)`` on the same features: the team gain of flipping its own status,
  and (stopped) of starting so that a running agent can stop (a hand-over).

A decision is a few clearings: everyone offers (a trial clearing); ``rounds`` times every agent
reads its features and picks on/off by its Q-network and the plan is cleared; then up to
``moves`` move rounds in which the one agent with the largest positive learned gain (a tree
maximum) moves and the plan is cleared again. The last plan is the answer. A plan that cannot
meet the balances is repaired by ratings before one more clearing.
``madrl_tvc[refine=3]`` ("TVC + local search", a separate row) adds up to ``refine`` rounds of
learned flip and hand-over tests priced on the agents' own cost networks.

**Target-value competition.** At every training state the team tries plans — the policy's own
(with exploration flips) and the local search around the best one so far: every solo flip and
coordinated swaps (one agent stops, another starts) — each cleared on the learned offers and
scored by the environment's team reward (the evaluator's cost; no agent sees a coefficient). The
plans compete; the best sets every agent's target: ``Q_i(f_i, u)`` regresses the team advantage
of the best tried plan in which agent ``i`` plays ``u``, relative to the best plan overall, in %
of that state's cost (so cheap night states weigh like busy days). That is the optimistic
independent learner's fixed point — its part of the best joint commitment — computed per state
rather than approached by hysteresis, and because features come from the clearings the agent
itself takes part in, the same network applies to states, days and demand levels it never saw.
The move network regresses, at every plan a move round starts from, the team gain of each solo
flip and of the best tried hand-over each stopped agent could start.

Nothing is shared: every agent has its own modules, optimisers, buffers and random generator, and
learns from its own features, its own bill and scalars heard from the clearing (prices, its CS
link's loading) and the team reward. No agent ever reads a cost coefficient.
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

from dispatchbench.bench.solver_api import Answer, Capabilities, FitReport, Solver
from dispatchbench.formulations.balancing import States, balance, demand_rows, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult, region_slots
from dispatchbench.formulations.vector_form import flip_shortfalls, shortfall
from dispatchbench.learn import lifecycle
from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.lifecycle import BISECTIONS, COUNT, FRACTION, NON_NEGATIVE, POSITIVE, ROUNDS, WIDTH
from dispatchbench.learn.marl_env import (
    OBS_DIM,
    StateSampler,
    map_actions,
    monitor_states,
    observation_matrix,
    observation_names,
)
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.learn.training_log import TrainingLog
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem, State

OFF, ON = 0, 1
SOLO, HANDOVER = 0, 1  # the move network's two gains
COMMITMENT_FEATURES = (
    "total_demand",
    "own_demand_or_v2g",
    "third_observation",  # the agent's observation (marl_env)
    "status",  # 1 if the agent runs in the plan just cleared (all run in the trial clearing)
    "region_price",  # the cleared regional price, placed in the agent's own learned marginal-cost range
    "system_price",  # the same for the system price (differs when the CS link binds)
    "offer",  # the output it would offer at its regional price, / p_max
    "margin",  # λ_I·delivered − learned cost at that output, / its own bill scale
    "cs_loading",  # its region's import / CS limit (−1 export limit … 1 import limit)
    "cover",  # could the rest replace its output (region's spare + what its CS link brings in)? 10·(ratio − 1)
    "peak_price",  # the highest regional price in the system (a tree maximum), placed like region_price
    "cleared",  # 1 if the plan met every balance
    "flip_workable",  # 1 if the plan with its own status flipped could still serve the demand (ratings only)
)
N_FEATURES = len(COMMITMENT_FEATURES)


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
    # commitment network
    q_hidden: int = 64
    q_lr: float = 1e-3
    gossip: int = 0  # after each update, rounds of parameter averaging with same-type ring neighbours (0: none)
    rounds: int = 2  # policy rounds per decision, each one clearing (after the trial clearing)
    moves: int = 3  # move rounds after them: the agent with the highest learned gain flips, one clearing each
    move_explore: float = 0.2  # training: chance per state and move round that a random agent moves instead
    advantage_clip: float = 20.0  # team advantages (≤ 0) in % of the state's best cost, clipped at −this
    advantage_resolution: float = 0.01  # % of cost below which targets stay linear (log-compressed above)
    # exploration and data
    warmup_states: int = 400  # states explored with uniform random actions before learning offers
    warmup_actions: int = 8  # random action profiles per warm-up state
    states_per_step: int = 8  # states visited per training step
    flip_prob: float = 0.05  # exploration: each agent flips its greedy on/off with this probability
    search_rounds: int = 8  # rounds of local search (solo flips + swaps) setting each state's targets
    max_flips: int = 64  # solo flips tried per state and round (a random subset when there are more agents)
    max_swaps: int = 64  # coordinated swaps tried per state and round (a random subset when more)
    train_search_iterations: int = 24  # bisection steps per level while training (ranking plans needs less)
    generated_share: float = 0.5  # training mixture: share of draws from generated training-seed days
    batch_size: int = 256
    updates_per_step: int = 4  # commitment-network updates per training step
    buffer_size: int = 50_000
    # execution
    table_points: int = 2049  # resolution of each agent's learned marginal-cost table
    search_iterations: int = 40  # bisection steps per level (bracket / 2^40, then exact interpolation)
    log_every: int = 100
    checkpoint_every: int = 1000


# Checked when a spec is parsed (``madrl_tvc[q_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES = {
    "cost_knots": WIDTH,
    "cost_batch": COUNT,
    "cost_iterations": COUNT,
    "cost_every": COUNT,
    "q_hidden": WIDTH,
    "q_lr": POSITIVE,
    "gossip": ROUNDS,
    "rounds": (1, ROUNDS[1]),
    "moves": ROUNDS,
    "move_explore": FRACTION,
    "advantage_clip": POSITIVE,
    "advantage_resolution": POSITIVE,
    "warmup_states": COUNT,
    "warmup_actions": COUNT,
    "states_per_step": COUNT,
    "flip_prob": FRACTION,
    "search_rounds": ROUNDS,
    "max_flips": NON_NEGATIVE,
    "max_swaps": NON_NEGATIVE,
    "train_search_iterations": BISECTIONS,
    "generated_share": FRACTION,
    "batch_size": COUNT,
    "updates_per_step": COUNT,
    "buffer_size": COUNT,
    "table_points": (2, 65_537),
    "search_iterations": BISECTIONS,
    "log_every": COUNT,
    "checkpoint_every": COUNT,
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
    """Every agent's commitment Q-network (one slice each, stacked: ``dispatchbench.learn.agent_nets``).

    ``Q_i(f_i, u)`` is agent ``i``'s estimate of the team advantage of playing ``u ∈ {off, on}``
    given its features ``f_i`` (``COMMITMENT_FEATURES``): the best team reward of a plan in which
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


# =============================================================================================
# The agent: its own networks, buffers, scales and fits
# =============================================================================================
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
        return cls(
            power_keys=np.concatenate([p - p[0] + g * p_span for g, (p, _) in enumerate(tables)]),
            price_keys=np.concatenate([m - m[0] + g * m_span for g, (_, m) in enumerate(tables)]),
            power_lo=np.array([p[0] for p, _ in tables]),
            price_lo=np.array([m[0] for _, m in tables]),
            price_hi=np.array([m[-1] for _, m in tables]),
            power_span=p_span,
            price_span=m_span,
        )

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
@dataclass(frozen=True)
class PolicyRun:
    """What the policy rounds of one batch produced: the last plan and its clearing, the agents'
    preferences behind it, and every round's features and plan (training stores them)."""

    on: np.ndarray  # (B, G) the last plan
    result: SearchResult  # its clearing
    preference: np.ndarray  # (B, G) Q(on) − Q(off) behind the last plan (0 without commitment)
    trial: SearchResult  # the trial clearing (everyone offers)
    features: list[np.ndarray]  # per round, (B, G, F)
    plans: list[np.ndarray]  # per round, (B, G)
    move_features: list[np.ndarray]  # per move round, (B, G, F): what the agents heard before it
    move_plans: list[np.ndarray]  # per move round, (B, G): the plan it started from
    messages: np.ndarray  # (B,) per state: the trial clearing, every round's and every move's
    clearings: np.ndarray  # (B,) per state: clearings run (the trial, the rounds, the moves)
    hearings: np.ndarray  # (B,) per state: times the agents heard their features and a gain maximum in moves


class Team:
    """The agents of one problem and the distributed procedures they run together."""

    def __init__(self, problem: Problem, hp: Hyperparameters, seed: int) -> None:
        self.problem, self.hp = problem, hp
        self.agents = [Agent(problem, i, hp, seed=seed * 1000 + 17 * i + 1) for i in range(len(problem.groups))]
        self.commitment = CommitmentLearners(len(self.agents), hp, gossip_ring(problem))
        self.search = DistributedSearch(problem, iterations=hp.search_iterations)
        self._sum_messages = self.search.sum_messages  # one team-wide sum or maximum (bids + tree)
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

    def refresh_offers(self) -> None:
        """Each agent rebuilds its offer table from its current cost network."""
        self._book = OfferBook.build([a.offer_table() for a in self.agents])

    def clear(self, state: States, on: np.ndarray, *, exact_sums: bool = False) -> SearchResult:
        """Offers at a shared price, cleared by the hierarchical distributed binary search.
        ``state`` is one state for every row of ``on`` or one state per row (a batch of decisions).

        ``exact_sums`` (training only) runs the same search with plain sums instead of simulated
        message passing, and ``train_search_iterations`` bisection steps: prices to ~1e-7 of the
        bracket, plenty to rank plans, at a fraction of the time."""
        if self._book is None:
            self.refresh_offers()
        on = np.atleast_2d(on).astype(bool)
        lb, ub = state_bounds(self.problem, state, len(on))
        response = LearnedPriceResponse(self._book, lb, ub, on)
        if exact_sums:
            return SearchResult(
                balance(self.problem, state, response, iterations=self.hp.train_search_iterations), 0, 0, 0
            )
        return self.search.run(state, response)

    # ---- what an agent hears after a clearing ------------------------------------------------
    @property
    def _feature_messages(self) -> int:
        """What hearing the features costs beyond the clearing: three tree sums or maxima between
        the CS nodes (the regions' spare output, the peak price, the regions' ranges)."""
        return 3 * self.search.system_sum_messages

    def features(self, states: States, obs: np.ndarray, on: np.ndarray, result: SearchResult) -> np.ndarray:
        """``(B, G, F)``: every agent's ``COMMITMENT_FEATURES`` after the clearing ``result`` of
        plan ``on``. Each agent computes its own row from its observation, its own learned curves
        and what its CS node announces (prices, the link's loading, whether the plan cleared)."""
        book, b = self._book, result.balanced
        region_of = self.problem.group_region
        lb, ub = state_bounds(self.problem, states, len(on))
        region_price = b.region_signal[:, region_of]
        system_price = np.broadcast_to(b.system_signal[:, None], region_price.shape)
        span = np.maximum(book.price_hi - book.price_lo, 1e-6)
        offer = np.clip(book.power_at(region_price), lb, ub)
        margin = np.empty_like(offer)
        for i, agent in enumerate(self.agents):  # each agent's own learned bill at its own offer
            bill = agent.learned_cost(obs[:, i], offer[:, i])
            margin[:, i] = (region_price[:, i] * agent.delivery * offer[:, i] - bill) / max(agent.bill_scale, 1e-9)
        cs = np.where(self.problem.cs_max > 0, self.problem.cs_max, 1.0)
        # what the CS nodes add: their region's spare output and how much of it could leave the
        # region (a tree sum), so an agent hears whether the others could replace its output
        delivery = self.problem.delivery
        spare = np.where(on, (ub - b.power) * delivery, 0.0)
        region_spare = np.concatenate([spare, np.zeros((len(spare), 1))], -1)[:, self._slots].sum(-1)  # (B, R)
        movable = np.clip(np.minimum(region_spare, b.imports + self.problem.cs_max), 0.0, None)  # (B, R)
        elsewhere = movable.sum(-1, keepdims=True) - movable  # (B, R): what other regions could send
        replace = (
            region_spare[:, region_of] - spare + np.minimum(self.problem.cs_max - b.imports, elsewhere)[:, region_of]
        )
        cover = replace / np.maximum(offer * delivery, 1e-6)
        peak = np.broadcast_to(b.region_signal.max(-1, keepdims=True), offer.shape)
        # whether its own start or stop keeps the plan workable by ratings: its CS node works it
        # out from one tree sum of the regions' ranges (a knife edge a few kW wide on busy
        # evenings, where a V2G group's last kW decide whether an FDC group must run)
        flip_ok = flip_shortfalls(self.problem, demand_rows(self.problem, states), on, ub) <= 1e-9
        columns = [
            on.astype(float),
            np.clip((region_price - book.price_lo) / span, -3.0, 3.0),
            np.clip((system_price - book.price_lo) / span, -3.0, 3.0),
            offer / np.maximum(self.problem.p_max, 1e-9),
            np.clip(margin, -5.0, 5.0),
            np.clip(b.imports / cs, -1.0, 1.0)[:, region_of],
            np.clip(10.0 * (cover - 1.0), -5.0, 5.0),  # sharp where it matters: at ratio 1
            np.clip((peak - book.price_lo) / span, -3.0, 3.0),
            np.broadcast_to(b.feasible[:, None], offer.shape).astype(float),
            flip_ok.astype(float),
        ]
        return np.concatenate([obs.astype(float), np.stack(columns, -1)], -1)

    def preferences(self, features: np.ndarray) -> np.ndarray:
        """``(B, G)`` each agent's ``Q(on) − Q(off)`` from its own network on its own features."""
        values = self.commitment.values(np.swapaxes(features, 0, 1))  # (G, B, 2): each agent its own row
        return (values[..., ON] - values[..., OFF]).T

    def gains(self, features: np.ndarray) -> np.ndarray:
        """``(B, G, 2)`` each agent's learned team gains of a solo move and of a hand-over."""
        return np.swapaxes(self.commitment.gains(np.swapaxes(features, 0, 1)), 0, 1)

    # ---- a decision -------------------------------------------------------------------------
    def policy_rounds(
        self, states: Sequence[State], obs: np.ndarray, *, exact_sums: bool = False, explore: bool = False
    ) -> PolicyRun:
        """The trial clearing (everyone offers), then ``rounds`` times: every agent reads its
        features and picks on/off (a tie goes to "on", the safe side for serving demand), and the
        plan is cleared. Then ``moves`` move rounds (:meth:`move_rounds`). ``explore``
        (training): each agent flips its pick with ``flip_prob``."""
        batch, n = obs.shape[:2]
        on = np.ones((batch, n), dtype=bool)
        trial = result = self.clear(list(states), on, exact_sums=exact_sums)
        messages, pref = trial.messages, np.zeros((batch, n))
        features, plans = [], []
        for _ in range(self.hp.rounds if self.problem.commitment else 0):
            feats = self.features(states, obs, on, result)
            messages += self._feature_messages
            pref = self.preferences(feats)
            on = pref >= 0
            if explore:
                for i, agent in enumerate(self.agents):
                    on[:, i] ^= agent.rng.random(batch) < self.hp.flip_prob
            result = self.clear(list(states), on, exact_sums=exact_sums)
            messages += result.messages
            features.append(feats)
            plans.append(on.copy())
        on, result, move_features, move_plans, move_messages, moved, hearings = self.move_rounds(
            states, obs, on, result, exact_sums=exact_sums, explore=explore
        )
        return PolicyRun(
            on,
            result,
            pref,
            trial,
            features,
            plans,
            move_features,
            move_plans,
            messages + move_messages,
            1 + len(plans) + moved,
            hearings,
        )

    def move_rounds(
        self,
        states: Sequence[State],
        obs: np.ndarray,
        on: np.ndarray,
        result: SearchResult,
        *,
        exact_sums: bool = False,
        explore: bool = False,
    ):
        """Up to ``moves`` rounds in which one agent per state changes its mind. Every agent reads
        its features after the last clearing, and its move network predicts two team gains: of
        flipping its own status (a *solo* move), and — a stopped agent — of starting so that a
        running agent can stop (a *hand-over*, the joint move solo flips cannot make). A tree
        maximum picks the largest; if it is positive:

        - a solo move: that agent flips, and the plan is cleared again;
        - a hand-over: the agent starts, the plan is cleared, and the running agent with the
          largest positive solo gain to stop now stops and the plan is cleared again. If that is
          the starter itself, or nobody expects a gain, the starter stops again: the hand-over
          is undone, and that state's moves end (the same hand-over would come up again).

        One mover at a time is what breaks ties the simultaneous rounds cannot: two near-identical
        groups that could each stop would both stop (or both run) when they decide at once. The
        gains are learned from the team cost of every solo flip and hand-over of the plans the
        move rounds start from (training); at decision time nothing is priced or compared — it is
        the policy. ``explore`` (training): with ``move_explore`` a random agent makes a solo move.

        Returns the plan, its clearing, every decision point's features and plan, and per state
        the messages, the clearings made and the hearings (a state whose round finds no mover is
        done)."""
        batch, n = on.shape
        move_features, move_plans = [], []
        messages, cleared, hearings = (np.zeros(batch, dtype=np.int64) for _ in range(3))
        hear = self._feature_messages + self._sum_messages + 1  # features, the maximum, the mover told
        active = np.ones(batch, dtype=bool)

        def heard():
            feats = self.features(states, obs, on, result)
            move_features.append(feats)
            move_plans.append(on.copy())
            return self.gains(feats)

        for _ in range(self.hp.moves if self.problem.commitment else 0):
            if not active.any():  # every state is done
                break
            gain = heard()
            messages[active] += hear
            hearings += active
            solo, handover = gain[..., SOLO].copy(), np.where(on, -np.inf, gain[..., HANDOVER])
            if explore:  # an agent that explores bids an unbeatable solo gain (each its own draw)
                for i, agent in enumerate(self.agents):
                    solo[agent.rng.random(batch) < self.hp.move_explore / n, i] = np.inf
            best_solo, best_handover = solo.max(1), handover.max(1)
            hands = active & (best_handover > np.maximum(best_solo, 0.0))
            active &= hands | (best_solo > 0)
            if not active.any():  # nobody expects a gain: every plan stands
                break
            mover = np.where(hands, handover.argmax(1), solo.argmax(1))
            on = on.copy()
            on[active, mover[active]] ^= True
            result = self._reclear(states, on, result, active, exact_sums, messages, cleared)
            if hands.any():  # the second half of a hand-over: who stops, or the starter stops again
                stop_gain = np.where(on, heard()[..., SOLO], -np.inf)
                messages[hands] += hear
                hearings += hands
                partner = np.where(stop_gain.max(1) > 0, stop_gain.argmax(1), mover)
                active &= ~(hands & (partner == mover))  # undone: the same hand-over would come up again
                on = on.copy()
                on[hands, partner[hands]] = False
                result = self._reclear(states, on, result, hands, exact_sums, messages, cleared)
        return on, result, move_features, move_plans, messages, cleared, hearings

    def _reclear(
        self,
        states: Sequence[State],
        on: np.ndarray,
        result: SearchResult,
        rows: np.ndarray,
        exact_sums: bool,
        messages: np.ndarray,
        cleared: np.ndarray,
    ) -> SearchResult:
        """Clear the plans of the states in mask ``rows`` only (the others keep their clearing: a
        state's search never depends on another's) and charge those states for it."""
        index = np.flatnonzero(rows)
        fresh = self.clear([states[j] for j in index], on[index], exact_sums=exact_sums)
        messages[index] += fresh.messages
        cleared[index] += 1
        return result.with_rows(index, fresh)

    def decide(self, state: State, obs: np.ndarray, *, refine: int = 0) -> tuple[Dispatch, dict]:
        """Execution at one state (``obs`` is ``(G, 3)``): a batch of one."""
        return self.decide_batch([state], obs[None], refine=refine)[0]

    def decide_batch(self, states: Sequence[State], obs: np.ndarray, *, refine: int = 0) -> list[tuple[Dispatch, dict]]:
        """Execution at many states (``obs`` is ``(B, G, 3)``): the policy rounds on all states at
        once (every network on all its features, one vectorised price search per round); then,
        per state, a repair if the plan cannot serve the demand and up to ``refine`` rounds of
        learned flip tests. Messages are counted per state (each state runs the protocol once)."""
        run = self.policy_rounds(states, obs)
        infos = [
            {
                "messages": int(run.messages[j]),
                "searches": int(run.clearings[j]),
                "moves": int(run.clearings[j]) - 1 - len(run.plans),
                "move_hearings": int(run.hearings[j]),
                "commitment_repaired": 0,
                "refined_flips": 0,
            }
            for j in range(len(states))
        ]
        on, result = self.repair_batch(states, run.on, run.preference, run.result, infos)
        return [self._finish(state, obs[j], on[j], result.row(j), refine, infos[j]) for j, state in enumerate(states)]

    def repair_batch(
        self, states: Sequence[State], on: np.ndarray, pref: np.ndarray, result: SearchResult, infos: list[dict]
    ) -> tuple[np.ndarray, SearchResult]:
        """Every state whose plan cannot meet the balances is repaired by ratings (:meth:`repair`)
        and the repaired plans are cleared in one batch."""
        on = on.copy()
        flips = np.zeros(len(states), dtype=np.int64)
        for j in np.flatnonzero(~result.feasible) if self.problem.commitment else ():
            on[j], flips[j] = self.repair(states[j], on[j], pref[j])
        if not flips.any():
            return on, result
        messages, cleared = np.zeros_like(flips), np.zeros_like(flips)
        result = self._reclear(states, on, result, flips > 0, False, messages, cleared)
        for j in np.flatnonzero(flips):
            infos[j]["messages"] += int(messages[j]) + self._repair_messages(int(flips[j]))
            infos[j]["searches"] += 1
            infos[j]["commitment_repaired"] = int(flips[j])
        return on, result

    def _finish(
        self, state: State, obs: np.ndarray, on: np.ndarray, result: SearchResult, refine: int, info: dict
    ) -> tuple[Dispatch, dict]:
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

    def repair(self, state: State, on: np.ndarray, willing: np.ndarray) -> tuple[np.ndarray, int]:
        """Make a plan workable by ratings alone, before clearing it: while the running groups'
        ranges cannot meet some region's demand within its CS window or the system's total
        (``vector_form.shortfall``, ratings and demand only), flip the agent whose flip removes the
        most shortfall, the most ``willing`` one among equals (a stopped agent that wants to run,
        a running one that wants to stop). Each CS node works out its own agents' flips from one
        tree sum of the regions' ranges; a tree maximum picks the flip. Returns the plan and the
        number of flips."""
        on = on.copy()
        n, flips = len(on), 0
        missing = float(shortfall(self.problem, state, on[None])[0])
        while missing > 1e-9 and flips < n:
            gain = missing - shortfall(self.problem, state, solo_flips(on))
            if gain.max() <= 1e-9:
                break
            tie = np.where(on, -willing, willing)
            k = int(np.argmax(np.where(gain >= gain.max() - 1e-9, tie, -np.inf)))
            on[k] = ~on[k]
            flips += 1
            missing -= float(gain[k])
        return on, flips

    def _repair_messages(self, flips: int) -> int:
        """Per repair flip: a tree sum of the regions' ranges, a tree maximum, a new bid and its reply."""
        return flips * (2 * self.search.system_sum_messages + 2)

    def _flip_test(self, state: State, obs: np.ndarray, on: np.ndarray, current: SearchResult, info: dict):
        """Decision-time search (``refine``): the agents test their solo flips and hand-overs (one
        stops, one starts; up to ``max_swaps``, a fixed sample when there are more) against the
        plan with their *learned* costs: each candidate is cleared, each agent prices its own
        output on its own cost network, the team sums the estimates over the tree, and the best
        candidate that lowers the estimate is taken. Hand-overs get a plan out of the states
        where every solo flip is worse (a repaired plan with the wrong group of a region running)."""
        n = len(self.agents)
        trials = neighbours(on, n, self.hp.max_swaps, np.random.default_rng(0))
        result = self.clear(state, trials)
        info["messages"] += result.messages * len(trials)
        info["searches"] += len(trials)
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
def team_costs(problem: Problem, plans: np.ndarray, result: SearchResult) -> np.ndarray:
    """The environment's team cost of each cleared plan (the evaluator's cost formula; ``inf``
    where the plan cannot meet the balances). Agents hear only this number, never a coefficient."""
    cost = group_costs(problem, plans, result.balanced.power).sum(-1)
    return np.where(result.feasible, cost, np.inf)


class TriedPlans:
    """Every plan the team cleared at each state of a training batch, with its team cost."""

    def __init__(self, team: Team, states: Sequence[State]) -> None:
        self.team, self.states = team, list(states)
        self.costs: list[dict[bytes, float]] = [{} for _ in self.states]

    def score(self, rows: Sequence[int], plans: np.ndarray) -> None:
        """Clear ``plans`` (one per row, at state ``rows[k]``) and record their team costs."""
        if not len(rows):
            return
        result = self.team.clear([self.states[k] for k in rows], plans, exact_sums=True)
        for k, plan, cost in zip(rows, plans, team_costs(self.team.problem, plans, result)):
            self.costs[k][plan.tobytes()] = float(cost)

    def best(self, k: int) -> tuple[np.ndarray, float]:
        key = min(self.costs[k], key=self.costs[k].__getitem__)
        return np.frombuffer(key, dtype=bool).copy(), self.costs[k][key]

    def advantage(self, k: int, plans: np.ndarray, clip: float) -> np.ndarray:
        """Each (scored) plan's team advantage at state ``k`` in % of its best cost, ≥ −``clip``."""
        cost = np.array([self.costs[k][plan.tobytes()] for plan in plans])
        return _percent_advantage(cost, min(self.costs[k].values()), clip)

    def move_gains(self, k: int, start: np.ndarray, handovers: np.ndarray, clip: float) -> np.ndarray:
        """``(G, 2)``: each agent's team gain (in % of the state's cost, advantages clipped at
        −``clip``) from plan ``start`` of flipping its own status (``SOLO``; every solo flip is
        scored) and, a stopped agent, of the best scored hand-over it starts (``HANDOVER``: it
        starts and one running agent stops; −``clip`` when it runs or none was tried)."""
        base = self.advantage(k, start[None], clip)[0]
        out = np.full((len(start), 2), -clip)
        out[:, SOLO] = self.advantage(k, solo_flips(start), clip) - base
        if len(handovers):
            starter = (handovers & ~start).argmax(1)
            np.maximum.at(out[:, HANDOVER], starter, self.advantage(k, handovers, clip) - base)
        return out

    def targets(self, k: int, clip: float) -> np.ndarray | None:
        """``(G, 2)``: for every agent and action, the best tried plan's advantage (≤ 0) in % of
        the state's best cost; ``None`` when no tried plan met the balances."""
        keys = list(self.costs[k])
        plans = np.frombuffer(b"".join(keys), dtype=bool).reshape(len(keys), -1)
        costs = np.array([self.costs[k][key] for key in keys])
        best = costs.min()
        if not np.isfinite(best):
            return None
        with_u = np.stack([np.where(plans == bool(u), costs[:, None], np.inf).min(0) for u in (OFF, ON)], -1)
        return _percent_advantage(with_u, best, clip)


def _percent_advantage(cost: np.ndarray, best: float, clip: float) -> np.ndarray:
    """``−(cost − best) / best`` in %, an infeasible or untried cost (``inf``) and anything below
    counted at −``clip``."""
    return np.maximum(np.nan_to_num(-(cost - best) / max(abs(best), 1e-9) * 100.0, nan=-clip, neginf=-clip), -clip)


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


def score_fresh(tried: TriedPlans, rows: Sequence[int], plans: Sequence[np.ndarray]) -> None:
    """Score, in one batch, the plans (at states ``rows``) not tried yet."""
    fresh = {(k, p.tobytes()): (k, p) for k, p in zip(rows, plans) if p.tobytes() not in tried.costs[k]}
    if fresh:
        tried.score([k for k, _ in fresh.values()], np.array([p for _, p in fresh.values()]))


def compete(
    team: Team,
    states: Sequence[State],
    starts: Sequence[np.ndarray],
    rng: np.random.Generator,
    tried: TriedPlans | None = None,
) -> TriedPlans:
    """The plans of one training batch compete: the starts (``(B, G)`` each) are cleared, then each
    state's best plan moves to its best neighbour while that lowers the team cost
    (``search_rounds`` at most). All states' candidates are cleared in one batch per round.
    ``tried``: plans already scored at these states (they compete too)."""
    tried = tried if tried is not None else TriedPlans(team, states)
    batch = len(states)
    for plans in starts:
        score_fresh(tried, range(batch), plans)
    active = list(range(batch))
    for _ in range(team.hp.search_rounds):
        rows, plans, before = [], [], {}
        for k in active:
            best, cost = tried.best(k)
            before[k] = cost
            fresh = [
                p
                for p in neighbours(best, team.hp.max_flips, team.hp.max_swaps, rng)
                if p.tobytes() not in tried.costs[k]
            ]
            rows += [k] * len(fresh)
            plans += fresh
        if not plans:
            break
        tried.score(rows, np.array(plans))
        active = [k for k in active if tried.best(k)[1] < before[k] - 1e-9 * abs(before[k])]
        if not active:
            break
    return tried


def train(
    problem: Problem,
    team: Team,
    sampler: StateSampler,
    rng: np.random.Generator,
    start: int,
    steps: int,
    log: TrainingLog,
    save,
) -> None:
    """The loop: warm-up exploration of offers, then the policy rounds with exploration, the plan
    competition that sets the targets, and one update of every agent's networks per step."""
    hp, n = team.hp, len(team.agents)
    monitor = monitor_states(problem)
    monitor_obs = observation_matrix(problem, monitor)
    if start == 0:  # warm-up: uniform random actions, mapped and projected by the environment's search
        for state in sampler.sample_many(hp.warmup_states):
            raw = rng.uniform(-0.3, 1.0, size=(hp.warmup_actions, n))
            mapped = map_actions(problem, [state] * hp.warmup_actions, raw)
            result = team.search.project(state, mapped.on, mapped.power)  # the environment's own closing
            obs = np.repeat(observation_matrix(problem, [state]), hp.warmup_actions, 0)
            _remember_bills(problem, team, obs, mapped.on, result)
        for _ in range(5):
            for agent in team.agents:
                agent.cost_loss = agent.update_cost()
    team.refresh_offers()
    for step in range(start + 1, steps + 1):
        states = sampler.sample_many(hp.states_per_step)
        obs = observation_matrix(problem, states)
        run = team.policy_rounds(states, obs, exact_sums=True, explore=True)
        _remember_bills(problem, team, obs, np.ones_like(run.on), run.trial)
        _remember_bills(problem, team, obs, run.on, run.result)
        if problem.commitment:
            everyone = np.ones_like(run.on)
            tried = TriedPlans(team, states)
            handovers = [
                [handovers_of(start[k], hp.max_swaps, rng) for k in range(len(states))] for start in run.move_plans
            ]  # (sampled when there are more) per decision point
            for start, swaps in zip(run.move_plans, handovers):  # every solo flip and those hand-overs
                score_fresh(
                    tried,
                    [k for k in range(len(states)) for _ in range(n + len(swaps[k]))],
                    np.concatenate([np.concatenate([solo_flips(start[k]), swaps[k]]) for k in range(len(states))]),
                )
            tried = compete(team, states, [everyone, *run.plans, _margin_plans(team, states, run)], rng, tried)
            for k in range(len(states)):
                targets = tried.targets(k, hp.advantage_clip)
                if targets is None:
                    continue
                targets = team.commitment.compress(targets)
                gains = [
                    team.commitment.compress(tried.move_gains(k, start[k], swaps[k], hp.advantage_clip))
                    for start, swaps in zip(run.move_plans, handovers)
                ]
                for i, agent in enumerate(team.agents):
                    agent.plans.add(
                        features=np.stack([f[k, i] for f in run.features]),
                        targets=np.repeat(targets[i][None], len(run.features), 0),
                    )
                    if gains:
                        agent.moves.add(
                            features=np.stack([f[k, i] for f in run.move_features]),
                            gain=np.stack([g[i] for g in gains]),
                        )
        refit = step % hp.cost_every == 0
        if refit:
            for agent in team.agents:
                agent.cost_loss = agent.update_cost()
            team.refresh_offers()
        loss = sum(a.cost_loss for a in team.agents)
        if problem.commitment and len(team.agents[0].plans):
            loss += sum(team.update_commitment() for _ in range(hp.updates_per_step)) / hp.updates_per_step
        log.loss(step, loss)
        if log.due(step) or step == steps:
            log.rewards(step, [_monitor_reward(problem, team, s, monitor_obs[j]) for j, s in enumerate(monitor)])
        if step % hp.checkpoint_every == 0 or step == steps:
            save(step)


def _margin_plans(team: Team, states: Sequence[State], run: PolicyRun) -> np.ndarray:
    """A start for the competition that needs no trained policy: after the trial clearing every
    agent whose learned margin is negative stops, and the plan is repaired by ratings. On large
    instances it puts the search near good plans from the first step."""
    margin = run.features[0][..., COMMITMENT_FEATURES.index("margin")]  # rounds ≥ 1: the trial's features
    return np.array([team.repair(state, margin[k] > 0, margin[k])[0] for k, state in enumerate(states)])


def _remember_bills(problem: Problem, team: Team, obs: np.ndarray, on: np.ndarray, result: SearchResult) -> None:
    """Each running agent stores its own bill at the output it was cleared at (``obs``: the
    states' observations, ``(B, G, 3)``, one row per cleared plan)."""
    bills = group_costs(problem, on, result.balanced.power)  # each agent's own meter reading
    for i, agent in enumerate(team.agents):
        running = on[:, i]
        agent.remember_bills(obs[running, i].astype(np.float64), result.balanced.power[running, i], bills[running, i])


def _monitor_reward(problem: Problem, team: Team, state: State, obs: np.ndarray) -> float:
    """Fig. 5 quantity: the shared probe reward of the current greedy decision at a fixed state."""
    dispatch, _ = team.decide(state, obs)
    return lifecycle.probe_reward(problem, state, dispatch)


# =============================================================================================
# The plugin
# =============================================================================================
class MadrlTvc(lifecycle.LearnerPlugin, Solver):
    name = "madrl_tvc"
    description = "MADRL-TVC: fully distributed learners, learned offers + learned commitment on cleared prices"
    hyperparameter_class = Hyperparameters
    parameters = lifecycle.spec_parameters(Hyperparameters, model="", refine=0)  # 0: the learned policy alone
    default_train_steps = 1500  # the budget the tables report (docs/madrl-tvc.md; chosen on validation states)
    parameter_ranges = {"refine": ROUNDS, **HYPERPARAMETER_RANGES}
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True)

    def fit(
        self,
        problem: Problem,
        *,
        seed: int,
        steps: int,
        out_dir: Path,
        resume: bool = False,
        progress: bool = False,
        **options,
    ) -> FitReport:
        out_dir = Path(out_dir)
        problem, ckpt, hp = self.begin_fit(problem, out_dir, resume=resume, options=options)
        lifecycle.seed_everything(seed)
        team = Team(problem, hp, seed)
        sampler = StateSampler(problem, seed=seed, generated_share=hp.generated_share)
        rng = np.random.default_rng(seed)
        start, elapsed = 0, 0.0
        if ckpt:
            start, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
            _restore(team, ckpt, out_dir, with_optimizers=True)
            sampler.rng.bit_generator.state = ckpt.state["sampler_rng"]
            lifecycle.restore_rng(ckpt.state["rng"], {"loop": rng})
        log = TrainingLog(
            out_dir,
            problem=problem,
            monitor=monitor_states(problem),
            total_steps=steps,
            every=hp.log_every,
            resume=resume,
            progress=progress,
            start_step=start,
            elapsed_s=elapsed,
        )
        t0 = time.perf_counter()

        def save(step: int) -> None:
            state = {
                "sampler_rng": sampler.rng.bit_generator.state,
                "rng": lifecycle.capture_rng({"loop": rng}),
                "agents": {a.name: a.extra(with_buffers=True) for a in team.agents},
            }
            meta = lifecycle.model_meta(
                solver=self.name,
                spec=lifecycle.training_spec(self.name, hp),
                problem=problem,
                hyperparameters=hp,
                seed=seed,
                train_time_s=elapsed + time.perf_counter() - t0,
                observation={a: list(observation_names(problem, a)) for a in problem.group_names},
                sampler=sampler.box.to_json(problem),
            )
            lifecycle.save(
                out_dir, step=step, networks=team.networks(), optimizers=team.optimizers(), state=state, meta=meta
            )

        try:
            if start < steps:
                train(problem, team, sampler, rng, start, steps, log, save)
        finally:
            log.close()
        total = elapsed + time.perf_counter() - t0
        return FitReport(
            model_path=out_dir,
            steps=steps,
            time_s=total,
            info={"train_time_s": total, "seed": seed, "hyperparameters": asdict(hp)},
        )

    def load(self, problem: Problem) -> Team:
        """The trained team, read from disk once per (model folder, problem); it acts on the problem
        listed in its training order (``team.problem``), whatever order ``problem`` lists groups in."""
        folder = Path(self.params["model"])
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)

        def build(ckpt: Checkpoint) -> Team:
            hp = self.trained_hyperparameters(ckpt, folder)
            team = Team(problem, hp, seed=int(ckpt.meta["seed"]))
            _restore(team, ckpt, folder, with_optimizers=False)
            team.commitment.double()  # execution only: float32 products round differently per batch size
            team.refresh_offers()
            return team

        return self._model.get(folder, problem, self.name, build)

    def prepare(self, problem: Problem) -> None:
        self.load(problem)

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
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


def _restore(team: Team, ckpt: Checkpoint, folder: Path, *, with_optimizers: bool) -> None:
    lifecycle.load_networks(team.networks(), ckpt, folder, MadrlTvc.name)
    buffers = {"bills", "plans", "moves"}
    for agent in team.agents:
        saved = ckpt.state["agents"][agent.name]
        agent.load_extra(saved if with_optimizers else {k: v for k, v in saved.items() if k not in buffers})
    if with_optimizers:
        for key, opt in team.optimizers().items():
            opt.load_state_dict(ckpt.optimizers[key])
