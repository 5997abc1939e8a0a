"""Test plugin: the bundled SCIP backend with a delay before each call, so a test can interrupt a
run part-way through a multi-state file. Its answers are SCIP's own, scored by the evaluator."""

from __future__ import annotations

import time

from dispatchbench.solvers.scip import Scip


class SlowScip(Scip):
    name = "slow_scip"
    description = "test only: SCIP after a delay per call"
    parameters = {**Scip.parameters, "delay": 0.3}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        time.sleep(self.params["delay"] * len(states))
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
