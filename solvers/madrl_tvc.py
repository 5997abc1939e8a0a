"""MADRL-TVC: fully distributed multi-agent RL with target-value competition (the plugin).

Every charger group is one agent with its own cost network (its learned offers, cleared by the
distributed price search) and its own commitment and move networks (on/off from what it hears
after a clearing). A decision is a trial clearing, ``rounds`` simultaneous policy rounds and up
to ``moves`` move rounds, with a repair by ratings when a plan cannot meet the balances;
``madrl_tvc[refine=3]`` ("TVC + local search", a row of its own) adds decision-time flip tests
priced on the learned costs. Training sets every agent's targets by a competition of the plans
tried at each state, scored by the team's cost (no agent reads a cost coefficient).

This file only binds the method to the plugin interface; its parts live in
``dispatchbench/learn/tvc/`` (the package docstring lists them) and the design is explained in
``docs/madrl-tvc.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from dispatchbench.contract.learner import FitReport
from dispatchbench.contract.solver import Answer, Capabilities, Label
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.lifecycle import ROUNDS
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.learn.tvc import model, training
from dispatchbench.learn.tvc.decision import decide_batch
from dispatchbench.learn.tvc.hyperparameters import HYPERPARAMETER_RANGES, Hyperparameters
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import Problem, State


class MadrlTvc(lifecycle.LearnerPlugin):
    name = "madrl_tvc"
    description = "MADRL-TVC: fully distributed learners, learned offers + learned commitment on cleared prices"
    hyperparameter_class = Hyperparameters
    parameters = lifecycle.spec_parameters(Hyperparameters, model="", refine=0)  # 0: the learned policy alone
    default_train_steps = 1500  # the budget the tables report (docs/madrl-tvc.md; chosen on validation states)
    parameter_ranges = {"refine": ROUNDS, **HYPERPARAMETER_RANGES}
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True)
    # a fit of test_steps steps in seconds: few warm-up states, one state and one update per step
    test_settings = {
        "warmup_states": 4,
        "warmup_actions": 2,
        "states_per_step": 1,
        "search_rounds": 1,
        "batch_size": 4,
        "updates_per_step": 1,
        "cost_every": 2,
        "log_every": 2,
        "table_points": 65,
    }
    test_steps = 3

    @classmethod
    def label(cls, params) -> Label:
        """The policy alone, or with decision-time flip tests (``refine``): a row of its own."""
        if params.get("refine", 0):
            return Label("MADRL-TVC + local search", "learned + search")
        return Label("MADRL-TVC", "learned, fully distributed")

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
        total = training.fit(
            problem,
            hp,
            ckpt,
            solver=self.name,
            seed=seed,
            steps=steps,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
        )
        return FitReport(
            model_path=out_dir,
            steps=steps,
            time_s=total,
            info={"train_time_s": total, "seed": seed, "hyperparameters": asdict(hp)},
        )

    def load(self, problem: Problem) -> Team:
        """The trained team, read from disk once per (model folder, problem); it acts on the problem
        listed in its training order (``team.problem``), whatever order ``problem`` lists groups in."""
        folder = Path(self.params["model"])
        problem = lifecycle.trained_problem(self.params["model"], problem, self.name)

        def build(ckpt: Checkpoint) -> Team:
            hp = self.trained_hyperparameters(ckpt, folder)
            return model.for_execution(problem, hp, ckpt, folder, solver=self.name)

        return self._model.get(folder, problem, self.name, build)

    def prepare(self, problem: Problem) -> None:
        self.load(problem)

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        torch.set_num_threads(1)
        team = self.load(problem)
        trained = team.problem  # the same groups, listed as at training (agents keyed by name)
        start = time.perf_counter()
        obs = observation_matrix(trained, states)  # every agent's own observation, all states at once
        decided = decide_batch(team, states, obs, refine=self.params["refine"]) if len(states) else []
        decided = [(lifecycle.to_problem_order(d.dispatch, trained, problem), d.info) for d in decided]
        batch_s = (time.perf_counter() - start) / max(len(states), 1)
        answers = []
        for dispatch, info in decided:
            info["decision_s"] = info["decision_s_batched"] = batch_s  # all agents and the search, per state
            if info["balanced"]:
                answers.append(Answer(dispatch=dispatch, status="feasible", message="", time_s=batch_s, info=info))
            else:  # the claim must match the dispatch: the evaluator will find it infeasible
                reason = "no repaired commitment met the balances"
                answers.append(Answer(dispatch=dispatch, status="error", message=reason, time_s=batch_s, info=info))
        return answers
