"""The exact feasibility pre-check, and that an infeasible state is reported with its reason while
the other states of the same run are still solved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from dispatchbench import State, load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.contract.solver import Answer, Solver
from dispatchbench.model.feasibility import infeasibility_reason, local_supply_set
from dispatchbench.model.problem import Problem
from dispatchbench.model.problem_file import parse_problem
from dispatchbench.model.tolerance import feasibility_tolerance

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
PAPER = load_problem(PROBLEMS / "paper-4region.toml")
CONVEX = load_problem(PROBLEMS / "paper-4region-convex.toml")
TABLE_IV = load_states(PROBLEMS / "paper-4region-tableIV.csv", PAPER)[0]
V2G = {"V2G5": 70.0, "V2G6": 150.0}


def paper_state(label: str, a: float, b: float, c: float, d: float, v2g: dict[str, float] = V2G) -> State:
    return State(label, {"A": a, "B": b, "C": c, "D": d}, dict(v2g))


def two_regions(cs_max: float, commitment: bool = True, with_b_group: bool = False) -> Problem:
    """Region A: one FDC running 20..100 kW when on. Region B: a pure load unless ``with_b_group``."""
    groups = [
        {"name": "F1", "type": "FDC", "region": "A", "a": 0.01, "b": 2.0, "c": 10.0, "p_min": 20.0, "p_max": 100.0}
    ]
    if with_b_group:
        groups.append(
            {"name": "F2", "type": "FDC", "region": "B", "a": 0.01, "b": 2.0, "c": 10.0, "p_min": 20.0, "p_max": 100.0}
        )
    return parse_problem(
        {
            "problem": {"name": "two", "commitment": commitment},
            "regions": [{"name": "A", "cs_max": cs_max}, {"name": "B", "cs_max": cs_max}],
            "groups": groups,
        }
    )


def test_table_iv_state_is_feasible():
    assert infeasibility_reason(PAPER, TABLE_IV) is None
    assert infeasibility_reason(CONVEX, TABLE_IV) is None


def flat(intervals):
    return [float(x) for pair in intervals for x in pair]


def test_local_supply_sets_of_the_paper():
    # Region D: FDC3 (50..300) and FDC4 (50..200), each on or off.
    assert local_supply_set(PAPER, TABLE_IV, "D") == [(0.0, 0.0), (50.0, 500.0)]
    # Region B: V2G6 delivers 0..0.9 * min(90, 150) = 81 kW; ASC8 adds 100..200 kW when on.
    assert flat(local_supply_set(PAPER, TABLE_IV, "B")) == pytest.approx([0.0, 81.0, 100.0, 281.0])
    # Commitment off: every group runs, so the least supply is the sum of the p_min.
    assert flat(local_supply_set(CONVEX, TABLE_IV, "A")) == pytest.approx([200.0, 600 + 200 + 0.9 * 70])


def test_region_short_beyond_its_cs_import():
    # D can make 300 + 200 = 500 kW and import 200: 1000 kW leaves 300 kW unserved.
    why = infeasibility_reason(PAPER, paper_state("s", 100, 120, 50, 1000))
    assert why == (
        "region D: demand 1000 kW exceeds local capacity 500 kW plus CS import limit 200 kW (shortfall 300 kW)"
    )


def test_v2g_availability_limits_local_capacity():
    # B: ASC8 200 + V2G6 0.9 * min(90, v). With v = 10: 209 + 200 import < 420.
    why = infeasibility_reason(PAPER, paper_state("s", 100, 420, 50, 300, {"V2G5": 70.0, "V2G6": 10.0}))
    assert why is not None and why.startswith("region B: demand 420 kW exceeds local capacity 209 kW")
    assert "(shortfall 11 kW)" in why
    assert infeasibility_reason(PAPER, paper_state("s", 100, 420, 50, 300, {"V2G5": 70.0, "V2G6": 90.0})) is None


def test_total_shortfall():
    # Every region is within its local capacity + CS import, but together they ask for more than
    # all groups make: 863 (A, V2G5 at 70) + 281 (B) + 580 (C) + 500 (D) = 2224 < 2880 kW.
    why = infeasibility_reason(PAPER, paper_state("s", 1000, 450, 750, 680))
    assert why == (
        "total demand 2880 kW exceeds the 2224 kW all regions can deliver within their CS limits (shortfall 656 kW)"
    )


def test_commitment_off_surplus():
    # Commitment off: all groups run at least at p_min, 200 + 100 + 140 + 100 = 540 kW in total.
    why = infeasibility_reason(CONVEX, paper_state("night", 0, 0, 0, 0))
    assert why == "total demand 0 kW is below the 540 kW minimum output of the running groups (surplus 540 kW)"
    # The same night is feasible with commitment: everything switches off.
    assert infeasibility_reason(PAPER, paper_state("night", 0, 0, 0, 0)) is None


def test_commitment_off_regional_surplus():
    why = infeasibility_reason(two_regions(cs_max=10.0, commitment=False), State("s", {"A": 5.0, "B": 0.0}))
    assert why == ("region A: minimum local output 20 kW exceeds demand 5 kW plus CS export limit 10 kW (surplus 5 kW)")


def test_gap_inside_a_region():
    # A can deliver 0 or 20..100 kW but must deliver 5..15 (demand 10, CS 5): no set of groups does.
    why = infeasibility_reason(two_regions(cs_max=5.0), State("s", {"A": 10.0, "B": 0.0}))
    assert why == "region A: no set of running groups delivers between 5 and 15 kW (demand 10 kW ± CS limit)"


def test_gap_between_feasible_totals():
    # Each region alone is fine: A delivers 0 or 20..55 kW within its CS window, B (no groups)
    # imports its 5 kW. But then A must export exactly 5 kW, i.e. deliver 10: in the gap.
    problem = two_regions(cs_max=50.0)
    why = infeasibility_reason(problem, State("s", {"A": 5.0, "B": 5.0}))
    assert why is not None and why.startswith("total demand 10 kW falls in a gap between feasible totals")
    # With a group in B too, both can run at 20 and the grid moves the difference: feasible again.
    assert infeasibility_reason(two_regions(cs_max=50.0, with_b_group=True), State("s", {"A": 5.0, "B": 35.0})) is None


def test_boundary_states_are_feasible_within_tolerance():
    # Exactly at D's limit (500 + 200) is feasible; 1 kW more is not.
    assert infeasibility_reason(PAPER, paper_state("s", 100, 120, 50, 700)) is None
    assert infeasibility_reason(PAPER, paper_state("s", 100, 120, 50, 701)) is not None


def test_the_tolerance_is_applied_once_to_the_grid_balance_not_to_every_region():
    """Issue 20: the pre-check loosened each region's CS window and the total by the tolerance,
    so it accepted states no exact dispatch serves and SCIP proved infeasible."""
    state = paper_state("s", 100, 120, 50, 700)
    tol = PAPER.tolerance(state)
    assert tol == feasibility_tolerance(state.total_demand) == evaluate_tolerance(state)
    inside = paper_state("s", 100, 120, 50, 700 + 0.5 * tol)  # D past its exact limit by half a tolerance
    assert "region D" in infeasibility_reason(PAPER, inside)
    (record,) = solve_and_score(PAPER, [inside], make_solver("scip"))
    assert record.status == "infeasible" and record.reason.startswith("state infeasible:")


def test_the_generators_margin_is_stricter_than_the_tolerance():
    at_limit = paper_state("s", 100, 120, 50, 700)  # D imports exactly its CS limit
    assert infeasibility_reason(PAPER, at_limit) is None
    why = infeasibility_reason(PAPER, at_limit, margin=True)
    assert why is not None and "less the generator's margin 0.02 kW" in why
    assert infeasibility_reason(PAPER, paper_state("s", 100, 120, 50, 699.98), margin=True) is None
    night = paper_state("night", 0, 0, 0, 0)  # nothing asked, nothing running: exact, no margin needed
    assert infeasibility_reason(PAPER, night, margin=True) is None


def evaluate_tolerance(state: State) -> float:
    from dispatchbench.model.dispatch import Dispatch
    from dispatchbench.model.evaluate import evaluate

    n, r = len(PAPER.groups), len(PAPER.regions)
    return evaluate(PAPER, state, Dispatch(np.zeros(n, bool), np.zeros(n), np.zeros(r))).tolerance


SHORT_D = paper_state("short", 100, 120, 50, 1000)
NIGHT = paper_state("night", 0, 0, 0, 0)


def test_solve_and_score_reports_the_infeasible_state_and_solves_the_others():
    states = [TABLE_IV, SHORT_D, paper_state("mild", 80, 100, 60, 300)]
    records = solve_and_score(PAPER, states, make_solver("scip"))
    assert [r.state for r in records] == ["tableIV", "short", "mild"]
    assert [r.status for r in records] == ["optimal", "infeasible", "optimal"]
    bad = records[1]
    assert bad.cost is None and bad.dispatch is None and bad.max_violation is None
    assert bad.reason == "state infeasible: " + infeasibility_reason(PAPER, SHORT_D)
    assert "region D" in bad.reason and "shortfall 300 kW" in bad.reason
    assert records[0].cost == pytest.approx(4903.9687, rel=1e-6)
    assert records[2].cost is not None and records[2].cost > 0


def test_commitment_off_surplus_is_reported_and_the_rest_solved():
    records = solve_and_score(CONVEX, [NIGHT, TABLE_IV], make_solver("scip"))
    assert [r.status for r in records] == ["infeasible", "optimal"]
    assert "surplus 540 kW" in records[0].reason
    assert records[1].cost == pytest.approx(6564.3411, rel=1e-6)


class Crashes(Solver):
    """A plugin whose solve raises: the run must record it, not die."""

    name = "crashes"

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        raise RuntimeError("backend exploded")


def test_a_crashing_backend_is_an_error_record_and_the_precheck_still_speaks():
    records = solve_and_score(PAPER, [TABLE_IV, SHORT_D], Crashes())
    assert records[0].status == "error" and "RuntimeError: backend exploded" in records[0].reason
    assert records[1].status == "infeasible" and "region D" in records[1].reason


def test_flip_shortfalls_are_the_shortfalls_of_every_solo_flip():
    """What a TVC agent's CS node tells it (``flip_workable``): the shortfall of the plan with the
    agent's own status flipped, worked out per region — the same numbers as scoring every flip."""
    from dispatchbench.formulations.vector_form import flip_shortfalls, shortfall
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn.marl_env import StateSampler

    for problem in (load_problem(PROBLEMS / "paper-4region.toml"), generate_problem(16, 3)):
        states = StateSampler(problem, seed=1).sample_many(12)
        on = np.random.default_rng(0).random((len(states), len(problem.groups))) < 0.6
        on[:4] = True  # plans that can lose a group, beside plans that need one more
        ub = np.array([problem.upper_bounds(s) for s in states])
        got = flip_shortfalls(problem, np.array([problem.demand_vector(s) for s in states]), on, ub)
        for k, state in enumerate(states):
            flips = np.repeat(on[k][None], len(problem.groups), 0)
            flips[np.arange(len(problem.groups)), np.arange(len(problem.groups))] ^= True
            assert np.allclose(got[k], shortfall(problem, state, flips), atol=1e-9)
        assert (got > 0).any() and (got == 0).any()
