"""The learner interface: a solver that must be trained before it can solve.

The command line's ``train``, the model cache and ``reproduce`` call ``fit`` with exactly the
keywords declared here, and read the budget a method is reported with from
``default_train_steps``; a learner is recognised by subclassing :class:`Learner`, never by
looking for attributes. What learners share beyond the interface (seeding, hyper-parameters as
spec parameters, resume, saving, safe loading) is ``dispatchbench.learn.lifecycle.LearnerPlugin``,
a subclass of this one.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypedDict

from dispatchbench.contract.solver import Capabilities, Label, Solver, default_family
from dispatchbench.contract.training import TrainingBudget, TrainingSet
from dispatchbench.model.problem import Problem


class TrainingInfo(TypedDict, total=False):
    """Documented keys of ``FitReport.info`` and of a trained model's ``model.json``: what
    training cost, so a report can show it for any learner (every key optional)."""

    train_time_s: float  # wall time of the training (a resumed run's earlier time included)
    train_steps: int  # training steps done (what `--steps N` reruns to reproduce the model)
    env_steps: int  # states visited (each one decision of the team, with its rewards)
    true_cost_evaluations: int  # team costs of joint plans computed (counterfactual plans included)
    training_messages: int  # scalars the training would send on the stations' network (counted like decisions)
    offer_publication_messages: int  # the one-off publication of the agents' offer curves (per instance)
    calibration_bills: int  # own bills the agents metered to fit their cost curves
    parameter_sharing: str  # "none" | "gossip" | "central copy"
    training_kind: (
        str  # e.g. "CTDE-like: central evaluator of joint plans" | "distributed: counterfactuals by counted messages"
    )
    budget: str  # the budget asked for ("1500 steps or 840 s, whichever comes first")
    stopped_by: str  # "steps" | "time"


@dataclass
class FitReport:
    """What ``fit`` returns: where the trained model is and what training cost (``info``: the
    :class:`TrainingInfo` keys, and whatever else the learner adds)."""

    model_path: Path
    steps: int  # steps done
    time_s: float
    info: dict[str, Any] = field(default_factory=dict)


class Learner(Solver):
    """A solver trained by ``fit`` and executed from the model folder in its ``model`` parameter.

    A subclass declares ``default_train_steps`` (the budget the tables report: what ``dispatchbench
    train`` uses without ``--steps``), ``default_train_seconds`` (a wall-time cap ``train`` adds
    to that default: ``None`` for none), ``test_steps`` (with ``test_settings``, a fit that takes
    seconds), ``any_size`` (``fit`` accepts a :class:`TrainingSet` and its models decide problems
    they were not trained on) and a ``model`` parameter (``""``: untrained; ``skip`` then says how
    to train it).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(stochastic=True, learns=True, reads_costs=False)
    default_train_steps: ClassVar[int]
    default_train_seconds: ClassVar[float | None] = None
    test_steps: ClassVar[int] = 3
    any_size: ClassVar[bool] = False

    @abstractmethod
    def fit(
        self,
        problem: Problem | None,
        *,
        seed: int,
        steps: int | None,
        out_dir: Path,
        resume: bool = False,
        progress: bool = False,
        budget: TrainingBudget | None = None,
        training_set: TrainingSet | None = None,
    ) -> FitReport:
        """Train on states sampled for ``problem`` (never the evaluation states) for ``steps``
        steps in total — or within ``budget`` (:meth:`TrainingBudget.of`: steps, wall time or
        both) — writing the model into ``out_dir``; with ``resume``, continue from the
        checkpoint there up to the budget; with ``progress``, show a progress bar. An
        ``any_size`` learner trains on ``training_set`` instead when ``problem`` is ``None``.
        ``FitReport.steps`` is the steps done; ``info`` holds the :class:`TrainingInfo` keys."""

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """The spec without its ``model`` folder: models of one method are seeds of one row."""
        return Label(cls.spec_of(params, leave_out=("model",)), default_family(cls.capabilities))
