"""MADRL-TVC: learned offers clear exactly, short training lowers the evaluator's cost, the learned
commitment switches an expensive group off, models reload to identical decisions, and the agents
are fully distributed (own parameters, own data, no cost coefficients at execution)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_batched_equals_one_by_one, permuted_problem_toml

from dispatchbench import State, evaluate, load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.formulations.balancing import PriceResponse, balance, state_bounds
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.learn.tvc.commitment import CommitmentLearners, gossip_ring
from dispatchbench.learn.tvc.competition import TriedPlans, compete, score_fresh
from dispatchbench.learn.tvc.decision import decide, decide_batch
from dispatchbench.learn.tvc.features import HANDOVER, N_FEATURES, SOLO
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.learn.tvc.offers import LearnedPriceResponse, OfferBook
from dispatchbench.learn.tvc.plans import handovers_of, neighbours, solo_flips
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
    warmup_states=60,
    states_per_step=2,
    search_rounds=3,
    batch_size=128,
    log_every=50,
    checkpoint_every=1000,
    cost_every=20,
)


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
    tables = []
    for g in paper.groups:
        p = np.linspace(g.p_min, g.p_max, 2049)
        tables.append((p, (g.linear_cost + 2 * g.quadratic_cost * p) / g.delivery + 1e-9 * np.arange(len(p))))
    on = np.array([[g not in {"FDC1", "FDC2", "ASC7"} for g in paper.group_names]])
    lb, ub = state_bounds(paper, state)
    response = LearnedPriceResponse(OfferBook.build(tables), lb, ub, on)
    s = np.linspace(-5, 20, 101)[:, None].repeat(len(paper.groups), 1)
    steps = np.diff(
        LearnedPriceResponse(OfferBook.build(tables), *state_bounds(paper, state, 101), np.ones((101, 9), bool)).power(
            s
        ),
        axis=0,
    )
    assert (steps >= -1e-12).all()  # offers never decrease with the price
    bal = balance(paper, state, response)
    d = Dispatch(on=on[0], power=bal.power[0], imports=bal.imports[0])
    ev = evaluate(paper, state, d)
    assert ev.feasible
    assert ev.cost == pytest.approx(4903.9687, abs=2e-3)


def test_short_training_reduces_cost_and_learns_to_switch_off(toy, trained):
    states = [_state(toy, d) for d in (120.0, 280.0, 450.0, 600.0)]
    obs = observation_matrix(toy, states)
    torch.manual_seed(0)
    untrained = Team(toy, Hyperparameters(**FAST), seed=0)  # same networks before any update
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
    """A checkpoint written by another version of the plugin (here: one feature fewer, as before
    ``flip_workable``) is refused naming the file and the network, not with a torch traceback."""
    import shutil

    from dispatchbench.learn.checkpoints import CHECKPOINT_FILE, ModelFileError

    old = tmp_path / "old-model"
    shutil.copytree(trained, old)
    payload = torch.load(old / CHECKPOINT_FILE, weights_only=True)
    weights = payload["networks"]["commitment"]
    weights["q.0.weight"] = weights["q.0.weight"][:, :-1]  # (agents, features, hidden): one input fewer
    torch.save(payload, old / CHECKPOINT_FILE)
    with pytest.raises(ModelFileError, match=r"checkpoint\.pt.*network 'commitment' does not fit"):
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
    assert meta["hyperparameters"]["q_lr"] == 5e-4 and meta["hyperparameters"]["warmup_states"] == 60
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
    ],
)
def test_out_of_range_parameters_fail_when_the_spec_is_parsed(spec):
    with pytest.raises(SolverNotFound, match="outside|finite"):
        make_solver(spec)


def test_agents_own_their_parameters(toy):
    team = Team(toy, Hyperparameters(**FAST), seed=0)
    ids = [{id(p) for p in a.cost.parameters()} for a in team.agents]
    assert all(not (ids[i] & ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)))
    assert len({id(a.bills) for a in team.agents}) == len(team.agents)
    assert len({id(a.rng) for a in team.agents}) == len(team.agents)


def test_commitment_update_of_one_agent_uses_only_its_own_data(toy):
    """Changing agent 0's mini-batch changes agent 0's network only: each agent's slice of the
    stacked layers is trained on its own data, exactly as a separate network would be."""
    hp = Hyperparameters(**FAST)
    g, b = len(toy.groups), 32
    rng = np.random.default_rng(0)
    features = torch.as_tensor(rng.random((g, b, N_FEATURES)), dtype=torch.float32)
    targets = torch.as_tensor(-rng.random((g, b, 2)), dtype=torch.float32)
    torch.manual_seed(1)
    one = CommitmentLearners(g, hp)
    two = CommitmentLearners(g, hp)
    two.load_state_dict(one.state_dict())
    one.update(features, targets)
    changed = targets.clone()
    changed[0] -= 5.0
    two.update(features, changed)
    for (name, p1), (_, p2) in zip(one.named_parameters(), two.named_parameters()):
        assert torch.equal(p1[1:], p2[1:]), name  # every other agent: bit-identical
    assert any(not torch.equal(p1[0], p2[0]) for p1, p2 in zip(one.parameters(), two.parameters()))


def test_repair_by_ratings_makes_any_plan_workable(paper_model):
    """Whatever the policy proposes, the repair (ratings and demand only) ends on a plan whose
    ranges can meet every balance, flipping the most willing agents first."""
    from dispatchbench.formulations.vector_form import shortfall

    paper, model = paper_model
    team = make_solver(f"madrl_tvc[model={model}]").load(paper)
    rng = np.random.default_rng(0)
    for state in _day(paper):
        on, flips = repair(team.problem, state, np.zeros(9, bool), rng.normal(size=9))
        assert shortfall(paper, state, on[None])[0] <= 1e-9 and 0 < flips <= 9
        assert team.clear(state, on).feasible[0]


def test_gossip_averages_parameters_only_within_a_type():
    """gossip=1: after an update each agent holds the average of itself and its ring neighbours of
    the same type (the paper's three ASC groups form a complete ring: identical afterwards); agents
    of other types are never mixed in."""
    paper = load_problem(PROBLEMS / "paper-4region.toml")
    mixing = gossip_ring(paper)
    assert np.allclose(mixing.sum(0), 1) and np.allclose(mixing.sum(1), 1) and np.allclose(mixing, mixing.T)
    kinds = np.array([g.type for g in paper.groups])
    assert np.all(mixing[kinds[:, None] != kinds[None, :]] == 0)
    torch.manual_seed(0)
    learners = CommitmentLearners(9, Hyperparameters(gossip=1), mixing)
    rng = np.random.default_rng(0)
    learners.update(
        torch.as_tensor(rng.random((9, 16, N_FEATURES)), dtype=torch.float32),
        torch.as_tensor(-rng.random((9, 16, 2)), dtype=torch.float32),
    )
    asc = [paper.group_names.index(n) for n in ("ASC7", "ASC8", "ASC9")]
    for param in learners.q.parameters():
        assert torch.allclose(param[asc[0]], param[asc[1]]) and torch.allclose(param[asc[0]], param[asc[2]])
        assert not torch.allclose(param[paper.group_names.index("FDC1")], param[paper.group_names.index("V2G5")])


def test_the_best_tried_plan_sets_every_agents_targets(toy):
    """Target-value competition at one state: the plans tried compete; the best one's actions get
    advantage 0, the other action of each agent the best plan that played it (≤ 0, in % of cost),
    and the compression keeps the order (so the preference keeps its sign)."""
    team = Team(toy, Hyperparameters(**FAST), seed=0)
    state = _state(toy, 250.0)
    start = np.ones((1, len(toy.groups)), bool)
    tried = compete(TriedPlans(toy, [state], team.clear_for_training), [start], np.random.default_rng(0), team.hp)
    assert len(tried.costs[0]) >= 1 + len(toy.groups)  # the start and at least its solo flips
    best, cost = tried.best(0)
    assert cost == min(tried.costs[0].values()) and np.isfinite(cost)
    targets = tried.targets(0, 20.0)
    assert np.all(targets <= 0) and np.all(targets >= -20.0)
    assert np.all(targets[np.arange(len(best)), best.astype(int)] == 0)
    squashed = team.commitment.compress(targets)
    assert np.array_equal(np.sign(squashed[:, 1] - squashed[:, 0]), np.sign(targets[:, 1] - targets[:, 0]))
    plan = np.array([True, False, True])
    moves = neighbours(plan, max_flips=10, max_swaps=10, rng=np.random.default_rng(0))
    assert len(moves) == 3 + 2  # every solo flip, and each running agent handing over to the stopped one
    assert all(m.sum() == plan.sum() for m in moves[3:])


def test_move_targets_are_the_team_gains_of_solo_flips_and_hand_overs(toy):
    """The move network's targets at a plan: per agent, the team advantage of the plan with its
    status flipped minus the plan's own (in % of the state's best cost; an infeasible plan counts
    at the clip), and for a stopped agent the best hand-over it starts (another agent stops)."""
    team = Team(toy, Hyperparameters(**FAST), seed=0)
    state = _state(toy, 250.0)
    tried = TriedPlans(toy, [state], team.clear_for_training)
    plan = np.array([True, False, True])
    swaps = handovers_of(plan, 10, np.random.default_rng(0))
    assert len(swaps) == 2 and all(s[1] and s.sum() == 2 for s in swaps)  # agent 1 starts, one of 0 / 2 stops
    everything = np.concatenate([plan[None], solo_flips(plan), swaps])
    score_fresh(tried, [0] * len(everything), everything)
    costs = tried.costs[0]
    best = min(costs.values())

    def advantage(p):
        return max(-(costs[p.tobytes()] - best) / best * 100.0, -20.0)

    gains = tried.move_gains(0, plan, swaps, 20.0)
    for i, flipped in enumerate(solo_flips(plan)):
        assert flipped[i] != plan[i] and (flipped ^ plan).sum() == 1
        assert gains[i, SOLO] == pytest.approx(advantage(flipped) - advantage(plan))
    assert gains[1, HANDOVER] == pytest.approx(max(advantage(s) for s in swaps) - advantage(plan))
    assert gains[0, HANDOVER] == gains[2, HANDOVER] == -20.0  # running agents start no hand-over


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
    say (the observation, the plan's status, whether it cleared), and a set of columns that is
    missing one or has one too many is refused."""
    from dispatchbench.learn.tvc.features import FEATURE_NAMES, Features

    team = Team(toy, Hyperparameters(**FAST), seed=0)
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
    assert np.array_equal(features.by_agent()[1], features.values[:, 1])
    columns = {name: features.column(name) for name in FEATURE_NAMES}
    with pytest.raises(ValueError, match="missing \\['margin'\\]"):
        Features.from_columns({k: v for k, v in columns.items() if k != "margin"})
    with pytest.raises(ValueError, match="unknown \\['extra'\\]"):
        Features.from_columns({**columns, "extra": columns["margin"]})


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


def test_a_move_round_flips_only_the_agent_with_the_largest_positive_gain(paper_model):
    """One mover per round (the tree maximum), only for a positive gain, and the rounds stop once
    nobody expects one: here agent 2 gains by stopping (agent 5 less), and nobody after that."""

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


def test_a_hand_over_starts_one_agent_and_stops_the_best_partner_or_undoes(paper_model):
    """Agent 4 starts for a hand-over; then the running agent with the largest positive solo gain
    (agent 0) stops. Without a partner that expects a gain, or when the starter itself expects
    the most from stopping again, the starter stops again and the state's moves end."""

    def handover(running):
        out = np.full(running.shape, -5.0)
        out[:, 4] = np.where(running[:, 4], -5.0, 4.0)
        return out

    def solo_with_partner(running):
        out = np.full(running.shape, -1.0)
        out[:, 0] = np.where(running[:, 4] & running[:, 0], 2.0, -2.0)  # agent 0 stops once 4 runs
        out[:, 1] = np.where(running[:, 4] & running[:, 1] & running[:, 0], 1.0, -2.0)  # the second choice
        return out

    paper, _ = paper_model
    team = _move_team(paper_model, lambda r: np.full(r.shape, -1.0), handover)[0]
    states = _day(paper)[:3]
    obs = observation_matrix(paper, states)
    start = np.ones((3, len(paper.groups)), bool)
    start[:, 4] = False

    def starter_regrets(running):
        out = solo_with_partner(running)
        out[:, 4] = np.where(running[:, 4], 3.0, -3.0)  # more than agent 0's 2.0
        return out

    for solo, stopper in ((solo_with_partner, 0), (lambda r: np.full(r.shape, -1.0), 4), (starter_regrets, 4)):
        team.gains = lambda f, solo=solo: np.stack(
            [solo(f.column("status") > 0.5), handover(f.column("status") > 0.5)], -1
        )
        run = move_rounds(team, states, obs, start, team.clear(states, start))
        expected = np.ones_like(start)
        expected[:, stopper] = False
        assert np.array_equal(run.on, expected), stopper
        if stopper == 4:  # undone once, then done: one hand-over's two clearings, no more
            assert list(run.moves) == [2] * 3 and len(run.points) == 2


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
    make_solver(fast(warmup_states=120)).fit(convex, seed=0, steps=20, out_dir=tmp_path)
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
    make_solver(fast(warmup_states=40, cost_every=5)).fit(paper, seed=0, steps=12, out_dir=out)
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
    setpoints + (40 + 4)·2(R − 1) tree messages, plus three tree reductions per round for the
    features (882); then per move decision point the features' three tree reductions, the gain
    maximum (G reports + the tree) and the mover told (34), and a clearing (282) per move — at
    most 882 + 3·(2·34 + 2·282) = 2,778 with the default three move rounds (each a hand-over at
    most); the paper's size target ≤ 3,000."""
    paper, model = paper_model
    answers = make_solver(f"madrl_tvc[model={model}]").solve(paper, _day(paper))
    clearing, hearing = 2 * 9 + (40 + 4) * 2 * 3, 3 * 2 * 3 + (9 + 2 * 3) + 1
    policy = 3 * clearing + 2 * 3 * 2 * 3
    assert policy == 882 and hearing == 34
    moves = Hyperparameters().moves
    plain = [a.info for a in answers if a.info["commitment_repaired"] == 0]
    assert plain and all(0 <= i["moves"] <= 2 * moves and 1 <= i["move_hearings"] <= 2 * moves for i in plain)
    assert all(i["messages"] == policy + hearing * i["move_hearings"] + clearing * i["moves"] for i in plain)
    assert all(i["searches"] == 3 + i["moves"] for i in plain)
    assert policy + moves * 2 * (hearing + clearing) == 2778 <= 3000


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
    """`dispatchbench train` without --steps trains for the method's default budget (the tables')."""
    from dispatchbench.cli import main
    from dispatchbench.contract.learner import FitReport

    mod = _module()
    seen = {}

    def record(self, problem, *, seed, steps, out_dir, **kw):  # the CLI's wiring, not the training
        seen["steps"] = steps
        return FitReport(model_path=out_dir, steps=steps, time_s=0.0, info={})

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


def test_messages_of_a_decision_at_32_regions_follow_the_formula():
    """The protocol, not the policy, sets the count: an untrained team at 32 regions, refine=0."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn.marl_env import StateSampler

    big = generate_problem(32, 0)
    team = Team(big, Hyperparameters(), seed=0)
    states = StateSampler(big, seed=1).sample_many(3)
    rounds = team.hp.rounds
    for decision in decide_batch(team, states, observation_matrix(big, states)):
        info = decision.info
        flips = info["commitment_repaired"]  # a repair by ratings, then one more clearing
        assert info["searches"] == 1 + rounds + info["moves"] + (flips > 0)
        tree = team.search.system_sum_messages
        assert info["messages"] == (
            info["searches"] * team.search.messages_per_decision()
            + rounds * 3 * tree
            + info["move_hearings"] * (3 * tree + team.search.sum_messages + 1)
            + flips * (2 * tree + 2)
        )
        assert info["messages"] <= 50_000 and info["balanced"]
