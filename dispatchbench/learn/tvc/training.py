"""Training MADRL-TVC: warm-up offers, then rounds with exploration, the competition, the updates.

Each step visits ``states_per_step`` states: the team runs its rounds with exploration (plain
sums, fewer bisection steps), every running agent stores its own bill, and — with commitment —
the plans tried at each state compete (``competition.py``): the best sets every agent's
commitment targets, and the solo flips and hand-overs of the plans the move rounds started from
set the move networks' targets. Cost networks are refitted every ``cost_every`` steps; the
commitment networks are updated every step from each agent's own buffer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dispatchbench.formulations.distributed_search import SearchResult
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.marl_env import StateSampler, map_actions, monitor_states, observation_matrix
from dispatchbench.learn.training_log import TrainingLog
from dispatchbench.learn.tvc import model
from dispatchbench.learn.tvc.competition import TriedPlans, compete, score_fresh
from dispatchbench.learn.tvc.decision import decide
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.plans import handovers_of, solo_flips
from dispatchbench.learn.tvc.repair import repair
from dispatchbench.learn.tvc.rounds import PolicyRun, policy_rounds
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem, State


def train(
    problem: Problem,
    team: Team,
    sampler: StateSampler,
    rng: np.random.Generator,
    start: int,
    steps: int,
    log: TrainingLog,
    save: Callable[[int], None],
) -> None:
    """The loop from step ``start + 1`` to ``steps`` (a warm-up first when ``start`` is 0);
    ``save(step)`` writes a checkpoint every ``checkpoint_every`` steps and at the end."""
    hp = team.hp
    monitor = monitor_states(problem)
    monitor_obs = observation_matrix(problem, monitor)
    if start == 0:
        warm_up(problem, team, sampler, rng)
    team.refresh_offers()
    for step in range(start + 1, steps + 1):
        states = sampler.sample_many(hp.states_per_step)
        obs = observation_matrix(problem, states)
        run = policy_rounds(team, states, obs, exact_sums=True, explore=True)
        remember_bills(problem, team, obs, np.ones_like(run.on), run.trial)
        remember_bills(problem, team, obs, run.on, run.result)
        if problem.commitment:
            store_targets(team, states, run, rng)
        if step % hp.cost_every == 0:
            for agent in team.agents:
                agent.cost_loss = agent.update_cost()
            team.refresh_offers()
        loss = sum(a.cost_loss for a in team.agents)
        if problem.commitment and len(team.agents[0].plans):
            loss += sum(team.update_commitment() for _ in range(hp.updates_per_step)) / hp.updates_per_step
        log.loss(step, loss)
        if log.due(step) or step == steps:
            log.rewards(step, [monitor_reward(problem, team, s, monitor_obs[j]) for j, s in enumerate(monitor)])
        if step % hp.checkpoint_every == 0 or step == steps:
            save(step)


def warm_up(problem: Problem, team: Team, sampler: StateSampler, rng: np.random.Generator) -> None:
    """Uniform random actions, mapped and projected by the environment's own search, give every
    agent bills across its range; then a few fits of every cost network."""
    hp, n = team.hp, len(team.agents)
    for state in sampler.sample_many(hp.warmup_states):
        raw = rng.uniform(-0.3, 1.0, size=(hp.warmup_actions, n))
        mapped = map_actions(problem, [state] * hp.warmup_actions, raw)
        result = team.search.project(state, mapped.on, mapped.power)  # the environment's own closing
        obs = np.repeat(observation_matrix(problem, [state]), hp.warmup_actions, 0)
        remember_bills(problem, team, obs, mapped.on, result)
    for _ in range(5):
        for agent in team.agents:
            agent.cost_loss = agent.update_cost()


def store_targets(team: Team, states: Sequence[State], run: PolicyRun, rng: np.random.Generator) -> None:
    """The target-value competition of one step: every solo flip and (sampled) hand-over of each
    plan a move round started from is scored, then the starts — everyone on, the policy rounds'
    plans, the margin plans — compete with the local search around the best. Every agent stores
    its targets at every policy round and its move gains at every move decision point."""
    hp, n = team.hp, len(team.agents)
    tried = TriedPlans(team.problem, states, team.clear_for_training)
    handovers = [
        [handovers_of(point.plan[k], hp.max_swaps, rng) for k in range(len(states))] for point in run.move_points
    ]  # (sampled when there are more) per decision point
    for point, swaps in zip(run.move_points, handovers):  # every solo flip and those hand-overs
        score_fresh(
            tried,
            [k for k in range(len(states)) for _ in range(n + len(swaps[k]))],
            np.concatenate([np.concatenate([solo_flips(point.plan[k]), swaps[k]]) for k in range(len(states))]),
        )
    starts = [np.ones_like(run.on), *[r.plan for r in run.rounds], margin_plans(team, states, run)]
    tried = compete(tried, starts, rng, hp)
    for k in range(len(states)):
        targets = tried.targets(k, hp.advantage_clip)
        if targets is None:
            continue
        targets = team.commitment.compress(targets)
        gains = [
            team.commitment.compress(tried.move_gains(k, point.plan[k], swaps[k], hp.advantage_clip))
            for point, swaps in zip(run.move_points, handovers)
        ]
        for i, agent in enumerate(team.agents):
            agent.plans.add(
                features=np.stack([r.features.values[k, i] for r in run.rounds]),
                targets=np.repeat(targets[i][None], len(run.rounds), 0),
            )
            if gains:
                agent.moves.add(
                    features=np.stack([p.features.values[k, i] for p in run.move_points]),
                    gain=np.stack([g[i] for g in gains]),
                )


def margin_plans(team: Team, states: Sequence[State], run: PolicyRun) -> np.ndarray:
    """A start for the competition that needs no trained policy: after the trial clearing every
    agent whose learned margin is negative stops, and the plan is repaired by ratings. On large
    instances it puts the search near good plans from the first step."""
    margin = run.rounds[0].features.column("margin")  # rounds ≥ 1: the trial's features
    return np.array([repair(team.problem, state, margin[k] > 0, margin[k])[0] for k, state in enumerate(states)])


def remember_bills(problem: Problem, team: Team, obs: np.ndarray, on: np.ndarray, result: SearchResult) -> None:
    """Each running agent stores its own bill at the output it was cleared at (``obs``: the
    states' observations, ``(B, G, 3)``, one row per cleared plan)."""
    bills = group_costs(problem, on, result.balanced.power)  # each agent's own meter reading
    for i, agent in enumerate(team.agents):
        running = on[:, i]
        agent.remember_bills(obs[running, i].astype(np.float64), result.balanced.power[running, i], bills[running, i])


def monitor_reward(problem: Problem, team: Team, state: State, obs: np.ndarray) -> float:
    """Fig. 5 quantity: the shared probe reward of the current greedy decision at a fixed state."""
    return lifecycle.probe_reward(problem, state, decide(team, state, obs).dispatch)


def fit(
    problem: Problem,
    hp: Hyperparameters,
    ckpt: Checkpoint | None,
    *,
    solver: str,
    seed: int,
    steps: int,
    out_dir: Path,
    resume: bool,
    progress: bool,
) -> float:
    """Train a new team (or resume ``ckpt``) for ``steps`` steps into ``out_dir``; returns the
    training time in seconds, the resumed run's earlier time included."""
    lifecycle.seed_everything(seed)
    team = Team(problem, hp, seed)
    sampler = StateSampler(problem, seed=seed, generated_share=hp.generated_share)
    rng = np.random.default_rng(seed)
    start, elapsed = 0, 0.0
    if ckpt:
        start, elapsed = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
        model.restore(team, ckpt, out_dir, solver=solver, with_optimizers=True)
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
        train_time_s = elapsed + time.perf_counter() - t0
        model.save(out_dir, step, team, sampler, rng, solver=solver, seed=seed, train_time_s=train_time_s)

    try:
        if start < steps:
            train(problem, team, sampler, rng, start, steps, log, save)
    finally:
        log.close()
    return elapsed + time.perf_counter() - t0
