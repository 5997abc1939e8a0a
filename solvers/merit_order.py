"""The priority-list heuristic (merit order): the baseline every other row is compared with.

Groups committed in merit order until every region can be served, the economic dispatch of that
commitment by the price clearing, then a switch-off pass in reverse merit order while the cost
falls — a power engineer's first unit-commitment heuristic, with no training and no search over
commitments. The algorithm, its message count and why it is fast are in
``dispatchbench/formulations/merit_order.py``. It reads the cost coefficients: a classical method.

Defaults (``batch=8``, ``passes=3``) were set on validation states only
(``benchmarks/bench_classical_peers.py``: the paper problem's validation day and generated
validation instances at 32 and 128 regions): ``batch`` only trades clearings per batch against
wasted trials after an accepted one; a second pass never switched a group off there (so a third
never ran), and the cap only bounds the worst case.

Under a time limit the pass stops at the budget and returns the best workable commitment found
(it has one from the first clearing on), with ``info["stopped_at_budget"]``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.formulations.merit_order import merit_order
from dispatchbench.model.problem import Problem, State


class MeritOrder(Solver):
    name = "merit_order"
    description = "priority list: commit in merit order, clear at equal incremental cost, switch off while cheaper"
    # use_bound=false with batch=1 is the naive pass (one clearing per trial): same answers, slower
    # switch_on=true adds switch-on passes (a variant, not the textbook heuristic)
    parameters = {"batch": 8, "passes": 3, "use_bound": True, "switch_on": False, "time_limit": 0.0}
    parameter_ranges = {"batch": (1, 10_000), "passes": (0, 100), "time_limit": (0.0, 1e9)}
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    test_settings: dict[str, Any] = {}  # already fast: milliseconds per state at the paper's size

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        passes = params.get("passes", cls.parameters["passes"])
        return Label("Merit order" if passes else "Merit order (no switch-off pass)", "heuristic")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        return [self._one(problem, state, time_limit) for state in states]

    def _one(self, problem: Problem, state: State, time_limit: float | None) -> Answer:
        start = time.perf_counter()
        deadline = start + time_limit if time_limit else float("inf")
        result = merit_order(
            problem,
            state,
            batch=self.params["batch"],
            passes=self.params["passes"],
            use_bound=self.params["use_bound"],
            switch_on=self.params["switch_on"],
            deadline=deadline,
        )
        elapsed = time.perf_counter() - start
        info: dict[str, Any] = {
            "messages": result.messages,
            "iterations": result.clearings,
            "clearings": result.clearings,
            "picks": result.picks,
            "checks": result.checks,
            "switched_off": result.switched_off,
            "skipped_by_bound": result.skipped_by_bound,
            "passes": result.passes,
            "time_budget_s": time_limit,
            "stopped_at_budget": result.stopped_at_budget,
        }
        best = result.best
        return best.answer(
            problem,
            state,
            elapsed,
            info,
            unserved="merit order found no commitment that serves the state",
            stopped="in the switch-off pass; best commitment so far",
        )
