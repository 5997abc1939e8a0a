"""Test plugin: a solver that hangs (ignores its time limit), for the harness's hard timeout."""

from __future__ import annotations

import time

from dispatchbench.contract.solver import Solver


class Sleeper(Solver):
    name = "sleeper"
    description = "test only: sleeps forever in solve()"
    parameters = {"seconds": 3600.0}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        time.sleep(self.params["seconds"])
        raise RuntimeError("sleeper woke up")
