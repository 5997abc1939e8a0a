"""MADDPG with parameter sharing per group type: one actor and one critic for every FDC, ASC, V2G.

Why: with a network per agent, a model only fits the instance it was trained on, and a centralised
critic on every agent's observation and action grows with the instance (at 128 regions: 328 agents,
a critic input of 1,640 numbers). Sharing one actor per type on size-independent inputs
(``features.py``: ratios and the agent's own ratings) is the common practice in MARL and lets one
model decide at any size. The critic of a type reads the agent's own inputs and action plus
mean-field summaries of every *other* agent's action (what they switched on and propose, over the
system and over the agent's region), so it too accepts any number of agents. Training is
centralised (CTDE): the learner receives every agent's inputs, action and cost each step.

**Rewards.** ``team_reward="system"`` is the environment's reward (``marl_env.outcome``: the agent's
share of the team cost plus its own cost and moved kW, over a cost scale that grows with the
instance). Its signal about one agent shrinks like ``1/G``: on 79 groups, switching one on or off
moves the team cost by about 1 % while the others' exploration moves it by several. So the
default is ``team_reward="difference"`` (Wolpert and Tumer's difference reward with "off" as the
default action): a running agent is charged what the team cost would have been without it,
``D_i = C(a) − C(a with i off)`` (both with the violation penalty ``κ·V`` and re-balanced by the same
search), an idle agent 0, both over the mean full-output cost of one group (environment side,
like ``marl_env.cost_scale``). The counterfactual plans are scored by the one evaluator in one
vectorised search per step — a central evaluator of joint plans, counted as true-cost evaluations.

**The on/off head** (``onoff_update``). Episodes are one step, so the value of switching on is
``Q(on) − Q(off)`` with both read off the critic; the default ``"expected"`` trains the logits on
that exact difference (``E = p·Q(on) + (1 − p)·Q(off)``). MADDPG's straight-through Gumbel-softmax
(``"gumbel"``) follows the critic's slope in its 0/1 "on" input instead, which says little about
the jump between the two, and with cost inputs it under-committed at 32 regions (validation,
docs/learning.md "Sharing": 11.7 % against 1.8 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.maddpg.decision import raw_actions
from dispatchbench.learn.maddpg.features import (
    N_MEAN_FIELD,
    TYPES,
    agent_features,
    feature_names,
    layout,
    mean_field,
    upper_rows,
)
from dispatchbench.learn.marl_env import Outcome, RewardConfig, cost_scale, map_actions, outcome
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import Problem, State

N_TYPES = len(TYPES)


class TypeActors(nn.Module):
    """Per type: on/off logits and a power fraction, ``(T, B, F) -> ((T, B, 2), (T, B), (T, B))``."""

    def __init__(self, hidden: int, n_features: int, power_head: str = "sigmoid") -> None:
        super().__init__()
        self.net = agent_mlp(N_TYPES, n_features, hidden, 3)
        self.power_head = power_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(x)
        logits, pre = out[..., :2], out[..., 2]
        if self.power_head == "sigmoid":
            return logits, torch.sigmoid(pre), pre
        y = pre + 0.5
        return logits, y + (y.clamp(0.0, 1.0) - y).detach(), y


class TypeCritics(nn.Module):
    """Per type: ``Q(features, on, u, mean field)``, ``(T, B, ·) -> (T, B)``."""

    def __init__(self, hidden: int, n_features: int) -> None:
        super().__init__()
        self.net = agent_mlp(N_TYPES, n_features + 2 + N_MEAN_FIELD, hidden, 1)

    def forward(self, x: torch.Tensor, on: torch.Tensor, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, on.unsqueeze(-1), u.unsqueeze(-1), m], dim=-1)).squeeze(-1)


@dataclass
class SharedModel:
    actors: TypeActors
    critics: TypeCritics
    target_actors: TypeActors
    target_critics: TypeCritics
    shift: str = "kw"
    cost_inputs: str = "none"  # what the actors hear of running costs (features.py, COST_FEATURES)

    @classmethod
    def new(cls, hp: Any) -> SharedModel:
        n = len(feature_names(hp.cost_inputs))
        actors, critics = TypeActors(hp.actor_hidden, n, hp.power_head), TypeCritics(hp.critic_hidden, n)
        targets = TypeActors(hp.actor_hidden, n, hp.power_head), TypeCritics(hp.critic_hidden, n)
        targets[0].load_state_dict(actors.state_dict())
        targets[1].load_state_dict(critics.state_dict())
        return cls(actors, critics, *targets, shift=hp.shift, cost_inputs=hp.cost_inputs)

    def features(self, problem: Problem, states: Sequence[State]) -> np.ndarray:
        """``(B, G, F)``: every agent's actor inputs with this model's cost inputs."""
        return agent_features(problem, states, cost_inputs=self.cost_inputs)

    def networks(self) -> dict[str, nn.Module]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), nn.Module)}

    def policy(self, features: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, G)`` on/off logit margin, power fraction and on/off from ``(B, G, F)`` features."""
        b, g, f = features.shape
        with torch.no_grad():
            dtype = next(self.actors.parameters()).dtype
            x = torch.as_tensor(features.reshape(1, b * g, f), dtype=dtype).expand(N_TYPES, b * g, f)
            logits, u, _ = self.actors(x)
            rows, cols = torch.as_tensor(np.tile(types, b)), torch.arange(b * g)
            logits, u = logits[rows, cols], u[rows, cols]
            margin = (logits[:, 1] - logits[:, 0]).numpy().astype(float).reshape(b, g)
            return margin, u.clamp(0.0, 1.0).numpy().astype(float).reshape(b, g), (margin > 0).astype(float)


# ---- rewards -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One training step's outcome: per-agent rewards and what producing them cost."""

    outcome: Outcome
    rewards: np.ndarray  # (G,)
    evaluations: int  # true-cost evaluations (the played plan and every counterfactual)


def agent_cost_scale(problem: Problem) -> float:
    """Mean full-output cost of one group: the difference reward's unit (environment side)."""
    return cost_scale(problem) / max(len(problem.groups), 1)


def step_rewards(
    problem: Problem, state: State, raw: np.ndarray, reward: RewardConfig, search: DistributedSearch, team: str
) -> Step:
    """Play ``raw`` (G,) at ``state``; with ``team="difference"`` also every running agent's
    counterfactual "off", all in one vectorised search (row 0 is the played plan)."""
    if team == "system" or not problem.commitment:
        out = outcome(problem, state, raw, reward=reward, search=search)
        return Step(out, out.rewards.astype(np.float32), 1)
    mapped = map_actions(problem, [state], np.asarray(raw).reshape(1, -1))
    on, power = mapped.on[0], mapped.power[0]
    running = np.flatnonzero(on)
    rows_on = np.repeat(on[None], 1 + len(running), axis=0)
    rows_on[1 + np.arange(len(running)), running] = False
    centers = np.repeat(power[None], 1 + len(running), axis=0)
    centers[1 + np.arange(len(running)), running] = 0.0
    result = search.project(state, rows_on, centers)
    team_costs, played = np.zeros(len(rows_on)), None
    for k in range(len(rows_on)):
        dispatch = result.dispatch(problem, rows_on[k], row=k)
        ev = evaluate(problem, state, dispatch)
        team_costs[k] = ev.cost + reward.penalty_per_kw * float(sum(ev.violations.values()))
        if k == 0:
            played = (dispatch, ev)
    assert played is not None  # row 0 is the played plan
    dispatch, ev = played
    moved = np.abs(power - dispatch.power)
    difference = np.zeros(len(on))
    difference[running] = team_costs[0] - team_costs[1:]
    rewards = -(difference + reward.move_weight * moved) / agent_cost_scale(problem)
    rewards = np.where(on, rewards, 0.0).astype(np.float32)
    out = Outcome(
        mapped=mapped,
        dispatch=dispatch,
        evaluation=ev,
        feasible_commitment=bool(result.feasible[0]),
        moved_kw=moved,
        violation_kw=float(sum(ev.violations.values())),
        rewards=rewards,
        team_reward=float(-team_costs[0] / cost_scale(problem)),
        messages=result.messages,
    )
    return Step(out, rewards, len(rows_on))


# ---- the learner's side of one step --------------------------------------------------------------
def buffer_fields(n_features: int) -> dict[str, tuple[int, ...]]:
    return {"x": (n_features,), "on": (), "u": (), "m": (N_MEAN_FIELD,), "r": ()}


def new_buffers(capacity: int, seed: int, n_features: int) -> list[ReplayBuffer]:
    return [ReplayBuffer(capacity, buffer_fields(n_features), seed=seed + k) for k in range(N_TYPES)]


def explore(
    model: SharedModel,
    features: np.ndarray,
    types: np.ndarray,
    step: int,
    hp: Any,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random actions for the first ``learning_starts`` steps; then on/off drawn from the
    actor's categorical (plus a flip rate) and Gaussian noise on ``u``, both decaying linearly over
    ``explore_steps`` steps — a schedule in steps alone, so a run stopped by the clock is
    reproduced by the same number of steps."""
    n = features.shape[1]
    if step <= hp.learning_starts:
        return np.asarray(rng.random(n) < 0.5, dtype=float), np.asarray(rng.uniform(0.0, 1.0, n))
    frac = min(1.0, step / max(1.0, float(hp.explore_steps)))
    sigma = hp.noise_start + frac * (hp.noise_end - hp.noise_start)
    flip = hp.flip_start + frac * (hp.flip_end - hp.flip_start)
    margin, u, _ = model.policy(features, types)
    on = (rng.random(n) < 1.0 / (1.0 + np.exp(-margin[0]))).astype(float)
    on = np.where(rng.random(n) < flip, 1.0 - on, on)
    return on, np.clip(u[0] + rng.normal(0.0, sigma, n), 0.0, 1.0)


def remember(
    buffers: Sequence[ReplayBuffer],
    problem: Problem,
    state: State,
    features: np.ndarray,
    step: Step,
    u: np.ndarray,
) -> None:
    """Store one row per agent in its type's buffer; the mean field is of the *mapped* actions."""
    mapped = step.outcome.mapped
    ub = upper_rows(problem, [state])
    lb = problem.lower_bounds()[None]
    m = mean_field(problem, mapped.on, mapped.power, lb, ub)[0]
    types = layout(problem).type_index
    on = mapped.on[0].astype(np.float32)
    for t, buffer in enumerate(buffers):
        rows = types == t
        if rows.any():
            buffer.add(x=features[0, rows], on=on[rows], u=u[rows].astype(np.float32), m=m[rows], r=step.rewards[rows])


def update(
    model: SharedModel,
    actor_opt: torch.optim.Optimizer,
    critic_opt: torch.optim.Optimizer,
    buffers: Sequence[ReplayBuffer],
    hp: Any,
    update_policy: bool,
) -> float:
    """One critic step (and, every ``policy_every``, one actor step) on a mini-batch per type.
    Episodes are one step (``done = 1``): the critic's target is the reward itself."""
    present = [len(b) > 0 for b in buffers]
    batches = [b.sample(hp.batch_size) if ok else None for b, ok in zip(buffers, present)]
    # a type absent from every instance so far: zero rows of the buffers' own layout, masked out below
    zero = {k: np.zeros((hp.batch_size, *a.shape[1:]), a.dtype) for k, a in buffers[0].data.items()}
    stack = {k: torch.as_tensor(np.stack([(b or zero)[k] for b in batches])) for k in zero}
    mask = torch.as_tensor(present, dtype=torch.float32)  # (T,)
    q = model.critics(stack["x"], stack["on"], stack["u"], stack["m"])  # (T, B)
    critic_loss = (((q - stack["r"]) ** 2).mean(dim=1) * mask).sum()
    critic_opt.zero_grad()
    critic_loss.backward()
    critic_opt.step()
    if update_policy:
        logits, mu_u, pre = model.actors(stack["x"])
        if hp.onoff_update == "gumbel":  # MADDPG's relaxation of a discrete action
            mu_on = torch.nn.functional.gumbel_softmax(logits, tau=hp.gumbel_temperature, hard=True)[..., 1]
            q_pi = model.critics(stack["x"], mu_on, mu_u, stack["m"])
        else:  # "expected": the exact expectation over the two choices, E = p·Q(on) + (1 − p)·Q(off)
            ones = torch.ones_like(stack["on"])
            q_on = model.critics(stack["x"], ones, mu_u, stack["m"])
            with torch.no_grad():
                q_off = model.critics(stack["x"], 0 * ones, mu_u, stack["m"])
            p_on = torch.softmax(logits, dim=-1)[..., 1]
            q_pi = p_on * (q_on.detach() - q_off) + q_on  # logits learn the gap, u learns Q(on, u)
        if hp.power_head == "sigmoid":
            power_loss = (pre**2).mean(dim=1)
        else:
            power_loss = (torch.relu(pre - 1.0) ** 2 + torch.relu(-pre) ** 2).mean(dim=1)
        per_type = -q_pi.mean(dim=1) + hp.action_reg * (logits**2).mean(dim=(1, 2)) + hp.power_reg * power_loss
        actor_loss = (per_type * mask).sum()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        soft_update(model.target_actors, model.actors, hp.tau)
        soft_update(model.target_critics, model.critics, hp.tau)
    return float(critic_loss.detach())


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(s, alpha=tau)


def act(model: SharedModel, problem: Problem, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic raw actions ``(B, G)`` and the on/off margins (the repair's eagerness)."""
    margin, u, on = model.policy(model.features(problem, states), layout(problem).type_index)
    return raw_actions(on, u, problem.commitment), margin


def observation_messages(search: DistributedSearch, problem: Problem, cost_inputs: str = "none") -> int:
    """Messages of the shared actors' inputs per decision: the two system totals (demand, available
    capacity) are one CS-to-CS tree sum each, and every CS node sends each of its agents its
    region's and the system's numbers in one message (an agent measures its own). Cost inputs
    (``features.COST_FEATURES``): ``own`` adds one tree sum (the system's bill at full output),
    ``merit`` one more tree pass gathering the (average cost, available kW) pairs, whose messages
    carry lists; the CS node then sends each agent its places in one message, as before."""
    trees = 2 + {"none": 0, "own": 1, "merit": 2}[cost_inputs]
    return trees * search.system_sum_messages + len(problem.groups)
