"""Particle swarm (pyswarms GlobalBestPSO) over commitment scores and preferred powers.

A particle is a point in the unit box. With commitment modelled, its first G coordinates are
on/off scores (a group runs when its score is above 0.5); with ``decode=shift`` the next G are
each group's preferred power as a fraction of its running range ``[lb, ub]`` in this state.

A particle becomes a dispatch by an exact repair, not a penalty on the balance: the preferred
powers of the running groups are moved onto every regional balance, ``Σ T = 0`` and the CS
limits by :func:`dispatchbench.formulations.balancing.balance` with a :class:`ShiftResponse` (each group
moves by one common signal times its range, clipped to the range — the projection the learned
agents use too). The whole swarm is balanced in one batched call per iteration. A commitment
that cannot serve the state is scored as a large cost plus a penalty proportional to its
:func:`shortfall` in kW, so the swarm is steered towards workable commitments.

``decode=price`` meets the balances with a :class:`PriceResponse` instead (λ-iteration on the
known costs): powers are then the economic dispatch of the commitment and the particle carries
the commitment scores only — a PSO/λ-iteration hybrid, stronger but no longer a plain swarm
over the dispatch. ``shift`` is the default because it searches the same decisions as the
paper's PSO baseline and the learned agents (commitment and powers), with the same mapping.

Under a time limit (the harness's per-state limit, or a budget matched to a learner's decision
time) the cost function stops the swarm before the next iteration; the best particle seen so far
is returned as ``feasible`` if its commitment is workable, else the state is ``timeout`` (no
dispatch). ``info`` records the budget (``time_budget_s``) and whether it struck (``stopped_at_budget``). At
128 regions the random start rarely finds a workable commitment on high-demand states
(docs/classical-backends.md, "Measured at scale").
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# pyswarms reconfigures logging and writes report.log unless LOG_CFG names a config first.
os.environ.setdefault("LOG_CFG", str(Path(__file__).with_name("pyswarms_logging.yaml")))
from pyswarms.single import GlobalBestPSO  # noqa: E402

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver  # noqa: E402
from dispatchbench.contract.status import Status  # noqa: E402
from dispatchbench.formulations.balancing import Balanced, PriceResponse, ShiftResponse, balance, state_bounds  # noqa: E402
from dispatchbench.formulations.vector_form import shortfall  # noqa: E402
from dispatchbench.model.dispatch import Dispatch  # noqa: E402
from dispatchbench.model.evaluate import group_costs  # noqa: E402
from dispatchbench.model.problem import Problem, State  # noqa: E402

_DECODERS = ("shift", "price")


class _OutOfTime(Exception):
    """Raised from the cost function to stop pyswarms at the time limit."""


class Pso(Solver):
    name = "pso"
    description = "particle swarm (pyswarms) over on/off scores and preferred powers, exact balance repair"
    parameters = {
        "particles": 40,
        "iterations": 100,
        "w": 0.72,  # inertia (Clerc–Kennedy constriction values)
        "c1": 1.49,  # cognitive: pull to each particle's own best
        "c2": 1.49,  # social: pull to the swarm's best
        "decode": "shift",  # shift | price
        # per-state budget in seconds (0: none of its own, only the harness's limit): a study gives
        # it as a multiple of a learner's decision time (scip has the same parameter)
        "time_limit": 0.0,
    }
    # Inertia above 1 or acceleration coefficients above 4 make the swarm diverge (Clerc and
    # Kennedy 2002); the sizes are capped where one state's swarm would no longer fit in memory/time.
    parameter_ranges = {
        "particles": (1, 100_000),
        "iterations": (1, 1_000_000),
        "w": (0.0, 1.0),
        "c1": (0.0, 4.0),
        "c2": (0.0, 4.0),
        "time_limit": (0.0, 1e9),
    }
    parameter_choices = {"decode": _DECODERS}
    capabilities = Capabilities(exact=False, stochastic=True, learns=False, handles_commitment=True)
    test_settings = {"particles": 10, "iterations": 10}

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """The swarm's size is a budget (in the legend); its decoder changes the method."""
        price = params.get("decode", cls.parameters["decode"]) == "price"
        return Label("PSO (price decode)" if price else "PSO", "swarm")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["decode"] not in _DECODERS:
            raise ValueError(f"solver 'pso': decode={self.params['decode']!r}; choose one of {', '.join(_DECODERS)}")
        if self.params["particles"] < 1 or self.params["iterations"] < 1:
            raise ValueError("solver 'pso': particles and iterations must be at least 1")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        return [self._solve_state(problem, state, seed, time_limit) for state in states]

    # ---- a particle as a dispatch ------------------------------------------------------------
    def dimensions(self, problem: Problem) -> int:
        scores = len(problem.groups) if problem.commitment else 0
        powers = len(problem.groups) if self.params["decode"] == "shift" else 0
        return scores + powers

    def decode(self, problem: Problem, state: State, positions: np.ndarray) -> tuple[np.ndarray, Balanced]:
        """Commitment ``(B, G)`` and balanced powers/imports for a batch of particles."""
        n_groups, batch = len(problem.groups), len(positions)
        if problem.commitment:
            on, rest = positions[:, :n_groups] > 0.5, positions[:, n_groups:]
        else:
            on, rest = np.ones((batch, n_groups), dtype=bool), positions
        lb, ub = state_bounds(problem, state, batch)
        if self.params["decode"] == "shift":
            response = ShiftResponse(center=lb + rest * (ub - lb), lb=lb, ub=ub, on=on, width=ub[0] - lb[0])
        else:
            response = PriceResponse(a=problem.a, b=problem.b, delivery=problem.delivery, lb=lb, ub=ub, on=on)
        return on, balance(problem, state, response)

    def fitness(self, problem: Problem, state: State, positions: np.ndarray) -> np.ndarray:
        """Cost of each decoded particle; unworkable commitments rank behind every workable one."""
        on, balanced = self.decode(problem, state, positions)
        cost = group_costs(problem, on, balanced.power).sum(-1)
        short = shortfall(problem, state, on)
        ub = problem.upper_bounds(state)
        ceiling = float((problem.a * ub**2 + problem.b * ub + problem.c).sum()) + 1.0  # > any feasible cost
        per_kw = float(((problem.b + 2 * problem.a * ub) / problem.delivery).max())
        bad = ~balanced.feasible | (short > problem.tolerance(state))
        return np.where(bad, ceiling + per_kw * short, cost)

    # ---- one state ------------------------------------------------------------------------
    def _solve_state(self, problem: Problem, state: State, seed: int, time_limit: float | None) -> Answer:
        start = time.perf_counter()
        deadline = start + time_limit if time_limit else np.inf
        dims = self.dimensions(problem)
        info: dict[str, Any] = {"decode": self.params["decode"], "dimensions": dims, "time_budget_s": time_limit}
        timed_out = False
        if dims == 0:  # price decode without commitment: nothing left for a swarm to choose
            best = np.zeros((1, 0))
            info["iterations_run"] = 0
        else:
            best_seen: dict[str, Any] = {"cost": np.inf, "pos": None, "calls": 0}

            def objective(positions: np.ndarray) -> np.ndarray:
                if time.perf_counter() > deadline:
                    raise _OutOfTime
                f = self.fitness(problem, state, positions)
                k = int(np.argmin(f))
                if f[k] < best_seen["cost"]:
                    best_seen["cost"], best_seen["pos"] = float(f[k]), positions[k].copy()
                best_seen["calls"] += 1
                return f

            saved = np.random.get_state()  # pyswarms draws from NumPy's global RNG
            np.random.seed(int(seed))
            try:
                optimizer = GlobalBestPSO(
                    n_particles=self.params["particles"],
                    dimensions=dims,
                    options={"w": self.params["w"], "c1": self.params["c1"], "c2": self.params["c2"]},
                    bounds=(np.zeros(dims), np.ones(dims)),
                    bh_strategy="reflective",
                )
                _, position = optimizer.optimize(objective, iters=self.params["iterations"], verbose=False)
                best = np.asarray(position)[None, :]
            except _OutOfTime:
                timed_out = True
                best = best_seen["pos"][None, :] if best_seen["pos"] is not None else None
            finally:
                np.random.set_state(saved)
            info["iterations_run"] = best_seen["calls"]
        info["stopped_at_budget"] = timed_out
        elapsed = time.perf_counter() - start
        if best is None:
            return Answer(
                None, Status.TIMEOUT, f"time limit {time_limit:g} s reached before the first iteration", elapsed, info
            )
        on, balanced = self.decode(problem, state, best)
        dispatch = Dispatch(on=on[0], power=balanced.power[0], imports=balanced.imports[0])
        if timed_out:
            info["time_limit_reached"] = True
            workable = balanced.feasible[0] and shortfall(problem, state, on)[0] <= problem.tolerance(state)
            if not workable:  # the best particle so far cannot serve the state: nothing to report
                return Answer(
                    None,
                    Status.TIMEOUT,
                    f"time limit {time_limit:g} s reached after "
                    f"{info['iterations_run']} iterations without a workable commitment",
                    elapsed,
                    info,
                )
            info["note"] = (
                f"time limit {time_limit:g} s reached after {info['iterations_run']} iterations; best particle so far"
            )
            return Answer(dispatch, Status.FEASIBLE, info["note"], elapsed, info)
        if not balanced.feasible[0]:
            short = float(shortfall(problem, state, on)[0])
            return Answer(
                dispatch,
                Status.INFEASIBLE,
                f"no particle found a workable commitment (best one short by {short:.3g} kW)",
                elapsed,
                info,
            )
        return Answer(dispatch, Status.FEASIBLE, "", elapsed, info)
