"""The evaluator on cases small enough to check by hand.

A two-region toy problem (A: one FDC; B: one ASC and one V2G) keeps every number short.
Each violation case builds a dispatch that breaks exactly one constraint family and sets the
state's demands so that every other family holds, so the measured value can be asserted exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatchbench import Dispatch, State, evaluate
from dispatchbench.model.evaluate import CONSTRAINTS
from dispatchbench.model.problem_file import parse_problem


def toy_problem(commitment: bool = True, cs_max: float = 50.0):
    return parse_problem(
        {
            "problem": {"name": "toy", "commitment": commitment},
            "regions": [{"name": "A", "cs_max": cs_max}, {"name": "B", "cs_max": cs_max}],
            "groups": [
                {
                    "name": "F1",
                    "type": "FDC",
                    "region": "A",
                    "a": 0.01,
                    "b": 2.0,
                    "c": 10.0,
                    "p_min": 20.0,
                    "p_max": 100.0,
                },
                {
                    "name": "S1",
                    "type": "ASC",
                    "region": "B",
                    "a": 0.02,
                    "b": 1.0,
                    "c": 5.0,
                    "p_max": 80.0,
                    "min_ratio": 0.5,
                },
                {"name": "V1", "type": "V2G", "region": "B", "g": 3.0, "h": 2.0, "efficiency": 0.8, "p_max": 50.0},
            ],
        }
    )


PROBLEM = toy_problem()


def state_for(power, imports, v_available=30.0, problem=PROBLEM) -> State:
    """The state whose demands the given powers and imports balance exactly."""
    local = problem.incidence @ np.asarray(power, dtype=float)
    demand = local + np.asarray(imports, dtype=float)
    return State("s", dict(zip(problem.region_names, demand.tolist())), {"V1": v_available})


def run(power, imports, on=(True, True, True), v_available=30.0, problem=PROBLEM, state=None):
    state = state or state_for(power, imports, v_available, problem)
    dispatch = Dispatch(np.array(on), np.array(power, dtype=float), np.array(imports, dtype=float))
    return evaluate(problem, state, dispatch)


def others_zero(ev, family: str) -> None:
    for name in CONSTRAINTS:
        if name != family:
            assert ev.violations[name] == pytest.approx(0.0, abs=1e-12), name


def test_hand_computed_cost_of_a_feasible_dispatch():
    # F1 = 70, S1 = 44, V1 = 20 (delivers 16) at d_A = 60, d_B = 70: T_A = -10, T_B = +10.
    state = State("s", {"A": 60.0, "B": 70.0}, {"V1": 30.0})
    ev = run([70.0, 44.0, 20.0], [-10.0, 10.0], state=state)
    # F1: 0.01*70^2 + 2*70 + 10 = 199; S1: 0.02*44^2 + 44 + 5 = 87.72; V1: 3*20 + 2 = 62
    assert ev.group_costs == pytest.approx([199.0, 87.72, 62.0], abs=1e-12)
    assert ev.cost == pytest.approx(348.72, abs=1e-9)
    assert ev.max_violation == pytest.approx(0.0, abs=1e-12)
    assert ev.feasible and ev.worst == ""
    assert ev.tolerance == pytest.approx(1e-6 * 130.0)
    # V2G feedback balance (eq. 12): 20 kW drawn = 16 fed back + 4 lost
    assert ev.fed_back == pytest.approx([0.0, 0.0, 16.0])
    assert ev.losses == pytest.approx([0.0, 0.0, 4.0])


def test_off_groups_cost_nothing():
    # F1 off, A imports its whole 40 kW; B: S1 = 60, V1 = 25 (delivers 20) and exports 40.
    ev = run([0.0, 60.0, 25.0], [40.0, -40.0], on=(False, True, True))
    assert ev.group_costs == pytest.approx([0.0, 0.02 * 3600 + 60 + 5, 3 * 25 + 2])
    assert ev.feasible


def test_regional_balance_violation():
    state = State("s", {"A": 60.0, "B": 70.0}, {"V1": 30.0})
    ev = run([70.0, 44.0, 20.0], [-5.0, 5.0], state=state)  # A: 70 - 5 = 65 != 60; B: 44 + 16 + 5 = 65 != 70
    assert ev.violations["regional_balance"] == pytest.approx(5.0)
    others_zero(ev, "regional_balance")
    assert not ev.feasible
    assert ev.worst.startswith("regional balance at ")


def test_grid_conservation_violation():
    state = State("s", {"A": 60.0, "B": 70.0}, {"V1": 30.0})
    ev = run([75.0, 44.0, 20.0], [-15.0, 10.0], state=state)  # both regions balance, but the imports sum to -5
    assert ev.violations["grid_conservation"] == pytest.approx(5.0)
    others_zero(ev, "grid_conservation")
    assert not ev.feasible


def test_cs_limit_violation():
    ev = run([0.0, 80.0, 25.0], [60.0, -60.0], on=(False, True, True))  # |T| = 60 > cs_max 50 in both regions
    assert ev.violations["cs_limit"] == pytest.approx(10.0)
    others_zero(ev, "cs_limit")
    assert not ev.feasible
    assert "CS limit" in ev.worst


@pytest.mark.parametrize(
    "power, on, expected, why",
    [
        ([10.0, 60.0, 20.0], (True, True, True), 10.0, "FDC on below p_min 20"),
        ([50.0, 30.0, 20.0], (True, True, True), 10.0, "ASC on below min_ratio * p_max = 40"),
        ([50.0, 90.0, 20.0], (True, True, True), 10.0, "ASC above p_max 80"),
        ([30.0, 60.0, 20.0], (False, True, True), 30.0, "FDC off but producing 30"),
        ([50.0, 60.0, 0.0], (True, True, False), 0.0, "V2G off at 0: fine"),
        ([50.0, 60.0, 4.0], (True, True, False), 4.0, "V2G off but discharging 4"),
        ([50.0, 60.0, -5.0], (True, True, True), 5.0, "V2G on at a negative power"),
        ([-3.0, 60.0, 20.0], (False, True, True), 3.0, "FDC off at a negative power"),
    ],
)
def test_running_range_violation(power, on, expected, why):
    ev = run(power, [0.0, 0.0], on=on, v_available=50.0)
    assert ev.violations["running_range"] == pytest.approx(expected), why
    others_zero(ev, "running_range")
    assert ev.feasible is (expected == 0.0)


def test_v2g_availability_violation():
    ev = run([50.0, 60.0, 40.0], [0.0, 0.0], v_available=30.0)  # x = 40 > v = 30, within p_max 50
    assert ev.violations["v2g_availability"] == pytest.approx(10.0)
    others_zero(ev, "v2g_availability")
    assert not ev.feasible
    assert ev.worst == "V2G availability at V1"


def test_v2g_above_p_max_and_availability_are_both_measured():
    ev = run([50.0, 60.0, 60.0], [0.0, 0.0], v_available=55.0)
    assert ev.violations["running_range"] == pytest.approx(10.0)  # p_max 50
    assert ev.violations["v2g_availability"] == pytest.approx(5.0)  # v 55
    assert ev.max_violation == pytest.approx(10.0)


def test_commitment_off_counts_every_group_as_on():
    problem = toy_problem(commitment=False)
    # F1 claims to be off at 0: with commitment off it is on, pays c = 10 and sits 20 below p_min.
    ev = run([0.0, 60.0, 20.0], [0.0, 0.0], on=(False, True, True), problem=problem)
    assert ev.group_costs[0] == pytest.approx(10.0)
    assert ev.violations["running_range"] == pytest.approx(20.0)
    # A V2G "off" at 0 is on at 0 (V2G's running range starts at 0): feasible, pays h = 2.
    ev = run([50.0, 60.0, 0.0], [0.0, 0.0], on=(True, True, False), problem=problem)
    assert ev.feasible
    assert ev.cost == pytest.approx((0.01 * 2500 + 100 + 10) + (0.02 * 3600 + 60 + 5) + 2.0)
    # and a power given with on=False is costed as running, not flagged as "producing while off"
    ev = run([50.0, 60.0, 20.0], [0.0, 0.0], on=(False, False, False), problem=problem)
    assert ev.feasible
    assert ev.cost == pytest.approx(135.0 + 137.0 + 62.0)


def test_same_dispatch_with_commitment_on_is_off():
    ev = run([0.0, 60.0, 20.0], [0.0, 0.0], on=(False, True, True))
    assert ev.group_costs[0] == 0.0 and ev.feasible


@pytest.mark.parametrize(
    "demand, power, on, imports",
    [
        ({"A": 60.0, "B": 70.0}, [70.0, 44.0, 20.0], (True, True, True), [-10.0, 10.0]),  # total 130 kW
        ({"A": 0.0, "B": 0.13}, [0.0, 0.0, 0.1625], (False, False, True), [0.0, 0.0]),  # total 0.13 kW < 1
    ],
)
def test_tolerance_is_1e_6_times_total_demand_but_at_least_1e_6(demand, power, on, imports):
    state = State("s", demand, {"V1": 30.0})
    tol = 1e-6 * max(1.0, sum(demand.values()))
    for off, feasible in ((0.9 * tol, True), (1.1 * tol, False)):
        # shifting T_A by `off` unbalances region A and the grid sum by exactly `off`
        ev = run(power, np.array(imports) + [off, 0.0], on=on, state=state)
        assert ev.tolerance == pytest.approx(tol)
        assert ev.max_violation == pytest.approx(off, rel=1e-6)
        assert ev.feasible is feasible


def test_nan_in_a_dispatch_is_rejected():
    state = State("s", {"A": 60.0, "B": 70.0}, {"V1": 30.0})
    with pytest.raises(ValueError, match="NaN"):
        run([math.nan, 44.0, 20.0], [-10.0, 10.0], state=state)


def test_from_power_completes_imports_and_commitment():
    state = State("s", {"A": 60.0, "B": 70.0}, {"V1": 30.0})
    d = Dispatch.from_power(PROBLEM, state, np.array([70.0, 44.0, 0.0]))
    assert d.on.tolist() == [True, True, False]
    assert d.imports == pytest.approx([-10.0, 26.0])
    ev = evaluate(PROBLEM, state, d)
    assert ev.violations["regional_balance"] == pytest.approx(0.0, abs=1e-12)
    assert ev.violations["grid_conservation"] == pytest.approx(16.0)
