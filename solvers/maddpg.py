"""MADDPG (Lowe et al., 2017): centralised training, decentralised execution.

One file, read top to bottom: hyper-parameters, networks, the training loop (``fit``), and
execution (``solve``: a call's states decided in one batch — every actor on all observations at
once, one vectorised search — with answers equal to one-by-one decisions). Per agent (charger
group): an actor on its own 3-number observation and a critic on every agent's observation and
action, each with a target copy updated softly.
The environment pieces — observations, the action-space mapping, the distributed search that
closes the balances, the reward — come from ``dispatchbench.learn.marl_env``, the same code at
training and at execution. The agents learn from rewards only; no cost coefficient is read here.
Besides its share of the team cost, each agent's reward charges every kW the search had to move
its own proposal (``move_weight``): without it the actors learn to propose their least power and
let the search's uniform shift fill the gap, which splits the power badly (docs/learning.md,
"Power split").

Every decision is one static step (the episode ends after it), so the critic's target is the
reward itself: ``y = r + γ (1 − done) Q'(o', μ'(o'))`` with ``done = 1``. The target networks
are kept and updated as in the paper's algorithm so the code stays MADDPG for non-static use,
but with one-step episodes they never enter a target.

Each agent's networks are slices of one batched layer (``dispatchbench.learn.agent_nets.AgentLinear``):
agents keep their own parameters (nothing is shared) while one matrix product serves all of them,
which is what makes nine actors and nine critics affordable on two CPU cores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dispatchbench.contract.learner import FitReport
from dispatchbench.contract.solver import Answer, Capabilities, Label
from dispatchbench.contract.status import Status
from dispatchbench.formulations.balancing import ShiftResponse, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult
from dispatchbench.learn import lifecycle
from dispatchbench.learn.agent_nets import agent_mlp
from dispatchbench.learn.checkpoints import Checkpoint, ModelFileError
from dispatchbench.learn.lifecycle import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, WIDTH
from dispatchbench.learn.marl_env import (
    OBS_DIM,
    RewardConfig,
    StateSampler,
    map_actions,
    monitor_states,
    observation_matrix,
    observation_names,
    outcome,
)
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.learn.training_log import TrainingLog
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State


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
    noise_start: float = 0.3  # Gaussian exploration noise on the power fraction u ∈ [0, 1], decayed linearly ...
    noise_end: float = 0.02  # ... to this value ...
    noise_fraction: float = 0.6  # ... over this fraction of the steps (the flip rate below decays alike)
    flip_start: float = 0.1  # probability that an agent's sampled on/off choice is flipped, decayed ...
    flip_end: float = 0.0  # ... to this value
    gumbel_temperature: float = 1.0  # Gumbel-softmax temperature of the on/off head in the actor update
    action_reg: float = 1e-3  # weight of the squared actor outputs (logits, pre-activation) in the actor loss
    policy_every: int = 2  # actor and target updates every this many critic updates
    checkpoint_every: int = 2000
    log_every: int = 100
    own_weight: float = 0.1  # reward weights (marl_env.RewardConfig)
    team_weight: float = 1.0
    penalty_per_kw: float = 12.0  # per kW of violation (env default 50): see docs/learning.md, "MADDPG"
    move_weight: float = 2.0  # per kW the search moved an agent's own proposal: docs/learning.md, "Power split"
    generated_share: float = 0.5  # share of training states drawn from the day generator (training seeds 0-999)
    shift: str = "kw"  # how the search moves running groups: the same kW ("kw") or kW ∝ their range ("range")
    power_head: str = (
        "sigmoid"  # u = sigmoid(x), or "clip": u = clip(x, 0, 1) with the gradient passed straight through
    )
    power_reg: float = 0.0  # sigmoid: weight of x² in the actor loss; clip: weight of x's excess outside [0, 1]²
    updates_per_step: int = 1  # gradient updates per environment step

    def reward(self) -> RewardConfig:
        return RewardConfig(self.own_weight, self.team_weight, self.penalty_per_kw, self.move_weight)


# Checked when a spec is parsed (``maddpg[actor_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES = {
    "actor_hidden": WIDTH,
    "critic_hidden": WIDTH,
    "actor_lr": POSITIVE,
    "critic_lr": POSITIVE,
    "gamma": FRACTION,
    "tau": FRACTION,
    "batch_size": COUNT,
    "buffer_size": COUNT,
    "learning_starts": NON_NEGATIVE,
    "noise_start": NON_NEGATIVE,
    "noise_end": NON_NEGATIVE,
    "noise_fraction": NON_NEGATIVE,
    "flip_start": FRACTION,
    "flip_end": FRACTION,
    "gumbel_temperature": POSITIVE,
    "action_reg": NON_NEGATIVE,
    "policy_every": COUNT,
    "checkpoint_every": COUNT,
    "log_every": COUNT,
    "own_weight": NON_NEGATIVE,
    "team_weight": NON_NEGATIVE,
    "penalty_per_kw": NON_NEGATIVE,
    "move_weight": NON_NEGATIVE,
    "generated_share": FRACTION,
    "power_reg": NON_NEGATIVE,
    "updates_per_step": COUNT,
}
HYPERPARAMETER_CHOICES = {"shift": ("kw", "range"), "power_head": ("sigmoid", "clip")}


ACTION_FORMAT = 2  # 2: on/off head (Gumbel-softmax) + power fraction; 1 (older models): one thresholded raw action
ACT_DIM = 2  # per agent in the critic input: P(on), power fraction u


# ---- networks -----------------------------------------------------------------------------
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


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(s, alpha=tau)


def raw_actions(on: np.ndarray, u: np.ndarray, commitment: bool) -> np.ndarray:
    """The environment's raw action in [-1, 1] (``marl_env.map_actions``) from the two parts:
    off is ``-1``; on runs at ``lb + u·(ub − lb)``; without commitment every group runs."""
    if not commitment:
        return 2.0 * u - 1.0
    return np.where(on > 0.5, u, -1.0)


class ShiftSearch(DistributedSearch):
    """The distributed search with the shift width MADDPG was trained with.

    ``shift="kw"`` is ``DistributedSearch.project`` (every running group moves by the same kW);
    ``shift="range"`` moves each group by the same *fraction of its own range* ``ub − lb`` — the
    space the actors propose in (``lb + u·(ub − lb)``), so a small group (a V2G group with little
    availability) is not pushed off its proposal by as many kW as a large one. Each agent knows
    its own range, so the messages are those of the plain search.
    """

    def __init__(self, problem: Problem, shift: str = "kw") -> None:
        super().__init__(problem)
        self.shift = shift

    def project(self, state: State | Sequence[State], on: np.ndarray, center: np.ndarray) -> SearchResult:
        if self.shift == "kw":
            return super().project(state, on, center)
        on, center = self._rows(on, center)
        lb, ub = state_bounds(self.problem, state, len(center))
        if not self.problem.commitment:
            on = np.ones_like(on)
        response = ShiftResponse(center=np.clip(center, lb, ub), lb=lb, ub=ub, on=on, width=np.maximum(ub - lb, 1.0))
        return self.run(state, response)


@dataclass
class Model:
    actors: Actors
    critics: Critics
    target_actors: Actors
    target_critics: Critics
    shift: str = "kw"  # the search's shift the actors were trained with (not a network)

    @classmethod
    def new(cls, n: int, hp: Hyperparameters) -> Model:
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


# ---- the plugin ---------------------------------------------------------------------------
class Maddpg(lifecycle.LearnerPlugin):
    name = "maddpg"
    description = (
        "MADDPG (CTDE): actors on local observations, centralised critics; balances closed by the distributed search"
    )
    hyperparameter_class = Hyperparameters
    parameters = lifecycle.spec_parameters(Hyperparameters, model="")
    default_train_steps = 24000  # the budget the tables report (docs/learning.md, "MADDPG")
    parameter_ranges = HYPERPARAMETER_RANGES
    parameter_choices = HYPERPARAMETER_CHOICES
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True)
    # a fit of test_steps steps in seconds: learning from the second step, tiny batches
    test_settings = {"learning_starts": 2, "batch_size": 4, "log_every": 2, "checkpoint_every": 2}
    test_steps = 4

    @classmethod
    def label(cls, params) -> Label:
        return Label("MADDPG", "learned, CTDE")

    # ---- training -------------------------------------------------------------------------
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
        n = len(problem.groups)
        lifecycle.seed_everything(seed)
        model = Model.new(n, hp)
        actor_opt = torch.optim.Adam(model.actors.parameters(), lr=hp.actor_lr)
        critic_opt = torch.optim.Adam(model.critics.parameters(), lr=hp.critic_lr)
        sampler = StateSampler(problem, seed=seed, generated_share=hp.generated_share)
        noise_rng = np.random.default_rng(seed + 1)
        buffer = ReplayBuffer(
            hp.buffer_size, {"obs": (n, OBS_DIM), "on": (n,), "u": (n,), "rew": (n,), "done": ()}, seed=seed + 2
        )
        search = ShiftSearch(problem, hp.shift)
        reward = hp.reward()
        monitor = monitor_states(problem)
        monitor_obs = observation_matrix(problem, monitor)
        start_step, elapsed = 0, 0.0
        if ckpt:
            lifecycle.load_networks(model.networks(), ckpt, out_dir, self.name)
            actor_opt.load_state_dict(ckpt.optimizers["actor"])
            critic_opt.load_state_dict(ckpt.optimizers["critic"])
            buffer.load_state_dict(ckpt.state["buffer"])
            lifecycle.restore_rng(ckpt.state["rng"], {"sampler": sampler.rng, "noise": noise_rng})
            start_step, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
        log = TrainingLog(
            out_dir,
            problem=problem,
            monitor=monitor,
            total_steps=steps,
            every=hp.log_every,
            resume=resume,
            progress=progress,
            start_step=start_step,
            elapsed_s=elapsed,
        )
        learner_meta = {
            "action_format": ACTION_FORMAT,
            "observation": {a: list(observation_names(problem, a)) for a in problem.group_names},
            "sampler": {
                "box": sampler.box.to_json(problem),
                "excluded_states": len(sampler.excluded),
                "exclusion_radius_kw": sampler.exclusion_radius_kw,
            },
        }

        def save(step: int) -> None:
            meta = lifecycle.model_meta(
                solver=self.name,
                spec=lifecycle.training_spec(self.name, hp),
                problem=problem,
                hyperparameters=hp,
                seed=seed,
                train_time_s=log.wall_s,
                **learner_meta,
            )
            state = {
                "buffer": buffer.state_dict(),
                "rng": lifecycle.capture_rng({"sampler": sampler.rng, "noise": noise_rng}),
            }
            lifecycle.save(
                out_dir,
                step=step,
                networks=model.networks(),
                optimizers={"actor": actor_opt, "critic": critic_opt},
                state=state,
                meta=meta,
            )

        updates = 0
        try:
            for step in range(start_step + 1, steps + 1):
                state = sampler.sample()
                obs = observation_matrix(problem, [state])  # (1, G, 3)
                on, u = self._explore(model, obs, step, steps, hp, noise_rng)
                if not problem.commitment:
                    on = np.ones(n)
                result = outcome(problem, state, raw_actions(on, u, problem.commitment), reward=reward, search=search)
                buffer.add(obs=obs[0], on=on, u=u, rew=result.rewards, done=np.float32(1.0))

                loss = float("nan")
                if step > hp.learning_starts:
                    for _ in range(hp.updates_per_step):
                        loss = self._update(
                            model,
                            actor_opt,
                            critic_opt,
                            buffer.sample(hp.batch_size),
                            hp,
                            update_policy=updates % hp.policy_every == 0,
                        )
                        updates += 1
                log.loss(step, loss)
                if log.due(step) or step == steps:
                    raw = model.act(monitor_obs, problem.commitment)  # Fig. 5: the shared probe reward
                    log.rewards(
                        step,
                        [
                            lifecycle.probe_reward(
                                problem, s, outcome(problem, s, raw[i], reward=reward, search=search).dispatch
                            )
                            for i, s in enumerate(monitor)
                        ],
                    )
                if step % hp.checkpoint_every == 0 or step == steps:
                    save(step)
        finally:
            log.close()
        return FitReport(
            model_path=out_dir,
            steps=steps,
            time_s=log.wall_s,
            info={"monitor_mean_reward": log.last_reward, "last_loss": log.last_loss},
        )

    @staticmethod
    def _explore(
        model: Model, obs: np.ndarray, step: int, steps: int, hp: Hyperparameters, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exploration: uniform random actions first; then on/off sampled from the actor's
        categorical (plus a decaying flip rate) and Gaussian noise on the power fraction."""
        n = obs.shape[1]
        if step <= hp.learning_starts:
            return (rng.random(n) < 0.5).astype(float), rng.uniform(0.0, 1.0, n)
        frac = min(1.0, step / max(1.0, hp.noise_fraction * steps))
        sigma = hp.noise_start + frac * (hp.noise_end - hp.noise_start)
        flip = hp.flip_start + frac * (hp.flip_end - hp.flip_start)
        margin, u, _ = model.policy(obs)
        on = (rng.random(n) < 1.0 / (1.0 + np.exp(-margin[0]))).astype(float)  # a draw from softmax(logits)
        on = np.where(rng.random(n) < flip, 1.0 - on, on)
        return on, np.clip(u[0] + rng.normal(0.0, sigma, n), 0.0, 1.0)

    @staticmethod
    def _update(
        model: Model, actor_opt, critic_opt, batch: dict[str, np.ndarray], hp: Hyperparameters, update_policy: bool
    ) -> float:
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

    # ---- execution ------------------------------------------------------------------------
    def load(self, problem: Problem) -> Model:
        """The trained actors, read from disk once per (model folder, problem) and then reused."""
        torch.set_num_threads(1)
        folder = Path(self.params["model"])
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)  # agents keyed by name

        def build(ckpt: Checkpoint) -> Model:
            if ckpt.meta.get("action_format") != ACTION_FORMAT:
                raise ModelFileError(folder / "model.json", "trained by an older MADDPG (other action format)")
            hp = self.trained_hyperparameters(ckpt, folder)
            model = Model.new(len(problem.groups), hp)
            lifecycle.load_networks(model.networks(), ckpt, folder, self.name)
            # Execution in double precision: float32 matrix products round differently with the
            # batch size, and a day decided in one batch must equal the states decided one by one.
            model.actors.double()
            return model

        return self._model.get(folder, problem, self.name, build)

    def prepare(self, problem: Problem) -> None:
        self.load(problem)

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        torch.set_num_threads(1)
        model = self.load(problem)
        trained = lifecycle.trained_problem(self.params["model"], problem, self.name)  # listed as at training
        search = ShiftSearch(trained, model.shift)
        if not states:
            return []
        start = time.perf_counter()
        margin, u, on = model.policy(observation_matrix(trained, states))  # every actor on every state at once
        raw = raw_actions(on, u, trained.commitment)
        answers = decide_batch(trained, states, raw, search, start, eagerness=margin)
        for a in answers:
            a.dispatch = lifecycle.to_problem_order(a.dispatch, trained, problem)
        return answers


def decide_batch(
    problem: Problem,
    states: Sequence[State],
    raw: np.ndarray,
    search: DistributedSearch,
    start: float,
    eagerness: np.ndarray | None = None,
) -> list[Answer]:
    """Actors' raw actions ``(B, G)`` -> mapping -> one distributed search over all states; where a
    learned commitment cannot meet the balances, a cost-blind repair (that state alone) switches
    groups in the order of their ``eagerness`` to run (default: the raw actions; MADDPG passes
    its on/off logit margin) — most eager first on, least eager first off — until it can. Each
    state's answer equals its one-by-one answer; messages are counted per state."""
    eagerness = raw if eagerness is None else eagerness
    mapped = map_actions(problem, states, raw)
    batch = search.project(list(states), mapped.on, mapped.power)
    answers = []
    for j, state in enumerate(states):
        on, result = mapped.on[j].copy(), batch.row(j)
        messages, repaired = result.messages, 0
        if not result.feasible[0]:
            for candidate in _repairs(on, eagerness[j]):
                repaired += 1
                result = search.project(state, candidate, mapped.power[j])
                messages += result.messages
                if result.feasible[0]:
                    on = candidate
                    break
        dispatch: Dispatch = result.dispatch(problem, on)
        moved = np.abs(mapped.power[j] - dispatch.power)
        answers.append(
            (
                dispatch,
                result,
                {
                    "moved_mean_kw": float(moved.mean()),
                    "moved_max_kw": float(moved.max()),
                    "messages": int(messages),
                    "commitment_repaired": repaired,
                    "raw_actions": {g: float(a) for g, a in zip(problem.group_names, raw[j])},
                },
            )
        )
    elapsed = (time.perf_counter() - start) / len(states)  # all agents and the search, per state
    out = []
    for dispatch, result, info in answers:
        info["decision_s"] = info["decision_s_batched"] = elapsed
        if not result.feasible[0]:  # the claim must match the dispatch: the evaluator will find it infeasible
            out.append(Answer(dispatch, Status.ERROR, "no repaired commitment met the balances", elapsed, info))
        else:
            out.append(Answer(dispatch, Status.FEASIBLE, "", elapsed, info))
    return out


def _repairs(on: np.ndarray, eagerness: np.ndarray):
    """Commitments to try: switch on off-groups one by one (most eager first), then, from the
    original, switch off running groups one by one (least eager first)."""
    order = np.argsort(-eagerness)
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
