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


@pytest.mark.parametrize("sharing", ["auto", "type"])
def test_batched_decisions_equal_one_by_one(paper_model, sharing, tmp_path):
    from dispatchbench.formulations.distributed_search import DistributedSearch
    from dispatchbench.learn.maddpg.shared import observation_messages

    paper, model = paper_model
    if sharing == "type":  # networks per type on one problem
        model = tmp_path / "type"
        spec = "maddpg[learning_starts=20,batch_size=16,log_every=50,sharing=type]"
        make_solver(spec).fit(paper, seed=0, steps=60, out_dir=model)
    states = _states(paper)
    batch = assert_batched_equals_one_by_one(make_solver(f"maddpg[model={model}]"), paper, states)
    plain = {a.info["messages"] for a in batch if a.info["commitment_repaired"] == 0}
    search = DistributedSearch(paper)
    # one search (the default graph); the shared actors' inputs add two system sums, one message per
    # agent, and with the default cost inputs ("merit") a tree sum of bills and a tree gather
    heard = observation_messages(search, paper, "merit") if sharing == "type" else 0
    if sharing == "type":
        assert heard == 4 * search.system_sum_messages + len(paper.groups)
    assert plain <= {search.messages_per_decision() + heard}


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


# ---- one model for any size (issue 19, item 4) -------------------------------------------------
TINY_SHARED = "maddpg[learning_starts=20,batch_size=16,log_every=20,checkpoint_every=1000,explore_steps=40]"


def _doubled(problem):
    """The same problem with every region copied once (groups and CS limits alike): twice the size,
    the same ratios everywhere."""
    import dataclasses

    from dispatchbench.model.problem import Problem, Region

    regions = tuple(problem.regions) + tuple(Region(f"{r.name}x", r.cs_max) for r in problem.regions)
    groups = tuple(problem.groups) + tuple(
        dataclasses.replace(g, name=f"{g.name}x", region=f"{g.region}x") for g in problem.groups
    )
    return Problem(f"{problem.name}-doubled", regions, groups, problem.commitment)


def _doubled_state(state):
    from dispatchbench.model.problem import State

    return State(
        state.label,
        {**state.demand, **{f"{r}x": d for r, d in state.demand.items()}},
        {**state.v2g_available, **{f"{g}x": v for g, v in state.v2g_available.items()}},
    )


def test_shared_inputs_do_not_depend_on_the_number_of_regions():
    """An instance and the same instance twice over (every region copied, demands copied) give
    every agent the same actor inputs and the same mean-field summaries of the others' actions."""
    from dispatchbench.learn.maddpg.features import agent_features, feature_names, mean_field, upper_rows

    paper = load_problem(PROBLEMS / "paper-4region.toml")
    double = _doubled(paper)
    states = _states(paper)[:5]
    twice = [_doubled_state(s) for s in states]
    g = len(paper.groups)
    for cost_inputs in ("none", "own", "merit"):
        one = agent_features(paper, states, cost_inputs=cost_inputs)
        two = agent_features(double, twice, cost_inputs=cost_inputs)
        assert one.shape == (5, g, len(feature_names(cost_inputs))) and two.shape == (5, 2 * g, one.shape[2])
        assert np.allclose(two[:, :g], one, atol=1e-6) and np.allclose(two[:, g:], one, atol=1e-6)
    rng = np.random.default_rng(0)
    on = rng.random((5, g)) < 0.6
    ub, lb = upper_rows(paper, states), paper.lower_bounds()[None].repeat(5, 0)
    power = np.where(on, lb + rng.random((5, g)) * (ub - lb), 0.0)
    mf_one = mean_field(paper, on, power, lb, ub)
    mf_two = mean_field(double, np.tile(on, 2), np.tile(power, 2), np.tile(lb, 2), np.tile(ub, 2))
    assert np.allclose(mf_two[:, :g, 3:], mf_one[:, :, 3:], atol=1e-6)  # the agent's region: the same
    # over the system, "the others" of a doubled instance hold the agent's own twin as well
    twin = np.stack([on * paper.delivery * ub, on * paper.delivery * lb, on * paper.delivery * power], -1)
    expected = (2 * mf_one[:, :, :3] * paper.delivery.dot(paper.p_max) + twin) / (2 * paper.delivery.dot(paper.p_max))
    assert np.allclose(mf_two[:, :g, :3], expected, atol=1e-5)


def test_merit_inputs_are_each_agents_place_in_the_merit_order():
    """``cost_inputs=merit``: the delivered available kW of the strictly cheaper agents (average
    metered cost per delivered kW at full available output), over the system and within the
    agent's region, against a brute-force count; and the agent's cost against the system's."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states
    from dispatchbench.learn.maddpg.features import agent_features, feature_names, layout, upper_rows
    from dispatchbench.model.evaluate import group_costs

    problem = generate_problem(6, 1000)
    states = validation_states(problem, families=("night_heavy",), stride=24)[:3]
    x = agent_features(problem, states, cost_inputs="merit")
    names = feature_names("merit")
    lay, ub = layout(problem), upper_rows(problem, states)
    for b in range(len(states)):
        full = np.where(ub[b] > problem.lower_bounds(), ub[b], problem.p_max)
        avg = group_costs(problem, np.ones(len(full), bool), full) / (full * problem.delivery)
        cap = ub[b] * problem.delivery
        system_avg = (avg * full * problem.delivery).sum() / (full * problem.delivery).sum()
        for i in range(len(avg)):
            cheaper = avg < avg[i]
            here = lay.region_of == lay.region_of[i]
            assert x[b, i, names.index("cheaper_available/system_capacity")] == pytest.approx(
                cap[cheaper].sum() / lay.system_capacity, rel=1e-5, abs=1e-7
            )
            assert x[b, i, names.index("region_cheaper_available/region_capacity")] == pytest.approx(
                cap[cheaper & here].sum() / lay.region_capacity[i], rel=1e-5, abs=1e-7
            )
            assert x[b, i, names.index("own_cost_per_kw/system_cost_per_kw")] == pytest.approx(
                avg[i] / system_avg, rel=1e-5
            )


def _any_size(out, sizes=(2, 4), **budget):
    from dispatchbench.contract.training import TrainingBudget, TrainingSet

    solver = make_solver(TINY_SHARED)
    return solver.fit(None, seed=0, out_dir=out, training_set=TrainingSet(sizes), budget=TrainingBudget(**budget))


def test_one_model_trained_on_small_instances_decides_a_larger_one(tmp_path):
    """``fit(None, training_set=...)`` on generated instances of 2 and 4 regions (training seeds)
    gives one model, shared per type by ``sharing=auto``, that decides an unseen 8-region
    instance of a validation seed: an answer for every state, every answer feasible by the
    evaluator; its model.json records the training cost in the keys the reports read."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import TRAINING, validation_states
    from dispatchbench.report.decision_cost import TRAINING_KEYS

    report = _any_size(tmp_path, steps=60)
    assert report.steps == 60 and report.info["stopped_by"] == "steps"
    info = report.info
    assert info["env_steps"] == 60 and info["train_steps"] == 60
    assert info["true_cost_evaluations"] > 60  # the played plans and every counterfactual "off"
    assert info["training_messages"] > 0 and info["parameter_sharing"] == "central copy"
    assert info["training_kind"].startswith("CTDE: centralised critic per type")
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["scope"] == meta["problem_fingerprint"] == "any-size" and meta["training_set"]["sizes"] == [2, 4]
    assert meta["hyperparameters"]["sharing"] == "type" and meta["hyperparameters"]["explore_steps"] == 40
    instances = meta["training_set"]["instances"]
    assert [r for r, _ in instances] == [2, 4, 2, 4] and all(s in TRAINING for _, s in instances)
    assert set(TRAINING_KEYS) <= set(meta) and meta["env_steps"] == 60
    solver = make_solver(f"maddpg[model={tmp_path}]")
    big = generate_problem(8, 1000)
    assert solver.skip(big) is None
    families = ("base_load", "night_heavy", "high_demand")  # (cs_binding days hold states on the very boundary)
    records = solve_and_score(big, validation_states(big, families=families, stride=24, random_count=4), solver)
    assert len(records) == 16 and all(r.status == "feasible" for r in records), [r.reason for r in records]


def test_a_shared_model_refuses_groups_it_never_saw(tmp_path):
    """A group rated outside what the model saw (with the shared 20 % margin) is refused in one
    line naming the group and the rating, on skip and on solve; a model for any size cannot be
    asked of per-agent networks."""
    import dataclasses

    from dispatchbench.contract.training import TrainingSet
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn.checkpoints import ModelFileError

    _any_size(tmp_path, steps=4)
    solver = make_solver(f"maddpg[model={tmp_path}]")
    problem = generate_problem(4, 1001)
    big = dataclasses.replace(problem.groups[0], p_max=5000.0, p_min=min(problem.groups[0].p_min, 5000.0))
    odd = dataclasses.replace(problem, groups=(big, *problem.groups[1:]))
    why = solver.skip(odd)
    assert why and f"group {big.name}" in why and "p_max 5000" in why and "outside the range" in why
    assert "\n" not in why
    with pytest.raises(ModelFileError, match="p_max 5000"):
        solver.solve(odd, _states(problem)[:1])
    with pytest.raises(ValueError, match="sharing=type or auto"):
        make_solver("maddpg[sharing=agent]").fit(
            None, seed=0, steps=2, out_dir=tmp_path / "x", training_set=TrainingSet((2,))
        )


def test_a_run_stopped_by_the_clock_is_reproduced_by_its_steps(tmp_path):
    """A wall-time budget stops between steps and records the steps done; training the same spec
    and seed for that many steps gives the same networks (the schedule never reads the clock)."""
    timed = _any_size(tmp_path / "timed", seconds=3.0)
    assert timed.steps >= 1 and timed.info["train_steps"] == timed.steps and timed.info["stopped_by"] == "time"
    assert timed.time_s < 3.0 + 2.0  # never a step expected to end past the budget
    again = _any_size(tmp_path / "steps", steps=timed.steps)
    assert again.steps == timed.steps and again.info["stopped_by"] == "steps"
    _same_networks(tmp_path / "timed", tmp_path / "steps")


def test_a_per_agent_run_stopped_by_the_clock_is_reproduced_by_its_spec_and_steps(tiny, tmp_path):
    """Per agent, the exploration schedule spans a share of the step budget; it is resolved when
    training starts and recorded in the model's spec, so that spec and the steps done reproduce a
    run the clock stopped."""
    from dispatchbench.contract.training import TrainingBudget

    spec = f"maddpg[{FAST}]"
    timed = make_solver(spec).fit(
        tiny, seed=2, out_dir=tmp_path / "timed", budget=TrainingBudget(steps=100_000, seconds=3.0)
    )
    assert timed.info["stopped_by"] == "time" and 1 <= timed.steps < 100_000
    meta = json.loads((tmp_path / "timed" / "model.json").read_text())
    assert meta["hyperparameters"]["sharing"] == "agent" and meta["hyperparameters"]["explore_steps"] == 50_000
    assert meta["parameter_sharing"] == "none" and meta["training_kind"] == "CTDE: centralised critic"
    assert "explore_steps=50000" in meta["spec"] and "sharing=agent" in meta["spec"]
    make_solver(meta["spec"]).fit(tiny, seed=2, steps=timed.steps, out_dir=tmp_path / "steps")
    _same_networks(tmp_path / "timed", tmp_path / "steps")


def _same_networks(first, second):
    import torch

    from dispatchbench.learn.checkpoints import load_checkpoint

    a, b = load_checkpoint(first), load_checkpoint(second)
    assert a.step == b.step
    for net in a.networks:
        for key, value in a.networks[net].items():
            assert torch.equal(value, b.networks[net][key]), (net, key)


def test_sharing_auto_is_per_agent_on_one_problem_and_labelled(tiny, tmp_path):
    """``sharing=auto`` (the default) trains per-agent networks on one problem — the MADDPG of the
    paper-size rows — and the labels say which sharing a row is (CTDE either way)."""
    from dispatchbench.contract.solver import Label
    from dispatchbench.solvers.maddpg import Maddpg

    out = tmp_path / "auto"
    report = make_solver(f"maddpg[{FAST}]").fit(tiny, seed=0, steps=5, out_dir=out)
    meta = json.loads((out / "model.json").read_text())
    assert meta["hyperparameters"]["sharing"] == "agent" and meta["scope"] == "instance"
    assert report.info["parameter_sharing"] == "none" and meta["stopped_by"] == "steps"
    assert Maddpg.label({"sharing": "agent"}) == Label("MADDPG (per agent)", "learned, CTDE")
    assert Maddpg.label({"sharing": "type"}).family == "learned, CTDE, networks shared per type"
    assert Maddpg.label({}).name == "MADDPG" and "CTDE" in Maddpg.label({}).family
    assert Maddpg.any_size and Maddpg.default_train_seconds == 840.0 and Maddpg.default_train_steps == 24000


def test_train_generated_through_the_cli_decides_a_larger_instance(tmp_path):
    """``dispatchbench train --generated 4,8 --steps 3`` writes one model (problem None) that
    ``solve`` uses on a generated 16-region instance it never saw."""
    import subprocess

    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states
    from dispatchbench.solvers.maddpg import Maddpg

    spec = "maddpg[" + ",".join(f"{k}={v}" for k, v in Maddpg.test_settings.items()) + "]"
    done = subprocess.run(
        [
            "dispatchbench",
            "train",
            "--generated",
            "4,8",
            "--steps",
            "3",
            "--solver",
            spec,
            "--out",
            "m",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "trained maddpg for 3 steps" in done.stdout and "step budget" in done.stdout
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["scope"] == "any-size" and meta["training_set"]["sizes"] == [4, 8] and meta["steps"] == 3
    unseen = generate_problem(16, 1000)
    states = validation_states(unseen, families=("base_load",), stride=48)
    records = solve_and_score(unseen, states, make_solver(f"maddpg[model={tmp_path / 'm'}]"))
    assert len(records) == len(states) and any(r.status == "feasible" for r in records), [r.reason for r in records]
    assert all(r.status == "feasible" or r.reason for r in records)  # an unbalanced answer says why


def test_generated_training_instances_use_training_seeds_only():
    from dispatchbench.instances.protocol import TRAINING
    from dispatchbench.learn.lifecycle import generated_instances

    specs = generated_instances((4, 8), 3, 998)
    assert [r for r, _ in specs] == [4, 8, 4, 8, 4, 8] and all(s in TRAINING for _, s in specs)
    assert specs == generated_instances((4, 8), 3, 998)  # the run's seed alone decides them


def test_the_per_agent_mode_stays_available(tiny, eval_states, tmp_path):
    out = tmp_path / "agent"
    report = make_solver(f"maddpg[{FAST},sharing=agent]").fit(tiny, seed=0, steps=250, out_dir=out)
    assert report.info["parameter_sharing"] == "none" and report.info["true_cost_evaluations"] == 250
    meta = json.loads((out / "model.json").read_text())
    assert meta["hyperparameters"]["sharing"] == "agent" and "observation" in meta
    records = solve_and_score(tiny, eval_states, make_solver(f"maddpg[model={out}]"))
    assert all(r.status == "feasible" for r in records)
    assert make_solver("maddpg[sharing=agent]").label(make_solver("maddpg[sharing=agent]").params).name == (
        "MADDPG (per agent)"
    )


# ---- the repair: a workable commitment for every feasible state ---------------------------------
def test_repair_finds_a_workable_commitment_for_every_feasible_state():
    """From all off, all on and random commitments, on validation states of a generated 16-region
    instance, the repair's commitment is one the search balances and the evaluator accepts; it
    tests candidates without running the search."""
    from dispatchbench.formulations.distributed_search import DistributedSearch
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states
    from dispatchbench.learn.maddpg.commitment_repair import repair_commitment
    from dispatchbench.model.evaluate import evaluate
    from dispatchbench.model.feasibility import infeasibility_reason

    problem = generate_problem(16, 1000)
    search = DistributedSearch(problem)
    rng = np.random.default_rng(0)
    g = len(problem.groups)
    tried = 0
    for state in validation_states(problem, stride=24, random_count=6):
        if infeasibility_reason(problem, state) is not None:
            continue
        for on in (np.zeros(g, bool), np.ones(g, bool), rng.random(g) < 0.3):
            fix = repair_commitment(problem, state, on, rng.normal(size=g))
            assert fix.on is not None, state.label
            result = search.project(state, fix.on, problem.lower_bounds())
            assert result.feasible[0], state.label
            assert evaluate(problem, state, result.dispatch(problem, fix.on)).feasible, state.label
            tried += 1
    assert tried >= 60


def test_exact_repair_pass_meets_the_total_where_the_greedy_one_cannot():
    """The exact pass (one subset per region, a backward pass over reachable totals) finds a
    commitment on every feasible state, from any start, and none on an infeasible one."""
    from dispatchbench.learn.maddpg.commitment_repair import SupplyWindows, _exact_commitment
    from dispatchbench.model.feasibility import infeasibility_reason
    from dispatchbench.model.problem import State

    paper = load_problem(PROBLEMS / "paper-4region.toml")
    rng = np.random.default_rng(1)
    g = len(paper.groups)
    found = refused = 0
    for state in StateSampler(paper, seed=5).sample_many(20):
        windows = SupplyWindows(paper, state)
        on = _exact_commitment(windows, rng.random(g) < 0.5, rng.normal(size=g))
        assert on is not None and windows.workable(on), state.label
        found += 1
    too_much = State("too_much", {r: 5000.0 for r in paper.region_names}, {v: 90.0 for v in paper.v2g_names})
    assert infeasibility_reason(paper, too_much) is not None
    assert _exact_commitment(SupplyWindows(paper, too_much), np.ones(g, bool), np.zeros(g)) is None
    refused += 1
    assert found == 20 and refused == 1
