"""MADDPG (Lowe et al., 2017): centralised training, decentralised execution.

Two modes (``sharing``), both with an actor that outputs an on/off choice (Gumbel-softmax) and a
power fraction, the environment pieces of ``dispatchbench.learn.marl_env`` (mapping, distributed
search, reward) at training and at execution, and no cost coefficient read by any agent:

- ``sharing="type"`` (default): one actor and one critic per group type (FDC, ASC, V2G) on
  size-independent inputs, a mean-field critic and difference rewards
  (``dispatchbench/learn/maddpg/shared.py``, ``features.py``). One model decides at any size: trained
  on one problem (``fit``) or on generated instances of several sizes (``fit_instances``);
- ``sharing="agent"``: a network per agent with a critic on every agent's observation and action
  (``dispatchbench/learn/maddpg/per_agent.py``), a model per instance.

Execution decides a call's states in one batch (every actor on all observations at once, one
vectorised search, ``learn/maddpg/decision.py``) with answers equal to one-by-one decisions; a
learned commitment that cannot meet the balances is repaired without costs
(``learn/maddpg/commitment_repair.py``). The training loops are here, top to bottom.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dispatchbench.contract.learner import FitReport
from dispatchbench.contract.solver import Answer, Capabilities, Label
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import META_FILE, Checkpoint, ModelFileError, load_checkpoint, read_meta
from dispatchbench.learn.lifecycle import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, WIDTH
from dispatchbench.learn.maddpg import per_agent, shared
from dispatchbench.learn.maddpg.decision import decide_batch, raw_actions
from dispatchbench.learn.maddpg.features import FEATURES, MEAN_FIELD, RatingRanges, agent_features, layout
from dispatchbench.learn.maddpg.shift_search import ShiftSearch
from dispatchbench.learn.maddpg.training_cost import TrainingCost
from dispatchbench.learn.maddpg.training_states import PooledSampler, TrainingBudget
from dispatchbench.learn.marl_env import (
    OBS_DIM,
    RewardConfig,
    StateSampler,
    monitor_states,
    observation_matrix,
    observation_names,
    outcome,
)
from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.learn.training_log import TrainingLog
from dispatchbench.model.problem import Problem, State

__all__ = ["Hyperparameters", "Maddpg", "ShiftSearch", "TrainingBudget", "decide_batch", "raw_actions"]


@dataclass
class Hyperparameters:
    sharing: str = "type"  # one network per group type ("type") or per agent ("agent"): docs/learning.md
    team_reward: str = "difference"  # type sharing: difference rewards, or the environment's reward ("system")
    actor_hidden: int = 64
    critic_hidden: int = 64
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.95  # irrelevant for one-step episodes (done = 1), kept for the general update
    tau: float = 0.01  # soft-update rate of the target networks
    batch_size: int = 128  # per type with type sharing
    buffer_size: int = 100_000  # transitions (agent) or agent rows per type (type)
    learning_starts: int = 500  # uniform random actions before the first update
    noise_start: float = 0.3  # Gaussian exploration noise on the power fraction u ∈ [0, 1], decayed linearly ...
    noise_end: float = 0.02  # ... to this value ...
    noise_fraction: float = 0.6  # ... over this fraction of the steps (agent sharing; the flip rate decays alike)
    explore_steps: int = 10_000  # ... over this many steps (type sharing: a schedule in steps, for time budgets)
    flip_start: float = 0.1  # probability that an agent's sampled on/off choice is flipped, decayed ...
    flip_end: float = 0.0  # ... to this value
    gumbel_temperature: float = 1.0  # Gumbel-softmax temperature of the on/off head in the actor update
    onoff_update: str = "gumbel"  # type sharing: on/off head trained by Gumbel-softmax, or by its exact "expected" Q
    action_reg: float = 1e-3  # weight of the squared actor outputs (logits, pre-activation) in the actor loss
    policy_every: int = 2  # actor and target updates every this many critic updates
    checkpoint_every: int = 2000
    log_every: int = 100
    own_weight: float = 0.1  # reward weights (marl_env.RewardConfig; the difference reward uses move and penalty)
    team_weight: float = 1.0
    penalty_per_kw: float = 12.0  # per kW of violation (env default 50): see docs/learning.md, "MADDPG"
    move_weight: float = 2.0  # per kW the search moved an agent's own proposal: docs/learning.md, "Power split"
    generated_share: float = 0.5  # share of training states drawn from the day generator (training seeds 0-999)
    pool_days: int = 8  # type sharing: generated training days per family, built once and reused
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
    "explore_steps": COUNT,
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
    "pool_days": NON_NEGATIVE,
    "power_reg": NON_NEGATIVE,
    "updates_per_step": COUNT,
}
HYPERPARAMETER_CHOICES = {
    "sharing": ("type", "agent"),
    "team_reward": ("difference", "system"),
    "onoff_update": ("gumbel", "expected"),
    "shift": ("kw", "range"),
    "power_head": ("sigmoid", "clip"),
}

ACTION_FORMAT = 2  # 2: on/off head (Gumbel-softmax) + power fraction; 1 (older models): one thresholded raw action
ANY_SIZE = "any-size"  # problem_fingerprint of a model trained on several instances (it checks ratings instead)
KIND = "CTDE: centralised critic"
KIND_DIFFERENCE = "CTDE: centralised critic; difference rewards from a central evaluator of counterfactual plans"


def sharing_label(hp: Hyperparameters) -> str:
    return "per type (central copy)" if hp.sharing == "type" else "none"


def training_kind(hp: Hyperparameters) -> str:
    return KIND_DIFFERENCE if hp.sharing == "type" and hp.team_reward == "difference" else KIND


# ---- the plugin ---------------------------------------------------------------------------
class Maddpg(lifecycle.LearnerPlugin):
    name = "maddpg"
    description = (
        "MADDPG (CTDE): actors on local observations (one per group type by default), centralised critics; "
        "balances closed by the distributed search"
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
        if params.get("sharing", "type") == "agent":
            return Label("MADDPG (per agent)", "learned, CTDE")
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
        if hp.sharing == "agent":
            return self._fit_agents(problem, hp, ckpt, seed=seed, steps=steps, out_dir=out_dir, progress=progress)
        return self._fit_shared(
            [problem], hp, ckpt, seed=seed, budget=TrainingBudget(steps=steps), out_dir=out_dir, progress=progress
        )

    def fit_instances(
        self,
        problems: Sequence[Problem],
        *,
        seed: int,
        budget: TrainingBudget,
        out_dir: Path,
        progress: bool = False,
    ) -> FitReport:
        """Train one shared model on several problems (e.g. ``training_states.generated_instances``),
        cycling through them one state per step, until ``budget`` is spent. The model decides any
        problem whose group types and ratings lie within those it was trained on."""
        hp = self.hyperparameters()
        if hp.sharing != "type":
            raise ValueError(f"{self.name}: training on several instances needs sharing=type (got {hp.sharing!r})")
        if not problems:
            raise ValueError(f"{self.name}: fit_instances needs at least one problem")
        return self._fit_shared(
            list(problems), hp, None, seed=seed, budget=budget, out_dir=Path(out_dir), progress=progress
        )

    def _fit_shared(
        self,
        problems: list[Problem],
        hp: Hyperparameters,
        ckpt: Checkpoint | None,
        *,
        seed: int,
        budget: TrainingBudget,
        out_dir: Path,
        progress: bool,
    ) -> FitReport:
        lifecycle.seed_everything(seed)
        model = shared.SharedModel.new(hp)
        actor_opt = torch.optim.Adam(model.actors.parameters(), lr=hp.actor_lr)
        critic_opt = torch.optim.Adam(model.critics.parameters(), lr=hp.critic_lr)
        samplers = [
            PooledSampler(p, seed=seed + 7919 * k, generated_share=hp.generated_share, pool_days=hp.pool_days)
            for k, p in enumerate(problems)
        ]
        searches = [ShiftSearch(p, hp.shift) for p in problems]
        noise_rng = np.random.default_rng(seed + 1)
        buffers = shared.new_buffers(hp.buffer_size, seed + 2)
        reward = hp.reward()
        monitor = monitor_states(problems[0])
        cost = TrainingCost()
        generators = {"noise": noise_rng, **{f"sampler{k}": s.rng for k, s in enumerate(samplers)}}
        start_step, elapsed = 0, 0.0
        if ckpt:
            lifecycle.load_networks(model.networks(), ckpt, out_dir, self.name)
            actor_opt.load_state_dict(ckpt.optimizers["actor"])
            critic_opt.load_state_dict(ckpt.optimizers["critic"])
            for buffer, state in zip(buffers, ckpt.state["buffers"]):
                buffer.load_state_dict(state)
            lifecycle.restore_rng(ckpt.state["rng"], generators)
            start_step, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
            cost = TrainingCost.restore(ckpt.state.get("cost"))
        log = TrainingLog(
            out_dir,
            problem=problems[0],
            monitor=monitor,
            total_steps=budget.steps or 0,
            every=hp.log_every,
            resume=ckpt is not None,
            progress=progress,
            start_step=start_step,
            elapsed_s=elapsed,
        )
        ranges = RatingRanges.of(problems)
        deployed = sum(len(p.groups) for p in problems)

        def save(step: int) -> None:
            info = cost.info(
                train_time_s=log.wall_s,
                train_steps=step,
                deployed_agents=deployed,
                sharing=sharing_label(hp),
                kind=training_kind(hp),
            )
            meta = lifecycle.model_meta(
                solver=self.name,
                spec=lifecycle.training_spec(self.name, hp),
                problem=problems[0],
                hyperparameters=hp,
                seed=seed,
                train_time_s=log.wall_s,
                action_format=ACTION_FORMAT,
                features=list(FEATURES),
                mean_field=list(MEAN_FIELD),
                rating_ranges=ranges.to_json(),
                trained_on=[p.name for p in problems],
                sampler={"generated_share": hp.generated_share, "pool_days": hp.pool_days, "seeds": "training"},
                training_cost=info,
            )
            if len(problems) > 1:  # decides by ratings, not by one problem's fingerprint
                meta.update(problem=f"generated: {', '.join(p.name for p in problems)}")
                meta.update(problem_fingerprint=ANY_SIZE, group_order=[], region_order=[])
            state = {
                "buffers": [b.state_dict() for b in buffers],
                "rng": lifecycle.capture_rng(generators),
                "cost": cost.state(),
            }
            lifecycle.save(
                out_dir,
                step=step,
                networks=model.networks(),
                optimizers={"actor": actor_opt, "critic": critic_opt},
                state=state,
                meta=meta,
            )

        step, updates = start_step, 0
        logged = saved = start_step
        try:
            while not budget.exhausted(step, log.wall_s):
                step += 1
                k = (step - 1) % len(problems)
                problem, search = problems[k], searches[k]
                state = samplers[k].sample()
                features = agent_features(problem, [state])
                types = layout(problem).type_index
                on, u = shared.explore(model, features, types, step, hp, noise_rng)
                if not problem.commitment:
                    on = np.ones(len(on))
                result = shared.step_rewards(
                    problem, state, raw_actions(on, u, problem.commitment), reward, search, hp.team_reward
                )
                shared.remember(buffers, problem, state, features, result, u)
                cost.add_step(
                    agents=len(problem.groups),
                    evaluations=result.evaluations,
                    search_messages=result.outcome.messages,
                    scalars_per_agent=len(FEATURES) + 3,
                )
                loss = float("nan")
                if step > hp.learning_starts:
                    for _ in range(hp.updates_per_step):
                        loss = shared.update(
                            model, actor_opt, critic_opt, buffers, hp, update_policy=updates % hp.policy_every == 0
                        )
                        updates += 1
                log.loss(step, loss)
                if log.due(step):
                    self._log_monitor(log, step, model, problems[0], monitor, reward, searches[0], cost)
                    logged = step
                if step % hp.checkpoint_every == 0:
                    save(step)
                    saved = step
            if logged != step:
                self._log_monitor(log, step, model, problems[0], monitor, reward, searches[0], cost)
            if saved != step:
                save(step)
        finally:
            log.close()
        info = cost.info(
            train_time_s=log.wall_s,
            train_steps=step,
            deployed_agents=deployed,
            sharing=sharing_label(hp),
            kind=training_kind(hp),
        )
        info.update(monitor_mean_reward=log.last_reward, last_loss=log.last_loss)
        return FitReport(model_path=out_dir, steps=step, time_s=log.wall_s, info=info)

    @staticmethod
    def _log_monitor(log, step, model, problem, monitor, reward, search, cost: TrainingCost) -> None:
        """Fig. 5: the shared probe reward of the deterministic policy at the monitor states."""
        raw, _ = shared.act(model, problem, monitor)
        log.rewards(
            step,
            [
                lifecycle.probe_reward(problem, s, outcome(problem, s, raw[i], reward=reward, search=search).dispatch)
                for i, s in enumerate(monitor)
            ],
        )
        cost.monitor_evaluations += len(monitor)

    def _fit_agents(
        self,
        problem: Problem,
        hp: Hyperparameters,
        ckpt: Checkpoint | None,
        *,
        seed: int,
        steps: int,
        out_dir: Path,
        progress: bool,
    ) -> FitReport:
        n = len(problem.groups)
        lifecycle.seed_everything(seed)
        model = per_agent.Model.new(n, hp)
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
        cost = TrainingCost()
        start_step, elapsed = 0, 0.0
        if ckpt:
            lifecycle.load_networks(model.networks(), ckpt, out_dir, self.name)
            actor_opt.load_state_dict(ckpt.optimizers["actor"])
            critic_opt.load_state_dict(ckpt.optimizers["critic"])
            buffer.load_state_dict(ckpt.state["buffer"])
            lifecycle.restore_rng(ckpt.state["rng"], {"sampler": sampler.rng, "noise": noise_rng})
            start_step, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
            cost = TrainingCost.restore(ckpt.state.get("cost"))
        log = TrainingLog(
            out_dir,
            problem=problem,
            monitor=monitor,
            total_steps=steps,
            every=hp.log_every,
            resume=ckpt is not None,
            progress=progress,
            start_step=start_step,
            elapsed_s=elapsed,
        )

        def info(step: int) -> dict[str, Any]:
            return cost.info(
                train_time_s=log.wall_s, train_steps=step, deployed_agents=n, sharing="none", kind=training_kind(hp)
            )

        def save(step: int) -> None:
            meta = lifecycle.model_meta(
                solver=self.name,
                spec=lifecycle.training_spec(self.name, hp),
                problem=problem,
                hyperparameters=hp,
                seed=seed,
                train_time_s=log.wall_s,
                action_format=ACTION_FORMAT,
                observation={a: list(observation_names(problem, a)) for a in problem.group_names},
                sampler={
                    "box": sampler.box.to_json(problem),
                    "excluded_states": len(sampler.excluded),
                    "exclusion_radius_kw": sampler.exclusion_radius_kw,
                },
                training_cost=info(step),
            )
            state = {
                "buffer": buffer.state_dict(),
                "rng": lifecycle.capture_rng({"sampler": sampler.rng, "noise": noise_rng}),
                "cost": cost.state(),
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
                on, u = per_agent.explore(model, obs, step, steps, hp, noise_rng)
                if not problem.commitment:
                    on = np.ones(n)
                result = outcome(problem, state, raw_actions(on, u, problem.commitment), reward=reward, search=search)
                buffer.add(obs=obs[0], on=on, u=u, rew=result.rewards, done=np.float32(1.0))
                cost.add_step(agents=n, evaluations=1, search_messages=result.messages, scalars_per_agent=OBS_DIM + 3)

                loss = float("nan")
                if step > hp.learning_starts:
                    for _ in range(hp.updates_per_step):
                        loss = per_agent.update(
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
                    cost.monitor_evaluations += len(monitor)
                if step % hp.checkpoint_every == 0 or step == steps:
                    save(step)
        finally:
            log.close()
        out = info(steps)
        out.update(monitor_mean_reward=log.last_reward, last_loss=log.last_loss)
        return FitReport(model_path=out_dir, steps=steps, time_s=log.wall_s, info=out)

    # ---- execution ------------------------------------------------------------------------
    def _any_size_meta(self) -> dict[str, Any] | None:
        folder = self.params["model"]
        if not str(folder):
            return None
        meta = read_meta(folder)
        return meta if meta.get("problem_fingerprint") == ANY_SIZE else None

    def skip(self, problem: Problem) -> str | None:
        try:
            if self._any_size_meta() is None:
                return super().skip(problem)
            self.load(problem)
        except ModelFileError as exc:
            return str(exc)
        return None

    def load(self, problem: Problem) -> per_agent.Model | shared.SharedModel:
        """The trained actors, read from disk once per (model folder, problem) and then reused.
        A model trained on several instances is checked against the problem's group types and
        ratings instead of one problem's fingerprint."""
        torch.set_num_threads(1)
        folder = Path(self.params["model"])
        any_size = self._any_size_meta()
        if any_size is not None:
            why = RatingRanges.from_json(any_size.get("rating_ranges", {})).outside(problem)
            if why:
                raise ModelFileError(
                    folder / META_FILE, why, "train a model on instances with such groups (or use this one within them)"
                )
            key = (str(folder.resolve()), ANY_SIZE)
            cached = getattr(self, "_any_size_model", None)
            if cached is None or cached[0] != key:
                self._any_size_model = (key, self._build(load_checkpoint(folder), folder, len(problem.groups)))
            return self._any_size_model[1]
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)  # agents keyed by name
        return self._model.get(folder, problem, self.name, lambda ckpt: self._build(ckpt, folder, len(problem.groups)))

    def _build(self, ckpt: Checkpoint, folder: Path, n_groups: int) -> per_agent.Model | shared.SharedModel:
        if ckpt.meta.get("action_format") != ACTION_FORMAT:
            raise ModelFileError(folder / "model.json", "trained by an older MADDPG (other action format)")
        hp = self.trained_hyperparameters(ckpt, folder)
        model = shared.SharedModel.new(hp) if hp.sharing == "type" else per_agent.Model.new(n_groups, hp)
        lifecycle.load_networks(model.networks(), ckpt, folder, self.name)
        # Execution in double precision: float32 matrix products round differently with the
        # batch size, and a day decided in one batch must equal the states decided one by one.
        model.actors.double()
        return model

    def prepare(self, problem: Problem) -> None:
        self.load(problem)

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        torch.set_num_threads(1)
        model = self.load(problem)
        if self._any_size_meta() is not None:
            trained = problem  # agents are keyed by type and ratings: any order, any size
        else:
            trained = lifecycle.trained_problem(self.params["model"], problem, self.name)  # listed as at training
        search = ShiftSearch(trained, model.shift)
        if not states:
            return []
        start = time.perf_counter()
        if isinstance(model, shared.SharedModel):
            raw, margin = shared.act(model, trained, states)  # every actor on every state at once
            heard = shared.observation_messages(search, trained)
        else:
            margin, u, on = model.policy(observation_matrix(trained, states))
            raw = raw_actions(on, u, trained.commitment)
            heard = 0  # counted as before: the search's messages only
        answers = decide_batch(trained, states, raw, search, start, eagerness=margin, extra_messages=heard)
        for a in answers:
            a.dispatch = lifecycle.to_problem_order(a.dispatch, trained, problem)
        return answers
