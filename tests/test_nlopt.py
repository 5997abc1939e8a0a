"""The NLopt backend: SLSQP agrees with SCIP on the convex day, its commitment strategies reach
the paper instance's reference optima, a global derivative-free algorithm gives a feasible
answer, and an answer NLopt leaves infeasible is reported as infeasible, not repaired."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatchbench import State, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.formulations.vector_form import VectorForm, all_patterns, cost_floor, shortfall
from dispatchbench.model.errors import SolverNotFound
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import Problem

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
OPTIMUM, ALL_ON = 4903.9687, 6564.3411  # spec: Table IV state, with and without commitment


def table_iv(problem: Problem) -> State:
    return load_states(PROBLEMS / "paper-4region-tableIV.csv", problem)[0]


def random_states(problem: Problem, n: int, seed: int) -> list[State]:
    """Seeded states around the paper's magnitudes (feasible or not: callers filter)."""
    rng = np.random.default_rng(seed)
    return [
        State(
            f"r{k}",
            dict(zip(problem.region_names, rng.uniform(0.0, 600.0, 4).tolist())),
            {"V2G5": float(rng.uniform(0, 120)), "V2G6": float(rng.uniform(0, 120))},
        )
        for k in range(n)
    ]


def test_shortfall_is_zero_for_some_pattern_exactly_when_the_state_is_feasible(paper):
    patterns = all_patterns(len(paper.groups))
    assert patterns.shape == (512, 9) and patterns[0].all() and not patterns[-1].any()
    verdicts = [
        (shortfall(paper, s, patterns) <= paper.tolerance(s)).any() == (infeasibility_reason(paper, s) is None)
        for s in random_states(paper, 200, seed=3)
    ]
    assert all(verdicts)
    state = table_iv(paper)
    assert shortfall(paper, state, np.zeros((1, 9), dtype=bool))[0] == pytest.approx(800.0)  # all off: all demand


def test_vector_form_gradient_and_cost_floor(paper):
    state = table_iv(paper)
    on = np.array([0, 0, 1, 1, 1, 1, 0, 1, 1], dtype=bool)  # the optimum's commitment
    form = VectorForm.build(paper, state, on)
    x = form.balanced_start()
    assert form.balance(x) == pytest.approx(0.0, abs=1e-9)
    step = 1e-6
    numeric = [(form.cost(x + step * e) - form.cost(x - step * e)) / (2 * step) for e in np.eye(form.size)]
    assert np.allclose(form.gradient(x), numeric, rtol=1e-6)
    assert cost_floor(paper, on[None])[0] <= OPTIMUM


def test_slsqp_agrees_with_scip_on_every_convex_state_of_the_day(convex):
    states = load_states(PROBLEMS / "paper-4region-day.csv", convex)
    states += [s for s in random_states(convex, 30, seed=7) if infeasibility_reason(convex, s) is None][:12]
    scip = solve_and_score(convex, states, make_solver("scip"))
    slsqp = solve_and_score(convex, states, make_solver("nlopt[algorithm=LD_SLSQP]"))
    for a, b in zip(scip, slsqp):
        assert a.status == "optimal" and b.status == "feasible", (a.state, a.reason, b.reason)
        assert b.cost == pytest.approx(a.cost, rel=1e-6), a.state
    assert len(states) >= 96 + 5


@pytest.mark.parametrize("strategy, expected", [("enumerate", OPTIMUM), ("greedy", OPTIMUM), ("all_on", ALL_ON)])
def test_commitment_strategies_on_the_table_iv_state(paper, strategy, expected):
    [rec] = solve_and_score(paper, [table_iv(paper)], make_solver(f"nlopt[commitment={strategy}]"))
    assert rec.status == "feasible"
    assert rec.cost == pytest.approx(expected, abs=1e-3)
    if strategy == "enumerate":
        off = {g for g, on in zip(paper.group_names, rec.dispatch.on) if not on}
        assert off == {"FDC1", "FDC2", "ASC7"}
        assert rec.info["patterns_workable"] == 113 and rec.info["patterns_solved"] <= 113


def test_enumerate_matches_scip_on_day_states_with_commitment(paper):
    states = load_states(PROBLEMS / "paper-4region-day.csv", paper)[::12]  # 8 states across the day
    scip = solve_and_score(paper, states, make_solver("scip"))
    nl = solve_and_score(paper, states, make_solver("nlopt"))
    for a, b in zip(scip, nl):
        assert b.status == "feasible" and b.cost == pytest.approx(a.cost, rel=1e-5), a.state


def test_global_derivative_free_algorithm_is_feasible_and_no_better_than_the_optimum(convex):
    spec = "nlopt[algorithm=AUGLAG,inner_algorithm=GN_DIRECT_L,maxeval=10000,inner_maxeval=1000]"
    solver = make_solver(spec)
    assert solver.encoding == "eliminate" and not solver.capabilities.stochastic
    [rec] = solve_and_score(convex, [table_iv(convex)], solver)
    assert rec.status == "feasible"
    assert ALL_ON - 1e-3 <= rec.cost <= ALL_ON * 1.02


def test_isres_is_seeded_through_nlopt_srand(convex):
    solver = make_solver("nlopt[algorithm=GN_ISRES,maxeval=2000]")
    assert solver.capabilities.stochastic and solver.encoding == "eliminate"
    state = table_iv(convex)
    first, again = (solver.solve(convex, [state], seed=4)[0] for _ in range(2))
    other = solver.solve(convex, [state], seed=5)[0]
    assert np.array_equal(first.dispatch.power, again.dispatch.power)
    assert not np.array_equal(first.dispatch.power, other.dispatch.power)


def test_an_infeasible_nlopt_answer_is_reported_not_repaired(convex):
    # AUGLAG's penalty with a global inner solver and the balance kept as an equality stops
    # short of meeting it (deterministic: DIRECT-L uses no randomness).
    spec = "nlopt[algorithm=AUGLAG,inner_algorithm=GN_DIRECT_L,encoding=equality]"
    [rec] = solve_and_score(convex, [table_iv(convex)], make_solver(spec))
    assert rec.status == "infeasible" and rec.cost is None
    assert rec.dispatch is not None and rec.max_violation > convex.tolerance(table_iv(convex))
    assert "violates" in rec.reason


@pytest.mark.parametrize(
    "spec, words",
    [
        ("nlopt[algorithm=LN_BOBYQA]", "AUGLAG"),
        ("nlopt[algorithm=NOT_AN_ALGO]", "is not one of .*LD_SLSQP"),  # the declared choices, listed
        ("nlopt[commitment=branch]", "enumerate"),
        ("nlopt[algorithm=LD_MMA,encoding=equality]", "encoding=eliminate"),
    ],
)
def test_bad_parameters_name_the_fix(spec, words):
    with pytest.raises(SolverNotFound, match=words):
        make_solver(spec)


def test_cost_floor_is_a_lower_bound_when_a_cost_falls_over_the_range():
    """With b < 0 a group is cheapest inside its range, not at p_min: the floor must still bound."""
    from dispatchbench.model.problem_file import parse_problem

    problem = parse_problem(
        {
            "problem": {"name": "falling", "commitment": True},
            "regions": [{"name": "A", "cs_max": 0.0}],
            "groups": [
                {
                    "name": "G",
                    "type": "FDC",
                    "region": "A",
                    "a": 0.01,
                    "b": -2.0,
                    "c": 5.0,
                    "p_min": 10.0,
                    "p_max": 200.0,
                }
            ],
        }
    )
    power = np.linspace(10.0, 200.0, 2001)
    true_min = float(np.min(0.01 * power**2 - 2.0 * power + 5.0))  # at P = 100: -95
    floor = float(cost_floor(problem, np.array([[True]]))[0])
    assert floor <= true_min + 1e-9
    assert floor == pytest.approx(-95.0)


# ---- scale: skip beyond max_groups, greedy by priority, time limit with the best so far ---------


def _generated(regions: int):
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.state_families import generate_days

    problem = generate_problem(regions, 0)
    return problem, generate_days(problem, "high_demand", 1, 3000).states[40]  # seed outside the protocol


def test_too_many_groups_is_skipped_with_the_reason():
    problem, state = _generated(8)
    [rec] = solve_and_score(problem, [state], make_solver(f"nlopt[max_groups={len(problem.groups) - 1}]"))
    assert rec.status == "error" and rec.reason.startswith("skipped:") and "max_groups" in rec.reason
    from dispatchbench.instances.generate_problem import generate_problem

    assert make_solver("nlopt").skip(generate_problem(128, 0)) is not None  # ~320 groups: default skips
    assert make_solver("nlopt").skip(problem) is None


def test_beyond_enumeration_greedy_takes_first_improvements_and_stays_above_scip():
    problem, state = _generated(12)  # 29 groups: more than enumeration takes
    assert len(problem.groups) > 20
    [rec] = solve_and_score(problem, [state], make_solver("nlopt"), time_limit=60)
    [opt] = solve_and_score(problem, [state], make_solver("scip"))
    assert rec.status == "feasible" and rec.info["strategy"].startswith("greedy")
    assert rec.cost >= opt.cost - 1e-6
    assert rec.info["patterns_solved"] < 29 * 29  # first improvement: far fewer solves than full passes


def test_time_limit_gives_the_best_feasible_answer_so_far_or_a_timeout():
    problem, state = _generated(12)
    [answer] = make_solver("nlopt").solve(problem, [state], time_limit=0.05)
    assert answer.status in ("feasible", "timeout"), (answer.status, answer.message)
    assert answer.info["time_limit_reached"]
    if answer.status == "timeout":
        assert answer.dispatch is None and "without a feasible answer" in answer.message
    else:
        assert "best feasible answer so far" in answer.info["note"]
