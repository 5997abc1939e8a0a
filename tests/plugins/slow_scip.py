"""Test plugin: the bundled SCIP backend with a delay before each call, so a test can interrupt a
run part-way through a multi-state file. Its answers are SCIP's own, scored by the evaluator."""

from __future__ import annotations

import sys
import time

from dispatchbench.plugins import BUNDLED_SOLVERS, _load_file


def _bundled_scip() -> type:
    module = sys.modules.get("dispatchbench_plugin_scip")  # discovery loads the bundled folder first
    if module is not None:
        return module.Scip
    return next(cls for cls in _load_file(BUNDLED_SOLVERS / "scip.py") if cls.name == "scip")


class SlowScip(_bundled_scip()):
    name = "slow_scip"
    description = "test only: SCIP after a delay per call"
    parameters = {**_bundled_scip().parameters, "delay": 0.3}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        time.sleep(self.params["delay"] * len(states))
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
