"""``flip_search``: TVC's teacher as a classical method (issue 18, item 4).

The plan search TVC's training imitates, run with the true price response: it must answer on the
paper's instance, count its messages the documented way (each plan scored = one distributed price
clearing + one tree sum of bills), stop at a time budget with its best plan so far, and run on a
problem without commitment decisions (nothing to search: the trial clearing is the answer).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchbench import evaluate, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.formulations.distributed_search import DistributedSearch

ROOT = Path(__file__).resolve().parent.parent


def test_the_teacher_reaches_scip_on_table_iv_and_counts_its_messages(paper):
    state = load_states(ROOT / "problems" / "paper-4region-tableIV.csv", paper)[0]
    answer = make_solver("flip_search").solve(paper, [state])[0]
    reference = make_solver("scip").solve(paper, [state])[0]
    cost, best = evaluate(paper, state, answer.dispatch).cost, evaluate(paper, state, reference.dispatch).cost
    assert answer.status == "feasible" and cost == pytest.approx(best, rel=1e-6)
    search = DistributedSearch(paper, iterations=40)
    per_plan = search.price(state, answer.dispatch.on[None]).messages + search.sum_messages
    assert answer.info["messages"] == answer.info["plans_scored"] * per_plan > 0
    assert answer.info["search_rounds_run"] >= 1 and answer.info["stopped_at_budget"] is False


def test_a_budget_stops_the_search_with_its_best_plan(paper):
    state = load_states(ROOT / "problems" / "paper-4region-tableIV.csv", paper)[0]
    answer = make_solver("flip_search").solve(paper, [state], time_limit=1e-9)[0]
    assert answer.info["stopped_at_budget"] is True and answer.info["search_rounds_run"] == 0
    assert answer.status == "feasible" and evaluate(paper, state, answer.dispatch).feasible


def test_without_commitment_the_trial_clearing_is_the_answer(convex):
    state = load_states(ROOT / "problems" / "paper-4region-tableIV.csv", convex)[0]
    answer = make_solver("flip_search").solve(convex, [state])[0]
    assert answer.info["plans_scored"] == 1 and answer.info["search_rounds_run"] == 0
    assert evaluate(convex, state, answer.dispatch).feasible


def test_a_state_no_start_can_serve_gets_the_workable_start_not_infeasible():
    """A quiet night on a small generated instance: with everyone on, the minimum outputs exceed
    the demand, and the margin rule's stops do not fix it. Without search rounds the answer must
    still be feasible (the commitment made workable in merit order), not a false "infeasible"."""
    import numpy as np

    from dispatchbench.formulations.merit_order import clear
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import split_states

    problem = generate_problem(2, 1000)
    (state,) = split_states(problem, "validation", families=("base_load",), intervals=(0,))
    assert not clear(problem, state, np.ones((1, len(problem.groups)), dtype=bool)).workable[0]
    (answer,) = make_solver("flip_search[search_rounds=0]").solve(problem, [state])
    assert answer.status == "feasible" and evaluate(problem, state, answer.dispatch).feasible
    assert answer.info["messages"] > 0


def test_a_state_where_flips_from_everyone_on_stall_gets_merit_orders_start():
    """A skewed morning at 128 regions (scaling study, test replicate 1): neither start serves it
    and making everyone-on workable one flip at a time stalls (only a swap would lower the
    shortfall), so flip_search answered a feasible state "infeasible". Merit order's own start,
    from all off, serves it: the answer must be feasible without any search round."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import split_states

    problem = generate_problem(128, 2001)
    (state,) = split_states(problem, "test", replicate=1, families=("skewed",), intervals=(8,))
    (answer,) = make_solver("flip_search[search_rounds=0]").solve(problem, [state])
    assert answer.status == "feasible", answer.message
    assert evaluate(problem, state, answer.dispatch).feasible


def test_the_capabilities_say_who_reads_the_cost_coefficients():
    """Issues 18 and 21: the teacher and the classical peers read the cost coefficients (classical
    methods), the learned dispatchers act on what they measure and hear and do not; `solvers`
    shows it."""
    from dispatchbench.bench.plugin_catalogue import plugin_catalogue

    caps = {s["name"]: s["capabilities"] for s in plugin_catalogue().solvers}
    for name in ("flip_search", "merit_order", "lagrangian", "admm", "scip", "nlopt", "pso"):
        assert caps[name]["reads_costs"] and not caps[name]["learns"], name
    for name in ("madrl_tvc", "maddpg"):
        assert not caps[name]["reads_costs"] and caps[name]["learns"], name
