"""Test plugin (breaks the contract): a Learner without ``fit``. Discovery used to pass abstract
classes over in silence; now it lists the plugin as broken, naming what is missing."""

from __future__ import annotations

from dispatchbench.contract.learner import Learner


class NoFit(Learner):
    name = "no_fit"
    description = "test only: a learner that forgot fit"
    parameters = {"model": ""}
    default_train_steps = 10

    def solve(self, problem, states, *, seed=0, time_limit=None):
        return []
