"""Training MADRL-TVC: calibrated curves, then steps of rounds with exploration, the competition, updates.

Training runs on one problem (a model for that instance; on a problem of more than
``piece_regions`` regions, on pieces of it: ``learn/pieces.py``) or on generated instances of
several sizes (one model for any size, ``share="type"``). Each instance's agents first meter their own
bills and fit their cost curves (``curves.calibrate``: counted). Each step then visits
``states_per_step`` states of one instance (the instances take turns): the team runs its rounds
with exploration (plain sums, fewer bisection steps), and — with commitment — the plans tried at
each state compete (``competition.py``): sampled solo flips and hand-overs of every plan a move
round started from, the policy's plans, a margin rule's, and the local search around the best.
The best sets every sampled agent's commitment targets and the move points set its move gains,
all per agent's share of the state's cost; the networks (one central copy per type, or one per agent) are
updated every step. The loop stops when its :class:`TrainingBudget` is spent (steps or wall
time); it never reads the clock for anything else, so a rerun with the steps done reproduces the
model. What it cost is counted as it goes (``accounting.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dispatchbench.contract.training import TrainingSet
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.lifecycle import generated_instances
from dispatchbench.learn.marl_env import StateSampler, monitor_states, observation_matrix
from dispatchbench.learn.pieces import cut, piece_regions, piece_sizes
from dispatchbench.learn.training_log import TrainingLog
from dispatchbench.learn.tvc import model
from dispatchbench.learn.tvc.accounting import InstanceCosts, TrainingCounts
from dispatchbench.learn.tvc.competition import (
    TriedPlans,
    apply_swaps,
    commitment_targets,
    compete,
    flip_rows,
    move_gains,
    sample_flips,
    sample_swaps,
)
from dispatchbench.learn.tvc.curves import CostCurves, calibrate
from dispatchbench.learn.tvc.decision import decide
from dispatchbench.learn.tvc.features import HANDOVER, SOLO
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.policy import Experience, PolicyNets, resolved_share, slice_count
from dispatchbench.learn.tvc.repair import repair
from dispatchbench.learn.tvc.rounds import PolicyRun, policy_rounds
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import Problem, State


@dataclass
class Instance:
    """One problem training visits: its team (sharing the networks), its sampler, its prices."""

    name: str
    team: Team
    sampler: StateSampler
    costs: InstanceCosts
    generator_seed: int | None = None  # a generated instance's generator seed (training split)

    @property
    def problem(self) -> Problem:
        return self.team.problem


def make_instance(
    problem: Problem,
    hp: Hyperparameters,
    nets: PolicyNets,
    *,
    sampler_seed: int,
    counts: TrainingCounts | None,
    curves: CostCurves | None = None,
    generator_seed: int | None = None,
) -> Instance:
    """A training instance: its agents calibrate their curves (unless ``curves`` are given, from a
    checkpoint) and publish their offers — both counted in ``counts`` when given."""
    if curves is None:
        curves = calibrate(problem, hp.calibration_points, hp.cost_knots)
    if counts is not None:
        counts.calibration_bills += len(problem.groups) * hp.calibration_points
        counts.offer_publication_messages += len(problem.groups)  # each agent's curve to its CS node, once
    return Instance(
        name=problem.name,
        team=Team(problem, hp, nets, curves),
        sampler=StateSampler(problem, seed=sampler_seed, generated_share=hp.generated_share),
        costs=InstanceCosts.of(problem, hp.train_search_iterations),
        generator_seed=generator_seed,
    )


def pieces_of(whole: Instance, sizes: list[int], hp: Hyperparameters, nets: PolicyNets, seed: int) -> list[Instance]:
    """Training instances cut from one problem (``learn/pieces.py``): its own agents, their own
    curves (metered once, for the whole), a sampler per piece; no new calibration."""
    instances = []
    for j, regions in enumerate(piece_regions(whole.problem, sizes, hp.instances_per_size, seed)):
        piece, index = cut(whole.problem, regions, f"piece {j}: {len(regions)} regions")
        curves = whole.team.curves.rows(index)
        instances.append(make_instance(piece, hp, nets, sampler_seed=seed * 100_003 + j, counts=None, curves=curves))
    return instances


@dataclass
class Loop:
    """What the training loop carries from step to step (all of it saved in a checkpoint)."""

    instances: list[Instance]
    nets: PolicyNets
    experience: Experience
    rng: np.random.Generator
    counts: TrainingCounts
    monitor: Instance  # the instance whose Fig. 5 rewards are logged

    @property
    def hp(self) -> Hyperparameters:
        return self.nets.hp

    def instance_at(self, step: int) -> Instance:
        """The instances take turns, one per step (sizes interleaved: see ``lifecycle.generated_instances``)."""
        return self.instances[(step - 1) % len(self.instances)]


def train(
    loop: Loop,
    start: int,
    budget: lifecycle.TrainingBudget,
    log: TrainingLog,
    save: Callable[[int, str], None],
    elapsed: Callable[[], float],
) -> tuple[int, str]:
    """Steps from ``start + 1`` while ``budget`` lasts (at least one); ``save(step, stopped_by)``
    writes a checkpoint every ``checkpoint_every`` steps and at the end. Returns ``(steps done,
    "steps" | "time")``."""
    hp = loop.hp
    monitor_set = monitor_states(loop.monitor.problem)
    monitor_obs = observation_matrix(loop.monitor.problem, monitor_set)

    def one_step(step: int) -> None:
        log.loss(step, train_step(loop, loop.instance_at(step)))
        if log.due(step) or (budget.steps is not None and step == budget.steps):
            team = loop.monitor.team
            log.rewards(step, [monitor_reward(team, s, monitor_obs[j]) for j, s in enumerate(monitor_set)])
        if step % hp.checkpoint_every == 0:
            save(step, "")

    step, stopped = lifecycle.run_steps(start, budget, elapsed, one_step)
    save(step, stopped)
    return step, stopped


def train_step(loop: Loop, instance: Instance) -> float:
    """One step on one instance: states, the team's rounds with exploration, the competition
    and the targets, the network updates. Returns the step's loss."""
    hp, team, counts = loop.hp, instance.team, loop.counts
    states = instance.sampler.sample_many(hp.states_per_step)
    obs = observation_matrix(team.problem, states)
    run = policy_rounds(team, states, obs, exact_sums=True, explore=loop.rng)
    counts.env_steps += len(states)
    counts.add("policy_clearings", int(run.ledger.clearings.sum()) * instance.costs.clearing)
    counts.add("hearings", int(run.ledger.messages.sum()))  # exact sums: the ledger holds the hearings only
    if not team.problem.commitment:
        return 0.0
    stored = store_targets(team, states, run, loop.rng, loop.experience, counts, instance.costs)
    if loop.experience.shared:
        counts.add("sample_uploads", stored)
        counts.add("parameter_downloads", team.size)
    if not len(loop.experience):
        return 0.0
    losses = [
        loop.nets.update(loop.experience.sample("plans"), loop.experience.sample("moves"))
        for _ in range(hp.updates_per_step)
    ]
    return float(np.mean(losses))


def point_samples(team: Team, bid: np.ndarray, plan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The agents whose solo flip of a move point's plan is tried: the quarter with the highest
    learned gains ``bid`` (the moves a decision would make: their targets must be right) and a
    random fill."""
    hp = team.hp
    first = np.argsort(-bid)[: max(hp.max_flips // 4, 1)]
    return sample_flips(plan, hp.max_flips, rng, first)


def store_targets(
    team: Team,
    states: Sequence[State],
    run: PolicyRun,
    rng: np.random.Generator,
    experience: Experience,
    counts: TrainingCounts,
    costs: InstanceCosts,
) -> int:
    """The target-value competition of one step; returns the experience rows stored.

    Sampled solo flips and hand-overs of each plan a move round started from are scored, then
    the starts — everyone on, the policy rounds' plans, the last plan, the margin plans — compete
    with the local search around the best; a sample of the best plan's own flips is scored too.
    Every agent whose counterfactual was tried stores its targets at every policy round and its
    move gains at every move decision point (per agent's share of the state's cost, compressed)."""
    hp, problem = team.hp, team.problem
    region, batch = problem.group_region, len(states)
    tried = TriedPlans(problem, states, team.clear_for_training)
    rows: list[int] = []
    plans: list[np.ndarray] = []
    for point in run.move_points:
        gains = team.gains(point.features) if team.size > hp.max_flips else None  # (B, G, 2)
        for k in range(batch):
            plan = point.plan[k]
            if gains is None:  # every flip is tried
                agents = np.arange(team.size)
            else:
                bid = np.maximum(gains[k, :, SOLO], np.where(plan, -np.inf, gains[k, :, HANDOVER]))
                agents = point_samples(team, bid, plan, rng)
            pairs = sample_swaps(plan, hp.max_swaps, region, rng, starters=agents[~plan[agents]])
            moves = np.concatenate([flip_rows(plan, agents), apply_swaps(plan, pairs)])
            rows += [k] * len(moves)
            plans += list(moves)
    tried.score_fresh(rows, plans)
    starts = [np.ones_like(run.on), *[r.plan for r in run.rounds], run.on, margin_plans(team, states, run)]
    compete(tried, starts, rng, hp)
    stars = [tried.best(k)[0] for k in range(batch)]  # the best plan's own flips: every agent's target
    tried.score_fresh(
        [k for k in range(batch) for _ in range(min(hp.max_flips, team.size))],
        [p for k in range(batch) for p in flip_rows(stars[k], sample_flips(stars[k], hp.max_flips, rng))],
    )
    counts.true_cost_evaluations += tried.scored
    counts.add("counterfactual_clearings", tried.scored * costs.clearing)
    counts.add("team_cost_sums", tried.scored * costs.team_sum)
    stored = 0
    for k in range(batch):
        found = commitment_targets(tried, k, hp.advantage_clip)
        if found is None:
            continue
        targets, mask = found
        keep = mask.all(1)  # an agent whose other action was tried
        targets = team.nets.compress(targets)
        for r in run.rounds:
            stored += experience.add("plans", team.slices[keep], r.features.values[k][keep], targets[keep], mask[keep])
        for point in run.move_points:
            gains, gain_mask = move_gains(tried, k, point.plan[k], hp.advantage_clip)
            known = gain_mask[:, SOLO]
            stored += experience.add(
                "moves",
                team.slices[known],
                point.features.values[k][known],
                team.nets.compress(gains)[known],
                gain_mask[known],
            )
    return stored


def margin_plans(team: Team, states: Sequence[State], run: PolicyRun) -> np.ndarray:
    """A start for the competition that needs no trained policy: after the trial clearing every
    agent whose learned margin is negative stops, and the plan is repaired by ratings. On large
    instances it puts the search near good plans from the first step."""
    margin = run.rounds[0].features.column("margin")  # rounds ≥ 1: the trial's features
    return np.array(
        [repair(team.problem, state, margin[k] > 0, margin[k], largest_first=True)[0] for k, state in enumerate(states)]
    )


def monitor_reward(team: Team, state: State, obs: np.ndarray) -> float:
    """Fig. 5 quantity: the shared probe reward of the current greedy decision at a fixed state."""
    return lifecycle.probe_reward(team.problem, state, decide(team, state, obs).dispatch)


@dataclass
class FitOutcome:
    steps: int
    stopped_by: str
    time_s: float
    meta: dict


def fit(
    problem: Problem | None,
    training_set: TrainingSet | None,
    hp: Hyperparameters,
    ckpt: Checkpoint | None,
    *,
    solver: str,
    seed: int,
    budget: lifecycle.TrainingBudget,
    out_dir: Path,
    resume: bool,
    progress: bool,
) -> FitOutcome:
    """Train on ``problem`` (a model for it) or on ``training_set`` (generated instances: one
    model for any size) within ``budget``, or resume ``ckpt``; the model goes to ``out_dir``."""
    elapsed = lifecycle.TrainingClock()  # setting up counts: it is part of what training costs
    lifecycle.seed_everything(seed)
    sizes = piece_sizes(len(problem.regions), hp.piece_regions) if problem is not None and hp.share != "agent" else []
    hp = replace(hp, share=resolved_share(hp.share, any_size=problem is None or bool(sizes)))
    slices = slice_count(problem, hp.share)
    nets = PolicyNets(slices, hp)
    experience = Experience(slices, hp, seed=seed * 1000 + 7)
    counts = TrainingCounts() if ckpt is None else TrainingCounts.from_json(ckpt.state["counts"])
    rng = np.random.default_rng(seed)
    fresh = counts if ckpt is None else None  # a resumed run has counted its calibration already
    specs: list[tuple[int, int]] = []
    if problem is not None:
        saved = CostCurves.from_json(ckpt.state["curves"]) if ckpt is not None else None
        monitor = make_instance(problem, hp, nets, sampler_seed=seed, counts=fresh, curves=saved)
        instances = [monitor] if not sizes else pieces_of(monitor, sizes, hp, nets, seed)
    else:
        assert training_set is not None, "train on a problem or a training set"
        specs = generated_instances(training_set.sizes, hp.instances_per_size, seed)
        instances = [
            make_instance(
                generate_problem(regions, gen_seed),
                hp,
                nets,
                sampler_seed=seed * 100_003 + j,
                counts=fresh,
                generator_seed=gen_seed,
            )
            for j, (regions, gen_seed) in enumerate(specs)
        ]
        monitor = instances[int(np.argmax([len(i.problem.groups) for i in instances]))]
    loop = Loop(instances, nets, experience, rng, counts, monitor)
    start = 0
    if ckpt is not None:
        start, elapsed.earlier = ckpt.step, float(ckpt.meta.get("train_time_s", 0.0))
        model.load_policy(nets, ckpt, out_dir, solver=solver)
        nets.opt.load_state_dict(ckpt.optimizers["policy"])
        experience.load_state_dict(ckpt.state["experience"])
        lifecycle.restore_rng(ckpt.state["rng"], {"loop": rng})
        for instance, state in zip(instances, ckpt.state["samplers"], strict=True):
            instance.sampler.rng.bit_generator.state = state
    log = TrainingLog(
        out_dir,
        problem=monitor.problem,
        monitor=monitor_states(monitor.problem),
        total_steps=budget.steps or 0,
        every=hp.log_every,
        resume=resume,
        progress=progress,
        start_step=start,
        elapsed_s=elapsed.earlier,
    )
    meta: dict = {}

    def save(step: int, stopped_by: str) -> None:
        state = {
            "rng": lifecycle.capture_rng({"loop": rng}),
            "samplers": [i.sampler.rng.bit_generator.state for i in instances],
            "experience": experience.state_dict(),
            "counts": counts.to_json(),
            **({"curves": monitor.team.curves.to_json()} if problem is not None else {}),
        }
        meta.clear()
        meta.update(
            model.training_meta(
                solver=solver,
                hp=hp,
                seed=seed,
                train_time_s=elapsed(),
                problem=problem,
                training_set=training_set,
                problems=[i.problem for i in instances],
                instances=specs,
                pieces=[len(i.problem.regions) for i in instances] if sizes else [],
                counts=counts,
                step=step,
                budget=budget,
                stopped_by=stopped_by,
            )
        )
        model.save(out_dir, step, nets, state, meta)

    try:
        steps, stopped = train(loop, start, budget, log, save, elapsed)
    finally:
        log.close()
    return FitOutcome(steps=steps, stopped_by=stopped, time_s=elapsed(), meta=dict(meta))
