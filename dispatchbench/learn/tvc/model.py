"""A MADRL-TVC model on disk: what a checkpoint holds, restoring it, and a team to execute.

A checkpoint holds the policy networks (one slice per type, or per agent) and their optimiser,
the replay buffers, the training's counts, every random state (the loop's and each instance's
sampler's) and — for a model of one instance — its agents' calibrated cost curves, so a resumed
run continues bit for bit and the model executes without touching a cost (``lifecycle.save``:
data only, nothing pickled).

Two scopes (``model.json`` ``scope``):

- **instance** (``train -p FILE``): the problem's fingerprint must match at ``solve``, and the
  curves come from the checkpoint (a large problem is trained on pieces of it, ``pieces`` in
  ``model.json``, and decided whole);
- **any-size** (``train --generated 4,8,16,32``): trained on generated instances, it decides any
  problem whose group types and ratings it saw (``lifecycle.uncovered`` refuses the rest, in
  one line). On a problem it never saw, its agents first meter their own bills and fit their
  curves (``curves.calibrate``): the policy is zero-shot, the curve is each station's own
  measurement, and the answers say what the calibration took.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dispatchbench.contract.training import TrainingBudget, TrainingSet
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint, ModelFileError
from dispatchbench.learn.lifecycle import ANY_SIZE
from dispatchbench.learn.marl_env import observation_names
from dispatchbench.learn.tvc.accounting import TrainingCounts
from dispatchbench.learn.tvc.curves import CostCurves, calibrate
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.policy import PolicyNets, slice_count
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import Problem

INSTANCE = "instance"


def training_meta(
    *,
    solver: str,
    hp: Hyperparameters,
    seed: int,
    train_time_s: float,
    problem: Problem | None,
    training_set: TrainingSet | None,
    problems: list[Problem],
    instances: list[tuple[int, int]],
    pieces: list[int],
    counts: TrainingCounts,
    step: int,
    budget: TrainingBudget,
    stopped_by: str,
) -> dict[str, Any]:
    """``model.json``: the fields every learner writes, the scope, and what training cost."""
    cost = {
        "train_time_s": float(train_time_s),
        "train_steps": int(step),
        **counts.info(shared=hp.share == "type"),
        "budget": budget.describe(),
        "stopped_by": stopped_by,
    }
    spec = lifecycle.training_spec(solver, hp)
    if problem is not None:
        meta = lifecycle.model_meta(
            solver=solver,
            spec=spec,
            problem=problem,
            hyperparameters=hp,
            seed=seed,
            train_time_s=train_time_s,
            observation={a: list(observation_names(problem, a)) for a in problem.group_names},
        )
        trained_on = {"pieces": {"sizes": sorted(set(pieces)), "count": len(pieces)}} if pieces else {}
        return {**meta, "scope": INSTANCE, **trained_on, **cost}
    assert training_set is not None
    return {
        "solver": solver,
        "spec": spec,
        "problem": training_set.describe(),
        "problem_fingerprint": ANY_SIZE,
        "scope": ANY_SIZE,
        "training_set": {"sizes": list(training_set.sizes), "instances": [list(i) for i in instances]},
        "coverage": lifecycle.rating_coverage(problems),
        "hyperparameters": asdict(hp),
        "seed": int(seed),
        "versions": lifecycle.versions(),
        **cost,
    }


def save(out_dir: Path, step: int, nets: PolicyNets, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """A checkpoint at ``step`` and its ``model.json``."""
    lifecycle.save(
        out_dir, step=step, networks={"policy": nets}, optimizers={"policy": nets.opt}, state=state, meta=meta
    )


def load_policy(nets: PolicyNets, ckpt: Checkpoint, folder: Path, *, solver: str) -> None:
    lifecycle.load_networks({"policy": nets}, ckpt, folder, solver)


@dataclass
class Calibration:
    """What deciding an instance the model never saw took before its first decision."""

    bills: int  # own bills metered, all agents
    publication_messages: int  # each agent's curve to its CS node
    seconds: float


def for_execution(problem: Problem, hp: Hyperparameters, ckpt: Checkpoint, folder: Path, *, solver: str) -> Team:
    """The trained team, ready to decide: networks restored in double precision (float32 products
    round differently per batch size, and a day decided in one batch must equal its states
    decided one by one), offers built from the agents' curves — the checkpoint's (a model of
    this instance) or calibrated now (an any-size model: ``team.calibration`` says what it took)."""
    if ckpt.meta.get("scope") == ANY_SIZE and hp.share != "type":
        raise ModelFileError(folder / "model.json", f"an any-size model needs share=type, not {hp.share!r}")
    nets = PolicyNets(slice_count(problem, hp.share), hp)
    load_policy(nets, ckpt, folder, solver=solver)
    nets.double()
    calibration = None
    if ckpt.meta.get("scope") == ANY_SIZE:
        t0 = time.perf_counter()
        curves = calibrate(problem, hp.calibration_points, hp.cost_knots)
        calibration = Calibration(
            len(problem.groups) * hp.calibration_points, len(problem.groups), time.perf_counter() - t0
        )
    else:
        curves = CostCurves.from_json(ckpt.state["curves"])
    team = Team(problem, hp, nets, curves)
    team.calibration = calibration
    return team
