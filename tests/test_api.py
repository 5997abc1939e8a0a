"""The Python API a notebook uses: the command line's results as DataFrames and folders.

Real SCIP throughout: the API is only worth having if its numbers are the CLI's, and both come
from the evaluator (4903.9687 at the paper's Table IV state).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

import dispatchbench
from dispatchbench.cli import main
from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.errors import InputError, SolverNotFound

TABLE_IV_COST = "4903.9687"
HEADER = "state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6"
SOLVERS = {"scip", "nlopt", "pso", "merit_order", "lagrangian", "admm", "flip_search", "madrl_tvc", "maddpg"}


def cli_json(capsys, monkeypatch, *args: str) -> list[dict]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    return [json.loads(line) for line in out.splitlines()]


def test_solve_by_bundled_names_matches_solve_json(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # bundled names work from any folder
    frame = dispatchbench.solve("paper-4region.toml", "problems/paper-4region-tableIV.csv", solver="scip")
    [line] = cli_json(
        capsys,
        monkeypatch,
        "solve",
        "-p",
        "paper-4region.toml",
        "-s",
        "paper-4region-tableIV.csv",
        "--solver",
        "scip",
        "--json",
    )
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    assert list(frame.columns) == list(line)
    row = frame.iloc[0]
    assert row["state"] == "tableIV" and row["solver"] == "scip" and row["status"] == "optimal"
    assert f"{row['cost']:.4f}" == TABLE_IV_COST == f"{line['cost']:.4f}"
    assert row["dispatch"] == line["dispatch"] and set(row["imports"]) == {"A", "B", "C", "D"}
    assert row["info"]["evaluated_cost"] == pytest.approx(row["cost"])


def test_solve_takes_problem_and_state_objects(tmp_path):
    problem = dispatchbench.load_problem(problems_dir() / "paper-4region.toml")
    states = dispatchbench.load_states(problems_dir() / "paper-4region-tableIV.csv", problem)
    one = dispatchbench.solve(problem, states[0], solver="scip[rel_gap=1e-9]")
    many = dispatchbench.solve(problem, states, solver="scip")
    assert f"{one.loc[0, 'cost']:.4f}" == f"{many.loc[0, 'cost']:.4f}" == TABLE_IV_COST
    assert one.loc[0, "solver"] == "scip"  # rel_gap=1e-9 is the default, so the spec is the bare name


def test_solve_keeps_an_infeasible_state_as_a_row_with_its_reason(tmp_path):
    states = tmp_path / "two.csv"
    states.write_text(f"{HEADER}\ntableIV,100,120,50,530,70,150\nshort,100,120,50,1000,70,150\n")
    frame = dispatchbench.solve("paper-4region.toml", states, solver="scip")
    assert list(frame["status"]) == ["optimal", "infeasible"]
    assert math.isnan(frame.loc[1, "cost"]) and "region D" in frame.loc[1, "reason"]


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"solver": "cplex"}, SolverNotFound, "no solver named 'cplex'"),
        ({"solver": "scip[gap=1]"}, SolverNotFound, "no parameter 'gap'"),
        ({"solver": None}, InputError, 'solver: missing: no solver given — fix: give solver=, e.g. solver="scip"'),
        ({"time_limit": 0}, InputError, "time_limit"),
        ({"time_limit": float("nan")}, InputError, "time_limit"),
        ({"seed": -1}, InputError, "seed"),
    ],
)
def test_solve_bad_arguments_raise_the_cli_errors(kwargs, error, text):
    with pytest.raises(error, match=text):
        dispatchbench.solve("paper-4region.toml", "paper-4region-tableIV.csv", **{"solver": "scip", **kwargs})


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"seed": 2**70}, "is not a seed in 0..4294967295"),
        ({"seed": True}, "seed: True"),
        ({"seed": 1.5}, "seed: 1.5"),
        ({"seed": "0"}, "seed: '0'"),
        ({"time_limit": 1e300}, "time_limit"),
        ({"time_limit": True}, "time_limit: True"),
        ({"time_limit": "60"}, "time_limit: '60'"),
        ({"time_limit": 8 * 24 * 3600}, "time_limit"),
        ({"states": []}, "states: []: is empty"),
        ({"states": [1, 2]}, "states: 1: is not a State"),
        ({"states": 5}, "states: 5: is not a list"),
        ({"solver": 5}, "solver: 5: is not a solver spec"),
        ({"problem": 5}, "problem: 5: is not a path"),
        ({"problem": "x" * 5000}, "over 4095"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_solve_validates_every_argument_like_the_cli(kwargs, text):
    """Issue 20: seed=2**70, time_limit=1e300 or True, an empty state list were accepted."""
    args = {"problem": "paper-4region.toml", "states": "paper-4region-tableIV.csv", "solver": "scip", **kwargs}
    with pytest.raises(InputError) as info:
        dispatchbench.solve(**args)
    assert text in str(info.value) and "fix:" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"timeout": "60"}, "--timeout: '60'"),
        ({"timeout": True}, "--timeout: True"),
        ({"timeout": 1e300}, "--timeout"),
        ({"timeout": float("inf")}, "--timeout"),
        ({"states": []}, "states: []: is empty"),
        ({"states": [5]}, "states: 5: is not a path"),
        ({"solvers": []}, "solvers: []"),
        ({"solvers": ""}, "solvers: '': is empty"),
        ({"solvers": [5]}, "solvers: [5]"),
        ({"seeds": [2**70]}, "is not a seed"),
        ({"seeds": [True]}, "seeds: True"),
        ({"seeds": 1.5}, "seeds: 1.5: is not a list"),
        ({"resume": "yes"}, "resume: 'yes': is not True or False"),
        ({"jobz": 2}, "jobz: option: is not an option of run"),
        ({"jobs": 0}, "--jobs"),
        ({"jobs": True}, "--jobs"),
        ({"executor": "mpi"}, "--executor"),
        ({"startup_timeout": "9"}, "--startup-timeout"),
        ({"out": 5}, "out: 5: is not a path"),
        ({"out": "o" * 300}, "over 255"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_run_validates_every_argument_before_any_work(tmp_path, kwargs, text):
    args = {
        "problem": "paper-4region.toml",
        "states": "paper-4region-tableIV.csv",
        "solvers": "scip",
        "out": tmp_path / "x",
        "progress": False,
        **kwargs,
    }
    with pytest.raises(InputError) as info:
        dispatchbench.run(**args)
    assert text in str(info.value) and "fix:" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x").exists()


def test_run_takes_a_problem_object_and_records_the_file_it_wrote(paper, tmp_path):
    out = dispatchbench.run(paper, "paper-4region-tableIV.csv", "scip", out=tmp_path / "x", progress=False)
    rows = dispatchbench.load_results(out)
    [written] = (out / "inputs").glob("*.toml")
    assert Path(rows["problem_file"].iloc[0]) == written.resolve() and rows["status"].iloc[0] == "optimal"


@pytest.mark.parametrize("folder, text", [(5, "folder: 5: is not a path"), ("/no/such/run", "not found")])
def test_load_results_validates_its_folder(folder, text):
    with pytest.raises(InputError, match=text):
        dispatchbench.load_results(folder)


def test_solve_missing_file_names_it():
    with pytest.raises(InputError, match="nope.toml: file: not found"):
        dispatchbench.solve("nope.toml", "paper-4region-tableIV.csv")


def test_run_returns_the_folder_that_load_results_reads(tmp_path):
    out = dispatchbench.run(
        "paper-4region.toml",
        "paper-4region-tableIV.csv",
        "scip",
        seeds="0",
        out=tmp_path / "shootout",
        timeout=120,
        progress=False,
    )
    assert isinstance(out, Path) and (out / "results.parquet").is_file()
    frame = dispatchbench.load_results(out)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["solver"] == "scip" and row["status"] == "optimal" and f"{row['cost']:.4f}" == TABLE_IV_COST
    with pytest.raises(InputError, match="holds an earlier run"):  # as on the command line
        dispatchbench.run("paper-4region.toml", "paper-4region-tableIV.csv", "scip", out=out, progress=False)
    again = dispatchbench.run(
        "paper-4region.toml",
        ["paper-4region-tableIV.csv"],
        ["scip"],
        seeds=[0],
        out=out,
        resume=True,
        progress=False,
        jobs=1,
    )  # a harness option, passed through
    assert again == out and len(dispatchbench.load_results(out)) == 1


def test_run_refuses_bad_seeds_before_any_work(tmp_path):
    with pytest.raises(InputError, match="seeds"):
        dispatchbench.run("paper-4region.toml", "paper-4region-tableIV.csv", "scip", seeds=[-1], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_results_of_a_folder_without_results():
    with pytest.raises(InputError, match="neither"):
        dispatchbench.load_results(problems_dir())


def test_list_solvers_describes_every_bundled_plugin():
    rows = dispatchbench.list_solvers()
    by_name = {r["name"]: r for r in rows}
    assert SOLVERS <= set(by_name)
    json.dumps(rows)  # JSON-ready, like `solvers --json`
    scip = by_name["scip"]
    assert scip["source"] == "bundled" and Path(scip["origin"]).name == "scip.py"
    assert scip["capabilities"]["exact"] is True and scip["parameters"]["rel_gap"] == 1e-9
    assert by_name["madrl_tvc"]["capabilities"]["learns"] is True
    assert set(pd.DataFrame(rows).columns) >= {"name", "description", "parameters", "capabilities", "origin"}


def test_import_is_lazy_so_plugins_do_not_pay_for_pandas_or_the_harness():
    code = (
        "import sys, dispatchbench\n"
        "from dispatchbench import Answer, Capabilities, Dispatch, Solver\n"
        "print([m for m in ('pandas', 'dispatchbench.api', 'dispatchbench.bench.harness', 'pyomo', 'torch')"
        " if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_names_resolve_and_unknown_ones_raise():
    for name in dispatchbench.__all__:
        assert getattr(dispatchbench, name) is not None, name
    assert "solve" in dir(dispatchbench)
    with pytest.raises(AttributeError):
        dispatchbench.no_such_name  # noqa: B018
    assert dispatchbench.__version__ == version("dispatchbench")
