"""Generated problems and state families: deterministic, valid, feasible, and what they claim.

The scaling study and the learning protocol both stand on these files, so the checks are the
ones a reader would ask for: the same seed gives the same bytes (through the real command),
every generated state passes the exact pre-check, the families have the shapes the docs say,
and every bad input is one line with exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from dispatchbench.cli import main
from dispatchbench.instances.generate_problem import (
    CS_RANGE,
    MAX_REGIONS,
    REGION_KINDS,
    generate_problem,
    generate_problem_toml,
    kind_of,
)
from dispatchbench.instances.protocol import (
    TEST,
    TRAINING,
    VALIDATION,
    require_split,
    split_of,
    test_states,
    training_states,
    validation_states,
)
from dispatchbench.instances.state_families import FAMILIES, INTERVALS, generate_days, generate_random, write_states
from dispatchbench.instances.state_repair import repair
from dispatchbench.model.feasibility import import_margin, infeasibility_reason
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


def run_main(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else info.value.code), out, err


# ---- determinism through the CLI ----------------------------------------------------------------


def test_same_arguments_give_identical_files_and_other_seeds_differ(tmp_path, capsys, monkeypatch):
    def problem(name: str, seed: int) -> bytes:
        code, _, err = run_main(
            capsys,
            monkeypatch,
            "generate",
            "problem",
            "--regions",
            "8",
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / name),
        )
        assert code == 0, err
        return (tmp_path / name).read_bytes()

    assert problem("a.toml", 3) == problem("b.toml", 3)
    assert problem("c.toml", 4) != problem("a.toml", 3)

    def states(name: str, seed: int, *extra: str) -> bytes:
        code, out, err = run_main(
            capsys,
            monkeypatch,
            "generate",
            "states",
            "--problem",
            str(tmp_path / "a.toml"),
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / name),
            *extra,
        )
        assert code == 0, err
        assert "states" in out
        return (tmp_path / name).read_bytes()

    day = ("--family", "night_heavy", "--days", "2")
    assert states("s1.csv", 7, *day) == states("s2.csv", 7, *day)
    assert states("s3.csv", 8, *day) != states("s1.csv", 7, *day)
    rand = ("--family", "random", "--count", "20")
    assert states("r1.csv", 7, *rand) == states("r2.csv", 7, *rand)
    assert states("r3.csv", 8, *rand) != states("r1.csv", 7, *rand)

    prob = load_problem(tmp_path / "a.toml")
    loaded = load_states(tmp_path / "s1.csv", prob)
    assert len(loaded) == 2 * INTERVALS
    assert [s.label for s in loaded[:2]] == ["night_heavy_d0_t00", "night_heavy_d0_t01"]
    assert loaded[-1].label == "night_heavy_d1_t95"
    assert [s.label for s in load_states(tmp_path / "r1.csv", prob)][:2] == ["random_0", "random_1"]


def test_list_prints_one_line_per_family(capsys, monkeypatch):
    code, out, _ = run_main(capsys, monkeypatch, "generate", "states", "--list")
    assert code == 0
    names = [line.split(":")[0] for line in out.strip().splitlines()]
    assert names == [*FAMILIES, "random"]


def test_a_day_is_a_prefix_of_a_longer_run(paper):
    one = generate_days(paper, "high_demand", 1, 11).states
    three = generate_days(paper, "high_demand", 3, 11).states
    assert one == three[:INTERVALS]


# ---- problems --------------------------------------------------------------------------------


@pytest.mark.parametrize("regions", [1, 4, 16, 64, 128])
def test_generated_problems_load_and_look_like_the_paper(tmp_path, regions):
    path = tmp_path / "p.toml"
    path.write_text(generate_problem_toml(regions, 5), encoding="utf-8")
    prob = load_problem(path)
    assert len(prob.regions) == regions
    assert all(CS_RANGE[0] <= r.cs_max <= CS_RANGE[1] for r in prob.regions)
    assert all(2 <= len(prob.groups_in(r)) <= 3 for r in prob.region_names)
    kinds = [kind_of(prob, r).name for r in prob.region_names]
    if regions >= 4:  # kinds are dealt round-robin, then shuffled
        counts = [kinds.count(k.name) for k in REGION_KINDS]
        assert max(counts) - min(counts) <= 1
    if regions == 128:
        assert 280 <= len(prob.groups) <= 360  # 2.5 groups per region on average
    for g in prob.groups:  # every group a perturbed paper group: within the spreads of Tables I-III
        if g.is_v2g:
            assert 3.4 <= g.g <= 5.75 and g.efficiency == 0.9 and 72 <= g.p_max <= 108
        else:
            assert 0.0017 <= g.a <= 0.00805 and 2.55 <= g.b <= 11.5 and 0 < g.p_min < g.p_max <= 720


def test_convex_variant_and_name():
    prob = generate_problem(4, 0, commitment=False)
    assert not prob.commitment and prob.name == "gen-4r-s0-convex"
    assert generate_problem(4, 0).name == "gen-4r-s0"


def test_paper_regions_map_to_their_kinds(paper):
    assert [kind_of(paper, r).name for r in paper.region_names] == ["mixed", "residential", "public", "hub"]


# ---- feasibility ----------------------------------------------------------------------------


def test_a_thousand_generated_states_pass_the_pre_check(tmp_path, paper, convex):
    problems = [
        paper,
        convex,
        generate_problem(8, 1),
        generate_problem(8, 2, commitment=False),
        generate_problem(64, 3),
    ]
    checked = 0
    for i, prob in enumerate(problems):
        made = [generate_days(prob, family, 1, 100 + i).states for family in FAMILIES]
        made.append(generate_random(prob, 40, 100 + i).states)
        for states in made:
            # through the file, as a user gets them: what was checked is what was written
            path = tmp_path / f"{prob.name}-{states[0].label}.csv"
            for state in write_states(path, prob, states):
                assert infeasibility_reason(prob, state, margin=True) is None, (prob.name, state.label)
                checked += 1
    assert checked >= 1000


def test_repair_clips_and_scales_only_when_needed(paper, convex):
    v2g = np.array([70.0, 150.0])
    fine, step = repair(paper, "x", np.array([100.0, 120.0, 50.0, 530.0]), v2g)
    assert step == "" and fine.demand["D"] == 530.0
    clipped, step = repair(paper, "x", np.array([100.0, 120.0, 50.0, 5000.0]), v2g)
    assert step == "clip" and infeasibility_reason(paper, clipped) is None
    # FDC3 + FDC4 + the CS limit less the generator's margin (0.01 % of 200 kW, at least 0.01 kW)
    assert clipped.demand["D"] == pytest.approx(300 + 200 + 200 - import_margin(200.0)) == 699.98
    scaled, step = repair(convex, "x", np.zeros(4), v2g)  # forced minimum outputs need a use
    assert step == "scale" and infeasibility_reason(convex, scaled) is None


def test_families_have_the_shapes_the_docs_describe():
    prob = generate_problem(16, 9)
    local_top = lambda s: prob.incidence @ prob.upper_bounds(s)  # noqa: E731
    night = generate_days(prob, "night_heavy", 1, 1)
    totals = np.array([s.total_demand for s in night.states])
    assert totals[:16].mean() > 1.5 * totals[44:60].mean()  # 00:00-04:00 vs 11:00-15:00
    v_night = np.array([list(s.v2g_available.values()) for s in night.states[4:12]])
    assert (v_night >= 0.85 * prob.p_max[prob.is_v2g]).mean() > 0.8

    binding = generate_days(prob, "cs_binding", 1, 1)
    for s in binding.states:  # some region must import at least 80 % of its CS limit
        need = (prob.demand_vector(s) - local_top(s)) / prob.cs_max
        assert need.max() >= 0.8 - 1e-9, s.label

    skewed = generate_days(prob, "skewed", 1, 1)
    for s in skewed.states:  # the hot regions (2 of 16) carry a large share of demand
        d = np.sort(prob.demand_vector(s))[::-1]
        assert d[:2].sum() / d.sum() > 0.25, s.label

    high, base = generate_days(prob, "high_demand", 1, 1), generate_days(prob, "base_load", 1, 1)
    assert min(s.total_demand for s in high.states) > max(s.total_demand for s in base.states)


# ---- protocol -------------------------------------------------------------------------------


def test_protocol_splits_are_disjoint_and_guarded(paper):
    assert split_of(0) == "training" and split_of(1500) == "validation" and split_of(2999) == "test"
    assert not set(range(TRAINING.first, TRAINING.last + 1)) & set(range(VALIDATION.first, TEST.last + 1))
    with pytest.raises(ValueError, match="validation seed"):
        require_split(1000, "training")
    val = validation_states(paper, random_count=5)
    test = test_states(paper, random_count=5)
    assert len(val) == len(test) == len(FAMILIES) * INTERVALS + 5
    assert {s.label for s in val} == {s.label for s in test}  # same labels, other draws
    assert all(a.demand != b.demand for a, b in zip(val, test))
    train = training_states(paper, families=("base_load",))
    assert all(a.demand != b.demand for a, b in zip(train, val[:INTERVALS]))
    assert val == validation_states(paper, random_count=5)  # the same call, the same states
    sparse = test_states(paper, stride=8)  # every 2 hours: the same states as in the full days
    assert len(sparse) == len(FAMILIES) * 12 and sparse == [s for s in test[:-5] if int(s.label[-2:]) % 8 == 0]
    assert test_states(paper, replicate=1, families=("skewed",))[0].demand != test[2 * INTERVALS].demand


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("problem", "--regions", "0", "--out", "{tmp}/x.toml"),
        ("problem", "--regions", str(MAX_REGIONS + 1), "--out", "{tmp}/x.toml"),
        ("problem", "--regions", "4", "--seed", "-1", "--out", "{tmp}/x.toml"),
        ("problem", "--regions", "4", "--out", "{tmp}"),
        ("problem", "--regions", "four", "--out", "{tmp}/x.toml"),
        ("states", "--problem", "{paper}", "--family", "sunny", "--out", "{tmp}/x.csv"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--days", "0", "--out", "{tmp}/x.csv"),
        ("states", "--problem", "{paper}", "--family", "random", "--out", "{tmp}/x.csv"),
        ("states", "--problem", "{paper}", "--family", "random", "--count", "0", "--out", "{tmp}/x.csv"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--count", "3", "--out", "{tmp}/x.csv"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--out", "{tmp}"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--out", "{tmp}/no/such/x.csv"),
        ("states", "--problem", "{tmp}/missing.toml", "--family", "skewed", "--out", "{tmp}/x.csv"),
        ("states", "--family", "skewed"),
        # issue 20: special output files and seeds past the bound every other command keeps
        ("problem", "--regions", "4", "--out", "/dev/null"),
        ("problem", "--regions", "4", "--out", "{tmp}/fifo"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--out", "/dev/null"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--out", "{tmp}/fifo"),
        ("problem", "--regions", "4", "--out", "{tmp}/" + "n" * 300 + ".toml"),
        ("problem", "--regions", "4", "--seed", str(2**70), "--out", "{tmp}/x.toml"),
        ("states", "--problem", "{paper}", "--family", "skewed", "--seed", str(2**32), "--out", "{tmp}/x.csv"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, args):
    fill = {"tmp": str(tmp_path), "paper": str(PROBLEMS / "paper-4region.toml")}
    os.mkfifo(tmp_path / "fifo")  # writing to it would block until a reader came
    code, out, err = run_main(capsys, monkeypatch, "generate", *(a.format(**fill) for a in args))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "fix" in err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.toml").exists()


def test_a_request_past_the_state_file_limits_is_refused_before_generating():
    big = generate_problem(512, 0)
    with pytest.raises(ValueError, match="exceed the state-file limit"):
        generate_random(big, 100_000, 1000)
    with pytest.raises(ValueError, match="exceed the state-file limit"):
        generate_days(big, "base_load", 366, 1000)


@pytest.mark.parametrize(
    "args",
    [
        ("train", "-p", "{paper}", "--solver", "madrl_tvc", "--steps", "2", "--out", "{long}"),
        ("run", "-p", "{paper}", "-s", "{day}", "--solvers", "scip", "--out", "{long}"),
        ("table", "{long}", "--baseline", "scip"),
        ("solve", "-p", "{paper}", "-s", "{long}.csv"),
        ("validate", "{long}.toml"),
    ],
    ids=["train", "run", "table", "solve", "validate"],
)
def test_an_overlong_path_is_one_line_on_every_command(tmp_path, capsys, monkeypatch, args):
    fill = {"paper": str(PROBLEMS / "paper-4region.toml"), "day": str(PROBLEMS / "paper-4region-tableIV.csv")}
    fill["long"] = str(tmp_path / ("n" * 300))
    code, out, err = run_main(capsys, monkeypatch, *(a.format(**fill) for a in args))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "fix" in err


def test_one_interval_is_the_state_a_whole_day_makes_there():
    """The training sampler draws one interval at a time; it must be the day's own state (same
    draw, same repair), only without repairing the other intervals."""
    from dispatchbench.instances.state_families import generate_interval

    problem = generate_problem(16, 3)
    for family in ("skewed", "cs_binding", "night_heavy"):
        day = generate_days(problem, family, 1, 7, first_day=2).states
        for t in (0, 37, 95):
            one = generate_interval(problem, family, 7, 2, t)
            assert (one.label, one.demand, one.v2g_available) == (day[t].label, day[t].demand, day[t].v2g_available)
    with pytest.raises(ValueError, match="interval 96"):
        generate_interval(problem, "skewed", 7, 2, 96)
