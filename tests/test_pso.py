"""The PSO backend: seeded and reproducible, leaves NumPy's global RNG and the logging setup
alone, decodes every particle to a balanced dispatch, and lands close to SCIP's optimum."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from dispatchbench import load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.formulations.vector_form import shortfall
from dispatchbench.model.errors import SolverNotFound

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
OPTIMUM = 4903.9687  # spec: Table IV state


@pytest.fixture(scope="module")
def table_iv(paper):
    return load_states(PROBLEMS / "paper-4region-tableIV.csv", paper)[0]


def test_same_seed_same_dispatch_and_global_rng_restored(paper, table_iv):
    solver = make_solver("pso[particles=15,iterations=20]")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = solver.solve(paper, [table_iv], seed=7)[0]
    assert np.array_equal(np.random.get_state()[1], before)
    again = solver.solve(paper, [table_iv], seed=7)[0]
    assert np.array_equal(first.dispatch.power, again.dispatch.power)
    assert np.array_equal(first.dispatch.on, again.dispatch.on)
    other = solver.solve(paper, [table_iv], seed=8)[0]
    assert not np.array_equal(first.dispatch.power, other.dispatch.power)


def test_default_budget_reaches_the_table_iv_optimum_closely(paper, table_iv):
    [rec] = solve_and_score(paper, [table_iv], make_solver("pso"), seed=0)
    assert rec.status == "feasible"
    assert OPTIMUM - 1e-3 <= rec.cost <= OPTIMUM * 1.005


def test_feasible_and_near_scip_on_day_states(paper):
    states = load_states(PROBLEMS / "paper-4region-day.csv", paper)[6::18]  # 6 states across the day
    scip = solve_and_score(paper, states, make_solver("scip"))
    pso = solve_and_score(paper, states, make_solver("pso[particles=30,iterations=60]"), seed=1)
    for a, b in zip(scip, pso):
        assert b.status == "feasible", (b.state, b.reason)
        assert a.cost - 1e-6 * a.cost <= b.cost <= a.cost * 1.05, b.state
    mean_gap = np.mean([(b.cost - a.cost) / a.cost for a, b in zip(scip, pso)])
    assert mean_gap < 0.02


def test_decoding_balances_every_particle_and_ranks_unworkable_commitments_last(paper, table_iv):
    solver = make_solver("pso")
    rng = np.random.default_rng(0)
    positions = rng.uniform(size=(64, solver.dimensions(paper)))
    positions[0, :9] = 0.0  # everything off: cannot serve 800 kW
    on, balanced = solver.decode(paper, table_iv, positions)
    fitness = solver.fitness(paper, table_iv, positions)
    ok = balanced.feasible
    assert not ok[0] and ok.sum() > 10
    local = balanced.power[ok] @ paper.incidence.T
    assert np.allclose(local + balanced.imports[ok], paper.demand_vector(table_iv), atol=1e-6)
    assert np.all(np.abs(balanced.imports[ok].sum(-1)) < 1e-6)
    assert fitness[~ok].min() > fitness[ok].max()
    short = shortfall(paper, table_iv, on)[~ok]  # larger shortfall, larger penalty
    assert np.all(np.diff(fitness[~ok][np.argsort(short)]) >= 0) and short.max() == pytest.approx(800.0)


def test_price_decode_carries_commitment_only_and_is_exact_without_it(paper, table_iv):
    convex = load_problem(PROBLEMS / "paper-4region-convex.toml")
    solver = make_solver("pso[decode=price]")
    assert solver.dimensions(paper) == 9 and solver.dimensions(convex) == 0
    state = load_states(PROBLEMS / "paper-4region-tableIV.csv", convex)[0]
    [rec] = solve_and_score(convex, [state], solver)
    assert rec.cost == pytest.approx(6564.3411, abs=1e-3)


def test_no_report_log_and_root_logging_untouched(paper, table_iv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    handlers = list(logging.getLogger().handlers)
    make_solver("pso[particles=5,iterations=2]").solve(paper, [table_iv])
    assert not (tmp_path / "report.log").exists()
    assert logging.getLogger().handlers == handlers


def test_bad_decode_is_rejected():
    with pytest.raises(SolverNotFound, match="decode"):
        make_solver("pso[decode=penalty]")


# ---- scale: the time limit returns the best workable particle so far, or a timeout --------------


def _generated_state():
    """One base-load interval of a generated 8-region instance (seed 3000: outside the protocol),
    where 87 % of random commitments are workable, so the first iteration already has one."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.state_families import generate_days

    problem = generate_problem(8, 0)
    return problem, generate_days(problem, "base_load", 1, 3000).states[40]


def test_time_limit_returns_the_best_particle_so_far_as_feasible():
    problem, state = _generated_state()
    solver = make_solver("pso[particles=20,iterations=1000000]")
    [rec] = solve_and_score(problem, [state], solver, time_limit=0.5)
    assert rec.status == "feasible", rec.reason
    assert rec.info["time_limit_reached"] and "best particle so far" in rec.info["note"]
    assert 0 < rec.info["iterations_run"] < 1_000_000


def test_time_limit_before_any_workable_particle_is_a_timeout_without_a_dispatch():
    problem, state = _generated_state()
    [answer] = make_solver("pso").solve(problem, [state], time_limit=1e-9)
    assert answer.status == "timeout" and answer.dispatch is None
