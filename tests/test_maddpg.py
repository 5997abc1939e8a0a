"""MADDPG: a short training run lowers the evaluator's cost; a saved model reloads to the same decisions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_batched_equals_one_by_one, permuted_problem_toml

from dispatchbench import load_problem
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.learn.marl_env import StateBox, StateSampler
from dispatchbench.model.errors import SolverNotFound

TINY = """
[problem]
name = "tiny-2region"
commitment = true

[[regions]]
name = "A"
cs_max = 150.0

[[regions]]
name = "B"
cs_max = 150.0

[[groups]]
name = "CHEAP"
type = "FDC"
region = "A"
a = 0.002
b = 4.0
c = 40.0
p_min = 20.0
p_max = 400.0

[[groups]]
name = "DEAR"
type = "FDC"
region = "A"
a = 0.01
b = 15.0
c = 400.0
p_min = 50.0
p_max = 300.0

[[groups]]
name = "SLOW"
type = "ASC"
region = "B"
a = 0.005
b = 6.0
c = 60.0
p_max = 200.0
min_ratio = 0.25

[[groups]]
name = "V2G"
type = "V2G"
region = "B"
g = 5.0
h = 10.0
efficiency = 0.9
p_max = 60.0
"""

FAST = "learning_starts=200,batch_size=64,checkpoint_every=500,log_every=100,noise_fraction=0.5"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.toml"
    path.write_text(TINY)
    return load_problem(path)


@pytest.fixture(scope="module")
def eval_states(tiny):
    box = StateBox(np.array([100.0, 50.0]), np.array([350.0, 200.0]), np.array([0.0]), np.array([60.0]))
    return StateSampler(tiny, seed=99, box=box, excluded=[]).sample_many(12)


def _mean_cost(problem, states, model_dir):
    records = solve_and_score(problem, states, make_solver(f"maddpg[model={model_dir}]"))
    assert all(r.status == "feasible" for r in records), [r.reason for r in records]
    return float(np.mean([r.cost for r in records])), records


def test_training_reduces_cost_and_resumes(tiny, eval_states, tmp_path):
    solver = make_solver(f"maddpg[{FAST}]")
    out = tmp_path / "run"
    solver.fit(tiny, seed=0, steps=200, out_dir=out)  # random exploration only: the untrained actors
    before, _ = _mean_cost(tiny, eval_states, out)
    report = solver.fit(tiny, seed=0, steps=2000, out_dir=out, resume=True)
    assert report.steps == 2000
    after, records = _mean_cost(tiny, eval_states, out)
    assert after < 0.97 * before, (before, after)
    # the log holds the Fig. 5 quantities
    rewards = (out / "rewards.csv").read_text().splitlines()
    assert rewards[0].startswith("step,wall_s,steps_per_s,mean_reward,reward_0")
    assert len(rewards) == 1 + 20  # steps 100..2000 every 100 (resume kept the first two rows)
    losses = (out / "loss.csv").read_text().splitlines()
    assert len(losses) == 1 + 2000
    info = records[0].info
    assert {"moved_mean_kw", "moved_max_kw", "messages", "decision_s"} <= set(info)
    assert info["messages"] > 0


def test_save_load_round_trip_gives_identical_decisions(tiny, eval_states, tmp_path):
    out = tmp_path / "run"
    make_solver(f"maddpg[{FAST}]").fit(tiny, seed=1, steps=300, out_dir=out)
    _, first = _mean_cost(tiny, eval_states, out)
    _, second = _mean_cost(tiny, eval_states, out)
    for a, b in zip(first, second):
        assert np.array_equal(a.dispatch.power, b.dispatch.power)
        assert np.array_equal(a.dispatch.on, b.dispatch.on)


def test_missing_or_foreign_model_is_skipped_with_a_reason(tiny, tmp_path):
    (rec,) = solve_and_score(tiny, [StateSampler(tiny, seed=0, excluded=[]).sample()], make_solver("maddpg"))
    assert rec.status == "error" and "needs a trained model" in rec.reason
    paper = load_problem(Path(__file__).resolve().parent.parent / "problems" / "paper-4region.toml")
    out = tmp_path / "run"
    make_solver(f"maddpg[{FAST}]").fit(tiny, seed=0, steps=5, out_dir=out)
    why = make_solver(f"maddpg[model={out}]").skip(paper)
    assert "trained for problem 'tiny-2region' (fingerprint " in why and "\n" not in why
    meta = json.loads((out / "model.json").read_text())
    del meta["action_format"]  # a model from the thresholded-action version
    (out / "model.json").write_text(json.dumps(meta))
    assert "older MADDPG" in make_solver(f"maddpg[model={out}]").skip(tiny)


def test_hyperparameters_come_from_the_spec_and_are_recorded(tiny, tmp_path):
    out = tmp_path / "run"
    make_solver(f"maddpg[{FAST},actor_lr=5e-4]").fit(tiny, seed=0, steps=3, out_dir=out)
    meta = json.loads((out / "model.json").read_text())
    assert meta["hyperparameters"]["actor_lr"] == 5e-4 and meta["hyperparameters"]["learning_starts"] == 200
    assert meta["spec"].startswith("maddpg[") and "actor_lr=0.0005" in meta["spec"]
    # a resumed run reads its settings from model.json; a spec that contradicts them is refused
    make_solver("maddpg").fit(tiny, seed=0, steps=4, out_dir=out, resume=True)
    assert json.loads((out / "model.json").read_text())["hyperparameters"]["actor_lr"] == 5e-4
    with pytest.raises(ValueError, match="keeps the hyper-parameters"):
        make_solver("maddpg[actor_lr=1e-2]").fit(tiny, seed=0, steps=5, out_dir=out, resume=True)
    assert "not trained with: actor_lr" in make_solver(f"maddpg[model={out},actor_lr=1e-2]").skip(tiny)


@pytest.mark.parametrize(
    "spec",
    [
        "maddpg[actor_lr=0]",
        "maddpg[gamma=1.5]",
        "maddpg[batch_size=0]",
        "maddpg[critic_lr=inf]",
        "maddpg[flip_start=-0.1]",
        "maddpg[generated_share=1.5]",
        "maddpg[updates_per_step=0]",
        "maddpg[shift=price]",
        "maddpg[power_head=tanh]",
    ],
)
def test_out_of_range_parameters_fail_when_the_spec_is_parsed(spec):
    with pytest.raises(SolverNotFound, match="outside|finite|one of"):
        make_solver(spec)


# ---- batching, order invariance, default budget (issue 10) -----------------------------------
PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    out = tmp_path_factory.mktemp("maddpg-paper")
    make_solver("maddpg[learning_starts=20,batch_size=16,log_every=50]").fit(paper, seed=0, steps=60, out_dir=out)
    return paper, out


def _states(paper):
    from dispatchbench.instances.protocol import validation_states

    return validation_states(paper, families=("base_load", "high_demand"), stride=6)


def test_batched_decisions_equal_one_by_one(paper_model):
    paper, model = paper_model
    states = _states(paper)
    batch = assert_batched_equals_one_by_one(make_solver(f"maddpg[model={model}]"), paper, states)
    plain = {a.info["messages"] for a in batch if a.info["commitment_repaired"] == 0}
    from dispatchbench.formulations.distributed_search import DistributedSearch

    assert plain <= {DistributedSearch(paper).messages_per_decision()}  # one search (the default graph)


def test_group_order_in_the_problem_file_does_not_change_the_dispatch(paper_model, tmp_path):
    paper, model = paper_model
    path = tmp_path / "paper-permuted.toml"
    path.write_text(permuted_problem_toml((PROBLEMS / "paper-4region.toml").read_text()))
    permuted = load_problem(path)
    assert permuted.group_names != paper.group_names
    states = _states(paper)
    a = make_solver(f"maddpg[model={model}]").solve(paper, states)
    b = make_solver(f"maddpg[model={model}]").solve(permuted, states)
    for x, y in zip(a, b):
        for g, name in enumerate(paper.group_names):
            k = permuted.group_names.index(name)
            assert x.dispatch.on[g] == y.dispatch.on[k] and abs(x.dispatch.power[g] - y.dispatch.power[k]) <= 1e-9


def test_default_training_budget_is_documented():
    from dispatchbench.solvers.maddpg import Maddpg

    assert Maddpg.default_train_steps == 24000  # chosen on validation states (docs/learning.md, "Power split")


# ---- cost blindness, the range shift, the gap split (issue 10, item 5) -------------------------
def test_execution_never_reads_cost_coefficients(paper_model):
    """The same model on a copy of the problem whose cost coefficients are NaN decides the same:
    the actors, the mapping and the search use capacities only (the fingerprint ignores costs)."""
    import dataclasses

    paper, model = paper_model
    blind = dataclasses.replace(
        paper,
        groups=tuple(dataclasses.replace(g, a=np.nan, b=np.nan, c=np.nan, g=np.nan, h=np.nan) for g in paper.groups),
    )
    states = _states(paper)[:6]
    seen = make_solver(f"maddpg[model={model}]").solve(paper, states)
    blind_answers = make_solver(f"maddpg[model={model}]").solve(blind, states)
    for a, b in zip(seen, blind_answers):
        assert np.array_equal(a.dispatch.on, b.dispatch.on)
        assert np.array_equal(a.dispatch.power, b.dispatch.power)


def test_range_shift_moves_groups_in_proportion_to_their_range():
    """``shift="range"`` closes the balance with every running group moved by the same fraction
    of its range (inside the bounds), and ``shift="kw"`` is the plain search."""
    from dispatchbench.formulations.distributed_search import DistributedSearch
    from dispatchbench.model.problem import State
    from dispatchbench.solvers.maddpg import ShiftSearch

    paper = load_problem(PROBLEMS / "paper-4region.toml")
    state = State("s", {"A": 300.0, "B": 200.0, "C": 250.0, "D": 400.0}, {"V2G5": 60.0, "V2G6": 80.0})
    on = np.ones(len(paper.groups), dtype=bool)
    lb, ub = paper.lower_bounds(), paper.upper_bounds(state)
    center = lb + 0.9 * (ub - lb)  # far too much: the search must move every group down
    ranged = ShiftSearch(paper, "range").project(state, on, center)
    assert ranged.feasible[0]
    fraction = (center - ranged.balanced.power[0]) / (ub - lb)
    inside = (ranged.balanced.power[0] > lb + 1e-6) & (ranged.balanced.power[0] < ub - 1e-6)
    assert inside.sum() >= 2 and np.allclose(fraction[inside], fraction[inside][0], atol=1e-6)
    plain = DistributedSearch(paper).project(state, on, center)
    same = ShiftSearch(paper, "kw").project(state, on, center)
    assert np.array_equal(plain.balanced.power, same.balanced.power)


def test_gap_split_adds_up_to_the_gap(paper_model):
    """benchmarks/train_learned.py splits a learner's gap into commitment and power split; the
    two parts add up to the summed gap, and SCIP against itself has neither."""
    import importlib.util

    from dispatchbench.formulations.distributed_search import DistributedSearch

    spec = importlib.util.spec_from_file_location("train_learned", PROBLEMS.parent / "benchmarks" / "train_learned.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    paper, model = paper_model
    states = _states(paper)[:4]
    recs = solve_and_score(paper, states, make_solver(f"maddpg[model={model}]"))
    refs = solve_and_score(paper, states, make_solver("scip"))
    split = mod.gap_split(paper, states, recs, refs, DistributedSearch(paper))
    assert split["split_states"] == len(states)
    total = sum(r.cost for r in recs) / sum(r.cost for r in refs) - 1
    assert split["commitment_gap"] >= -1e-6 and split["power_split_gap"] >= 0
    assert abs(split["commitment_gap"] + split["power_split_gap"] - total) < 1e-9
    own = mod.gap_split(paper, states, refs, refs, DistributedSearch(paper))
    assert abs(own["commitment_gap"]) < 1e-4 and abs(own["power_split_gap"]) < 1e-4


def test_alternative_options_train_and_reload(tmp_path):
    """The variants compared in docs/learning.md ("Power split") train, record themselves in
    model.json, and reload to feasible decisions with the shift they were trained with."""
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    spec = (
        "maddpg[learning_starts=20,batch_size=16,log_every=50,shift=range,power_head=clip,power_reg=1,"
        "generated_share=0.5,updates_per_step=2]"
    )
    make_solver(spec).fit(paper, seed=0, steps=40, out_dir=tmp_path)
    hp = json.loads((tmp_path / "model.json").read_text())["hyperparameters"]
    assert (hp["shift"], hp["power_head"], hp["generated_share"], hp["updates_per_step"]) == ("range", "clip", 0.5, 2)
    solver = make_solver(f"maddpg[model={tmp_path}]")
    assert solver.load(paper).shift == "range"
    records = solve_and_score(paper, _states(paper)[:5], solver)
    assert all(r.status == "feasible" for r in records), [r.reason for r in records]
