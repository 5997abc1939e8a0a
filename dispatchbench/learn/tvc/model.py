"""A MADRL-TVC model on disk: what a checkpoint holds, restoring it, and building a team to execute.

A checkpoint holds every agent's cost network and the stacked commitment networks, the
commitment optimiser, and per agent its bill scale, random generator and (to resume) its replay
buffers; the training loop's and sampler's random states travel with it, so a resumed run
continues bit for bit (``lifecycle.save``: data only, nothing pickled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.marl_env import StateSampler, observation_names
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import Problem

BUFFERS = ("bills", "plans", "moves")  # each agent's replay buffers: saved to resume, not needed to execute


def save(
    out_dir: Path,
    step: int,
    team: Team,
    sampler: StateSampler,
    rng: np.random.Generator,
    *,
    solver: str,
    seed: int,
    train_time_s: float,
) -> None:
    """A checkpoint at ``step`` and its ``model.json``."""
    problem, hp = team.problem, team.hp
    state: dict[str, Any] = {
        "sampler_rng": sampler.rng.bit_generator.state,
        "rng": lifecycle.capture_rng({"loop": rng}),
        "agents": {a.name: a.extra(with_buffers=True) for a in team.agents},
    }
    meta = lifecycle.model_meta(
        solver=solver,
        spec=lifecycle.training_spec(solver, hp),
        problem=problem,
        hyperparameters=hp,
        seed=seed,
        train_time_s=train_time_s,
        observation={a: list(observation_names(problem, a)) for a in problem.group_names},
        sampler=sampler.box.to_json(problem),
    )
    lifecycle.save(out_dir, step=step, networks=team.networks(), optimizers=team.optimizers(), state=state, meta=meta)


def restore(team: Team, ckpt: Checkpoint, folder: Path, *, solver: str, with_optimizers: bool) -> None:
    """The checkpoint's networks and agents' state into ``team`` (optimisers and buffers only
    ``with_optimizers``, to resume training)."""
    lifecycle.load_networks(team.networks(), ckpt, folder, solver)
    for agent in team.agents:
        saved = ckpt.state["agents"][agent.name]
        agent.load_extra(saved if with_optimizers else {k: v for k, v in saved.items() if k not in BUFFERS})
    if with_optimizers:
        for key, opt in team.optimizers().items():
            opt.load_state_dict(ckpt.optimizers[key])


def for_execution(problem: Problem, hp: Hyperparameters, ckpt: Checkpoint, folder: Path, *, solver: str) -> Team:
    """The trained team, ready to decide: networks restored, the commitment networks in double
    precision (float32 products round differently per batch size, and a day decided in one batch
    must equal its states decided one by one), offers built from the cost networks."""
    team = Team(problem, hp, seed=int(ckpt.meta["seed"]))
    restore(team, ckpt, folder, solver=solver, with_optimizers=False)
    team.commitment.double()
    team.refresh_offers()
    return team
