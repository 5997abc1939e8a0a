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
from typing import Any, ClassVar

from dispatchbench.contract.solver import Capabilities, Label, Solver, default_family
from dispatchbench.model.problem import Problem


@dataclass
class FitReport:
    """What ``fit`` returns: where the trained model is and what training cost."""

    model_path: Path
    steps: int
    time_s: float
    info: dict[str, Any] = field(default_factory=dict)


class Learner(Solver):
    """A solver trained by ``fit`` and executed from the model folder in its ``model`` parameter.

    A subclass declares ``default_train_steps`` (the budget the tables report: what ``dispatchbench
    train`` uses without ``--steps``), ``test_steps`` (with ``test_settings``, a fit that takes
    seconds) and a ``model`` parameter (``""``: untrained; ``skip`` then says how to train it).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(stochastic=True, learns=True)
    default_train_steps: ClassVar[int]
    test_steps: ClassVar[int] = 3

    @abstractmethod
    def fit(
        self,
        problem: Problem,
        *,
        seed: int,
        steps: int,
        out_dir: Path,
        resume: bool = False,
        progress: bool = False,
    ) -> FitReport:
        """Train on states sampled for ``problem`` (never the evaluation states) for ``steps``
        steps in total, writing the model into ``out_dir``; with ``resume``, continue from the
        checkpoint there up to ``steps``; with ``progress``, show a progress bar."""

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """The spec without its ``model`` folder: models of one method are seeds of one row."""
        return Label(cls.spec_of(params, leave_out=("model",)), default_family(cls.capabilities))
