"""Study files: the bundled studies hold the budgets the code used to hold, and a bad study file
is one line naming the file, the key and the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dispatchbench.cli import main
from dispatchbench.model.errors import InputError
from dispatchbench.report.study_file import (
    AnySize,
    Method,
    RunSettings,
    TestStates,
    bundled_studies,
    find_study,
    load_study,
    studies_dir,
)

ROOT = Path(__file__).resolve().parent.parent
NLOPT_GLOBAL = "nlopt[algorithm=AUGLAG,commitment=greedy,inner_algorithm=GN_DIRECT_L,inner_maxeval=30,maxeval=1000]"
# issue 21's classical peers and issue 18's teacher (flip_search), one seed each
PEERS = (Method("merit_order"), Method("lagrangian"), Method("admm"), Method("flip_search"))

# The budgets of the Python constants the study files replaced (report/reproduce.py and
# report/scaling.py FULL/QUICK before the move), field by field: the files must keep them.
PAPER_FULL = dict(
    methods=(
        Method("scip"),
        Method("nlopt[algorithm=LD_SLSQP]"),
        Method(NLOPT_GLOBAL),
        Method("pso[iterations=60]", seeds=(0, 1, 2, 3, 4)),
        *PEERS,
        Method("madrl_tvc", seeds=(0, 1, 2), train_steps=1500, variants=("refine=3",)),
        Method("maddpg", seeds=(0, 1, 2), train_steps=24000),
    ),
    test_states=TestStates("test", stride=4, random=30, replicate=6),
    run=RunSettings(timeout_s=60.0),
)
PAPER_QUICK = dict(
    methods=(
        Method("scip"),
        Method("nlopt[algorithm=LD_SLSQP]"),
        Method(NLOPT_GLOBAL),
        Method("pso[iterations=30,particles=20]", seeds=(0, 1)),
        *PEERS,
        Method("madrl_tvc", train_steps=100, variants=("refine=3",)),
        Method("maddpg", train_steps=600),
    ),
    test_states=TestStates("test", stride=16, random=6),
    run=RunSettings(timeout_s=60.0),
)
SCALING_CLASSICAL = (
    Method("scip"),
    Method("scip[rel_gap=0.0001]"),
    Method("nlopt[algorithm=LD_SLSQP]"),
)
QUICK_SKIP = "--quick trains per-instance learners on the smallest instance only"
SIZES_SKIP = "the study's 90-minute budget trains per instance at {} only; the any-size model decides every size"
ANY_SIZE = AnySize((4, 8, 16, 32), 900.0)
SCALING_FULL = dict(
    regions=(4, 8, 16, 32, 64, 128, 256, 512),
    methods=(
        *SCALING_CLASSICAL,
        Method("pso[iterations=60]", seeds=(0, 1)),
        *PEERS,
        Method("madrl_tvc[share=type]", seeds=(0, 1, 2), variants=("refine=3",), any_size=ANY_SIZE),
        Method("maddpg[sharing=type]", any_size=AnySize((4, 8, 16, 32), 600.0)),
        Method("madrl_tvc", train_steps={4: 1500, 32: 150}, skip_reason=SIZES_SKIP.format("4 and 32 regions")),
        Method("maddpg", train_steps={4: 24000}, skip_reason=SIZES_SKIP.format("4 regions")),
    ),
    test_states=TestStates("test", intervals=(8, 72), replicate=6),
    run=RunSettings(timeout_s=30.0),
)
SCALING_QUICK = dict(
    regions=(4, 8, 16, 32),
    methods=(
        *SCALING_CLASSICAL,
        Method("pso[iterations=60]"),
        *PEERS,
        Method("madrl_tvc[share=type]", any_size=AnySize((4, 8), 120.0)),
        Method("maddpg", train_steps={4: 300}, skip_reason=QUICK_SKIP),
    ),
    test_states=TestStates("test", intervals=(40,)),
    run=RunSettings(timeout_s=30.0),
)


def _plain(methods):
    """Methods without where they came from in the file (compared by value)."""
    return tuple(
        Method(m.spec, m.seeds, m.train_steps, m.skip_reason, m.variants, any_size=m.any_size) for m in methods
    )


@pytest.mark.parametrize("quick, expected", [(False, PAPER_FULL), (True, PAPER_QUICK)])
def test_the_paper_study_holds_its_budgets(quick, expected):
    study = load_study("paper", quick=quick)
    assert (study.name, study.kind, study.quick, study.report_name) == (
        "paper",
        "paper",
        quick,
        "paper-quick" if quick else "paper",
    )
    assert _plain(study.methods) == expected["methods"]
    assert study.test_states == expected["test_states"] and study.test_states.seed == (2000 if quick else 2006)
    assert study.run == expected["run"]
    assert study.baseline == "merit_order" and study.problem.state == "tableIV"
    assert study.problem.file.name == "paper-4region.toml"
    assert [p.name for p in study.problem.cases] == ["paper-4region-tableIV.csv", "paper-4region-day.csv"]
    tvc = next(m for m in study.methods if m.variants)  # the "+ local search" row: same models, refine=3 first
    assert tvc.variant_specs("madrl_tvc[model=/m/0]") == ["madrl_tvc[refine=3,model=/m/0]"]


@pytest.mark.parametrize("quick, expected", [(False, SCALING_FULL), (True, SCALING_QUICK)])
def test_the_scaling_study_holds_its_budgets(quick, expected):
    """Issue 19's study: 4 to 512 regions on test replicate 6 (instances and states), the any-size
    learners beside per-instance ones; --quick a smoke run on the development test replicate."""
    study = load_study("scaling", quick=quick)
    assert study.kind == "scaling" and study.report_name == ("scaling-quick" if quick else "scaling")
    assert study.generate.regions == expected["regions"] and study.generate.seed == (2000 if quick else 2006)
    assert study.test_states.seed == study.generate.seed
    assert study.baseline == "merit_order"  # issue 21: every row also compared with the priority-list heuristic
    assert _plain(study.methods) == expected["methods"]
    assert study.test_states == expected["test_states"] and study.run == expected["run"]
    maddpg = study.methods[-1]
    if quick:
        assert maddpg.steps_at(8) is None and maddpg.skip_text(8) == QUICK_SKIP
    assert maddpg.steps_at(4) == (300 if quick else 24000)


def test_bundled_studies_are_found_by_name_and_printed(capsys, monkeypatch, tmp_path):
    assert {"paper", "scaling"} <= set(bundled_studies())
    assert find_study("paper") == find_study("paper.toml") == find_study("studies/paper.toml")
    assert find_study("paper").parent == studies_dir()
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "paper.toml"  # a file of that name in the working folder wins, as for problems
    own.write_text("schema = 1\n")
    assert find_study("paper.toml") == own.resolve() and find_study("paper").parent == studies_dir()
    with pytest.raises(InputError, match="nosuch: study: is neither a study file nor a bundled study.*paper"):
        find_study("nosuch")
    monkeypatch.setattr(sys, "argv", ["dispatchbench", "reproduce", "scaling", "--print"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    assert capsys.readouterr().out == (studies_dir() / "scaling.toml").read_text()


def test_reproduce_help_lists_the_bundled_studies(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["dispatchbench", "reproduce", "--help"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main()
    out = capsys.readouterr().out
    assert "paper, scaling" in out and "--print" in out and "--quick" in out


# ---- bad study files ----------------------------------------------------------------------------

SCALING = """schema = 1
[study]
name = "mine"
kind = "scaling"
[generate]
regions = [2, 3]
[test_states]
intervals = [40]
[[methods]]
spec = "scip"
[[methods]]
spec = "maddpg"
train_steps = { 2 = 30 }
"""
PAPER = """schema = 1
[study]
name = "mine"
kind = "paper"
baseline = "pso"
[problem]
file = "paper-4region.toml"
cases = ["paper-4region-tableIV.csv"]
state = "tableIV"
[[methods]]
spec = "scip"
[[methods]]
spec = "pso[particles=10]"
seeds = [0, 1]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_a_good_user_study_loads(tmp_path):
    study = load_study(_write(tmp_path, SCALING))
    assert study.generate.regions == (2, 3) and study.methods[1].steps_at(2) == 30
    assert study.methods[1].steps_at(3) is None and "no train_steps for 3 regions" in study.methods[1].skip_text(3)
    assert study.run == RunSettings() and study.report_name == "mine"
    paper = load_study(_write(tmp_path, PAPER))
    assert paper.test_states is None and paper.methods[1].seeds == (0, 1)


@pytest.mark.parametrize(
    "text, entry, words",
    [
        ("schema = 1\n[study\n", "TOML", "fix the TOML syntax"),
        (SCALING.replace("schema = 1\n", ""), "schema", "add schema = 1"),
        (SCALING.replace("schema = 1", "schema = 2"), "schema", "reads schema 1"),
        (SCALING + "[extra]\nx = 1\n", "[extra]", "is not a key of this table"),
        (SCALING.replace('kind = "scaling"', 'kind = "sizes"'), "[study] kind", "use one of: paper, scaling"),
        (SCALING.replace('name = "mine"', 'name = "../up"'), "[study] name", "not a plain folder name"),
        (SCALING.replace("[test_states]", "[test_states]\nstrid = 3"), "[test_states] strid", "stride"),
        (SCALING.replace("intervals = [40]", "intervals = [40, 96]"), "[test_states] intervals", "outside 0..95"),
        (SCALING.replace("intervals = [40]", 'intervals = "40"'), "[test_states] intervals", "not a list"),
        (SCALING + "[run]\ntimeout = true\n", "[run] timeout", "is True, not a number of seconds"),
        (SCALING + "[run]\ntimeout = -1\n", "[run] timeout", "outside (0,"),
        (SCALING + '[run]\nexecutor = "ray"\n', "[run] executor", "use one of: local, dask"),
        (SCALING.replace('spec = "scip"', 'spec = "scip[rel_gap=1e-4"'), "[[methods]] #1 spec", "malformed"),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nsedes = [1]'), "[[methods]] #1 sedes", "seeds"),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nseeds = [1, 1]'), "[[methods]] #1 seeds", "repeats"),
        (SCALING.replace('spec = "scip"', 'spec = "maddpg"'), "[[methods]] #2 spec", "listed twice"),
        (SCALING.replace("{ 2 = 30 }", "{ two = 30 }"), "[[methods]] #2 train_steps", "not a number of regions"),
        (SCALING.replace("{ 2 = 30 }", "0"), "[[methods]] #2 train_steps", "not a number of steps"),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nvariants = ["a=1"]'), "#1 variants", "need train_steps"),
        (SCALING.replace('spec = "scip"', 'spec = "scip[model=x]"'), "[[methods]] #1 spec", "model folder"),
        (SCALING + '[[instances]]\nproblem = "x.toml"\n', "[[instances]]", "keep one of them"),
        (SCALING.replace("[generate]\nregions = [2, 3]\n", ""), "study file", "[generate]"),
        (SCALING.replace("regions = [2, 3]", "regions = [0]"), "[generate] regions", "outside 1..512"),
        (SCALING.replace('name = "mine"', 'name = "mine"\nbaseline = "nosuch"'), "[study] baseline", "use one of"),
        (SCALING + "[quick]\n[quick.test_states]\nstrid = 3\n", "[quick.test_states] strid", "not a key"),
        (SCALING + "[quick]\nstudy = { name = 'x' }\n", "[quick] study", "not a key"),
        (SCALING + "[[quick.methods]]\nspec = 'pso[a=1,a=2]'\n", "[[quick.methods]] #1 spec", "given twice"),
        (PAPER.replace('baseline = "pso"\n', ""), "[study] baseline", "add baseline"),
        (PAPER.replace('baseline = "pso"', 'baseline = "nlopt"'), "[study] baseline", "use one of: 'scip'"),
        (PAPER.replace('"tableIV"\n', '"tableV"\n'), "[problem] state", "no state of the cases"),
        (PAPER.replace("paper-4region.toml", "nosuch.toml"), "[problem] file", "relative to the study file"),
        (PAPER + "[generate]\nregions = [4]\n", "[generate]", "not part of a paper study"),
        (PAPER.replace("seeds = [0, 1]", "train_steps = { 4 = 10 }"), "#2 train_steps", "one number"),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nbudgets = [1]'), "#1 budgets", "need budget_of"),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nbudget_of = "maddpg"'), "#1 budget_of", "without budgets"),
        (
            SCALING.replace('spec = "scip"', 'spec = "scip"\nbudgets = [0]\nbudget_of = "maddpg"'),
            "#1 budgets",
            "positive",
        ),
        (
            SCALING.replace('spec = "scip"', 'spec = "scip"\nbudgets = [1, 1]\nbudget_of = "maddpg"'),
            "#1 budgets",
            "twice",
        ),
        (SCALING.replace('spec = "scip"', 'spec = "scip"\nbudgets = [1]\nbudget_of = "tvc"'), "#1 budget_of", "maddpg"),
        (SCALING.replace("{ 2 = 30 }", '{ 2 = 30 }\nbudgets = [1]\nbudget_of = "maddpg"'), "#2 budgets", "classical"),
        (PAPER.replace("[test_states]", "") + "[test_states]\nreplicate = 1000\n", "[test_states] replicate", "0..999"),
        # one model for any size (issue 19): train = { generated = [...], budget / steps }
        (SCALING.replace("train_steps = { 2 = 30 }", "train = { generated = [2] }"), "#2 train", "budget or steps"),
        (SCALING.replace("train_steps = { 2 = 30 }", "train = { generated = [] }"), "#2 train.generated", "empty"),
        (SCALING.replace("train_steps = { 2 = 30 }", "train = { generated = [600], steps = 3 }"), "gene", "1..512"),
        (SCALING.replace("train_steps = { 2 = 30 }", 'train = { generated = [2], budget = "soon" }'), "budget", "15m"),
        (SCALING.replace("train_steps = { 2 = 30 }", "train = { generated = [2], step = 3 }"), "step", "not a key"),
        (SCALING.replace("{ 2 = 30 }", "{ 2 = 30 }\ntrain = { generated = [2], steps = 3 }"), "#2 train", "keep one"),
        (PAPER.replace("seeds = [0, 1]", "train = { generated = [4], steps = 3 }"), "#2 train", "scaling studies"),
    ],
)
def test_a_bad_study_file_is_one_line_naming_file_key_and_fix(tmp_path, text, entry, words):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_study(path)
        load_study(path, quick=True)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and entry in message and words in message, message
    assert "\n" not in message and " — fix: " in message


def test_one_model_for_any_size_is_a_learner_of_the_study(tmp_path):
    text = SCALING.replace("train_steps = { 2 = 30 }", 'train = { generated = [2, 4], budget = "15m", steps = 900 }')
    method = load_study(_write(tmp_path, text)).methods[1]
    assert method.trains and method.train_steps is None
    assert method.any_size == AnySize((2, 4), 900.0, 900)


def test_quick_without_a_quick_table_is_refused(tmp_path):
    path = _write(tmp_path, SCALING)
    with pytest.raises(InputError, match=r"\[quick\]: missing"):
        load_study(path, quick=True)


def test_paths_are_relative_to_the_study_file_not_the_working_folder(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "p.toml").write_text((ROOT / "problems" / "paper-4region.toml").read_text())
    (site / "s.csv").write_text((ROOT / "problems" / "paper-4region-tableIV.csv").read_text())
    text = SCALING.replace("[generate]\nregions = [2, 3]\n[test_states]\nintervals = [40]\n", "")
    (site / "study.toml").write_text(text + '[[instances]]\nproblem = "p.toml"\nstates = "s.csv"\n')
    monkeypatch.chdir(tmp_path)  # not the study's folder
    study = load_study("site/study.toml")
    assert study.instances[0].problem == (site / "p.toml").resolve() and study.instances[0].name == "p"
    (site / "study.toml").write_text(text + '[[instances]]\nproblem = "p.toml"\nstates = "s.csv"\nname = "instances"\n')
    with pytest.raises(InputError, match=r"\[\[instances\]\] #1 name: 'instances' is the folder of the study's"):
        load_study("site/study.toml")
    (site / "study.toml").write_text(text + '[[instances]]\nproblem = "p.toml"\n')
    with pytest.raises(InputError, match=r"\[\[instances\]\] #1 states: missing \(and the study has no"):
        load_study("site/study.toml")


def test_the_record_a_report_prints_names_no_absolute_folder(tmp_path, monkeypatch):
    """A committed report must read the same from every clone: the study's files are shown relative
    to the folder it ran from, or as bundled, never as someone's /tmp or home path."""
    monkeypatch.chdir(tmp_path)  # outside the checkout: the bundled files are named as bundled
    record = load_study("paper").record()
    assert record["file"] == "bundled: paper.toml"
    assert record["problem"]["file"] == "bundled: paper-4region.toml"
    site = tmp_path / "site"
    site.mkdir()
    (site / "p.toml").write_text((ROOT / "problems" / "paper-4region.toml").read_text())
    (site / "s.csv").write_text((ROOT / "problems" / "paper-4region-tableIV.csv").read_text())
    text = SCALING.replace("[generate]\nregions = [2, 3]\n[test_states]\nintervals = [40]\n", "")
    (site / "study.toml").write_text(text + '[[instances]]\nproblem = "p.toml"\nstates = "s.csv"\n')
    record = load_study("site/study.toml").record()  # the user's own study: relative to where it ran
    assert record["file"] == "site/study.toml"
    assert record["instances"][0]["problem"] == "site/p.toml"
    assert str(tmp_path) not in str(record)


def test_the_command_prints_one_line_for_a_bad_study(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, SCALING.replace("regions = [2, 3]", "regions = [2, 2]"))
    monkeypatch.setattr(sys, "argv", ["dispatchbench", "reproduce", str(path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "[generate] regions: repeats a value" in err
    assert not (tmp_path / "o").exists()  # refused before any work


# ---- what a method is comes from its plugin --------------------------------------------------------


def test_methods_are_what_their_plugins_say(tmp_path):
    from dispatchbench.report.study_methods import probe_methods

    study = load_study(_write(tmp_path, PAPER + '[[methods]]\nspec = "nosuch[x=1]"\n'))
    said: list[str] = []
    methods = probe_methods(study, say=said.append)
    assert [m.spec for m in methods.runnable] == ["scip", "pso[particles=10]"] and not methods.learners
    assert methods.capabilities["scip"].exact and methods.capabilities["pso[particles=10]"].stochastic
    assert [f["method"] for f in methods.failures] == ["nosuch[x=1]"] and "no solver named" in said[0]

    nothing = load_study(_write(tmp_path, SCALING.replace('"scip"', '"nosuch"').replace('"maddpg"', '"nosuch2"')))
    with pytest.raises(InputError, match=r"\[\[methods\]\]: none of them can run \(nosuch: no solver named"):
        probe_methods(nothing)

    plain_trained = load_study(_write(tmp_path, SCALING.replace('spec = "scip"', 'spec = "scip"\ntrain_steps = 5')))
    with pytest.raises(InputError, match=r"\[\[methods\]\] #1 train_steps: 'scip' does not learn"):
        probe_methods(plain_trained)
    untrained = load_study(_write(tmp_path, SCALING.replace("train_steps = { 2 = 30 }\n", "")))
    with pytest.raises(InputError, match=r"\[\[methods\]\] #2 spec: 'maddpg' learns: it needs a trained model"):
        probe_methods(untrained)


def test_a_study_of_the_other_kind_is_refused_by_each_driver(tmp_path):
    from dispatchbench.report.reproduce import reproduce
    from dispatchbench.report.scaling import reproduce_scaling

    with pytest.raises(InputError, match=r"\[study\] kind: is 'scaling'"):
        reproduce(_write(tmp_path, SCALING), tmp_path / "out")
    with pytest.raises(InputError, match=r"\[study\] kind: is 'paper'"):
        reproduce_scaling(tmp_path / "out", _write(tmp_path, PAPER))


def test_budgets_of_a_learner_per_classical_method(tmp_path):
    text = SCALING.replace('spec = "scip"', 'spec = "scip"\nbudgets = [100, 1, 10]\nbudget_of = "maddpg"')
    study = load_study(_write(tmp_path, text))
    scip = study.methods[0]
    assert scip.budgets == (1.0, 10.0, 100.0) and scip.budget_of == "maddpg"
    assert study.record()["methods"][0]["budgets"] == [1.0, 10.0, 100.0]
    bundled = load_study("scaling")
    budgeted = {m.spec: (m.budgets, m.budget_of) for m in bundled.methods if m.budgets}
    assert budgeted == {
        spec: ((1.0, 10.0, 100.0), "madrl_tvc[share=type]")
        for spec in ("scip", "nlopt[algorithm=LD_SLSQP]", "pso[iterations=60]")
    }
