"""Test plugin (breaks the contract): declares ``learns`` without being a ``Learner``, the old,
implicit way; discovery lists it as broken with the fix instead of failing in ``train`` later."""

from __future__ import annotations

from dispatchbench.contract.solver import Capabilities, Solver


class LearnsFlag(Solver):
    name = "learns_flag"
    description = "test only: learns=True but no fit"
    capabilities = Capabilities(learns=True, stochastic=True)

    def solve(self, problem, states, *, seed=0, time_limit=None):
        return []
