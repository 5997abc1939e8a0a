"""SCIP through Pyomo (``scip_persistent``): the exact reference every table measures gaps to.

The model is built once per problem and re-solved per state after updating mutable params;
``persistent=false`` rebuilds it for every state (kept to measure what persistence buys).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from dispatchbench.formulations.compile_pyomo import build_model, read_dispatch, set_state
from dispatchbench.model.problem import Problem, State
from dispatchbench.bench.solver_api import Answer, Capabilities, Solver

_SUCCESS = {TerminationCondition.convergenceCriteriaSatisfied}
_INFEASIBLE = {TerminationCondition.provenInfeasible, TerminationCondition.locallyInfeasible,
               TerminationCondition.infeasibleOrUnbounded}
_LIMITS = {TerminationCondition.maxTimeLimit, TerminationCondition.iterationLimit,
           TerminationCondition.interrupted}


class Scip(Solver):
    name = "scip"
    description = "SCIP (via pyscipopt) on the Pyomo MIQP: global optimum with certified gap"
    parameters = {"rel_gap": 1e-9, "time_limit": 60.0, "persistent": True}
    capabilities = Capabilities(exact=True, stochastic=False, learns=False, handles_commitment=True)

    def solve(self, problem: Problem, states: Sequence[State], *, seed: int = 0,
              time_limit: float | None = None) -> list[Answer]:
        limit = min(self.params["time_limit"], time_limit) if time_limit else self.params["time_limit"]
        factory = "scip_persistent" if self.params["persistent"] else "scip_direct"
        solver = SolverFactory(factory)
        model, answers = None, []
        for state in states:
            start = time.perf_counter()
            if model is None or not self.params["persistent"]:
                model = build_model(problem)
            set_state(model, problem, state)
            built = time.perf_counter()
            result = solver.solve(
                model, rel_gap=self.params["rel_gap"], time_limit=limit,
                raise_exception_on_nonoptimal_result=False, load_solutions=False,
                solver_options={"randomization/randomseedshift": int(seed)},
            )
            solved = time.perf_counter()
            answers.append(self._answer(result, model, problem, built - start, solved - built))
        return answers

    def _answer(self, result, model, problem: Problem, build_s: float, solve_s: float) -> Answer:
        tc = result.termination_condition
        primal, dual = result.incumbent_objective, result.objective_bound
        gap = None
        if primal is not None and dual is not None:
            gap = abs(primal - dual) / max(abs(primal), 1e-10)
        info = {"scip_status": tc.name, "primal_bound": primal, "dual_bound": dual, "gap": gap,
                "build_s": build_s, "solve_s": solve_s}
        total = build_s + solve_s
        has_solution = primal is not None
        if tc in _INFEASIBLE:
            return Answer(None, "infeasible", f"SCIP: {tc.name}", total, info)
        if has_solution:
            result.solution_loader.load_vars()
            status = "optimal" if tc in _SUCCESS else ("timeout" if tc in _LIMITS else "feasible")
            msg = "" if tc in _SUCCESS else f"SCIP stopped with {tc.name}, gap {gap}"
            return Answer(read_dispatch(model, problem), status, msg, total, info)
        if tc in _LIMITS:
            return Answer(None, "timeout", f"SCIP: {tc.name} without a feasible solution", total, info)
        return Answer(None, "error", f"SCIP: {tc.name}", total, info)
