"""ADMM on the regional and grid balances with relax-and-fix commitment: a classical distributed dispatcher.

Each group solves its own proximal step (on/off and output) against the targets its CS node
sends; each CS node projects its region's contributions onto the regional balance and the CS
nodes project the imports onto ``Σ T = 0`` by a tree sum; the commitment the agents settle on is
fixed, made workable and dispatched exactly by the price clearing. The method (Boyd et al. 2011's
consensus ADMM; Takapoui et al.'s non-convex ADMM heuristic for the on/off sets), its stopping
rule and its message count are in ``dispatchbench/formulations/admm.py``. It reads the cost
coefficients (each agent knows its own): a classical method.

Defaults were set on validation states only (``benchmarks/bench_classical_peers.py``: the paper
problem's validation day, generated validation instances at 32 and 128 regions): ``rho`` (in cost
per kW², the scale of the groups' ``2a``) and ``growth`` from a grid (ρ 0.003-0.1, growth 1 or
1.02; ρ = 0.03 at constant ρ had the best worst case at 4 and 32 regions). ``iterations`` (200),
``repair_every`` (10) and ``tol`` (1e-4 relative, Boyd et al.'s usual order) were set before that
and not tuned; at 32 and 128 regions every state used all 200 iterations.

Anytime: at the time limit the best fixed dispatch so far is returned (``stopped_at_budget``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.formulations.admm import admm
from dispatchbench.model.problem import Problem, State


class Admm(Solver):
    name = "admm"
    description = "consensus ADMM on the balances, each group's on/off in its own prox step, relax-and-fix"
    parameters = {
        "rho": 0.03,
        "growth": 1.0,
        "iterations": 200,
        "repair_every": 10,
        "tol": 1e-4,
        "time_limit": 0.0,
    }
    parameter_ranges = {
        "rho": (1e-9, 1e9),
        "growth": (1.0, 2.0),
        "iterations": (1, 1_000_000),
        "repair_every": (1, 1_000_000),
        "tol": (0.0, 1.0),
        "time_limit": (0.0, 1e9),
    }
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    test_settings = {"iterations": 30}

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        return Label("ADMM (relax-and-fix)", "distributed, classical")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        return [self._one(problem, state, time_limit) for state in states]

    def _one(self, problem: Problem, state: State, time_limit: float | None) -> Answer:
        start = time.perf_counter()
        p = self.params
        result = admm(
            problem,
            state,
            rho=p["rho"],
            growth=p["growth"],
            iterations=p["iterations"],
            repair_every=p["repair_every"],
            tol=p["tol"],
            deadline=start + time_limit if time_limit else float("inf"),
        )
        elapsed = time.perf_counter() - start
        best = result.best
        info: dict[str, Any] = {
            "messages": result.messages,
            "iterations": result.iterations,
            "repairs": result.repairs,
            "clearings": result.clearings,
            "picks": result.picks,
            "checks": result.checks,
            "primal_residual_kw": result.primal_residual,
            "converged": result.converged,
            "time_budget_s": time_limit,
            "stopped_at_budget": result.stopped_at_budget,
        }
        return best.answer(
            problem,
            state,
            elapsed,
            info,
            unserved="no fixed commitment serves the state",
            stopped="after the ADMM steps it had time for; best fixed dispatch",
        )
