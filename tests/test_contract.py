"""The declared plugin contract: statuses, the documented ``info`` keys, what discovery refuses,
and a plugin's label travelling from the probe into every row and from the rows into a report.

Real SCIP throughout (through a test plugin that relabels it, as a third-party plugin would):
a label is only worth declaring if it reaches the tables unchanged, and if rows written before
labels existed still read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import dispatchbench
from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.plugins import SOLVER_PATH_ENV, broken_plugins, discover, make_solver
from dispatchbench.cli import main
from dispatchbench.contract.info import read_info
from dispatchbench.contract.learner import Learner
from dispatchbench.contract.solver import Answer, Capabilities, Label, default_family, short_number
from dispatchbench.contract.status import FAILURES, SUCCESS, Status
from dispatchbench.learn.lifecycle import LearnerPlugin
from dispatchbench.model.errors import SolverNotFound

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"
BROKEN = PLUGINS / "broken_contract"
PAPER = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"


# ---- statuses ------------------------------------------------------------------------------------
def test_statuses_are_one_enum_whose_values_rows_store():
    assert [s.value for s in Status] == ["optimal", "feasible", "infeasible", "timeout", "error"]
    assert SUCCESS == {"optimal", "feasible"} and set(FAILURES) == set(Status) - SUCCESS
    assert Status.FEASIBLE == "feasible" and json.dumps({"s": Status.TIMEOUT}) == '{"s": "timeout"}'
    assert f"{Status.ERROR}" == "error" and "feasible" in SUCCESS  # what tables and progress lines print and test
    assert pd.Series(["feasible", "error", None], dtype="string").isin(SUCCESS).tolist() == [True, False, False]


def test_an_answer_takes_a_status_string_and_refuses_others():
    assert Answer(None, "timeout").status is Status.TIMEOUT  # plugins written with strings keep working
    with pytest.raises(ValueError, match="'done' is not one of optimal, feasible"):
        Answer(None, "done")


# ---- info ------------------------------------------------------------------------------------------
def test_read_info_keeps_documented_keys_of_their_type():
    raw = {
        "messages": 955,
        "dual_bound": 4903,  # a float field given as a JSON integer
        "gap": None,
        "note": "time limit reached",
        "time_limit_reached": True,
        "strategy": "enumerate",  # the plugin's own: stored, not read
        "commitment_repaired": True,  # a bool is not a count
        "decision_s": "fast",  # plugin code may write anything
    }
    info = read_info(raw)
    assert info == {
        "messages": 955,
        "dual_bound": 4903.0,
        "gap": None,
        "note": "time limit reached",
        "time_limit_reached": True,
    }
    assert isinstance(info["dual_bound"], float)
    assert read_info(json.dumps(raw)) == info  # a results table holds JSON text
    assert read_info("not json") == {} and read_info(None) == {} and read_info([1]) == {}


# ---- labels ------------------------------------------------------------------------------------------
def test_default_label_is_the_spec_and_a_family_from_the_capabilities():
    class Plain(dispatchbench.Solver):
        name = "plain"
        parameters = {"k": 1, "model": ""}
        capabilities = Capabilities(stochastic=True)

        def solve(self, problem, states, *, seed=0, time_limit=None):
            return []

    assert Plain.label({"k": 1, "model": ""}) == Label("plain", "stochastic")
    assert Plain.label({"k": 2, "model": "x"}) == Label("plain[k=2,model=x]", "stochastic")
    assert default_family(Capabilities(exact=True)) == "exact" and default_family(Capabilities()) == "deterministic"
    assert short_number(1e-4) == "1e-4" and short_number(2.5e-9) == "2.5e-9" and short_number(0.05) == "0.05"


def test_a_learner_is_a_learner_by_its_class():
    assert issubclass(LearnerPlugin, Learner)
    learners = {name for name, cls in discover().items() if issubclass(cls, Learner)}
    assert learners == {name for name, cls in discover().items() if cls.capabilities.learns} >= {"madrl_tvc", "maddpg"}
    assert "solve" in Learner.__abstractmethods__ and "fit" in Learner.__abstractmethods__


# ---- what discovery refuses -------------------------------------------------------------------------------
def test_a_class_that_breaks_the_contract_is_listed_broken_with_the_fix(monkeypatch):
    monkeypatch.setenv(SOLVER_PATH_ENV, str(BROKEN))
    broken = {Path(b.origin).name: b.error for b in broken_plugins()}
    assert "learns_flag" not in discover() and "no_fit" not in discover()
    assert "fit not implemented — fix: define them" in broken["no_fit.py"]  # no longer passed over in silence
    assert (
        "is no Learner" in broken["learns_flag.py"]
        and "fix: subclass dispatchbench.Learner" in broken["learns_flag.py"]
    )
    with pytest.raises(SolverNotFound) as info:
        make_solver("bad_label")  # the class is fine; its label() raises when a spec is made
    assert "label() raised KeyError" in str(info.value) and "\n" not in str(info.value)


def test_a_spec_whose_label_fails_stops_a_run_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv(SOLVER_PATH_ENV, str(BROKEN))
    with pytest.raises(SolverNotFound, match="bad_label.*label\\(\\) raised"):
        run_benchmark(PAPER, [TABLE_IV], "scip,bad_label", [0], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "rows.jsonl").exists()


# ---- probe -> rows -> tables and report ------------------------------------------------------------------
@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory) -> Path:
    """SCIP twice on the Table IV state: the bundled plugin and a relabelled copy (a third party)."""
    out = tmp_path_factory.mktemp("labels") / "run"
    old = os.environ.get(SOLVER_PATH_ENV)
    os.environ[SOLVER_PATH_ENV] = str(PLUGINS)
    try:
        summary = run_benchmark(PAPER, [TABLE_IV], "scip,labelled[flavour=mild]", [0], out, progress=False)
    finally:
        os.environ.pop(SOLVER_PATH_ENV) if old is None else os.environ.__setitem__(SOLVER_PATH_ENV, old)
    assert summary.statuses == {Status.OPTIMAL: 2}
    return out


def test_the_probe_labels_every_row(labelled_run):
    rows = dispatchbench.load_results(labelled_run).set_index("solver")
    assert (rows.loc["scip", "label"], rows.loc["scip", "family"]) == ("SCIP (gap 1e-9)", "exact")
    mine = rows.loc["labelled[flavour=mild]"]
    assert (mine["label"], mine["family"]) == ("Third party (mild)", "exact, third party")


def test_tables_and_report_name_methods_by_label_and_fall_back_to_the_spec(labelled_run, tmp_path):
    from dispatchbench.report.html_report import load_scored, method_labels
    from dispatchbench.report.tables import make_tables

    scored = load_scored(labelled_run)
    assert set(method_labels(scored.frame).values()) == {"SCIP (gap 1e-9)", "Third party (mild)"}
    types = make_tables([labelled_run], "scip", out_dir=tmp_path / "t").tables[0].table.set_index("method")["type"]
    assert types.to_dict() == {"scip": "exact", "labelled[flavour=mild]": "exact, third party"}

    old = tmp_path / "old"  # the same rows as an older version wrote them: no label, no family, no manifest
    old.mkdir()
    rows = [json.loads(line) for line in (labelled_run / "rows.jsonl").read_text().splitlines()]
    (old / "rows.jsonl").write_text(
        "".join(
            json.dumps({**{k: v for k, v in r.items() if k not in ("label", "family")}, "schema_version": 2}) + "\n"
            for r in rows
        )
    )
    assert set(method_labels(load_scored(old).frame).values()) == {"scip", "labelled[flavour=mild]"}
    types = make_tables([old], "scip", out_dir=tmp_path / "t2").tables[0].table.set_index("method")["type"]
    assert set(types) == {"exact"}  # from the capability flags


# ---- the command line and the API show labels --------------------------------------------------------------
def _cli(capsys, monkeypatch, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    return out


def test_solvers_json_shows_default_labels_and_budgets(capsys, monkeypatch):
    listed = {s["name"]: s for s in json.loads(_cli(capsys, monkeypatch, "solvers", "--json"))["solvers"]}
    assert (listed["scip"]["label"], listed["scip"]["family"]) == ("SCIP (gap 1e-9)", "exact")
    assert (listed["madrl_tvc"]["label"], listed["madrl_tvc"]["family"]) == (
        "MADRL-TVC",
        "learned, distributed (one problem) or CTDE-like (any size)",
    )
    assert listed["madrl_tvc"]["default_train_steps"] == 1500 and listed["pso"]["default_train_steps"] is None


def test_solve_json_and_the_api_carry_the_label(capsys, monkeypatch):
    out = _cli(
        capsys, monkeypatch, "solve", "-p", str(PAPER), "-s", str(TABLE_IV), "--solver", "scip[rel_gap=1e-4]", "--json"
    )
    [line] = [json.loads(text) for text in out.splitlines()]
    assert (line["label"], line["family"]) == ("SCIP (gap 1e-4)", "exact")
    frame = dispatchbench.solve(str(PAPER), str(TABLE_IV), solver="scip")
    assert (frame.loc[0, "solver"], frame.loc[0, "label"], frame.loc[0, "status"]) == (
        "scip",
        "SCIP (gap 1e-9)",
        "optimal",
    )


def test_train_refuses_a_solver_that_is_no_learner(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(
        sys, "argv", ["dispatchbench", "train", "-p", str(PAPER), "--solver", "scip", "--out", str(tmp_path / "m")]
    )
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and "'scip' does not learn" in err and "maddpg" in err and "madrl_tvc" in err
