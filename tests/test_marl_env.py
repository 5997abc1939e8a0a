"""The multi-agent environment: PettingZoo API, the action-space mapping, the training sampler, and
learners that import without PettingZoo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from dispatchbench import load_states
from dispatchbench.learn.marl_env import (
    StateBox,
    StateSampler,
    map_actions,
    monitor_states,
    observation_matrix,
    observations,
    outcome,
)
from dispatchbench.learn.pettingzoo_env import DispatchEnv
from dispatchbench.model.feasibility import infeasibility_reason

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


def test_parallel_api(paper):
    parallel_api_test(DispatchEnv(paper, seed=3), num_cycles=5)


def test_one_step_episode_and_rewards(paper):
    env = DispatchEnv(paper, seed=1)
    obs, _ = env.reset()
    assert set(obs) == set(paper.group_names)
    all_on = {a: np.array([1.0], dtype=np.float32) for a in env.agents}
    _, rewards, term, trunc, infos = env.step(all_on)
    assert all(term.values()) and not any(trunc.values()) and env.agents == []
    # every group on at full proposed output is a feasible commitment for a sampled state: no penalty
    info = infos["FDC1"]
    assert info["feasible"] and info["violation_kw"] < 1e-3
    assert all(r < 0 for r in rewards.values())
    # rewards differ only through each agent's own cost share
    costs = np.array([infos[a]["cost"] for a in paper.group_names])
    r = np.array([rewards[a] for a in paper.group_names])
    assert np.argmin(r) == np.argmax(costs)


def test_observation_layout(paper):
    state = load_states(PROBLEMS / "paper-4region-tableIV.csv", paper)[0]
    obs = observations(paper, state)
    total_capacity = 600 + 400 + 300 + 200 + 0.9 * 90 * 2 + 200 + 200 + 180
    assert obs["FDC3"][0] == pytest.approx(800 / total_capacity, rel=1e-6)
    assert obs["FDC3"][1] == pytest.approx(530 / (500 + 200), rel=1e-6)  # region D demand / (capacity + CS)
    assert obs["FDC3"][2] == 0.0  # no V2G in region D
    assert obs["ASC7"][2] == pytest.approx(70 / 90, rel=1e-6)  # region A's V2G available / its V2G p_max
    assert obs["V2G6"][1] == pytest.approx(150 / 90, rel=1e-6)  # own availability
    assert obs["V2G6"][2] == pytest.approx(120 / (200 + 81 + 200), rel=1e-6)
    assert observation_matrix(paper, [state, state]).shape == (2, 9, 3)


@pytest.mark.parametrize("name", ["paper", "convex"])
def test_mapping_stays_in_each_feasible_set(name, request):
    problem = request.getfixturevalue(name)
    states = StateSampler(problem, seed=5).sample_many(20)
    raw = np.random.default_rng(0).uniform(-1.5, 1.5, (20, len(problem.groups)))  # also out of range
    mapped = map_actions(problem, states, raw)
    for i, state in enumerate(states):
        ub = problem.upper_bounds(state)
        on, p = mapped.on[i], mapped.power[i]
        assert np.all(p[~on] == 0)
        assert np.all(p[on] >= problem.p_min[on] - 1e-9) and np.all(p[on] <= ub[on] + 1e-9)
    if not problem.commitment:
        assert mapped.on.all()
    else:
        assert np.array_equal(mapped.on, np.clip(raw, -1, 1) >= 0)


def test_balanced_outcome_is_feasible_for_a_feasible_commitment(paper):
    for state in StateSampler(paper, seed=9).sample_many(5):
        out = outcome(paper, state, np.full(len(paper.groups), 0.3))
        assert out.feasible_commitment and out.evaluation.feasible
        assert out.messages > 0


def test_sampler_is_seeded_feasible_and_refuses_excluded_states(paper):
    a = StateSampler(paper, seed=11).sample_many(30)
    b = StateSampler(paper, seed=11).sample_many(30)
    c = StateSampler(paper, seed=12).sample_many(30)
    assert [s.demand for s in a] == [s.demand for s in b]
    assert [s.demand for s in a] != [s.demand for s in c]
    assert all(infeasibility_reason(paper, s) is None for s in a)
    assert all(s.label.startswith("sampled") for s in a)  # its own labels, never an evaluation state's
    tab = load_states(PROBLEMS / "paper-4region-tableIV.csv", paper)[0]
    sampler = StateSampler(paper, seed=0, excluded=[tab])  # exclusion only of states a caller names
    vec = np.concatenate([paper.demand_vector(tab), [tab.v2g_available[g] for g in paper.v2g_names]])
    assert sampler.is_excluded(vec) and sampler.is_excluded(vec + 0.5) and not sampler.is_excluded(vec + 2.0)
    # a box that is nothing but the Table IV state's neighbourhood cannot yield anything
    demand, v2g = vec[: len(paper.regions)], vec[len(paper.regions) :]
    tiny = StateBox(demand - 0.5, demand + 0.5, v2g - 0.5, v2g + 0.5)
    with pytest.raises(RuntimeError):
        StateSampler(paper, seed=0, box=tiny, excluded=[tab], max_tries=200).sample()


def test_training_distribution_ignores_files_beside_the_problem(paper, tmp_path):
    """The sampler is defined by the problem's ratings and its seed: a folder full of state files
    (here an extreme day written next to a copy of the problem) changes nothing."""
    from dispatchbench.model.problem_file import load_problem

    src = Path(paper.source)
    (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / "extreme.csv").write_text((PROBLEMS / "paper-4region-day.csv").read_text())
    beside = load_problem(tmp_path / src.name)
    plain = StateSampler(paper, seed=4)
    other = StateSampler(beside, seed=4)
    assert plain.box.to_json(paper) == other.box.to_json(beside) == StateBox.from_problem(paper).to_json(paper)
    assert [s.demand for s in plain.sample_many(20)] == [s.demand for s in other.sample_many(20)]
    assert plain.excluded == other.excluded == []


def test_generated_mixture_draws_training_seeds_only(paper):
    """``generated_share`` mixes in generated day intervals, each from a training seed (0-999),
    relabelled; share 0 leaves the box's draws exactly as they were."""
    from dispatchbench.instances.protocol import TRAINING
    from dispatchbench.instances.state_families import generate_days

    assert [s.demand for s in StateSampler(paper, seed=5, generated_share=0.0).sample_many(10)] == [
        s.demand for s in StateSampler(paper, seed=5).sample_many(10)
    ]
    sampler = StateSampler(paper, seed=5, generated_share=1.0)
    for _ in range(8):
        state = sampler.sample()
        family, seed, day, t = sampler.last_source
        assert seed in TRAINING and state.label.startswith("sampled")
        assert state.demand == generate_days(paper, family, 1, seed, first_day=day).states[t].demand
        assert infeasibility_reason(paper, state) is None
    again = StateSampler(paper, seed=5, generated_share=1.0)
    assert [s.demand for s in again.sample_many(3)] == [
        s.demand for s in StateSampler(paper, seed=5, generated_share=1.0).sample_many(3)
    ]
    with pytest.raises(ValueError):
        StateSampler(paper, seed=0, generated_share=1.5)


def test_sampler_box_covers_every_servable_demand(paper):
    sampler = StateSampler(paper, seed=0)
    for s in load_states(PROBLEMS / "paper-4region-day.csv", paper):
        assert np.all(paper.demand_vector(s) <= sampler.box.demand_high)


def test_monitor_states_are_fixed(paper):
    assert [s.demand for s in monitor_states(paper)] == [s.demand for s in monitor_states(paper)]
    assert len(monitor_states(paper)) == 10


def test_learners_import_without_pettingzoo_or_gymnasium():
    """Only the PettingZoo wrapper needs PettingZoo: with both libraries made unimportable, the
    environment's pieces and both learner plugins still import (and the wrapper says why not)."""
    code = """
import sys
sys.modules["pettingzoo"] = sys.modules["gymnasium"] = None  # any import of them now fails
import dispatchbench.learn.marl_env, dispatchbench.learn.lifecycle, dispatchbench.learn.tvc.training
import dispatchbench.solvers.madrl_tvc, dispatchbench.solvers.maddpg
try:
    import dispatchbench.learn.pettingzoo_env
except ImportError as exc:
    print("wrapper:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrapper:" in proc.stdout and ("gymnasium" in proc.stdout or "pettingzoo" in proc.stdout)


def test_monitor_states_fall_back_to_generated_days_where_uniform_draws_fail(monkeypatch):
    """A large problem's uniform box almost never yields a feasible state (every region at once),
    so the training log's monitor states come from generated training days instead: feasible,
    fixed by the seed. Where box draws succeed (every size up to 128 regions checked), they are
    the box draws, as before."""
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.learn import marl_env
    from dispatchbench.model.feasibility import infeasibility_reason

    problem = generate_problem(16, 1000)
    box = marl_env.StateSampler(problem, seed=marl_env.MONITOR_SEED).sample_many(10)
    assert [s.demand for s in marl_env.monitor_states(problem)] == [s.demand for s in box]
    monkeypatch.setattr(marl_env, "MONITOR_TRIES", 0)  # as if no uniform draw were ever feasible
    states = marl_env.monitor_states(problem)
    generated = marl_env.StateSampler(problem, seed=marl_env.MONITOR_SEED, generated_share=1.0).sample_many(10)
    assert [s.demand for s in states] == [s.demand for s in generated]
    assert [s.label for s in states] == [f"monitor{i}" for i in range(10)]
    assert all(infeasibility_reason(problem, s) is None for s in states)
