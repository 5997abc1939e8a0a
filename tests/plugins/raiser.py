"""Test plugin: a solver whose solve() raises, for the harness's error rows."""

from __future__ import annotations

from dispatchbench.contract.solver import Solver


class Raiser(Solver):
    name = "raiser"
    description = "test only: raises in solve()"
    parameters = {"message": "deliberate failure"}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise RuntimeError(self.params["message"])
