"""SCIP through Pyomo (``scip_persistent``): the exact reference every table measures gaps to.

The model is built once per problem and re-solved per state after updating mutable params;
``persistent=false`` rebuilds it for every state (kept to measure what persistence buys).

Statuses: ``optimal`` only when SCIP converged with a primal-dual gap ≤ ``CERTIFIED_GAP`` (the
default ``rel_gap=1e-9`` reference); a run at a practical gap (``scip[rel_gap=1e-4]``) or one
stopped by the time limit with an incumbent is ``feasible``, its best answer so far, with the
dual bound and gap in ``info``; no incumbent at the limit is ``timeout``.

Anytime use (``scip[time_limit=0.012]``, a budget matched to a learner's decision time): the
Pyomo model and its hand-over to SCIP are built once per cell in :meth:`Scip.prepare`, outside
every state's clock, like a learner's model loading — a dispatcher keeps its model between
intervals, and at 128 regions the build alone takes seconds, so counting it would time out every
small budget. A state's time limit then covers updating the state's parameters and the solve. Without
``prepare`` (the Python API's ``solve``) the first state builds the model inside its own limit.
Every answer records its budget (``time_budget_s``) and whether it stopped there
(``stopped_at_budget``).

SCIP at its best (issue 21; ``benchmarks/bench_scip_best.py``, docs/classical-backends.md):

- ``formulation``: ``perspective`` writes each on/off quadratic cost through the rotated cone
  ``P² ≤ s·u``, whose relaxation is the convex hull of the on/off set; ``bigm`` is the textbook
  model (SCIP's only model before); ``epigraph`` splits the cost row per group without the cone.
  All give the same optima. ``auto`` (default): ``perspective`` above ``AUTO_GROUPS`` groups,
  ``bigm`` at or below, where the cone measured slower.
- ``warm_start``: ``heuristic`` hands SCIP a complete start, a price-cleared merit-order dispatch
  (``formulations/price_commitment.py``, 0.2-0.5 s CPU at 128-256 regions, inside the state's
  clock, within ~0.1 % of the optimum on the measured states); ``previous`` re-clears this solver's
  previous answer's commitment for the new state (the previous interval when states come in order);
  ``none`` starts cold. ``auto`` (default): ``heuristic`` above ``AUTO_GROUPS`` groups, else
  ``none``. When SCIP stops at its budget with no incumbent of its own, the start is the answer
  (``feasible``, ``info["answer_from"] = "warm start"``). Only a persistent model takes a start.
- ``emphasis``: ``none`` (default); ``heuristics`` (pyscipopt's aggressive primal heuristics) and
  ``feasibility`` (SCIP's feasibility emphasis), passed as the parameters those presets change
  (Pyomo passes parameters, not presets). Neither helped at 32 regions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver, short_number
from dispatchbench.contract.status import Status
from dispatchbench.formulations.compile_pyomo import (
    FORMULATIONS,
    add_start,
    build_model,
    read_dispatch,
    set_state,
)
from dispatchbench.formulations.price_commitment import clear_commitment, price_commitment
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import Problem, State

_SUCCESS = {TerminationCondition.convergenceCriteriaSatisfied}
_INFEASIBLE = {
    TerminationCondition.provenInfeasible,
    TerminationCondition.locallyInfeasible,
    TerminationCondition.infeasibleOrUnbounded,
}
_SCIP_INT_MAX = 2**31 - 1  # SCIP's seed shift is a C int; run seeds go up to 2**32 - 1
_LIMITS = {TerminationCondition.maxTimeLimit, TerminationCondition.iterationLimit, TerminationCondition.interrupted}
CERTIFIED_GAP = 1e-6  # relative primal-dual gap at or below which an answer is reported "optimal"


WARM_STARTS = ("auto", "heuristic", "previous", "none")
# "auto": the perspective cone and the heuristic start above this many groups, today's big-M model
# with a cold start at or below it. Measured (benchmarks/results/scip-best.md and
# scip-default-check.json): at 37-80 groups the strong settings took 1.05-1.6x the CPU time to
# optimality of big-M; at 166 groups 0.78x, at 319 0.83x, at 645 0.29x, with far better incumbents.
AUTO_GROUPS = 120
EMPHASES = ("none", "heuristics", "feasibility")


def emphasis_options(emphasis: str) -> dict[str, Any]:
    """The SCIP parameters a pyscipopt preset changes: Pyomo passes parameters, not presets."""
    if emphasis == "none":
        return {}
    import pyscipopt

    scratch = pyscipopt.Model()
    base = scratch.getParams()
    if emphasis == "heuristics":
        scratch.setHeuristics(pyscipopt.SCIP_PARAMSETTING.AGGRESSIVE)
    else:
        scratch.setEmphasis(pyscipopt.SCIP_PARAMEMPHASIS.FEASIBILITY)
    return {k: v for k, v in scratch.getParams().items() if base[k] != v}


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6g}"


class Scip(Solver):
    name = "scip"
    description = "SCIP (via pyscipopt) on the Pyomo MIQP: global optimum with certified gap"
    parameters = {
        "rel_gap": 1e-9,
        "time_limit": 60.0,
        "persistent": True,
        "formulation": "auto",
        "warm_start": "auto",
        "emphasis": "none",
    }
    parameter_choices = {"formulation": ("auto", *FORMULATIONS), "warm_start": WARM_STARTS, "emphasis": EMPHASES}

    def _formulation(self, problem: Problem) -> str:
        chosen = self.params["formulation"]
        if chosen == "auto":
            return "perspective" if len(problem.groups) > AUTO_GROUPS else "bigm"
        return chosen

    def _start_kind(self, problem: Problem) -> str:
        chosen = self.params["warm_start"]
        if chosen == "auto":
            return "heuristic" if len(problem.groups) > AUTO_GROUPS else "none"
        return chosen

    # rel_gap: a fraction below 1; time_limit: positive and below SCIP's own infinity (1e20),
    # past which SCIP rejects the setting after the model is built.
    parameter_ranges = {"rel_gap": (0.0, 0.999999), "time_limit": (1e-3, 1e9)}
    capabilities = Capabilities(exact=True, stochastic=False, learns=False, handles_commitment=True)
    test_settings = {"time_limit": 30.0}  # the paper's states solve in well under a second

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """The gap says what an answer is worth: 1e-9 certifies the optimum, 1e-4 is practical."""
        return Label(f"SCIP (gap {short_number(params.get('rel_gap', cls.parameters['rel_gap']))})", "exact")

    _prepared: tuple[Problem, Any, Any] | None = None  # (problem, model, persistent solver) from prepare
    _previous_on: Any = None  # commitment of the last answer, for warm_start=previous

    def prepare(self, problem: Problem) -> None:
        """Build the model once and hand it to SCIP, outside every state's clock (see the module)."""
        if not self.params["persistent"]:
            return
        model = build_model(problem, self._formulation(problem))
        solver = SolverFactory("scip_persistent")
        solver.set_instance(model)
        self._prepared = (problem, model, solver)

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        limit = min(self.params["time_limit"], time_limit) if time_limit else self.params["time_limit"]
        factory = "scip_persistent" if self.params["persistent"] else "scip_direct"
        model, answers = None, []
        if self._prepared is not None and self._prepared[0] is problem:
            _, model, solver = self._prepared
        else:
            solver = SolverFactory(factory)
        options = {
            "randomization/randomseedshift": int(seed) % _SCIP_INT_MAX,
            # no log at all: Pyomo captures a solver's stdout through a pipe drained by a Python
            # thread, and pyscipopt's optimize() keeps the GIL while SCIP prints, so a log longer
            # than the pipe's buffer (a long solve at 64+ regions) blocks SCIP's write forever
            # (a deadlock seen in gdb: SCIP in write(1), the reader thread waiting for the GIL)
            "display/verblevel": 0,
            **emphasis_options(self.params["emphasis"]),
        }
        for state in states:
            start = time.perf_counter()
            if model is None or not self.params["persistent"]:
                model = build_model(problem, self._formulation(problem))
                if self.params["persistent"]:
                    solver.set_instance(model)  # a start needs SCIP's model before the solve
            set_state(model, problem, state)
            loaded = time.perf_counter()
            # a rebuilt model's SCIP model is made inside the solve: no start can be handed over
            heuristic = self._warm_start(problem, state) if self.params["persistent"] else None
            if heuristic is not None:
                add_start(solver, model, problem, heuristic)
            built = time.perf_counter()
            # the limit is per state and counts the model build: at 128 regions Pyomo's build and
            # the hand-over to SCIP take seconds, which a caller's deadline must include
            remaining = max(limit - (built - start), 1e-3)
            result = solver.solve(
                model,
                rel_gap=self.params["rel_gap"],
                time_limit=remaining,
                raise_exception_on_nonoptimal_result=False,
                load_solutions=False,
                solver_options=options,
            )
            solved = time.perf_counter()
            answer = self._answer(result, model, problem, built - start, solved - built, limit, (state, heuristic))
            answer.info["warm_start_s"] = built - loaded  # inside build_s: the state's own clock
            if problem.commitment and answer.dispatch is not None:
                self._previous_on = answer.dispatch.on
            answers.append(answer)
        return answers

    def _warm_start(self, problem: Problem, state: State) -> Dispatch | None:
        """The start's complete dispatch: a price-cleared merit order, or the previous answer's
        commitment re-cleared for this state (``None`` when it cannot serve this state)."""
        kind = self._start_kind(problem)
        if kind == "none":
            return None
        if kind == "previous":
            if self._previous_on is None or len(self._previous_on) != len(problem.groups):
                return None
            return clear_commitment(problem, state, self._previous_on)
        return price_commitment(problem, state)

    def _answer(
        self,
        result,
        model,
        problem: Problem,
        build_s: float,
        solve_s: float,
        limit: float,
        warm: tuple[State, Dispatch | None] | None = None,
    ) -> Answer:
        tc = result.termination_condition
        primal, dual = result.incumbent_objective, result.objective_bound
        gap = None
        if primal is not None and dual is not None:
            gap = abs(primal - dual) / max(abs(primal), 1e-10)
        info = {
            "scip_status": tc.name,
            "primal_bound": primal,
            "dual_bound": dual,
            "gap": gap,
            "rel_gap": self.params["rel_gap"],
            "build_s": build_s,
            "solve_s": solve_s,
            "time_budget_s": limit,
            "stopped_at_budget": tc in _LIMITS,
        }
        total = build_s + solve_s
        has_solution = primal is not None
        if tc in _INFEASIBLE:
            return Answer(None, Status.INFEASIBLE, f"SCIP: {tc.name}", total, info)
        if has_solution:
            result.solution_loader.load_vars()
            # "optimal" only when certified to CERTIFIED_GAP: an answer at rel_gap=1e-4 is a good
            # feasible answer with a bound, and must never become a table's reference optimum.
            certified = tc in _SUCCESS and gap is not None and gap <= CERTIFIED_GAP
            if certified:
                status, msg = Status.OPTIMAL, ""
            elif tc in _SUCCESS:
                status = Status.FEASIBLE
                msg = f"SCIP stopped at rel_gap {self.params['rel_gap']:g}: gap {gap:.3g}, dual bound {dual:.10g}"
            else:
                status = Status.FEASIBLE
                reached = "time limit reached" if tc in _LIMITS else f"SCIP stopped with {tc.name}"
                msg = f"{reached}; best incumbent so far, gap {_fmt(gap)}, dual bound {_fmt(dual)}"
                info["time_limit_reached"] = tc in _LIMITS
            if msg:
                info["note"] = msg  # scoring keeps info for every row, the message only for some statuses
            return Answer(read_dispatch(model, problem), status, msg, total, info)
        if tc in _LIMITS and warm is not None and warm[1] is not None:
            state, heuristic = warm
            msg = (
                f"time limit reached before SCIP's own first incumbent: the warm start's dispatch "
                f"(budget {limit:g} s), dual bound {_fmt(dual)}"
            )
            primal = evaluate(problem, state, heuristic).cost
            info.update(note=msg, time_limit_reached=True, answer_from="warm start", primal_bound=primal)
            return Answer(heuristic, Status.FEASIBLE, msg, total, info)
        if tc in _LIMITS:
            return Answer(
                None,
                Status.TIMEOUT,
                f"SCIP: {tc.name} after {total:.3g} s (budget {limit:g} s) without an incumbent",
                total,
                info,
            )
        return Answer(None, Status.ERROR, f"SCIP: {tc.name}", total, info)
