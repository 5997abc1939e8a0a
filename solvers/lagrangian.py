"""Lagrangian relaxation of the regional and grid balances: a classical distributed dispatcher.

Every group decides its own on/off and output at its region's price; the CS nodes move the
prices by subgradient (Polyak) steps over the communication tree; the current commitment is
repaired into a feasible dispatch every few updates, and the dual function's best value is the
answer's lower bound (``info["dual_bound"]``, ``info["gap"]``). The method, its stopping rule
and its message count are in ``dispatchbench/formulations/lagrangian.py``. It reads the cost
coefficients (each agent knows its own): a classical method, not a learned one.

Defaults were set on validation states only (``benchmarks/bench_classical_peers.py``: the paper
problem's validation day, generated validation instances at 32 and 128 regions): 50, 100 or 200
price updates with a repair every 1, 2 or 5 gave the same gaps at 4 regions and 0.007-0.011 %
mean at 32; 100 updates with a repair every 5 cost half the messages of 200. ``step`` (Polyak's
θ) and ``patience`` are the textbook values (θ = 1, halved after 10 updates without a better
bound), not tuned; ``tol`` 1e-4, the practical gap SCIP is also run at. ``decommit`` (off) adds
Tseng et al.'s unit-decommitment pass: closer (0.002 % at 32 regions) but 6-20 times the messages
and, at 128 regions, 7.7 s of CPU per state.

Anytime: at the time limit the best repaired dispatch so far is returned (``stopped_at_budget``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.formulations.lagrangian import lagrangian
from dispatchbench.model.problem import Problem, State


class Lagrangian(Solver):
    name = "lagrangian"
    description = (
        "Lagrangian relaxation: self-commitment at regional prices, subgradient updates over the CS tree, repair"
    )
    parameters = {
        "iterations": 100,
        "step": 1.0,
        "patience": 10,
        "repair_every": 5,
        "tol": 1e-4,
        "decommit": False,
        "time_limit": 0.0,
    }
    parameter_ranges = {
        "iterations": (1, 1_000_000),
        "step": (1e-6, 2.0),  # Polyak's θ: steps above 2 need not converge
        "patience": (1, 1_000_000),
        "repair_every": (1, 1_000_000),
        "tol": (0.0, 1.0),
        "time_limit": (0.0, 1e9),
    }
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    test_settings = {"iterations": 20}

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        return Label("Lagrangian relaxation", "distributed, classical")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        return [self._one(problem, state, time_limit) for state in states]

    def _one(self, problem: Problem, state: State, time_limit: float | None) -> Answer:
        start = time.perf_counter()
        p = self.params
        result = lagrangian(
            problem,
            state,
            iterations=p["iterations"],
            step=p["step"],
            patience=p["patience"],
            repair_every=p["repair_every"],
            tol=p["tol"],
            decommit=p["decommit"],
            deadline=start + time_limit if time_limit else float("inf"),
        )
        elapsed = time.perf_counter() - start
        best = result.best
        upper = float(best.cost[0]) if best.workable[0] else None
        info: dict[str, Any] = {
            "messages": result.messages,
            "iterations": result.iterations,
            "repairs": result.repairs,
            "clearings": result.clearings,
            "picks": result.picks,
            "checks": result.checks,
            "dual_bound": result.dual_bound,
            "primal_bound": upper,
            "gap": (upper - result.dual_bound) / max(abs(upper), 1e-10) if upper is not None else None,
            "converged": result.converged,
            "time_budget_s": time_limit,
            "stopped_at_budget": result.stopped_at_budget,
        }
        return best.answer(
            problem,
            state,
            elapsed,
            info,
            unserved="no repaired commitment serves the state",
            stopped="after the price updates it had time for; best repair so far",
        )
