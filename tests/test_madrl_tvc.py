"""MADRL-TVC: learned offers clear exactly, short training lowers the evaluator's cost, the learned
commitment switches an expensive group off, models reload to identical decisions, and the agents
are fully distributed (own parameters, own data, no cost coefficients at execution)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_batched_equals_one_by_one, permuted_problem_toml

from dispatchbench import State, evaluate, load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.formulations.balancing import PriceResponse, balance, demand_rows, state_bounds
from dispatchbench.instances.protocol import validation_states
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.learn.tvc.competition import (
    TriedPlans,
    apply_swaps,
    commitment_targets,
    compete,
    flip_rows,
    move_gains,
    sample_flips,
    sample_swaps,
)
from dispatchbench.learn.tvc.curves import calibrate, meter
from dispatchbench.learn.tvc.decision import decide, decide_batch
from dispatchbench.learn.tvc.features import HANDOVER, N_FEATURES, SOLO
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.offers import LearnedPriceResponse, OfferBook
from dispatchbench.learn.tvc.plans import neighbours
from dispatchbench.learn.tvc.policy import TYPES, PolicyNets, resolved_share, slice_count, slice_index
from dispatchbench.learn.tvc.repair import repair
from dispatchbench.learn.tvc.rounds import move_rounds
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import SolverNotFound
from dispatchbench.model.problem import Problem

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"

# One region without a CS link: a cheap group that can serve most demands alone, an expensive one
# (large fixed cost) that is only worth running when demand exceeds the cheap group, and a V2G group.
TOY = """
[problem]
name = "tvc-toy"
commitment = true

[[regions]]
name = "R"
cs_max = 0.0

[[groups]]
name = "CHEAP"
type = "FDC"
region = "R"
a = 0.002
b = 4.0
c = 50.0
p_min = 30.0
p_max = 400.0

[[groups]]
name = "DEAR"
type = "FDC"
region = "R"
a = 0.004
b = 9.0
c = 400.0
p_min = 50.0
p_max = 300.0

[[groups]]
name = "EV"
type = "V2G"
region = "R"
g = 6.0
h = 10.0
efficiency = 0.9
p_max = 60.0
"""

FAST = dict(
    share="type",  # the tests below were written for one policy per type; share=auto is tested on its own
    states_per_step=2,
    search_rounds=3,
    batch_size=128,
    log_every=50,
    checkpoint_every=1000,
)


def new_team(problem: Problem, hp: Hyperparameters | None = None, seed: int = 0) -> Team:
    """An untrained team: calibrated curves, fresh networks."""
    hp = hp or Hyperparameters(**FAST)
    hp = dataclasses.replace(hp, share=resolved_share(hp.share, any_size=False))
    torch.manual_seed(seed)
    nets = PolicyNets(slice_count(problem, hp.share), hp)
    return Team(problem, hp, nets, calibrate(problem, hp.calibration_points, hp.cost_knots))


def fast(**more) -> str:
    """A TVC spec with the fast settings (hyper-parameters are spec parameters)."""
    return "madrl_tvc[" + ",".join(f"{k}={v}" for k, v in {**FAST, **more}.items()) + "]"


def _module():
    """The bundled plugin module (``solvers/madrl_tvc.py``, installed as dispatchbench.solvers)."""
    import dispatchbench.solvers.madrl_tvc as module

    return module


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Problem:
    path = tmp_path_factory.mktemp("toy") / "toy.toml"
    path.write_text(TOY)
    return load_problem(path)


def _state(problem: Problem, demand: float, v2g: float = 40.0) -> State:
    return State(f"d{demand:g}", {"R": demand}, {"EV": v2g})


def _best_cost(problem: Problem, state: State) -> float:
    """Exact optimum by enumerating commitments, each cleared with the true price response."""
    ons = np.array(list(itertools.product([0, 1], repeat=len(problem.groups))), bool)
    lb, ub = state_bounds(problem, state, len(ons))
    bal = balance(problem, state, PriceResponse(problem.a, problem.b, problem.delivery, lb, ub, ons))
    cost = np.where(ons, problem.a * bal.power**2 + problem.b * bal.power + problem.c, 0.0).sum(1)
    return float(np.where(bal.feasible, cost, np.inf).min())


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tvc-model")
    torch.manual_seed(0)
    make_solver(fast()).fit(toy, seed=0, steps=250, out_dir=out)
    return out


def test_learned_offers_from_true_marginals_reach_the_reference_optimum():
    """The offer book + learned response clear exactly: fed the true marginal costs, the search
    returns the known optimum at the Table IV state for the optimal commitment."""
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    state = load_states(PROBLEMS / "paper-4region-tableIV.csv", paper)[0]
    power = np.stack([np.linspace(g.p_min, g.p_max, 2049) for g in paper.groups])
    price = np.stack(
        [
            (g.linear_cost + 2 * g.quadratic_cost * p) / g.delivery + 1e-9 * np.arange(len(p))
            for g, p in zip(paper.groups, power)
        ]
    )
    book = OfferBook.build(power, price)
    on = np.array([[g not in {"FDC1", "FDC2", "ASC7"} for g in paper.group_names]])
    lb, ub = state_bounds(paper, state)
    response = LearnedPriceResponse(book, lb, ub, on)
    s = np.linspace(-5, 20, 101)[:, None].repeat(len(paper.groups), 1)
    steps = np.diff(
        LearnedPriceResponse(book, *state_bounds(paper, state, 101), np.ones((101, 9), bool)).power(s), axis=0
    )
    assert (steps >= -1e-12).all()  # offers never decrease with the price
    bal = balance(paper, state, response)
    d = Dispatch(on=on[0], power=bal.power[0], imports=bal.imports[0])
    ev = evaluate(paper, state, d)
    assert ev.feasible
    assert ev.cost == pytest.approx(4903.9687, abs=2e-3)


def test_each_agent_calibrates_its_own_curve_from_its_own_bills():
    """A calibration meters each agent's bill at outputs across its own range and fits a convex
    curve to them: exact for the paper's quadratic and linear costs (its marginal cost, hence its
    offers, to ~1e-7 per kW), at any size, in one vectorised fit."""
    from dispatchbench.instances.generate_problem import generate_problem

    for problem in (load_problem(PROBLEMS / "paper-4region.toml"), generate_problem(32, 1000)):
        curves = calibrate(problem, 17, 8)
        rng = np.random.default_rng(0)
        power = rng.uniform(problem.lower_bounds(), problem.p_max, size=(20, len(problem.groups)))
        assert np.allclose(curves.cost(power), meter(problem, power.T).T, rtol=1e-9, atol=1e-7)
        grid, price = curves.price_table(65)
        true = (problem.b[:, None] + 2 * problem.a[:, None] * grid) / problem.delivery[:, None]
        assert np.abs(price - true).max() < 1e-5
        assert (np.diff(price, axis=1) > 0).all()  # strictly increasing: offers invert it
        assert np.allclose(curves.scale, meter(problem, problem.p_max[:, None])[:, 0].clip(min=1.0))


def test_short_training_reduces_cost_and_learns_to_switch_off(toy, trained):
    states = [_state(toy, d) for d in (120.0, 280.0, 450.0, 600.0)]
    obs = observation_matrix(toy, states)
    untrained = new_team(toy)  # the same curves, networks before any update
    before = [evaluate(toy, s, decide(untrained, s, obs[j]).dispatch) for j, s in enumerate(states)]
    solver = make_solver(f"madrl_tvc[model={trained},refine=0]")  # the learned commitment alone
    after = [evaluate(toy, s, solver.solve(toy, [s])[0].dispatch) for s in states]
    assert all(e.feasible for e in before + after)  # the repair keeps even untrained decisions feasible
    assert sum(e.cost for e in after) < 0.95 * sum(e.cost for e in before)
    best = [_best_cost(toy, s) for s in states]
    gaps = [(e.cost - b) / b for e, b in zip(after, best)]
    assert max(gaps) < 0.01
    # up to CHEAP's capacity the optimum runs CHEAP alone: DEAR's fixed cost must be learned away,
    # and above it DEAR must be learned back on
    dear = toy.group_names.index("DEAR")
    low = [_state(toy, d) for d in (150.0, 250.0, 350.0)]
    assert not any(a.dispatch.on[dear] for a in solver.solve(toy, low))
    assert all(a.dispatch.on[dear] for a in solver.solve(toy, [_state(toy, d) for d in (500.0, 650.0)]))


def test_save_load_round_trip_gives_identical_decisions(toy, trained):
    states = [_state(toy, d, v) for d, v in ((150.0, 10.0), (330.0, 50.0), (420.0, 0.0), (600.0, 30.0))]
    first = make_solver(f"madrl_tvc[model={trained}]").solve(toy, states)
    second = make_solver(f"madrl_tvc[model={trained}]").solve(toy, states)
    for a, b in zip(first, second):
        assert np.array_equal(a.dispatch.on, b.dispatch.on)
        assert np.array_equal(a.dispatch.power, b.dispatch.power)
        assert a.info["messages"] > 0 and a.info["decision_s"] > 0


def test_a_model_whose_networks_do_not_fit_is_refused_as_a_model_file_error(toy, trained, tmp_path):
    """A checkpoint written by another version of the plugin (here: one feature fewer) is refused
    naming the file and the network, not with a torch traceback."""
    import shutil

    from dispatchbench.learn.checkpoints import CHECKPOINT_FILE, ModelFileError

    old = tmp_path / "old-model"
    shutil.copytree(trained, old)
    payload = torch.load(old / CHECKPOINT_FILE, weights_only=True)
    weights = payload["networks"]["policy"]
    weights["q.layers.0.weight"] = weights["q.layers.0.weight"][:, :-1]  # (slices, features, hidden): one input fewer
    torch.save(payload, old / CHECKPOINT_FILE)
    with pytest.raises(ModelFileError, match=r"checkpoint\.pt.*network 'policy' does not fit"):
        make_solver(f"madrl_tvc[model={old}]").solve(toy, [_state(toy, 300.0)])


def test_resume_continues_training_from_the_checkpoint(toy, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    make_solver(fast()).fit(toy, seed=3, steps=30, out_dir=straight)
    make_solver(fast()).fit(toy, seed=3, steps=15, out_dir=resumed)
    make_solver("madrl_tvc").fit(toy, seed=3, steps=30, out_dir=resumed, resume=True)  # settings from model.json
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["networks"]
    b = torch.load(resumed / "checkpoint.pt", weights_only=True)["networks"]
    for key in a:
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    states = [_state(toy, d) for d in (150.0, 420.0, 600.0)]
    for x, y in zip(
        make_solver(f"madrl_tvc[model={straight}]").solve(toy, states),
        make_solver(f"madrl_tvc[model={resumed}]").solve(toy, states),
    ):
        assert np.array_equal(x.dispatch.power, y.dispatch.power)


def test_hyperparameters_are_spec_parameters_recorded_in_the_model(toy, tmp_path):
    solver = make_solver("madrl_tvc[q_lr=5e-4,refine=1]")
    assert solver.spec == "madrl_tvc[q_lr=0.0005,refine=1]"
    assert make_solver(solver.spec).spec == solver.spec
    assert set(Hyperparameters.__dataclass_fields__) <= set(_module().MadrlTvc.parameters)
    make_solver(fast(q_lr=5e-4)).fit(toy, seed=0, steps=2, out_dir=tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["hyperparameters"]["q_lr"] == 5e-4 and meta["hyperparameters"]["states_per_step"] == 2
    assert "q_lr=0.0005" in meta["spec"] and meta["steps"] == 2 and meta["seed"] == 0
    assert {"torch", "numpy", "python", "dispatchbench"} <= set(meta["versions"])
    with pytest.raises(ValueError, match="keeps the hyper-parameters"):  # resume reads model.json, only
        make_solver("madrl_tvc[q_lr=1e-2]").fit(toy, seed=0, steps=4, out_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="hyper-parameters go in the spec"):
        make_solver("madrl_tvc").fit(toy, seed=0, steps=2, out_dir=tmp_path / "x", q_lr=1e-3)


@pytest.mark.parametrize(
    "spec",
    [
        "madrl_tvc[refine=-5]",
        "madrl_tvc[q_lr=0]",
        "madrl_tvc[flip_prob=2]",
        "madrl_tvc[q_lr=nan]",
        "madrl_tvc[batch_size=0]",
        "madrl_tvc[share=group]",
        "madrl_tvc[zone_regions=0]",
        "madrl_tvc[drop=status]",
    ],
)
def test_out_of_range_parameters_fail_when_the_spec_is_parsed(spec):
    with pytest.raises(SolverNotFound, match="outside|finite|not one of"):
        make_solver(spec)


def test_agents_of_a_type_share_one_policy_or_each_its_own(toy):
    """share=type: one network slice per group type, every agent of the type routed to it (what
    decides any size); share=agent: one slice per agent. Each agent keeps its own curve."""
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    kinds = [g.type.value for g in paper.groups]
    assert list(slice_index(paper, "type")) == [TYPES.index(k) for k in kinds]
    assert list(slice_index(paper, "agent")) == list(range(9))
    assert slice_count(paper, "type") == 3 and slice_count(paper, "agent") == 9
    team = new_team(paper)
    assert team.nets.q.layers[0].weight.shape[0] == 3
    assert len(np.unique(team.curves.coef, axis=0)) == 9  # every agent its own measured curve


def test_an_update_of_one_slice_uses_only_that_slices_data():
    """Changing the FDC slice's mini-batch changes the FDC networks only: each slice is trained on
    the experience of its own agents (its type's, or its own), exactly as a separate network
    would be; a target without a mask bit does not train."""
    hp = Hyperparameters(**FAST)
    b = 32
    rng = np.random.default_rng(0)

    def batch(shift: float = 0.0, mask_off: bool = False) -> dict:
        out = {}
        for s in range(3):
            mask = np.ones((b, 2), dtype=np.float32)
            if mask_off and s == 1:
                mask[:, 0] = 0.0
            out[s] = {
                "features": rng.random((b, N_FEATURES)).astype(np.float32),
                "targets": (-rng.random((b, 2)) + (shift if s == 0 else 0.0)).astype(np.float32),
                "mask": mask,
            }
        return out

    torch.manual_seed(1)
    one, two = PolicyNets(3, hp), PolicyNets(3, hp)
    two.load_state_dict(one.state_dict())
    rng = np.random.default_rng(0)
    one.update(batch(), {})
    rng = np.random.default_rng(0)
    two.update(batch(shift=-5.0), {})
    for (name, p1), (_, p2) in zip(one.q.named_parameters(), two.q.named_parameters()):
        assert torch.equal(p1[1:], p2[1:]), name  # the other slices: bit-identical
    assert any(not torch.equal(p1[0], p2[0]) for p1, p2 in zip(one.q.parameters(), two.q.parameters()))


def test_repair_by_ratings_makes_any_plan_workable(paper_model):
    """Whatever the policy proposes, the repair (ratings and demand only) ends on a plan whose
    ranges can meet every balance, flipping the most willing agents first."""
    from dispatchbench.formulations.vector_form import shortfall
    from dispatchbench.learn.tvc.plans import solo_flips

    paper, model = paper_model
    team = make_solver(f"madrl_tvc[model={model}]").load(paper)
    rng = np.random.default_rng(0)
    for state in _day(paper):
        willing = rng.normal(size=9)
        on, flips, passes = repair(team.problem, state, np.zeros(9, bool), willing)
        assert shortfall(paper, state, on[None])[0] <= 1e-9 and 0 < flips <= 9 and 0 < passes <= flips
        assert team.clear(state, on).feasible[0]
        # the first pass starts the most willing of the agents whose start removes some shortfall,
        # however little (not the one that removes the most)
        off = np.zeros(9, bool)
        helps = shortfall(paper, state, solo_flips(off)) < shortfall(paper, state, off[None])[0] - 1e-9
        assert on[np.argmax(np.where(helps, willing, -np.inf))]


def test_repair_flips_in_every_short_region_at_once_and_clears():
    """A plan that leaves many regions short is repaired in a few tree passes, each region
    flipping its own most willing helping agent in the same pass: fewer passes than flips, the
    passes not growing with the regions, and the plan workable by ratings and cleared. The
    largest-first rule (training's) still makes one flip per pass."""
    from dispatchbench.formulations.vector_form import shortfall
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states

    most = 0
    for regions in (16, 64):
        big = generate_problem(regions, 0)
        team = new_team(big, Hyperparameters())
        rng = np.random.default_rng(regions)
        for state in validation_states(big, families=("night_heavy",), stride=48):
            off = np.zeros(len(big.groups), bool)  # nothing runs: many regions short
            willing = rng.normal(size=len(big.groups))
            on, flips, passes = repair(big, state, off, willing)
            assert shortfall(big, state, on[None])[0] == 0 and team.clear(state, on).feasible[0]
            regions_flipped = len(np.unique(big.group_region[on]))
            assert regions_flipped >= regions // 2 and 0 < passes < flips and flips >= regions_flipped
            most = max(most, passes)
            _, one_by_one, its_passes = repair(big, state, off, willing, largest_first=True)
            assert its_passes == one_by_one  # one flip per pass, as before
    assert most <= 6


def test_the_repairs_messages_are_what_the_ledger_charged():
    """A repaired state is charged its repair by the formula (per pass a tree sum of the regions'
    ranges and the proposals' gather and answer, ``2·2(R − 1)``; per flip a bid and its reply) and
    one more clearing; a state that needed no repair is charged nothing."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states
    from dispatchbench.learn.tvc.decision import repair_batch
    from dispatchbench.learn.tvc.ledger import MessageLedger
    from dispatchbench.learn.tvc.repair import repair_messages

    big = generate_problem(32, 0)
    team = new_team(big, Hyperparameters())
    states = validation_states(big, families=("night_heavy",), stride=24)[:3]
    preference = np.random.default_rng(1).normal(size=(3, len(big.groups)))
    plans = np.random.default_rng(0).random((3, len(big.groups))) < 0.3  # two plans short, one workable:
    plans[2] = repair(big, states[2], plans[2], preference[2])[0]
    first = team.clear(states, plans)
    assert list(first.feasible) == [False, False, True]
    ledger = MessageLedger.open(3)
    on, result, flips, passes = repair_batch(team, states, plans, preference, first, ledger)
    tree, r = team.search.system_sum_messages, len(big.regions)
    assert result.feasible.all() and tree == 2 * (r - 1) and flips[2] == passes[2] == 0
    for j in range(2):
        assert 0 < passes[j] < flips[j]
        assert repair_messages(int(flips[j]), int(passes[j]), tree) == passes[j] * 4 * (r - 1) + 2 * flips[j]
        cleared = team.clear(states[j], on[j]).messages
        assert ledger.messages[j] == passes[j] * 4 * (r - 1) + 2 * flips[j] + cleared and ledger.clearings[j] == 1
    assert ledger.messages[2] == ledger.clearings[2] == 0


def test_the_best_tried_plan_sets_every_agents_targets(toy):
    """Target-value competition at one state: the plans tried compete; the best one's actions get
    advantage 0, the other action of each agent the best plan that played it (≤ 0, per agent's
    share of the state's best cost), and the compression keeps the order (so the preference keeps
    its sign)."""
    team = new_team(toy)
    state = _state(toy, 250.0)
    start = np.ones((1, len(toy.groups)), bool)
    tried = compete(TriedPlans(toy, [state], team.clear_for_training), [start], np.random.default_rng(0), team.hp)
    assert len(tried.costs[0]) >= 1 + len(toy.groups)  # the start and at least its solo flips
    assert tried.scored == len(tried.costs[0])  # every tried plan is one true-cost evaluation
    best, cost = tried.best(0)
    assert cost == min(tried.costs[0].values()) and np.isfinite(cost)
    targets, mask = commitment_targets(tried, 0, 2.0)
    unit = cost / len(toy.groups)  # the state's best team cost per agent
    assert mask.all()  # three agents: every flip of the best plan was tried
    assert np.all(targets <= 0) and np.all(targets >= -2.0)
    assert np.all(targets[np.arange(len(best)), best.astype(int)] == 0)
    plans, costs = tried.table(0)
    for i in range(3):
        other = costs[plans[:, i] != best[i]].min()
        assert targets[i, 1 - int(best[i])] == pytest.approx(max(-(other - cost) / unit, -2.0))
    squashed = team.nets.compress(targets)
    assert np.array_equal(np.sign(squashed[:, 1] - squashed[:, 0]), np.sign(targets[:, 1] - targets[:, 0]))
    assert np.allclose(team.nets.decompress(squashed), targets)


def test_move_targets_are_the_team_gains_of_solo_flips_and_hand_overs(toy):
    """The move network's targets at a plan: per agent, the team advantage of the plan with its
    status flipped minus the plan's own (per agent's share of the state's best cost; an infeasible
    plan counts at the clip), and for a stopped agent the best hand-over it starts (another agent stops); a flip
    that was not tried has no target (mask 0)."""
    team = new_team(toy)
    state = _state(toy, 250.0)
    tried = TriedPlans(toy, [state], team.clear_for_training)
    plan = np.array([True, False, True])
    pairs = sample_swaps(plan, 10, toy.group_region, np.random.default_rng(0))
    swaps = apply_swaps(plan, pairs)
    assert len(swaps) == 2 and all(s[1] and s.sum() == 2 for s in swaps)  # agent 1 starts, one of 0 / 2 stops
    flips = flip_rows(plan, np.array([0, 1]))  # agent 2's flip is not tried
    everything = np.concatenate([plan[None], flips, swaps])
    tried.score_fresh([0] * len(everything), list(everything))
    costs = tried.costs[0]
    best = min(costs.values())

    def advantage(p):
        return max(-(costs[p.tobytes()] - best) / (best / 3), -2.0)  # per agent's share of the best cost

    gains, mask = move_gains(tried, 0, plan, 2.0)
    for i, flipped in enumerate(flips):
        assert gains[i, SOLO] == pytest.approx(advantage(flipped) - advantage(plan)) and mask[i, SOLO]
    assert not mask[2, SOLO]
    assert gains[1, HANDOVER] == pytest.approx(max(advantage(s) for s in swaps) - advantage(plan)) and mask[1, HANDOVER]
    assert gains[0, HANDOVER] == gains[2, HANDOVER] == -2.0 and mask[0, HANDOVER]  # running agents start no hand-over


def test_counterfactuals_are_sampled_on_large_instances():
    """Beyond ``max_flips`` agents a plan tries a sample of solo flips (the ones asked for first,
    then a random fill) and local hand-overs first: what keeps a step's cost flat in size."""
    from dispatchbench.instances.generate_problem import generate_problem

    big = generate_problem(32, 1000)
    rng = np.random.default_rng(0)
    plan = rng.random(len(big.groups)) < 0.6
    agents = sample_flips(plan, 12, rng, first=np.array([5, 3]))
    assert len(agents) == 12 == len(set(agents)) and {3, 5} <= set(agents)
    assert list(sample_flips(plan[:10], 12, rng)) == list(range(10))
    pairs = sample_swaps(plan, 20, big.group_region, rng)
    assert len(pairs) == 20 and all(plan[i] and not plan[j] for i, j in pairs)
    local = np.mean([big.group_region[i] == big.group_region[j] for i, j in pairs])
    assert local >= 0.4  # half of them inside the starter's region (where it has a running partner)
    small = np.array([True, False, True])  # the decision-time search's neighbourhood: all of it
    moves = neighbours(small, max_flips=10, max_swaps=10, rng=np.random.default_rng(0))
    assert len(moves) == 3 + 2 and all(m.sum() == small.sum() for m in moves[3:])


def test_the_plan_search_scored_by_true_cost_needs_no_learned_part(toy):
    """The competition's plan search takes any clearing: handed the true price response (no
    network, no team) it finds the enumerated optimum of the toy problem from "everyone on"."""
    from dispatchbench.formulations.distributed_search import SearchResult

    def true_clearing(states, plans):
        lb, ub = state_bounds(toy, states, len(plans))
        response = PriceResponse(toy.a, toy.b, toy.delivery, lb, ub, plans)
        return SearchResult(
            balanced=balance(toy, states, response), messages=0, consensus_rounds=0, sign_disagreements=0
        )

    states = [_state(toy, d) for d in (150.0, 250.0, 450.0, 600.0)]
    hp = Hyperparameters(**FAST)
    tried = compete(TriedPlans(toy, states, true_clearing), [np.ones((4, 3), bool)], np.random.default_rng(0), hp)
    for k, state in enumerate(states):
        assert tried.best(k)[1] == pytest.approx(_best_cost(toy, state), rel=1e-9), state.label


def test_features_are_built_and_read_by_name(toy):
    """Every module reads a feature by its name: the columns after a clearing hold what their names
    say (the observation, the plan's status, whether it cleared, the agent's ratings), and a set
    of columns that is missing one or has one too many is refused; an ablation reads 0."""
    from dispatchbench.learn.tvc.features import FEATURE_NAMES, Features

    team = new_team(toy)
    states = [_state(toy, d) for d in (150.0, 450.0)]
    obs = observation_matrix(toy, states)
    plan = np.array([[True, False, True], [True, True, False]])
    result = team.clear(states, plan)
    features = team.features(states, obs, plan, result)
    assert features.values.shape == (2, 3, len(FEATURE_NAMES)) == (2, 3, N_FEATURES)
    assert np.array_equal(features.column("status"), plan.astype(float))
    assert np.array_equal(features.column("cleared"), np.repeat(result.feasible[:, None], 3, 1).astype(float))
    for k, name in enumerate(("total_demand", "own_demand_or_v2g", "third_observation")):
        assert np.array_equal(features.column(name), obs[..., k].astype(float))
    assert np.allclose(features.column("turndown")[0], [30 / 400, 50 / 300, 0.0])
    assert np.allclose(features.column("capacity")[1], [0.4, 0.3, 0.06])
    assert np.array_equal(features.by_agent()[1], features.values[:, 1])
    columns = {name: features.column(name) for name in FEATURE_NAMES}
    with pytest.raises(ValueError, match="missing \\['margin'\\]"):
        Features.from_columns({k: v for k, v in columns.items() if k != "margin"})
    with pytest.raises(ValueError, match="unknown \\['extra'\\]"):
        Features.from_columns({**columns, "extra": columns["margin"]})
    ablated = new_team(toy, Hyperparameters(**FAST, drop="flip_workable+cover"))
    cut = ablated.features(states, obs, plan, result)
    assert not cut.column("flip_workable").any() and not cut.column("cover").any()
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    tree = 2 * (len(paper.regions) - 1)
    regions = len(paper.regions)  # one zone: each region's candidate goes to the other three CS nodes
    handover = len(paper.groups) + regions * (regions - 1)  # margins to the CS nodes, the candidates across
    assert new_team(paper).feature_messages == 2 * tree + handover  # spare output and ranges: two tree sums
    assert new_team(paper, Hyperparameters(**FAST, drop="cover")).feature_messages == tree + handover
    dropped_all = Hyperparameters(**FAST, drop="flip_workable+cover+handover_saving")
    assert new_team(paper, dropped_all).feature_messages == 0


def test_a_stopped_agent_hears_the_loss_its_start_would_let_a_running_agent_stop():
    """``handover_saving``: each region's candidate is its running agent with the most negative
    margin among those whose stop alone is unworkable; a stopped agent hears the largest loss of
    the candidates of its zone whose stop its start makes workable (checked here plan by plan
    with ``vector_form.shortfall``), 0 otherwise and for running agents. Pair shortfalls agree
    with the plain one."""
    from dispatchbench.formulations.vector_form import handover_shortfalls, shortfall

    paper = load_problem(PROBLEMS / "paper-4region.toml")
    team = new_team(paper)
    states = validation_states(paper, days=1, stride=6)
    obs = observation_matrix(paper, states)
    rng = np.random.default_rng(3)
    plans = rng.random((len(states), len(paper.groups))) < 0.6
    result = team.clear(states, plans)
    feats = team.features(states, obs, plans, result)
    margin, ok, saving = (feats.column(c) for c in ("margin", "flip_workable", "handover_saving"))
    seen = second = 0
    for k, state in enumerate(states):
        plan = plans[k]
        loss = np.where(plan & (ok[k] == 0) & (margin[k] < 0), -margin[k], -np.inf)
        candidates = [  # the paper's size is one zone: every region's candidate is heard
            int(members[np.argmax(loss[members])])
            for r in range(len(paper.regions))
            if np.isfinite(loss[members := np.flatnonzero(paper.group_region == r)]).any()
        ]
        for i in range(len(plan)):
            expected = 0.0
            for c in [] if plan[i] else candidates:
                trial = plan.copy()
                trial[i], trial[c] = True, False
                if shortfall(paper, state, trial[None])[0] <= 1e-9:
                    expected = max(expected, loss[c])
            assert saving[k, i] == pytest.approx(expected)
            seen += expected > 0
            second += expected > 0 and expected < max((loss[c] for c in candidates), default=0.0)
    assert seen > 0 and second > 0  # it met workable hand-overs, some not with the dearest candidate
    lb, ub = state_bounds(paper, states, len(plans))
    pairs = rng.integers(0, len(paper.groups), plans.shape)
    got = handover_shortfalls(paper, demand_rows(paper, states), plans, ub, pairs)
    for k, i in zip(*np.nonzero(~plans & plans[np.arange(len(plans))[:, None], pairs])):
        trial = plans[k].copy()
        trial[i], trial[pairs[k, i]] = True, False
        assert got[k, i] == pytest.approx(shortfall(paper, states[k], trial[None])[0], abs=1e-6)


def test_the_message_ledger_charges_only_the_states_that_ran():
    from dispatchbench.learn.tvc.ledger import EVERY, MessageLedger

    ledger = MessageLedger.open(3)
    ledger.cleared(EVERY, 100)
    ledger.heard(np.array([True, False, True]), 7)
    ledger.cleared(np.array([2]), 50)
    ledger.send(1, 3)
    ledger.cleared(0, 40, clearings=4)
    assert list(ledger.messages) == [147, 103, 157]
    assert list(ledger.clearings) == [5, 1, 2] and list(ledger.hearings) == [1, 0, 1]


def _move_team(paper_model, solo, handover):
    """The trained paper team with its move network replaced by fixed gains (functions of the
    features), on three states, everyone on."""
    paper, model = paper_model
    team = make_solver(f"madrl_tvc[model={model}]").load(paper)
    states = _day(paper)[:3]
    obs = observation_matrix(paper, states)
    on = np.ones((len(states), len(paper.groups)), bool)
    team.gains = lambda features: np.stack(
        [solo(features.column("status") > 0.5), handover(features.column("status") > 0.5)], -1
    )
    return team, move_rounds(team, states, obs, on, team.clear(states, on)), on


def test_a_move_round_moves_each_zones_best_positive_gain_at_once(paper_model):
    """One mover per zone and round, only for a positive gain, and the rounds stop once nobody
    expects one: here agent 2 (FDC3, region D) and agent 5 (V2G6, region B) gain by stopping
    while FDC3 runs. At the paper's size the system is one zone (a tree maximum): agent 2
    alone. With a zone per region (``zone_regions=1``) both regions move at once."""

    def solo(running):
        out = np.full(running.shape, -1.0)
        out[:, 2] = np.where(running[:, 2], 3.0, -3.0)
        out[:, 5] = np.where(running[:, 2], 2.0, -3.0)
        return out

    team, run, on = _move_team(paper_model, solo, lambda running: np.full(running.shape, -5.0))
    expected = on.copy()
    expected[:, 2] = False
    assert np.array_equal(run.on, expected) and list(run.moves) == [1] * 3 and list(run.ledger.hearings) == [2] * 3
    assert len(run.points) == 2 and np.array_equal(run.points[1].plan, expected)  # the second round found no mover
    team.hp = dataclasses.replace(team.hp, zone_regions=1)
    states = _day(paper_model[0])[:3]
    run = move_rounds(team, states, observation_matrix(team.problem, states), on, team.clear(states, on))
    expected[:, 5] = False
    assert np.array_equal(run.on, expected) and list(run.moves) == [1] * 3


def test_while_a_plan_does_not_clear_one_mover_serves_the_system(paper_model):
    """Every start adds capacity to the same short system: zones moving at once would all start.
    So while the plan does not clear, the whole system is one zone (a tree maximum), and the
    zones' movers return once it clears (here a zone per region)."""

    def solo(running):
        out = np.where(running, -1.0, -2.0)
        out[:, [0, 1, 2]] = np.where(running[:, [0, 1, 2]], -1.0, [5.0, 4.0, 3.0])  # A, C, D would start
        return out

    paper, model = paper_model
    team = make_solver(f"madrl_tvc[model={model}]").load(paper)
    team.hp = dataclasses.replace(team.hp, zone_regions=1)
    team.gains = lambda f: np.stack([solo(f.column("status") > 0.5), np.full(f.column("status").shape, -5.0)], -1)
    states = _day(paper)[:3]
    start = np.zeros((3, 9), bool)
    start[:, [3, 7]] = True  # FDC4 and ASC8 alone cannot serve these states
    first = team.clear(states, start)
    assert not first.feasible.any()
    run = move_rounds(team, states, observation_matrix(paper, states), start, first)
    second = run.points[1].plan
    assert np.array_equal(second ^ start, np.repeat(np.eye(9, dtype=bool)[[0]], 3, 0))  # agent 0 alone


def test_repaired_plans_get_the_move_rounds_once_more_and_keep_only_a_plan_that_clears(paper_model):
    """After a repair the move rounds run again on the repaired states only: a stop they expect to
    gain is made when the plan still clears; a stop that breaks the balances is dropped for the
    repaired plan; a state that was not repaired is left as it was, and each state is charged
    exactly the clearings and hearings of its own moves."""
    from dispatchbench.learn.tvc.decision import moves_after_repair
    from dispatchbench.learn.tvc.ledger import MessageLedger

    paper, model = paper_model
    team = make_solver(f"madrl_tvc[model={model}]").load(paper)
    states = _day(paper)[:3]
    obs = observation_matrix(paper, states)
    on = np.ones((3, len(paper.groups)), bool)
    cleared = team.clear(states, on)
    assert cleared.feasible.all()
    flips = np.array([2, 0, 1])  # states 0 and 2 were repaired

    def stopping(*agents):
        def gains(features):
            running = features.column("status") > 0.5
            solo = np.full(running.shape, -1.0)
            for k, agent in enumerate(agents):
                solo[:, agent] = np.where(running[:, agent], 3.0 - k, -3.0)
            return np.stack([solo, np.full(running.shape, -5.0)], -1)

        return gains

    team.gains = stopping(2)  # FDC3 stops: the plan still clears (as in the move-round test above)
    ledger = MessageLedger.open(3)
    plan, result, moved = moves_after_repair(team, states, obs, on, cleared, flips, ledger)
    expected = on.copy()
    expected[[0, 2], 2] = False
    assert np.array_equal(plan, expected) and result.feasible.all()
    assert list(moved) == [1, 0, 1] and list(ledger.clearings) == [1, 0, 1] and list(ledger.hearings) == [2, 0, 2]
    alone = move_rounds(team, [states[2]], obs[[2]], on[[2]], cleared.row(2))
    assert np.array_equal(result.balanced.power[2], alone.result.balanced.power[0])  # as if decided alone
    assert np.array_equal(result.balanced.power[1], cleared.balanced.power[1])  # not repaired: untouched

    def biggest_first(features):  # every running agent expects to gain by stopping, the biggest most
        running = features.column("status") > 0.5
        return np.stack([np.where(running, paper.p_max / 100.0, -3.0), np.full(running.shape, -5.0)], -1)

    team.gains = biggest_first
    busy = _day(paper)[16:19]  # skewed states whose plan three such stops leave unworkable
    busy_obs, busy_cleared = observation_matrix(paper, busy), team.clear(busy, on)
    assert not move_rounds(team, busy, busy_obs, on, busy_cleared).result.feasible.any()
    plan, result, _ = moves_after_repair(team, busy, busy_obs, on, busy_cleared, np.ones(3, int), MessageLedger.open(3))
    assert np.array_equal(plan, on) and result.feasible.all()  # the repaired plans stand
    assert np.array_equal(result.balanced.power, busy_cleared.balanced.power)


def test_a_hand_over_starts_one_agent_and_stops_the_best_partner_or_undoes(paper_model):
    """Agent 4 (V2G5, region A) starts for a hand-over; then each region's running agent with the
    largest positive solo gain stops: agent 0 (FDC1, region A; not agent 6, its second choice), or
    agent 2 (FDC3, region D: a hand-over between regions). The starter is not its own partner: when
    it expects more from stopping again than agent 0 does, agent 0 still stops (the near tie of
    validation state random_86). Without a partner that expects a gain, the starter stops again
    and its region's moves end."""

    def handover(running):
        out = np.full(running.shape, -5.0)
        out[:, 4] = np.where(running[:, 4], -5.0, 4.0)
        return out

    def solo_with_partner(running):
        out = np.full(running.shape, -1.0)
        out[:, 0] = np.where(running[:, 4] & running[:, 0], 2.0, -2.0)  # agent 0 stops once 4 runs
        out[:, 6] = np.where(running[:, 4] & running[:, 6] & running[:, 0], 1.0, -2.0)  # the second choice
        return out

    def partner_elsewhere(running):
        out = np.full(running.shape, -1.0)
        out[:, 2] = np.where(running[:, 4] & running[:, 2], 2.0, -2.0)  # region D's FDC3 once V2G5 runs
        return out

    paper, _ = paper_model
    team = _move_team(paper_model, lambda r: np.full(r.shape, -1.0), handover)[0]
    states = _day(paper)[:3]
    obs = observation_matrix(paper, states)
    start = np.ones((3, len(paper.groups)), bool)
    start[:, 4] = False

    def starter_regrets(running):
        out = solo_with_partner(running)
        out[:, 4] = np.where(running[:, 4] & running[:, 0], 3.0, -3.0)  # more than agent 0's 2.0
        return out

    cases = (
        (solo_with_partner, 0),
        (partner_elsewhere, 2),
        (lambda r: np.full(r.shape, -1.0), 4),
        (starter_regrets, 0),
    )
    for solo, stopper in cases:
        team.gains = lambda f, solo=solo: np.stack(
            [solo(f.column("status") > 0.5), handover(f.column("status") > 0.5)], -1
        )
        run = move_rounds(team, states, obs, start, team.clear(states, start))
        expected = np.ones_like(start)
        expected[:, stopper] = False
        assert np.array_equal(run.on, expected), stopper
        if stopper == 4:  # undone once, then done: one hand-over's two clearings, no more
            assert list(run.moves) == [2] * 3 and len(run.points) == 2


def _moves_with_agent_6_off(paper_model, solo):
    """The move rounds on three states of the paper's day from everyone on but agent 6 (ASC7), the
    learned solo gains replaced by ``solo`` and no hand-over bids: ``(team, states, obs, start, run)``."""
    paper, _ = paper_model
    start = np.ones((3, len(paper.groups)), bool)
    start[:, 6] = False
    team = _move_team(paper_model, solo, lambda running: np.full(running.shape, -5.0))[0]
    states = _day(paper)[:3]
    obs = observation_matrix(paper, states)
    return team, states, obs, start, move_rounds(team, states, obs, start, team.clear(states, start))


def _assert_went_back(team, states, run, plan, *, clearings, hearings):
    """Every state of ``run`` went back to ``plan`` once, with that plan's own clearing, after
    ``clearings`` clearings and ``hearings`` decision points, and was charged exactly those, one
    paper-size move decision point each, and one word over the tree for the choice."""
    from dispatchbench.learn.tvc.rounds import move_messages

    assert np.array_equal(run.on, plan) and list(run.moves) == [clearings] * 3
    assert np.allclose(run.result.balanced.power, team.clear(states, plan).balanced.power)
    assert list(run.ledger.hearings) == [hearings] * 3 and list(run.ledger.returns) == [1] * 3
    tree, clearing = 2 * (len(team.problem.regions) - 1), team.search.messages_per_decision()
    expected = clearings * clearing + hearings * move_messages(team, 1, True) + tree
    assert list(run.ledger.messages) == [expected] * 3


def test_the_move_rounds_end_where_the_plan_comes_back_to_an_earlier_one(paper_model):
    """Learned gains that go round in a circle (agent 6 gains by starting while it is off and by
    stopping while it runs): it starts, stops again, and the rounds end there — on the plan they
    started from, after two clearings — instead of the third move deciding which plan stands.
    With a zone per region, agent 6 flipping back while agent 2 stopped in another zone is not a
    circle (the plan is a new one): the third round runs, and the plan it makes is one seen before."""

    def cycling(running):
        out = np.full(running.shape, -1.0)
        out[:, 6] = 2.0
        return out

    def cycling_and_one_stop(running):
        out = cycling(running)
        out[:, 2] = np.where(running[:, 2], 3.0, -3.0)
        return out

    team, states, obs, start, run = _moves_with_agent_6_off(paper_model, cycling)
    assert np.array_equal(run.on, start) and list(run.moves) == [2] * 3 and len(run.points) == 2
    team.hp = dataclasses.replace(team.hp, zone_regions=1)
    team.gains = lambda f: np.stack(
        [cycling_and_one_stop(f.column("status") > 0.5), np.full(f.values.shape[:2], -5.0)], -1
    )
    run = move_rounds(team, states, obs, start, team.clear(states, start))
    expected = start.copy()
    expected[:, 6], expected[:, 2] = True, False
    assert np.array_equal(run.on, expected) and list(run.moves) == [3] * 3


def test_a_circle_goes_back_to_the_plan_the_agents_were_least_eager_to_leave(paper_model):
    """Agent 6 bids 3.0 to start and 1.0 to stop: the moves start it, stop it, and — back at the
    first plan — the state goes back to the plan with agent 6 running (the smaller bid to leave
    it), with that plan's own clearing, charged one word over the tree for the choice."""

    def eager_to_start(running):
        out = np.full(running.shape, -1.0)
        out[:, 6] = np.where(running[:, 6], 1.0, 3.0)
        return out

    team, states, _, start, run = _moves_with_agent_6_off(paper_model, eager_to_start)
    _assert_went_back(team, states, run, np.ones_like(start), clearings=2, hearings=2)  # then the circle closed


def test_spent_moves_leave_the_plan_of_their_path_the_agents_were_least_eager_to_leave(paper_model):
    """One mover for the system, three moves: agent 6 starts (bid 3.0), agent 2 stops (1.0), agent
    7 stops (2.0), and the last plan is heard once more (agent 8 would stop: 2.5). The plan goes
    back to the one left with the smallest bid — everyone running — with its own clearing, one
    more hearing and one word over the tree; training's exploring rounds never go back."""

    def path(running):
        out = np.full(running.shape, -1.0)
        out[:, 6] = np.where(running[:, 6], -1.0, 3.0)
        out[:, 2] = np.where(running[:, 2] & running[:, 6], 1.0, -1.0)
        out[:, 7] = np.where(running[:, 7] & ~running[:, 2], 2.0, -1.0)
        out[:, 8] = np.where(running[:, 8] & ~running[:, 7], 2.5, -1.0)
        return out

    team, states, obs, start, run = _moves_with_agent_6_off(paper_model, path)
    _assert_went_back(team, states, run, np.ones_like(start), clearings=3, hearings=4)
    import dispatchbench.learn.tvc.rounds as rounds_module

    def never(*args, **kwargs):
        raise AssertionError("training's rounds went back")

    real, rounds_module.least_eager = rounds_module.least_eager, never
    try:
        move_rounds(team, states, obs, start, team.clear(states, start), explore=np.random.default_rng(0))
    finally:
        rounds_module.least_eager = real


def test_execution_never_reads_cost_coefficients(toy, trained):
    """The same model on a copy of the problem whose cost coefficients are NaN decides the same:
    agents only use their learned networks (the fingerprint ignores costs, so the model loads)."""
    blind = dataclasses.replace(
        toy, groups=tuple(dataclasses.replace(g, a=np.nan, b=np.nan, c=np.nan, g=np.nan, h=np.nan) for g in toy.groups)
    )
    states = [_state(toy, d) for d in (150.0, 330.0, 520.0)]
    seen = make_solver(f"madrl_tvc[model={trained}]").solve(toy, states)
    blind_answers = make_solver(f"madrl_tvc[model={trained}]").solve(blind, states)
    for a, b in zip(seen, blind_answers):
        assert np.array_equal(a.dispatch.on, b.dispatch.on)
        assert np.allclose(a.dispatch.power, b.dispatch.power, atol=0, rtol=0)


def test_commitment_off_problem_trains_offers_only(tmp_path):
    """With commitment switched off every group runs; the learned offers must still clear near the
    convex optimum (the price search is exact, so only the learned slopes can cost anything)."""
    convex = load_problem(PROBLEMS / "paper-4region-convex.toml")
    state = load_states(PROBLEMS / "paper-4region-tableIV.csv", convex)[0]
    make_solver(fast()).fit(convex, seed=0, steps=20, out_dir=tmp_path)
    answer = make_solver(f"madrl_tvc[model={tmp_path}]").solve(convex, [state])[0]
    ev = evaluate(convex, state, answer.dispatch)
    assert ev.feasible
    assert (ev.cost - 6564.3411) / 6564.3411 < 5e-4


def test_missing_model_is_a_skip_reason(toy):
    assert "needs a trained model" in make_solver("madrl_tvc").skip(toy)


# ---- protocol, batching, order invariance (issue 10) ------------------------------------------
@pytest.fixture(scope="module")
def paper_model(tmp_path_factory) -> tuple[Problem, Path]:
    """A tiny TVC model of the paper instance (a few steps: enough for non-trivial networks)."""
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    out = tmp_path_factory.mktemp("tvc-paper")
    make_solver(fast()).fit(paper, seed=0, steps=12, out_dir=out)
    return paper, out


def _day(problem: Problem) -> list[State]:
    from dispatchbench.instances.protocol import validation_states

    return validation_states(problem, families=("night_heavy", "skewed"), stride=6) + load_states(
        PROBLEMS / "paper-4region-tableIV.csv", problem
    )


def test_default_spec_is_the_learned_policy_alone():
    assert make_solver("madrl_tvc").params["refine"] == 0
    assert make_solver("madrl_tvc[refine=3]").params["refine"] == 3  # "TVC + local search": its own row


@pytest.mark.parametrize("refine", [0, 2])
def test_batched_decisions_equal_one_by_one(paper_model, refine):
    paper, model = paper_model
    states = _day(paper)
    assert_batched_equals_one_by_one(make_solver(f"madrl_tvc[model={model},refine={refine}]"), paper, states)


def test_messages_per_decision_use_bids_and_the_exact_tree(paper_model):
    """refine=0 and no repair: the trial clearing and two policy rounds, each clearing 2G bids and
    setpoints + (40 + 4)·2(R − 1) tree messages, plus per round the features: two tree sums,
    every agent's margin to its CS node and each region's hand-over candidate to the zone's other
    CS nodes (``G + R(R − 1)``) — 912; then per move decision point the features, every agent's
    gain to its CS node, the tree maximum (one zone at the paper's size) and a word to the mover
    (49), and a clearing (282) per half-round of moves: at most 912 + 3·2·(49 + 282) = 2,898 with
    the default three move rounds, the paper's size target ≤ 3,000."""
    paper, model = paper_model
    answers = make_solver(f"madrl_tvc[model={model}]").solve(paper, _day(paper))
    clearing, tree = 2 * 9 + (40 + 4) * 2 * 3, 2 * 3
    features = 2 * tree + 9 + 4 * 3
    policy, hearing = 3 * clearing + 2 * features, features + 9 + tree + 1
    assert (policy, hearing) == (912, 49)
    moves = Hyperparameters().moves
    plain = [a.info for a in answers if a.info["commitment_repaired"] == 0]
    assert plain and all(0 <= i["moves"] <= 2 * moves and 1 <= i["move_hearings"] <= 2 * moves for i in plain)
    assert all(i["messages"] == policy + hearing * i["move_hearings"] + clearing * i["moves"] for i in plain)
    assert all(i["searches"] == 3 + i["moves"] for i in plain)
    assert policy + moves * 2 * (hearing + clearing) == 2898 <= 3000


def test_group_order_in_the_problem_file_does_not_change_the_dispatch(paper_model, tmp_path):
    paper, model = paper_model
    permuted_path = tmp_path / "paper-permuted.toml"
    permuted_path.write_text(permuted_problem_toml((PROBLEMS / "paper-4region.toml").read_text()))
    permuted = load_problem(permuted_path)
    assert permuted.group_names != paper.group_names and permuted.region_names != paper.region_names
    states = _day(paper)
    for spec in (f"madrl_tvc[model={model}]", f"madrl_tvc[model={model},refine=2]"):
        a = make_solver(spec).solve(paper, states)
        b = make_solver(spec).solve(permuted, states)
        for state, x, y in zip(states, a, b):
            for g, name in enumerate(paper.group_names):
                k = permuted.group_names.index(name)
                assert x.dispatch.on[g] == y.dispatch.on[k], (state.label, name)
                assert abs(x.dispatch.power[g] - y.dispatch.power[k]) <= 1e-9, (state.label, name)
            for r, name in enumerate(paper.region_names):
                assert abs(x.dispatch.imports[r] - y.dispatch.imports[permuted.region_names.index(name)]) <= 1e-9
            assert evaluate(paper, state, x.dispatch).cost == pytest.approx(
                evaluate(permuted, state, y.dispatch).cost, rel=1e-12
            )


def test_train_without_steps_uses_the_documented_budget(monkeypatch, capsys, tmp_path):
    """`dispatchbench train` without --steps or --budget trains for the method's default budget
    (the tables' 1,500 steps), capped by its default wall time (14 minutes: `train` ends within
    15 at any size)."""
    from dispatchbench.cli import main
    from dispatchbench.contract.learner import FitReport

    mod = _module()
    seen = {}

    def record(self, problem, *, seed, steps, out_dir, budget=None, **kw):  # the CLI's wiring, not the training
        seen["steps"], seen["budget"] = steps, budget
        return FitReport(model_path=out_dir, steps=steps, time_s=0.0, info={"stopped_by": "steps"})

    monkeypatch.setattr(mod.MadrlTvc, "fit", record)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "dispatchbench",
            "train",
            "-p",
            str(PROBLEMS / "paper-4region.toml"),
            "--solver",
            "madrl_tvc",
            "--out",
            str(tmp_path / "m"),
            "--no-progress",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None), capsys.readouterr().err
    assert "for 1500 steps" in capsys.readouterr().out
    assert seen["steps"] == mod.MadrlTvc.default_train_steps == 1500
    assert seen["budget"].steps == 1500 and seen["budget"].seconds == mod.MadrlTvc.default_train_seconds == 840


def test_messages_of_a_decision_at_32_regions_follow_the_formula():
    """The protocol, not the policy, sets the count: an untrained team at 32 and at 64 regions,
    refine=0 — linear in groups + regions (clearings, tree sums, one report per agent per
    hearing, the hand-over candidates within each block of regions, a maximum over each block
    and one word to its mover)."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn.marl_env import StateSampler

    for regions in (32, 64):
        big = generate_problem(regions, 0)
        team = new_team(big, Hyperparameters())
        states = StateSampler(big, seed=1).sample_many(3)
        rounds = team.hp.rounds
        g, r, tree = len(big.groups), len(big.regions), team.search.system_sum_messages
        assert tree == 2 * (r - 1) and team.search.messages_per_decision() == 2 * g + 44 * tree
        zones = -(-r // team.hp.zone_regions)  # blocks of regions, one mover each
        size, rest = team.hp.zone_regions, r % team.hp.zone_regions
        spread = (r // size) * size * (size - 1) + rest * (rest - 1)  # each region's candidate across its zone
        features = 2 * tree + g + spread  # two tree sums; margins to the CS nodes, the candidates
        assert spread <= 7 * r  # linear: a zone has at most 8 regions
        assert team.feature_messages == features
        regional, system = features + g + 2 * (r - zones) + zones, features + g + tree + 1
        for decision in decide_batch(team, states, observation_matrix(big, states)):
            info = decision.info
            flips = info["commitment_repaired"]  # a repair by ratings, then one more clearing
            assert info["searches"] == 1 + rounds + info["moves"] + (flips > 0)
            rest = info["messages"] - (
                info["searches"] * team.search.messages_per_decision()
                + rounds * features
                + info["move_hearings"] * regional
                + info["repair_passes"] * 2 * tree
                + 2 * flips
                + info["move_returns"] * tree  # the choice of an earlier plan, over the tree
            )
            assert rest % (system - regional) == 0 and 0 <= rest // (system - regional) <= info["move_hearings"]
            assert info["messages"] <= 1000 * (g + r) and info["balanced"]


# ---- one model for any size, budgets, training cost (issues 18 and 19) -----------------------
TINY_ANY = dict(states_per_step=2, search_rounds=2, max_flips=16, max_swaps=8, batch_size=64, instances_per_size=2)


def tiny_any(**more) -> str:
    return "madrl_tvc[" + ",".join(f"{k}={v}" for k, v in {**TINY_ANY, **more}.items()) + "]"


@pytest.fixture(scope="module")
def any_size_model(tmp_path_factory) -> tuple[Path, object]:
    """A tiny model trained on generated instances of 4 and 8 regions (training seeds)."""
    from dispatchbench.contract.training import TrainingSet

    out = tmp_path_factory.mktemp("tvc-any")
    report = make_solver(tiny_any()).fit(None, seed=0, steps=6, out_dir=out, training_set=TrainingSet((4, 8)))
    return out, report


def test_a_model_trained_on_small_generated_instances_decides_an_unseen_larger_one(any_size_model):
    """Trained on instances of 4 and 8 regions drawn with training generator seeds, one model
    decides a 24-region validation instance it never saw: its agents first meter their own bills
    and fit their curves (counted in every answer), then the shared policy decides."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import TRAINING, validation_states

    model, report = any_size_model
    meta = json.loads((model / "model.json").read_text())
    assert meta["scope"] == "any-size" and meta["training_set"]["sizes"] == [4, 8]
    instances = meta["training_set"]["instances"]
    assert len(instances) == 4 and all(seed in TRAINING for _, seed in instances)
    assert [r for r, _ in instances] == [4, 8, 4, 8]  # the sizes take turns
    assert set(meta["coverage"]["types"]) == {"FDC", "ASC", "V2G"}
    assert report.steps == meta["train_steps"] == 6 and report.info["stopped_by"] == "steps"
    unseen = generate_problem(24, 1000)
    states = validation_states(unseen, families=("skewed", "night_heavy"), stride=24)
    answers = make_solver(f"madrl_tvc[model={model}]").solve(unseen, states)
    assert all(a.status == "feasible" and evaluate(unseen, s, a.dispatch).feasible for s, a in zip(states, answers))
    g = len(unseen.groups)
    info = answers[0].info
    assert info["calibration_bills"] == g * Hyperparameters().calibration_points
    assert info["offer_publication_messages"] == g and info["calibration_s"] >= 0


def test_an_any_size_model_refuses_a_problem_outside_what_it_saw(any_size_model, tmp_path):
    """A group of a type the model never saw, or rated outside the ranges it saw (with a 20 %
    margin), is refused in one line naming the group, the rating and the range."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn.checkpoints import ModelFileError

    model, _ = any_size_model
    problem = generate_problem(8, 1001)
    big = dataclasses.replace(problem.groups[0], p_max=5000.0, p_min=min(problem.groups[0].p_min, 5000.0))
    odd = dataclasses.replace(problem, groups=(big, *problem.groups[1:]))
    solver = make_solver(f"madrl_tvc[model={model}]")
    why = solver.skip(odd)
    assert why and f"group {big.name}" in why and "p_max 5000" in why and "outside the range" in why
    assert "\n" not in why
    with pytest.raises(ModelFileError, match="p_max 5000"):
        solver.solve(odd, validation_states_of(problem)[:1])
    assert solver.skip(problem) is None


@pytest.mark.parametrize(
    "field, value, expect",
    [
        ("coverage", "all", "coverage must be an object"),
        ("coverage.types", [], "coverage.types"),
        ("coverage.ratings", {}, "coverage.ratings"),
        ("coverage.cs_max", [5.0, float("nan")], "NaN"),
        ("coverage.cs_max", [9.0, 1.0], "coverage.cs_max"),
        ("coverage.commitment", [1], "coverage.commitment"),
        ("coverage.tolerance", 1e300, "coverage.tolerance"),
        ("training_set", None, "training_set.sizes"),
        ("scope", "per-instance", "problem_fingerprint 'any-size'"),
    ],
)
def test_a_tampered_any_size_model_json_is_one_line(any_size_model, tmp_path, field, value, expect):
    """The fields an any-size model is gated by come from a file: each is checked before any
    problem is compared with them (a KeyError there would be a traceback)."""
    import shutil

    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.model.errors import InputError, SolverNotFound

    model, _ = any_size_model
    copy = tmp_path / "m"
    shutil.copytree(model, copy)
    meta = json.loads((copy / "model.json").read_text())
    target, *rest = field.split(".")
    if rest:
        meta[target][rest[0]] = value
    else:
        meta[target] = value
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises((SolverNotFound, InputError), match=re.escape(expect)) as caught:  # at the spec, or at load
        make_solver(f"madrl_tvc[model={copy}]").load(generate_problem(8, 1001))
    assert "\n" not in str(caught.value)


def validation_states_of(problem: Problem) -> list[State]:
    from dispatchbench.instances.protocol import validation_states

    return validation_states(problem, families=("base_load",), stride=48)


def test_an_any_size_model_decides_without_reading_costs_once_calibrated(any_size_model):
    """The calibration is the only place an any-size model's agents touch their costs (their own
    meters); the decisions after it read the curves, never a coefficient."""
    from dispatchbench.instances.generate_problem import generate_problem

    model, _ = any_size_model
    problem = generate_problem(16, 1002)
    team = make_solver(f"madrl_tvc[model={model}]").load(problem)
    blind = dataclasses.replace(
        problem,
        groups=tuple(dataclasses.replace(g, a=np.nan, b=np.nan, c=np.nan, g=np.nan, h=np.nan) for g in problem.groups),
    )
    blind_team = Team(blind, team.hp, team.nets, team.curves)
    states = validation_states_of(problem)
    obs = observation_matrix(problem, states)
    for a, b in zip(decide_batch(team, states, obs), decide_batch(blind_team, states, obs)):
        assert np.array_equal(a.dispatch.on, b.dispatch.on) and np.array_equal(a.dispatch.power, b.dispatch.power)


def test_a_time_budget_stops_training_and_its_steps_reproduce_the_model(toy, tmp_path):
    """--budget stops the loop between steps and records the steps done; training again for that
    many steps (no time limit) gives the same model bit for bit: the loop never reads the clock
    for anything but stopping."""
    from dispatchbench.contract.training import TrainingBudget

    timed, counted = tmp_path / "timed", tmp_path / "counted"
    report = make_solver(fast()).fit(toy, seed=4, steps=None, out_dir=timed, budget=TrainingBudget(seconds=4.0))
    meta = json.loads((timed / "model.json").read_text())
    assert report.info["stopped_by"] == meta["stopped_by"] == "time" and report.steps == meta["train_steps"] >= 1
    assert meta["budget"] == "4 s"
    make_solver(fast()).fit(toy, seed=4, steps=report.steps, out_dir=counted)
    a = torch.load(timed / "checkpoint.pt", weights_only=True)
    b = torch.load(counted / "checkpoint.pt", weights_only=True)
    for name, tensor in a["networks"]["policy"].items():
        assert torch.equal(tensor, b["networks"]["policy"][name]), name
    assert a["state"] == b["state"]  # buffers, counts, random states: one JSON text, the same


def test_training_cost_is_counted_and_recorded(toy, trained, tmp_path):
    """Every trained model says what training took (``contract.learner.TrainingInfo``): states
    visited, true-cost evaluations, the messages counterfactuals and the central copy would send,
    the offer publication and the calibration; and what kind of training it was."""
    meta = json.loads((trained / "model.json").read_text())
    assert meta["train_steps"] == 250 and meta["env_steps"] == 250 * FAST["states_per_step"]
    assert meta["true_cost_evaluations"] > meta["env_steps"]  # counterfactual plans included
    by_kind = meta["training_messages_by_kind"]
    assert meta["training_messages"] == sum(by_kind.values()) + meta["offer_publication_messages"]
    assert by_kind["counterfactual_clearings"] > 0 and by_kind["sample_uploads"] > 0
    assert meta["offer_publication_messages"] == 3 and meta["calibration_bills"] == 3 * 17
    assert meta["parameter_sharing"] == "central copy" and meta["training_kind"].startswith("CTDE-like")
    report = make_solver(fast(share="agent")).fit(toy, seed=0, steps=2, out_dir=tmp_path)
    assert report.info["parameter_sharing"] == "none" and report.info["training_kind"].startswith("distributed")
    assert report.info["training_messages_by_kind"]["sample_uploads"] == 0
    assert {"train_time_s", "env_steps", "true_cost_evaluations", "training_messages", "stopped_by"} <= set(report.info)


def test_share_auto_is_per_agent_on_one_problem_and_per_type_for_any_size(toy, tmp_path, any_size_model):
    """The default: every agent its own networks when the model is for one problem (fully
    distributed; better at the paper size on validation), one per type for any size; model.json
    records the choice made."""
    spec = "madrl_tvc[" + ",".join(f"{k}={v}" for k, v in FAST.items() if k != "share") + "]"
    make_solver(spec).fit(toy, seed=0, steps=2, out_dir=tmp_path / "one")
    assert json.loads((tmp_path / "one" / "model.json").read_text())["hyperparameters"]["share"] == "agent"
    assert json.loads((any_size_model[0] / "model.json").read_text())["hyperparameters"]["share"] == "type"


def test_the_plugin_says_what_its_training_is_and_names_its_ablations():
    from dispatchbench.contract.solver import label_of

    cls = _module().MadrlTvc
    assert "decentralised execution" in cls.description and "CTDE-like" in cls.description
    assert label_of(make_solver("madrl_tvc")).name == "MADRL-TVC"
    assert label_of(make_solver("madrl_tvc[drop=flip_workable]")).name == "MADRL-TVC without flip_workable"
    assert label_of(make_solver("madrl_tvc[refine=3]")).name == "MADRL-TVC + local search"
    assert cls.any_size and cls.default_train_seconds <= 900


def test_a_large_problem_trains_on_pieces_of_itself_and_is_decided_whole(tmp_path):
    """On a problem of more than ``piece_regions`` regions, training visits pieces of it (random
    region sets of 4, 8, ...: its own groups, CS limits and metered curves) with one network per
    type, then the model decides the whole problem; with share=agent it trains whole, as before."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.instances.protocol import validation_states
    from dispatchbench.learn.pieces import cut, piece_regions, piece_sizes

    assert piece_sizes(128, 32) == [4, 8, 16, 32] and piece_sizes(32, 32) == [] and piece_sizes(9, 0) == []
    problem = generate_problem(12, 1000)
    regions = piece_regions(problem, [4, 8], 2, seed=0)
    assert [len(r) for r in regions] == [4, 8, 4, 8] and regions == piece_regions(problem, [4, 8], 2, seed=0)
    piece, index = cut(problem, regions[0], "piece 0")
    assert [problem.groups[j] for j in index] == list(piece.groups)
    assert {g.region for g in piece.groups} <= set(piece.region_names) and len(piece.regions) == 4

    out = tmp_path / "pieces"
    make_solver(tiny_any(piece_regions=8)).fit(problem, seed=0, steps=4, out_dir=out)
    meta = json.loads((out / "model.json").read_text())
    assert meta["scope"] == "instance" and meta["hyperparameters"]["share"] == "type"
    assert meta["pieces"] == {"sizes": [4, 8], "count": 4}
    states = validation_states(problem, families=("skewed",), stride=48)
    answers = make_solver(f"madrl_tvc[model={out}]").solve(problem, states)
    assert all(a.status == "feasible" and evaluate(problem, s, a.dispatch).feasible for s, a in zip(states, answers))

    whole = tmp_path / "whole"
    make_solver(tiny_any(piece_regions=8, share="agent")).fit(problem, seed=0, steps=2, out_dir=whole)
    meta = json.loads((whole / "model.json").read_text())
    assert "pieces" not in meta and meta["hyperparameters"]["share"] == "agent"
