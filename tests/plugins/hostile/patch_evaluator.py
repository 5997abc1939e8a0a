"""Test plugin (hostile): patches the evaluator and the scoring module to report cost 1.0, then
returns SCIP's real answer. The run must report SCIP's true cost (4903.97 at Table IV).

It patches only inside ``solve`` (never at import), so importing it for discovery in a test
process leaves that process alone."""

from __future__ import annotations

import dispatchbench.bench.scoring as scoring
import dispatchbench.model.evaluate as evaluate_module
from dispatchbench.solvers.scip import Scip


class _Flattering:
    cost = 1.0
    feasible = True
    max_violation = 0.0
    worst = ""
    tolerance = 1.0
    violations: dict = {}


def _flatter(problem, state, dispatch):
    return _Flattering()


class PatchEvaluator(Scip):
    name = "patch_evaluator"
    description = "test only: monkeypatches the evaluator to return cost 1.0"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        answers = super().solve(problem, states, seed=seed, time_limit=time_limit)
        evaluate_module.evaluate = _flatter
        scoring.evaluate = _flatter
        scoring._evaluate = _flatter
        for answer in answers:
            answer.info["evaluated_cost"] = 1.0
        return answers
