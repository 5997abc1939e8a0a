"""Micro-benchmarks with pytest-benchmark: the evaluator (which scores every answer of every
method, so its cost bounds how fast the harness can re-score a results folder) and one SCIP
decision on the paper's Table IV state.

    python -m pytest benchmarks/test_micro.py --benchmark-only -m "" [--benchmark-json out.json]

Not part of the test suite (``testpaths`` is ``tests/``); timings are never asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatchbench import load_problem, load_states
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate, evaluate_many

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


@pytest.fixture(scope="module")
def paper():
    problem = load_problem(PROBLEMS / "paper-4region.toml")
    day = load_states(PROBLEMS / "paper-4region-day.csv", problem)
    (table_iv,) = load_states(PROBLEMS / "paper-4region-tableIV.csv", problem)
    return problem, day, table_iv


def _dispatches(problem, states):
    """A plausible dispatch per state: every group on, demand shared in proportion to p_max."""
    p_max = np.array([g.p_max for g in problem.groups])
    return [Dispatch.from_power(problem, s, p_max * sum(s.demand.values()) / p_max.sum()) for s in states]


def test_evaluate_one_state(benchmark, paper):
    problem, _, table_iv = paper
    (dispatch,) = _dispatches(problem, [table_iv])
    result = benchmark(evaluate, problem, table_iv, dispatch)
    assert np.isfinite(result.cost)


def test_evaluate_many_a_day(benchmark, paper):
    problem, day, _ = paper
    dispatches = _dispatches(problem, day)
    on = np.array([d.on for d in dispatches])
    power = np.array([d.power for d in dispatches])
    imports = np.array([d.imports for d in dispatches])
    result = benchmark(evaluate_many, problem, day, on, power, imports)
    assert len(result.cost) == len(day)


def test_scip_one_decision(benchmark, paper):
    from dispatchbench.solvers.scip import Scip

    problem, _, table_iv = paper
    solver = Scip()
    solver.prepare(problem)
    (answer,) = benchmark.pedantic(solver.solve, args=(problem, [table_iv]), rounds=5, iterations=1)
    assert answer.dispatch is not None
