"""MADDPG (Lowe et al., 2017): centralised training, decentralised execution.

One file, read top to bottom: hyper-parameters, networks, the training loop (``fit``), and
execution (``solve``). Per agent (charger group): an actor on its own 3-number observation and a
critic on every agent's observation and action, each with a target copy updated softly.
The environment pieces — observations, the action-space mapping, the distributed search that
closes the balances, the reward — come from ``dispatchbench.marl_env``, the same code at
training and at execution. The agents learn from rewards only; no cost coefficient is read here.

Every decision is one static step (the episode ends after it), so the critic's target is the
reward itself: ``y = r + γ (1 − done) Q'(o', μ'(o'))`` with ``done = 1``. The target networks
are kept and updated as in the paper's algorithm so the code stays MADDPG for non-static use,
but with one-step episodes they never enter a target.

Each agent's networks are slices of one batched layer (``AgentLinear``): agents keep their own
parameters (nothing is shared) while one matrix product serves all of them, which is what makes
nine actors and nine critics affordable on two CPU cores.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dispatchbench.checkpoints import (capture_rng, check_model, load_checkpoint, problem_fingerprint,
                                       restore_rng, save_checkpoint)
from dispatchbench.dispatch import Dispatch
from dispatchbench.distributed_search import DistributedSearch
from dispatchbench.marl_env import (OBS_DIM, RewardConfig, StateSampler, map_actions, monitor_states,
                                    observation_matrix, observation_names, outcome)
from dispatchbench.problem import Problem, State
from dispatchbench.replay_buffer import ReplayBuffer
from dispatchbench.solver_api import Answer, Capabilities, FitReport, Solver
from dispatchbench.training_log import TrainingLog


@dataclass
class Hyperparameters:
    actor_hidden: int = 64
    critic_hidden: int = 64
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.95  # irrelevant for one-step episodes (done = 1), kept for the general update
    tau: float = 0.01  # soft-update rate of the target networks
    batch_size: int = 128
    buffer_size: int = 100_000
    learning_starts: int = 500  # uniform random actions before the first update
    noise_start: float = 0.5  # Gaussian exploration noise on the raw action, decayed linearly ...
    noise_end: float = 0.05  # ... to this value ...
    noise_fraction: float = 0.6  # ... over this fraction of the steps
    policy_every: int = 2  # actor and target updates every this many critic updates
    checkpoint_every: int = 2000
    log_every: int = 100
    own_weight: float = 0.1  # reward weights (marl_env.RewardConfig)
    team_weight: float = 1.0
    penalty_per_kw: float = 50.0
    move_weight: float = 0.0

    def reward(self) -> RewardConfig:
        return RewardConfig(self.own_weight, self.team_weight, self.penalty_per_kw, self.move_weight)


# ---- networks -----------------------------------------------------------------------------
class AgentLinear(nn.Module):
    """``n`` independent linear layers applied at once: ``(n, B, in) -> (n, B, out)``."""

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / np.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def agent_mlp(n: int, d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(AgentLinear(n, d_in, hidden), nn.ReLU(), AgentLinear(n, hidden, hidden), nn.ReLU(),
                         AgentLinear(n, hidden, d_out))


class Actors(nn.Module):
    """μ_i(o_i) ∈ [-1, 1]: ``(G, B, OBS_DIM) -> (G, B)``."""

    def __init__(self, n: int, hidden: int) -> None:
        super().__init__()
        self.net = agent_mlp(n, OBS_DIM, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)).squeeze(-1)


class Critics(nn.Module):
    """Q_i(o_1..o_G, a_1..a_G): ``(G, B, G·OBS_DIM + G) -> (G, B)``."""

    def __init__(self, n: int, hidden: int) -> None:
        super().__init__()
        self.n = n
        self.net = agent_mlp(n, n * OBS_DIM + n, hidden, 1)

    def forward(self, joint_obs: torch.Tensor, joint_act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([joint_obs, joint_act], dim=-1)
        if x.dim() == 2:  # the same input for every critic
            x = x.expand(self.n, *x.shape)
        return self.net(x).squeeze(-1)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(s, alpha=tau)


@dataclass
class Model:
    actors: Actors
    critics: Critics
    target_actors: Actors
    target_critics: Critics

    @classmethod
    def new(cls, n: int, hp: Hyperparameters) -> Model:
        actors, critics = Actors(n, hp.actor_hidden), Critics(n, hp.critic_hidden)
        targets = Actors(n, hp.actor_hidden), Critics(n, hp.critic_hidden)
        targets[0].load_state_dict(actors.state_dict())
        targets[1].load_state_dict(critics.state_dict())
        return cls(actors, critics, *targets)

    def networks(self) -> dict[str, nn.Module]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic raw actions ``(B, G)`` from observations ``(B, G, OBS_DIM)``."""
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32).transpose(0, 1)
            return self.actors(x).T.numpy().astype(float)


# ---- the plugin ---------------------------------------------------------------------------
class Maddpg(Solver):
    name = "maddpg"
    description = "MADDPG (CTDE): actors on local observations, centralised critics; balances closed by the distributed search"
    parameters = {"model": "", **asdict(Hyperparameters())}
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True)

    def hyperparameters(self) -> Hyperparameters:
        return Hyperparameters(**{f.name: self.params[f.name] for f in fields(Hyperparameters)})

    def skip(self, problem: Problem) -> str | None:
        return check_model(self.params["model"], problem, self.name)

    # ---- training -------------------------------------------------------------------------
    def fit(self, problem: Problem, *, seed: int, steps: int, out_dir: Path, resume: bool = False,
            progress: bool = False, **options) -> FitReport:
        torch.set_num_threads(1)
        out_dir = Path(out_dir)
        hp = self.hyperparameters()
        n = len(problem.groups)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        model = Model.new(n, hp)
        actor_opt = torch.optim.Adam(model.actors.parameters(), lr=hp.actor_lr)
        critic_opt = torch.optim.Adam(model.critics.parameters(), lr=hp.critic_lr)
        sampler = StateSampler(problem, seed=seed)
        noise_rng = np.random.default_rng(seed + 1)
        buffer = ReplayBuffer(hp.buffer_size, {"obs": (n, OBS_DIM), "act": (n,), "rew": (n,), "done": ()},
                              seed=seed + 2)
        search = DistributedSearch(problem)
        reward = hp.reward()
        monitor = monitor_states(problem)
        monitor_obs = observation_matrix(problem, monitor)
        start_step, elapsed = 0, 0.0
        if resume:
            ckpt = load_checkpoint(out_dir)
            if ckpt.meta.get("hyperparameters") and ckpt.meta["hyperparameters"] != asdict(hp):
                hp = Hyperparameters(**ckpt.meta["hyperparameters"])  # a resumed run keeps its own settings
            for name, net in model.networks().items():
                net.load_state_dict(ckpt.networks[name])
            actor_opt.load_state_dict(ckpt.optimizers["actor"])
            critic_opt.load_state_dict(ckpt.optimizers["critic"])
            buffer.load_state_dict(ckpt.extra["buffer"])
            restore_rng(ckpt.rng, {"sampler": sampler.rng, "noise": noise_rng})
            start_step, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
        log = TrainingLog(out_dir, problem=problem, monitor=monitor, total_steps=steps, every=hp.log_every,
                          resume=resume, progress=progress, start_step=start_step, elapsed_s=elapsed)
        meta = {"solver": self.name, "problem": problem.name, "problem_fingerprint": problem_fingerprint(problem),
                "seed": seed, "hyperparameters": asdict(hp),
                "observation": {a: list(observation_names(problem, a)) for a in problem.group_names},
                "sampler": {"box": sampler.box.to_json(problem), "excluded_states": len(sampler.excluded),
                            "exclusion_radius_kw": sampler.exclusion_radius_kw}}

        def save(step: int) -> None:
            save_checkpoint(out_dir, step=step, networks=model.networks(),
                            optimizers={"actor": actor_opt, "critic": critic_opt},
                            rng=capture_rng({"sampler": sampler.rng, "noise": noise_rng}),
                            extra={"buffer": buffer.state_dict()}, meta={**meta, "train_time_s": log.wall_s})

        updates = 0
        try:
            for step in range(start_step + 1, steps + 1):
                state = sampler.sample()
                obs = observation_matrix(problem, [state])  # (1, G, 3)
                if step <= hp.learning_starts:
                    action = noise_rng.uniform(-1.0, 1.0, n)
                else:
                    frac = min(1.0, step / max(1.0, hp.noise_fraction * steps))
                    sigma = hp.noise_start + frac * (hp.noise_end - hp.noise_start)
                    action = np.clip(model.act(obs)[0] + noise_rng.normal(0.0, sigma, n), -1.0, 1.0)
                result = outcome(problem, state, action, reward=reward, search=search)
                buffer.add(obs=obs[0], act=action, rew=result.rewards, done=np.float32(1.0))

                loss = float("nan")
                if step > hp.learning_starts:
                    loss = self._update(model, actor_opt, critic_opt, buffer.sample(hp.batch_size), hp,
                                        update_policy=updates % hp.policy_every == 0)
                    updates += 1
                log.loss(step, loss)
                if log.due(step) or step == steps:
                    raw = model.act(monitor_obs)
                    log.rewards(step, [outcome(problem, s, raw[i], reward=reward, search=search).team_reward
                                       for i, s in enumerate(monitor)])
                if step % hp.checkpoint_every == 0 or step == steps:
                    save(step)
        finally:
            log.close()
        return FitReport(model_path=out_dir, steps=steps, time_s=log.wall_s,
                         info={"monitor_mean_reward": log.last_reward, "last_loss": log.last_loss})

    @staticmethod
    def _update(model: Model, actor_opt, critic_opt, batch: dict[str, np.ndarray], hp: Hyperparameters,
                update_policy: bool) -> float:
        obs = torch.as_tensor(batch["obs"])  # (B, G, 3)
        act = torch.as_tensor(batch["act"])  # (B, G)
        rew = torch.as_tensor(batch["rew"]).T  # (G, B)
        done = torch.as_tensor(batch["done"])  # (B,)
        joint_obs = obs.flatten(1)  # (B, G·3)
        local_obs = obs.transpose(0, 1)  # (G, B, 3)
        with torch.no_grad():  # next state = this state, and done = 1: the bootstrap term vanishes
            next_act = model.target_actors(local_obs).T
            target = rew + hp.gamma * (1 - done) * model.target_critics(joint_obs, next_act)
        q = model.critics(joint_obs, act)
        critic_loss = ((q - target) ** 2).mean(dim=1)  # per agent
        critic_opt.zero_grad()
        critic_loss.sum().backward()
        critic_opt.step()
        if update_policy:
            n = act.shape[1]
            eye = torch.eye(n).unsqueeze(1)  # (G, 1, G): agent i swaps in its own policy action
            mu = model.actors(local_obs).T  # (B, G)
            joint = act.unsqueeze(0) * (1 - eye) + mu.unsqueeze(0) * eye  # (G, B, G)
            actor_loss = -model.critics(joint_obs.expand(n, *joint_obs.shape), joint).mean()
            actor_opt.zero_grad()
            actor_loss.backward()
            actor_opt.step()
            soft_update(model.target_actors, model.actors, hp.tau)
            soft_update(model.target_critics, model.critics, hp.tau)
        return float(critic_loss.detach().sum())

    # ---- execution ------------------------------------------------------------------------
    def load(self, problem: Problem) -> Model:
        torch.set_num_threads(1)
        folder = Path(self.params["model"])
        why = check_model(folder, problem, self.name)
        if why:
            raise ValueError(why)
        meta = json.loads((folder / "model.json").read_text())
        model = Model.new(len(problem.groups), Hyperparameters(**meta["hyperparameters"]))
        ckpt = load_checkpoint(folder)
        for name, net in model.networks().items():
            net.load_state_dict(ckpt.networks[name])
        return model

    def solve(self, problem: Problem, states: Sequence[State], *, seed: int = 0,
              time_limit: float | None = None) -> list[Answer]:
        model = self.load(problem)
        search = DistributedSearch(problem)
        answers = []
        for state in states:
            start = time.perf_counter()
            raw = model.act(observation_matrix(problem, [state]))[0]
            answers.append(decide(problem, state, raw, search, start))
        return answers


def decide(problem: Problem, state: State, raw: np.ndarray, search: DistributedSearch, start: float) -> Answer:
    """Actors' raw actions -> mapping -> distributed search; if the learned commitment cannot meet
    the balances, a cost-blind repair switches groups in the order of their raw actions (most
    eager first on, least eager first off) until it can."""
    mapped = map_actions(problem, [state], raw[None])
    on = mapped.on[0].copy()
    result = search.project(state, on, mapped.power)
    messages, repaired = result.messages, 0
    if not result.feasible[0]:
        for candidate in _repairs(on, raw):
            repaired += 1
            result = search.project(state, candidate, mapped.power)
            messages += result.messages
            if result.feasible[0]:
                on = candidate
                break
    elapsed = time.perf_counter() - start
    dispatch: Dispatch = result.dispatch(problem, on)
    moved = np.abs(mapped.power[0] - dispatch.power)
    info = {"moved_mean_kw": float(moved.mean()), "moved_max_kw": float(moved.max()), "messages": int(messages),
            "commitment_repaired": repaired, "decision_s": elapsed,
            "raw_actions": {g: float(a) for g, a in zip(problem.group_names, raw)}}
    if not result.feasible[0]:
        return Answer(dispatch, "feasible", "no repaired commitment met the balances", elapsed, info)
    return Answer(dispatch, "feasible", "", elapsed, info)


def _repairs(on: np.ndarray, raw: np.ndarray):
    """Commitments to try: switch on off-groups one by one (highest raw action first), then,
    from the original, switch off running groups one by one (lowest raw action first)."""
    order = np.argsort(-raw)
    more = on.copy()
    for i in order:
        if not more[i]:
            more = more.copy()
            more[i] = True
            yield more
    fewer = on.copy()
    for i in order[::-1]:
        if fewer[i]:
            fewer = fewer.copy()
            fewer[i] = False
            yield fewer
