"""MADDPG with a network per agent (Lowe et al., 2017): the networks, exploration and the update.

Per agent (charger group): an actor on its own 3-number observation (``marl_env.observation_matrix``)
and a critic on every agent's observation and action, each with a target copy updated softly. Each
agent's networks are slices of one batched layer (``learn.agent_nets.AgentLinear``): agents keep
their own parameters (nothing is shared) while one matrix product serves all of them. The critic's
input grows with the instance (``G·(3 + 2)`` numbers), so a model fits the instance it was trained
on; ``shared.py`` is the mode that decides at any size.

Every decision is one static step (the episode ends after it), so the critic's target is the
reward itself: ``y = r + γ (1 − done) Q'(o', μ'(o'))`` with ``done = 1``. The target networks are
kept and updated as in the paper's algorithm so the code stays MADDPG for non-static use, but with
one-step episodes they never enter a target.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.maddpg.decision import raw_actions
from dispatchbench.learn.maddpg.shared import soft_update
from dispatchbench.learn.marl_env import OBS_DIM

ACT_DIM = 2  # per agent in the critic input: P(on), power fraction u


class Actors(nn.Module):
    """Per agent: on/off logits and a power fraction, ``(G, B, OBS_DIM) -> ((G, B, 2), (G, B), (G, B))``.

    The on/off choice is discrete, so it gets the discrete-action treatment of MADDPG (a
    categorical policy trained through the Gumbel-softmax, as in Lowe et al.'s discrete
    environments) instead of a threshold on a continuous action: a thresholded tanh saturates
    once the critic has learned that switching off near the threshold risks the violation
    penalty, and then exploration noise never flips it again.
    """

    def __init__(self, n: int, hidden: int, power_head: str = "sigmoid") -> None:
        super().__init__()
        self.net = agent_mlp(n, OBS_DIM, hidden, 3)
        self.power_head = power_head

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(obs)
        logits, pre = out[..., :2], out[..., 2]
        if self.power_head == "sigmoid":
            return logits, torch.sigmoid(pre), pre
        x = pre + 0.5  # starts mid-range
        return logits, x + (x.clamp(0.0, 1.0) - x).detach(), x


class Critics(nn.Module):
    """Q_i(o_1..o_G, a_1..a_G): ``(G, B, G·OBS_DIM + G·ACT_DIM) -> (G, B)``."""

    def __init__(self, n: int, hidden: int) -> None:
        super().__init__()
        self.n = n
        self.net = agent_mlp(n, n * OBS_DIM + n * ACT_DIM, hidden, 1)

    def forward(self, joint_obs: torch.Tensor, on: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``joint_obs (..., B, G·OBS_DIM)``, ``on`` and ``u`` ``(..., B, G)``."""
        x = torch.cat([joint_obs, on, u], dim=-1)
        if x.dim() == 2:  # the same input for every critic
            x = x.expand(self.n, *x.shape)
        return self.net(x).squeeze(-1)


@dataclass
class Model:
    actors: Actors
    critics: Critics
    target_actors: Actors
    target_critics: Critics
    shift: str = "kw"  # the search's shift the actors were trained with (not a network)

    @classmethod
    def new(cls, n: int, hp: Any) -> Model:
        actors, critics = Actors(n, hp.actor_hidden, hp.power_head), Critics(n, hp.critic_hidden)
        targets = Actors(n, hp.actor_hidden, hp.power_head), Critics(n, hp.critic_hidden)
        targets[0].load_state_dict(actors.state_dict())
        targets[1].load_state_dict(critics.state_dict())
        return cls(actors, critics, *targets, shift=hp.shift)

    def networks(self) -> dict[str, nn.Module]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), nn.Module)}

    def policy(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, G)`` on/off logit difference, power fraction ``u`` from observations ``(B, G, OBS_DIM)``."""
        with torch.no_grad():  # in the actors' own precision (double once loaded for execution)
            dtype = next(self.actors.parameters()).dtype
            logits, u, _ = self.actors(torch.as_tensor(obs, dtype=dtype).transpose(0, 1))
            margin = (logits[..., 1] - logits[..., 0]).T.numpy().astype(float)
            return margin, u.clamp(0.0, 1.0).T.numpy().astype(float), (margin > 0).astype(float)

    def act(self, obs: np.ndarray, commitment: bool = True) -> np.ndarray:
        """Deterministic raw actions ``(B, G)``: the likelier on/off choice, the actor's power."""
        _, u, on = self.policy(obs)
        return raw_actions(on, u, commitment)


def explore(
    model: Model, obs: np.ndarray, step: int, hp: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Exploration: uniform random actions first; then on/off sampled from the actor's
    categorical (plus a decaying flip rate) and Gaussian noise on the power fraction, both
    decaying linearly over ``hp.explore_steps`` (resolved at fit: ``noise_fraction`` of the step
    budget, as before) — a schedule in steps, so the clock never changes a run."""
    n = obs.shape[1]
    if step <= hp.learning_starts:
        return np.asarray(rng.random(n) < 0.5, dtype=float), np.asarray(rng.uniform(0.0, 1.0, n))
    frac = min(1.0, step / max(1.0, float(hp.explore_steps)))
    sigma = hp.noise_start + frac * (hp.noise_end - hp.noise_start)
    flip = hp.flip_start + frac * (hp.flip_end - hp.flip_start)
    margin, u, _ = model.policy(obs)
    on = (rng.random(n) < 1.0 / (1.0 + np.exp(-margin[0]))).astype(float)  # a draw from softmax(logits)
    on = np.where(rng.random(n) < flip, 1.0 - on, on)
    return on, np.clip(u[0] + rng.normal(0.0, sigma, n), 0.0, 1.0)


def update(model: Model, actor_opt, critic_opt, batch: dict[str, np.ndarray], hp: Any, update_policy: bool) -> float:
    obs = torch.as_tensor(batch["obs"])  # (B, G, 3)
    on = torch.as_tensor(batch["on"])  # (B, G)
    u = torch.as_tensor(batch["u"])  # (B, G)
    rew = torch.as_tensor(batch["rew"]).T  # (G, B)
    done = torch.as_tensor(batch["done"])  # (B,)
    joint_obs = obs.flatten(1)  # (B, G·3)
    local_obs = obs.transpose(0, 1)  # (G, B, 3)
    with torch.no_grad():  # next state = this state, and done = 1: the bootstrap term vanishes
        logits, next_u, _ = model.target_actors(local_obs)
        next_on = (logits[..., 1] > logits[..., 0]).float()
        target = rew + hp.gamma * (1 - done) * model.target_critics(joint_obs, next_on.T, next_u.T)
    q = model.critics(joint_obs, on, u)
    critic_loss = ((q - target) ** 2).mean(dim=1)  # per agent
    critic_opt.zero_grad()
    critic_loss.sum().backward()
    critic_opt.step()
    if update_policy:
        n = on.shape[1]
        eye = torch.eye(n).unsqueeze(1)  # (G, 1, G): agent i swaps in its own policy action
        logits, mu_u, pre = model.actors(local_obs)  # (G, B, 2), (G, B), (G, B)
        mu_on = torch.nn.functional.gumbel_softmax(logits, tau=hp.gumbel_temperature, hard=True)[..., 1]
        joint_on = on.unsqueeze(0) * (1 - eye) + mu_on.T.unsqueeze(0) * eye  # (G, B, G)
        joint_u = u.unsqueeze(0) * (1 - eye) + mu_u.T.unsqueeze(0) * eye
        q_pi = model.critics(joint_obs.expand(n, *joint_obs.shape), joint_on, joint_u)
        # keeps the outputs off saturation (as in Lowe et al.'s code)
        if hp.power_head == "sigmoid":
            power_loss = (pre**2).mean()
        else:  # only the excess beyond [0, 1], where the clipped action no longer moves
            power_loss = (torch.relu(pre - 1.0) ** 2 + torch.relu(-pre) ** 2).mean()
        actor_loss = -q_pi.mean() + hp.action_reg * (logits**2).mean() + hp.power_reg * power_loss
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        soft_update(model.target_actors, model.actors, hp.tau)
        soft_update(model.target_critics, model.critics, hp.tau)
    return float(critic_loss.detach().sum())
