"""MADRL-TVC: multi-agent RL with target-value competition (the plugin).

Every charger group is one agent with its own convex cost curve (fitted to the bills it metered;
its offers, cleared by the distributed price search) and commitment and move networks (on/off
from what it hears after a clearing), shared by the agents of a type for a model of any size or
each agent's own on one problem (``share``). A decision is a trial clearing, ``rounds``
simultaneous policy rounds and up to ``moves`` move rounds, with a repair by ratings when a plan
cannot meet the balances; ``madrl_tvc[refine=3]`` ("TVC + local search", a row of its own) adds
decision-time flip tests priced on the learned curves. Training sets every agent's targets by a
competition of the plans tried at each state, scored by the team's cost (no agent reads a cost
coefficient).

This file only binds the method to the plugin interface; its parts live in
``dispatchbench/learn/tvc/`` (the package docstring lists them) and the design is explained in
``docs/madrl-tvc.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch

from dispatchbench.contract.learner import FitReport
from dispatchbench.contract.solver import Answer, Capabilities, Label
from dispatchbench.contract.training import TrainingBudget, TrainingSet
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import Checkpoint
from dispatchbench.learn.lifecycle import ROUNDS
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.learn.tvc import model, training
from dispatchbench.learn.tvc.decision import decide_batch
from dispatchbench.learn.tvc.hyperparameters import HYPERPARAMETER_CHOICES, HYPERPARAMETER_RANGES, Hyperparameters
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.problem import Problem, State

TRAINING_NOTE = (
    "decentralised execution; training: counterfactual plans cleared by the distributed search and scored by "
    "tree sums of the agents' own bills (counted); networks per agent on one problem (fully distributed) or one "
    "central copy per type for any size (CTDE-like) — share=auto|agent|type"
)


class MadrlTvc(lifecycle.LearnerPlugin):
    name = "madrl_tvc"
    description = (
        "MADRL-TVC: learned offers + learned commitment on cleared prices, per-agent networks on one problem, "
        "one policy per group type for any size; " + TRAINING_NOTE
    )
    hyperparameter_class = Hyperparameters
    sharing_parameter = "share"
    parameters = lifecycle.spec_parameters(Hyperparameters, model="", refine=0)  # 0: the learned policy alone
    default_train_steps = 1500  # the budget the tables report (docs/madrl-tvc.md; chosen on validation states)
    default_train_seconds = 840.0  # ... capped by 14 minutes of training: `train` ends within 15 at any size
    any_size = True
    parameter_ranges = {"refine": ROUNDS, **HYPERPARAMETER_RANGES}
    parameter_choices = HYPERPARAMETER_CHOICES
    capabilities = Capabilities(exact=False, stochastic=True, learns=True, handles_commitment=True, reads_costs=False)
    # a fit of test_steps steps in seconds: few states, short searches, one update per step
    test_settings = {
        "states_per_step": 1,
        "search_rounds": 1,
        "max_flips": 8,
        "max_swaps": 4,
        "batch_size": 4,
        "updates_per_step": 1,
        "log_every": 2,
        "table_points": 65,
    }
    test_steps = 3

    @classmethod
    def label(cls, params) -> Label:
        """The policy alone, or with decision-time flip tests (``refine``): a row of its own; an
        ablation (``drop``) says what it drops. The family says what the training is: one central
        copy of each type's networks (CTDE-like, the default) or every agent its own."""
        if params.get("refine", 0):
            return Label("MADRL-TVC + local search", "learned + search")
        family = {
            "agent": "learned, fully distributed",
            "type": "learned, CTDE-like training",
        }.get(params.get("share", "auto"), "learned, distributed (one problem) or CTDE-like (any size)")
        if params.get("drop"):
            return Label(f"MADRL-TVC without {params['drop'].replace('+', ' and ')}", family)
        return Label("MADRL-TVC", family)

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
        else:
            ckpt, hp = self.begin_generated_fit(training_set, out_dir, resume=resume, options=options)
        outcome = training.fit(
            problem,
            training_set,
            hp,
            ckpt,
            solver=self.name,
            seed=seed,
            budget=budget,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
        )
        info = {k: outcome.meta[k] for k in (*TRAINING_KEYS, "pieces") if k in outcome.meta}
        return FitReport(
            model_path=out_dir,
            steps=outcome.steps,
            time_s=outcome.time_s,
            info={**info, "seed": seed, "hyperparameters": outcome.meta["hyperparameters"]},
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
        calibration = team.calibration
        answers = []
        for dispatch, info in decided:
            info["decision_s"] = info["decision_s_batched"] = batch_s  # all agents and the search, per state
            if calibration is not None:  # an any-size model on this instance: its agents' one-off measurement
                info["calibration_bills"] = calibration.bills
                info["calibration_s"] = calibration.seconds
                info["offer_publication_messages"] = calibration.publication_messages
            if info["balanced"]:
                answers.append(Answer(dispatch=dispatch, status="feasible", message="", time_s=batch_s, info=info))
            else:  # the claim must match the dispatch: the evaluator will find it infeasible
                reason = "no repaired commitment met the balances"
                answers.append(Answer(dispatch=dispatch, status="error", message=reason, time_s=batch_s, info=info))
        return answers


TRAINING_KEYS = (  # contract.learner.TrainingInfo, and the breakdown of the messages
    "train_time_s",
    "train_steps",
    "env_steps",
    "true_cost_evaluations",
    "training_messages",
    "training_messages_by_kind",
    "offer_publication_messages",
    "calibration_bills",
    "parameter_sharing",
    "training_kind",
    "budget",
    "stopped_by",
)
