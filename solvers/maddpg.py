"""MADDPG (Lowe et al., 2017): centralised training, decentralised execution.

Two modes (``sharing``), both with an actor that outputs an on/off choice (Gumbel-softmax) and a
power fraction, the environment pieces of ``dispatchbench.learn.marl_env`` (mapping, distributed
search, reward) at training and at execution, and no cost coefficient read by any agent:

- ``sharing="type"``: one actor and one critic per group type (FDC, ASC, V2G) on size-independent
  inputs (ratings, demand ratios and, from each agent's own metered bills, its place in the merit
  order: ``cost_inputs``), a mean-field critic, difference rewards and an on/off head trained on
  the critic's exact ``Q(on) − Q(off)`` (``dispatchbench/learn/maddpg/shared.py``, ``features.py``).
  Trained on generated instances of several sizes (``fit(None, training_set=...)``,
  ``dispatchbench train --generated 4,8,16,32``), one model decides any problem whose group types
  and ratings it saw (``lifecycle.uncovered`` refuses the rest);
- ``sharing="agent"``: a network per agent with a critic on every agent's observation and action
  (``dispatchbench/learn/maddpg/per_agent.py``), a model per instance;
- ``sharing="auto"`` (default): per agent when trained on one problem (the paper-size rows keep
  the per-agent MADDPG their defaults were chosen for), per type for generated instances. The
  resolved choice is what ``model.json`` records (``hyperparameters.sharing``,
  ``parameter_sharing``, ``training_kind``).

Training stops at the step budget or before the wall-time budget (``contract.training.TrainingBudget``);
the steps never read the clock, so a run stopped by time at step N is reproduced by ``steps=N``
with the spec the model records.

Execution decides a call's states in one batch (every actor on all observations at once, one
vectorised search, ``learn/maddpg/decision.py``) with answers equal to one-by-one decisions; a
learned commitment that cannot meet the balances is repaired without costs
(``learn/maddpg/commitment_repair.py``). The training loops are here, top to bottom.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dispatchbench.contract.learner import FitReport
from dispatchbench.contract.solver import Answer, Capabilities, Label
from dispatchbench.contract.training import TrainingBudget, TrainingSet
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import ANY_SIZE, META_FILE, Checkpoint, ModelFileError
from dispatchbench.learn.lifecycle import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, WIDTH
from dispatchbench.learn.maddpg import per_agent, shared
from dispatchbench.learn.maddpg.decision import decide_batch, raw_actions
from dispatchbench.learn.maddpg.features import MEAN_FIELD, feature_names, layout
from dispatchbench.learn.maddpg.shift_search import ShiftSearch
from dispatchbench.learn.maddpg.training_cost import TrainingCost
from dispatchbench.learn.maddpg.training_states import PooledSampler
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

__all__ = ["Hyperparameters", "Maddpg", "ShiftSearch", "decide_batch", "raw_actions"]


@dataclass
class Hyperparameters:
    # one network per group type ("type") or per agent ("agent"); "auto": per agent when trained on
    # one problem (the paper-size rows: today's per-agent MADDPG), per type for generated instances
    sharing: str = "auto"
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
    noise_fraction: float = 0.6  # ... over explore_steps (the flip rate decays alike); 0 resolves at fit to ...
    explore_steps: int = 0  # ... noise_fraction x the step budget (agent) or 10,000 (type, or a budget of time only)
    flip_start: float = 0.1  # probability that an agent's sampled on/off choice is flipped, decayed ...
    flip_end: float = 0.0  # ... to this value
    gumbel_temperature: float = 1.0  # Gumbel-softmax temperature of the on/off head in the actor update
    # type sharing: on/off head trained by its exact "expected" Q, p·Q(on) + (1 − p)·Q(off), or by
    # Gumbel-softmax (chosen on validation: docs/learning.md, "Sharing"; per agent: Gumbel-softmax always)
    onoff_update: str = "expected"
    action_reg: float = 1e-3  # weight of the squared actor outputs (logits, pre-activation) in the actor loss
    policy_every: int = 2  # actor and target updates every this many critic updates
    checkpoint_every: int = 2000
    log_every: int = 100
    own_weight: float = 0.1  # reward weights (marl_env.RewardConfig; the difference reward uses move and penalty)
    team_weight: float = 1.0
    penalty_per_kw: float = 12.0  # per kW of violation (env default 50): chosen on validation, learning.md "Penalty"
    move_weight: float = 2.0  # per kW the search moved an agent's own proposal: docs/learning.md, "Power split"
    generated_share: float = 0.5  # share of training states drawn from the day generator (training seeds 0-999)
    pool_days: int = 8  # type sharing: generated training days per family, built once and reused
    instances_per_size: int = 2  # --generated: training instances per size (generator seeds: training split)
    shift: str = "kw"  # how the search moves running groups: the same kW ("kw") or kW ∝ their range ("range")
    power_head: str = (
        "sigmoid"  # u = sigmoid(x), or "clip": u = clip(x, 0, 1) with the gradient passed straight through
    )
    power_reg: float = 0.0  # sigmoid: weight of x² in the actor loss; clip: weight of x's excess outside [0, 1]²
    updates_per_step: int = 1  # gradient updates per environment step
    # type sharing: what the actors hear of running costs, from each agent's own metered bills
    # (learn/maddpg/features.py): nothing ("none"), its own cost against the system's ("own"), or
    # also its place in the system's and its region's merit order ("merit")
    cost_inputs: str = "merit"

    def reward(self) -> RewardConfig:
        return RewardConfig(self.own_weight, self.team_weight, self.penalty_per_kw, self.move_weight)


# Checked when a spec is parsed (``maddpg[actor_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES: dict[str, tuple[float | None, float | None]] = {
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
    "explore_steps": NON_NEGATIVE,
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
    "instances_per_size": COUNT,
    "power_reg": NON_NEGATIVE,
    "updates_per_step": COUNT,
}
HYPERPARAMETER_CHOICES = {
    "sharing": ("auto", "type", "agent"),
    "team_reward": ("difference", "system"),
    "onoff_update": ("gumbel", "expected"),
    "shift": ("kw", "range"),
    "power_head": ("sigmoid", "clip"),
    "cost_inputs": ("none", "own", "merit"),
}

ACTION_FORMAT = 2  # 2: on/off head (Gumbel-softmax) + power fraction; 1 (older models): one thresholded raw action
INSTANCE = "instance"  # model.json scope of a model of one problem (ANY_SIZE: trained on generated instances)
EXPLORE_STEPS = 10_000  # explore_steps=0 with type sharing, or under a budget of wall time alone


def resolved(hp: Hyperparameters, *, any_size: bool, budget: TrainingBudget) -> Hyperparameters:
    """``sharing=auto`` and ``explore_steps=0`` made concrete when training starts (what
    model.json then records, so the recorded spec and ``steps`` reproduce the model): per agent
    on one problem, per type for any size; the per-agent schedule spans ``noise_fraction`` of the
    step budget, as it always has (14,400 of the 24,000 default steps)."""
    sharing = hp.sharing if hp.sharing != "auto" else ("type" if any_size else "agent")
    explore = hp.explore_steps
    if explore == 0:
        if sharing == "agent" and budget.steps is not None:
            explore = max(1, round(hp.noise_fraction * budget.steps))
        else:
            explore = EXPLORE_STEPS
    return replace(hp, sharing=sharing, explore_steps=int(explore))


# ---- the plugin ---------------------------------------------------------------------------
class Maddpg(lifecycle.LearnerPlugin):
    name = "maddpg"
    description = (
        "MADDPG (CTDE): actors on local observations, centralised critics (per agent on one problem, one "
        "per group type for any size: sharing=auto|agent|type); balances closed by the distributed search"
    )
    hyperparameter_class = Hyperparameters
    sharing_parameter = "sharing"
    parameters = lifecycle.spec_parameters(Hyperparameters, model="")
    default_train_steps = 24000  # the budget the tables report (docs/learning.md, "MADDPG")
    default_train_seconds = 840.0  # ... capped by 14 minutes of training: `train` ends within 15 at any size
    any_size = True
    parameter_ranges = HYPERPARAMETER_RANGES
    parameter_choices = HYPERPARAMETER_CHOICES
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True, reads_costs=False)
    # a fit of test_steps steps in seconds: learning from the second step, tiny batches, one
    # generated instance per size and no generated days to build
    test_settings = {
        "learning_starts": 2,
        "batch_size": 4,
        "log_every": 2,
        "checkpoint_every": 2,
        "instances_per_size": 1,
        "pool_days": 0,
    }
    test_steps = 4

    @classmethod
    def label(cls, params) -> Label:
        """One row per sharing mode; the family says how the networks are shared (MADDPG trains
        with centralised critics either way: CTDE)."""
        sharing = params.get("sharing", "auto")
        if sharing == "agent":
            return Label("MADDPG (per agent)", "learned, CTDE")
        if sharing == "type":
            return Label("MADDPG (per type)", "learned, CTDE, networks shared per type")
        return Label("MADDPG", "learned, CTDE (per agent on one problem, shared per type for any size)")

    # ---- training -------------------------------------------------------------------------
    def fit(
        self,
        problem: Problem | None,
        *,
        seed: int,
        steps: int | None = None,
        out_dir: Path,
        resume: bool = False,
        progress: bool = False,
        budget: TrainingBudget | None = None,
        training_set: TrainingSet | None = None,
        **options,
    ) -> FitReport:
        out_dir = Path(out_dir)
        budget = TrainingBudget.of(steps, budget)
        if (problem is None) == (training_set is None):
            raise ValueError(f"{self.name}: fit() takes a problem or a training_set (generated instances), not both")
        if problem is not None:
            problem, ckpt, hp = self.begin_fit(problem, out_dir, resume=resume, options=options)
            hp = resolved(hp, any_size=False, budget=budget)
            if hp.sharing == "agent":
                return self._fit_agents(problem, hp, ckpt, seed=seed, budget=budget, out_dir=out_dir, progress=progress)
            return self._fit_shared(
                [problem], [], None, hp, ckpt, seed=seed, budget=budget, out_dir=out_dir, progress=progress
            )
        assert training_set is not None
        ckpt, hp = self.begin_generated_fit(training_set, out_dir, resume=resume, options=options)
        hp = resolved(hp, any_size=True, budget=budget)
        specs = (
            [(int(r), int(s)) for r, s in ckpt.meta["training_set"]["instances"]]
            if ckpt is not None
            else lifecycle.generated_instances(training_set.sizes, hp.instances_per_size, seed)
        )
        problems = [generate_problem(regions, gen_seed) for regions, gen_seed in specs]
        return self._fit_shared(
            problems, specs, training_set, hp, ckpt, seed=seed, budget=budget, out_dir=out_dir, progress=progress
        )

    def _fit_shared(
        self,
        problems: list[Problem],
        specs: list[tuple[int, int]],
        training_set: TrainingSet | None,
        hp: Hyperparameters,
        ckpt: Checkpoint | None,
        *,
        seed: int,
        budget: TrainingBudget,
        out_dir: Path,
        progress: bool,
    ) -> FitReport:
        """Networks per type on ``problems`` (one, or generated instances: ``training_set``), one
        state of one instance per step, the instances taking turns."""
        elapsed = lifecycle.TrainingClock()
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
        names = feature_names(hp.cost_inputs)
        buffers = shared.new_buffers(hp.buffer_size, seed + 2, len(names))
        reward = hp.reward()
        watched = int(np.argmax([len(p.groups) for p in problems]))  # Fig. 5 on the largest instance
        monitor = monitor_states(problems[watched])
        cost = TrainingCost()
        generators = {"noise": noise_rng, **{f"sampler{k}": s.rng for k, s in enumerate(samplers)}}
        start_step = 0
        if ckpt:
            start_step, cost = self._resume(ckpt, out_dir, model, actor_opt, critic_opt, generators, elapsed)
            for buffer, state in zip(buffers, ckpt.state["buffers"], strict=True):
                buffer.load_state_dict(state)
        log = TrainingLog(
            out_dir,
            problem=problems[watched],
            monitor=monitor,
            total_steps=budget.steps or 0,
            every=hp.log_every,
            resume=ckpt is not None,
            progress=progress,
            start_step=start_step,
            elapsed_s=elapsed.earlier,
        )
        deployed = sum(len(p.groups) for p in problems)

        def info(step: int, stopped_by: str) -> dict[str, Any]:
            return training_info(cost, hp, budget, step=step, time_s=elapsed(), agents=deployed, stopped_by=stopped_by)

        def save(step: int, stopped_by: str) -> None:
            own = {
                "action_format": ACTION_FORMAT,
                "features": list(names),
                "mean_field": list(MEAN_FIELD),
                "sampler": {"generated_share": hp.generated_share, "pool_days": hp.pool_days, "seeds": "training"},
                **info(step, stopped_by),
            }
            if training_set is None:
                meta = instance_meta(self.name, problems[0], hp, seed, elapsed(), own)
            else:
                meta = {
                    "solver": self.name,
                    "spec": lifecycle.training_spec(self.name, hp),
                    "problem": training_set.describe(),
                    "problem_fingerprint": ANY_SIZE,
                    "scope": ANY_SIZE,
                    "training_set": {"sizes": list(training_set.sizes), "instances": [list(i) for i in specs]},
                    "coverage": lifecycle.rating_coverage(problems),
                    "hyperparameters": asdict(hp),
                    "seed": int(seed),
                    "versions": lifecycle.versions(),
                    **own,
                }
            state = {
                "buffers": [b.state_dict() for b in buffers],
                "rng": lifecycle.capture_rng(generators),
                "cost": cost.state(),
            }
            self._checkpoint(out_dir, step, model, actor_opt, critic_opt, state, meta)

        updates = 0

        def one_step(step: int) -> None:
            nonlocal updates
            k = (step - 1) % len(problems)
            problem, search = problems[k], searches[k]
            state = samplers[k].sample()
            features = model.features(problem, [state])
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
                scalars_per_agent=len(names) + 3,
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
                self._log_monitor(log, step, model, problems[watched], monitor, reward, searches[watched], cost)
            if step % hp.checkpoint_every == 0:
                save(step, "")

        try:
            step, stopped = lifecycle.run_steps(start_step, budget, elapsed, one_step)
            if not log.due(step):
                self._log_monitor(log, step, model, problems[watched], monitor, reward, searches[watched], cost)
            save(step, stopped)
        finally:
            log.close()
        out = info(step, stopped)
        out.update(monitor_mean_reward=log.last_reward, last_loss=log.last_loss, seed=seed, hyperparameters=asdict(hp))
        return FitReport(model_path=out_dir, steps=step, time_s=elapsed(), info=out)

    def _resume(self, ckpt, out_dir, model, actor_opt, critic_opt, generators, clock) -> tuple[int, TrainingCost]:
        """Both trainings' way back into a checkpoint: networks, optimisers, random streams, the
        clock and the training cost so far. Returns the step to go on from and the cost."""
        lifecycle.load_networks(model.networks(), ckpt, out_dir, self.name)
        actor_opt.load_state_dict(ckpt.optimizers["actor"])
        critic_opt.load_state_dict(ckpt.optimizers["critic"])
        lifecycle.restore_rng(ckpt.state["rng"], generators)
        clock.earlier = float(ckpt.meta.get("train_time_s", 0.0))
        return ckpt.step, TrainingCost.restore(ckpt.state.get("cost"))

    @staticmethod
    def _checkpoint(out_dir, step, model, actor_opt, critic_opt, state, meta) -> None:
        lifecycle.save(
            out_dir,
            step=step,
            networks=model.networks(),
            optimizers={"actor": actor_opt, "critic": critic_opt},
            state=state,
            meta=meta,
        )

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
        budget: TrainingBudget,
        out_dir: Path,
        progress: bool,
    ) -> FitReport:
        """A network per agent on one problem (the paper-size rows' MADDPG)."""
        elapsed = lifecycle.TrainingClock()
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
        start_step = 0
        generators = {"sampler": sampler.rng, "noise": noise_rng}
        if ckpt:
            start_step, cost = self._resume(ckpt, out_dir, model, actor_opt, critic_opt, generators, elapsed)
            buffer.load_state_dict(ckpt.state["buffer"])
        log = TrainingLog(
            out_dir,
            problem=problem,
            monitor=monitor,
            total_steps=budget.steps or 0,
            every=hp.log_every,
            resume=ckpt is not None,
            progress=progress,
            start_step=start_step,
            elapsed_s=elapsed.earlier,
        )

        def info(step: int, stopped_by: str) -> dict[str, Any]:
            return training_info(cost, hp, budget, step=step, time_s=elapsed(), agents=n, stopped_by=stopped_by)

        def save(step: int, stopped_by: str) -> None:
            own = {
                "action_format": ACTION_FORMAT,
                "observation": {a: list(observation_names(problem, a)) for a in problem.group_names},
                "sampler": {
                    "box": sampler.box.to_json(problem),
                    "excluded_states": len(sampler.excluded),
                    "exclusion_radius_kw": sampler.exclusion_radius_kw,
                },
                **info(step, stopped_by),
            }
            state = {
                "buffer": buffer.state_dict(),
                "rng": lifecycle.capture_rng(generators),
                "cost": cost.state(),
            }
            meta = instance_meta(self.name, problem, hp, seed, elapsed(), own)
            self._checkpoint(out_dir, step, model, actor_opt, critic_opt, state, meta)

        def log_monitor(step: int) -> None:
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

        updates = 0

        def one_step(step: int) -> None:
            nonlocal updates
            state = sampler.sample()
            obs = observation_matrix(problem, [state])  # (1, G, 3)
            on, u = per_agent.explore(model, obs, step, hp, noise_rng)
            if not problem.commitment:
                on = np.ones(n)
            result = outcome(problem, state, raw_actions(on, u, problem.commitment), reward=reward, search=search)
            buffer.add(obs=obs[0], on=on, u=u, rew=result.rewards, done=np.asarray(1.0, dtype=np.float32))
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
            if log.due(step):
                log_monitor(step)
            if step % hp.checkpoint_every == 0:
                save(step, "")

        try:
            step, stopped = lifecycle.run_steps(start_step, budget, elapsed, one_step)
            if not log.due(step):
                log_monitor(step)
            save(step, stopped)
        finally:
            log.close()
        out = info(step, stopped)
        out.update(monitor_mean_reward=log.last_reward, last_loss=log.last_loss, seed=seed, hyperparameters=asdict(hp))
        return FitReport(model_path=out_dir, steps=step, time_s=elapsed(), info=out)

    # ---- execution ------------------------------------------------------------------------
    def load(self, problem: Problem) -> per_agent.Model | shared.SharedModel:
        """The trained actors, read from disk once per (model folder, problem) and then reused.
        A model trained on generated instances is checked against the group types and ratings
        it saw (``lifecycle.uncovered``), a model of one problem against its fingerprint."""
        torch.set_num_threads(1)
        folder = Path(self.params["model"])
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)  # agents keyed by name
        return self._model.get(folder, problem, self.name, lambda ckpt: self._build(ckpt, folder, len(problem.groups)))

    def _build(self, ckpt: Checkpoint, folder: Path, n_groups: int) -> per_agent.Model | shared.SharedModel:
        if ckpt.meta.get("action_format") != ACTION_FORMAT:
            raise ModelFileError(folder / META_FILE, "trained by an older MADDPG (other action format)")
        hp = self.trained_hyperparameters(ckpt, folder)
        if hp.sharing not in ("type", "agent"):
            raise ModelFileError(folder / META_FILE, f"hyperparameters.sharing is {hp.sharing!r}, not type or agent")
        if ckpt.meta.get("scope") == ANY_SIZE and hp.sharing != "type":
            raise ModelFileError(folder / META_FILE, f"an any-size model needs sharing=type, not {hp.sharing!r}")
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
        trained = lifecycle.trained_problem(self.params["model"], problem, self.name)  # listed as at training
        search = ShiftSearch(trained, model.shift)
        if not states:
            return []
        start = time.perf_counter()
        if isinstance(model, shared.SharedModel):
            raw, margin = shared.act(model, trained, states)  # every actor on every state at once
            heard = shared.observation_messages(search, trained, model.cost_inputs)
        else:
            margin, u, on = model.policy(observation_matrix(trained, states))
            raw = raw_actions(on, u, trained.commitment)
            heard = 0  # counted as before: the search's messages only
        answers = decide_batch(trained, states, raw, search, start, eagerness=margin, extra_messages=heard)
        for a in answers:
            if a.dispatch is not None:
                a.dispatch = lifecycle.to_problem_order(a.dispatch, trained, problem)
        return answers


def training_info(
    cost: TrainingCost,
    hp: Hyperparameters,
    budget: TrainingBudget,
    *,
    step: int,
    time_s: float,
    agents: int,
    stopped_by: str,
) -> dict[str, Any]:
    """The ``TrainingInfo`` keys (``contract/learner.py``) as model.json and ``FitReport.info`` carry them."""
    return {
        "train_time_s": float(time_s),
        "train_steps": int(step),
        **cost.info(deployed_agents=agents, sharing=hp.sharing, team_reward=hp.team_reward),
        "budget": budget.describe(),
        "stopped_by": stopped_by,
    }


def instance_meta(
    solver: str, problem: Problem, hp: Hyperparameters, seed: int, train_time_s: float, own: dict[str, Any]
) -> dict[str, Any]:
    """``model.json`` of a model of one problem: the shared fields, the scope and the learner's own."""
    meta = lifecycle.model_meta(
        solver=solver,
        spec=lifecycle.training_spec(solver, hp),
        problem=problem,
        hyperparameters=hp,
        seed=seed,
        train_time_s=train_time_s,
        **{k: v for k, v in own.items() if k != "train_time_s"},
    )
    return {**meta, "scope": INSTANCE}
