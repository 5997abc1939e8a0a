"""Issue 22, the plugin author's path: each mistake a user made writing a merit-order plugin from
the README is one line in the plugin's terms, a script calling ``db.run`` needs no ``__main__``
guard, the API's loaders know bundled names and discovery says what it skipped or hid.

The plugins are real files written to a temporary folder and found through
``$DISPATCHBENCH_SOLVER_PATH``; most checks call the package in-process (a ``Solver`` object
given to ``db.solve`` passes the same answer checks as the cell's child), and one run, one
``solve`` command and one script go through the child processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dispatchbench as db
from dispatchbench import Answer, Dispatch, Solver, Status
from dispatchbench.bench import plugin_catalogue as catalogue_module
from dispatchbench.bench.cell_runner import describe_origins
from dispatchbench.bench.harness import plan_solvers, run_benchmark
from dispatchbench.bench.plugins import SOLVER_PATH_ENV, plugin_sources, shadowed_plugins
from dispatchbench.contract.class_checks import contract_problems
from dispatchbench.model.errors import InputError, SolverNotFound

ROOT = Path(__file__).resolve().parent.parent
NINE = "expected 9 (FDC1 … ASC9)"

# A merit-order plugin with one switch per mistake of the issue ("ok": no mistake).
MERIT_ORDER = """
import numpy as np
from dispatchbench import Answer, Dispatch, Solver, Status


class MeritOrder(Solver):
    name = "priority_list"
    description = "cheapest groups first (test plugin of tests/test_plugin_author_errors.py)"
    parameters = {"mistake": "ok"}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        answers = []
        for state in states:
            n = len(problem.groups)
            if self.params["mistake"] == "raise":
                raise KeyError("no price for FDC1")
            power = np.zeros(n - 2 if self.params["mistake"] == "short" else n)
            total = sum(state.demand.values())
            for i, group in enumerate(problem.groups):
                if len(power) == n:
                    power[i] = min(group.p_max, max(0.0, total - power.sum()))
            dispatch = Dispatch.from_power(problem, state, power)
            if self.params["mistake"] == "dispatch":
                answers.append(dispatch)
            elif self.params["mistake"] == "bare":
                return dispatch
            else:
                answers.append(Answer(dispatch, Status.FEASIBLE))
        return answers
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "priority_list.py").write_text(MERIT_ORDER)
    monkeypatch.setenv(SOLVER_PATH_ENV, str(folder))
    return folder


@pytest.fixture(scope="module")
def problem():
    return db.load_problem("paper-4region.toml")


@pytest.fixture(scope="module")
def table_iv(problem):
    return db.load_states("paper-4region-tableIV.csv", problem)


class Returns(Solver):
    """A plugin object whose ``solve`` returns whatever the test hands it (built per state)."""

    name = "priority_list"
    parameters: dict = {}

    def __init__(self, make, **params) -> None:
        super().__init__(**params)
        self.make = make

    def solve(self, problem, states, *, seed=0, time_limit=None):
        return self.make(problem, states)


def reason_of(problem, states, make) -> str:
    frame = db.solve(problem, states, solver=Returns(make))
    assert list(frame["status"]) == ["error"]
    return str(frame["reason"].iloc[0])


def full(problem, state) -> Dispatch:
    return Dispatch.from_power(problem, state, np.zeros(len(problem.groups)))


# ---- item 1: answers checked at the boundary, in the plugin's terms -------------------------------------


def test_a_dispatch_returned_for_an_answer_is_named(problem, table_iv):
    why = reason_of(problem, table_iv, lambda p, s: [full(p, s[0])])
    assert why == (
        "priority_list.solve: state 'tableIV': returned a Dispatch, not an Answer — fix: wrap it: "
        "Answer(dispatch, Status.FEASIBLE)"
    )


def test_a_bare_dispatch_instead_of_a_list_is_named(problem, table_iv):
    why = reason_of(problem, table_iv, lambda p, s: full(p, s[0]))
    assert why.startswith("priority_list.solve returned a Dispatch, not a list of Answer — fix: return [Answer(")


def test_power_for_7_groups_of_9_is_named_with_the_groups(problem, table_iv):
    why = reason_of(problem, table_iv, lambda p, s: [Answer(Dispatch.from_power(p, s[0], np.zeros(7)), "feasible")])
    assert why.startswith(f"priority_list.solve: state 'tableIV': Dispatch.from_power: power has 7 entries, {NINE}")
    assert "matmul" not in why and "core dimension" not in why
    assert f"(at {__file__}:" in why  # the plugin's line, not the package's


def test_a_dispatch_built_by_hand_with_short_vectors_is_named(problem, table_iv):
    def make(p, s):
        d = full(p, s[0])
        return [Answer(Dispatch(d.on, d.power, d.imports[:3]), Status.FEASIBLE)]

    assert (
        reason_of(problem, table_iv, make)
        == "priority_list.solve: state 'tableIV': imports has 3 entries, expected 4 (A … D)"
    )


def test_non_finite_power_and_a_status_without_dispatch_are_named(problem, table_iv):
    def nan(p, s):
        d = full(p, s[0])
        power = d.power.copy()
        power[8] = np.nan
        return [Answer(Dispatch(d.on, power, d.imports), Status.FEASIBLE)]

    assert reason_of(problem, table_iv, nan).startswith("priority_list.solve: state 'tableIV': power[8] (ASC9) is nan")
    why = reason_of(problem, table_iv, lambda p, s: [Answer(None, Status.FEASIBLE)])
    assert why.startswith("priority_list.solve: state 'tableIV': status 'feasible' without a dispatch — fix:")


def test_two_answers_for_one_state_are_named(problem, table_iv):
    why = reason_of(problem, table_iv, lambda p, s: [Answer(None, "error"), Answer(None, "error")])
    assert why.startswith("priority_list.solve returned 2 answers for 1 state — fix:")


def test_a_parameter_default_of_none_breaks_the_contract_at_load(plugin_dir):
    capped = plugin_dir / "capped.py"
    capped.write_text(
        MERIT_ORDER.replace('"priority_list"', '"capped"').replace(
            '{"mistake": "ok"}', '{"mistake": "ok", "cap": None}'
        )
    )
    # what `solvers` does with each plugin file: import it in a child and describe its classes
    described = describe_origins([str(capped), str(plugin_dir / "priority_list.py")], 120)
    assert described[str(capped)] == (
        None,
        "TypeError: MeritOrder: parameter 'cap' defaults to None, which a spec's text cannot be cast to (the plugin "
        "would get a str) — fix: a str, int, float or bool default (0.0, '' or False for 'not given')",
    )
    classes, _ = described[str(plugin_dir / "priority_list.py")]  # the same class with castable defaults
    assert classes is not None and [c["name"] for c in classes] == ["priority_list"]
    assert contract_problems(Returns) == []


def test_run_rows_say_each_mistake_in_the_plugins_terms(plugin_dir, tmp_path):
    """Through the cell's child: the one place both ``solve`` and ``run`` pass."""
    specs = "priority_list[mistake=dispatch],priority_list[mistake=short],priority_list"
    summary = run_benchmark(
        ROOT / "problems" / "paper-4region.toml",
        [ROOT / "problems" / "paper-4region-tableIV.csv"],
        specs,
        [0],
        tmp_path / "out",
        timeout=120,
        progress=False,
        jobs=2,
    )
    rows = {r["solver"]: r for r in map(json.loads, (tmp_path / "out" / "rows.jsonl").read_text().splitlines())}
    assert rows["priority_list[mistake=dispatch]"]["reason"].startswith(
        "priority_list.solve: state 'tableIV': returned a Dispatch, not an Answer"
    )
    short = rows["priority_list[mistake=short]"]["reason"]
    assert short.startswith(f"priority_list.solve: state 'tableIV': Dispatch.from_power: power has 7 entries, {NINE}")
    assert "/plugins/priority_list.py:" in short and "scoring.py" not in short
    assert "Traceback (most recent call last)" in rows["priority_list[mistake=short]"]["info"]["traceback"]
    ok = rows["priority_list"]  # the same plugin without the mistake: its answer reaches the evaluator
    assert ok["status"] in ("feasible", "infeasible") and "priority_list.solve" not in ok["reason"]
    assert sorted(s for s, _ in summary.all_error()) == [
        "priority_list[mistake=dispatch]",
        "priority_list[mistake=short]",
    ]


def test_solve_exits_1_when_every_row_is_error_and_traceback_shows_the_plugins(plugin_dir):
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "dispatchbench", "solve", "-p", "paper-4region.toml", "-s",
         "paper-4region-tableIV.csv", "--solver", "priority_list[mistake=raise]", "--json", "--traceback"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    [row] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["reason"].startswith("priority_list.solve: state 'tableIV': raised KeyError: 'no price for FDC1' (at ")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "every row of priority_list[mistake=raise] is error" in errors[0]
    assert 'raise KeyError("no price for FDC1")' in proc.stderr  # the plugin's own line, in its traceback


# ---- item 2: db.run from a script without a __main__ guard ------------------------------------------


def test_a_script_without_a_main_guard_runs_on_the_local_dask_cluster(plugin_dir, tmp_path):
    script = tmp_path / "my_run.py"
    script.write_text(
        textwrap.dedent(f"""
        import dispatchbench as db
        print("script body ran")
        out = db.run("paper-4region.toml", "paper-4region-tableIV.csv", "priority_list", out={str(tmp_path / "out")!r},
                     timeout=120, progress=False, executor="dask", jobs=1)
        print("rows in", out)
        """)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("script body ran") == 1  # no worker re-ran the script
    [row] = [json.loads(line) for line in (tmp_path / "out" / "rows.jsonl").read_text().splitlines()]
    assert row["status"] in ("feasible", "infeasible") and row["cost"] is None or row["cost"] > 0  # scored


# ---- item 4: the API's loaders take bundled names ---------------------------------------------------


def test_load_problem_and_load_states_take_bundled_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problem = db.load_problem("paper-4region.toml")
    assert problem.name == "paper-4region" and len(problem.groups) == 9
    assert [s.label for s in db.load_states("problems/paper-4region-tableIV.csv", problem)] == ["tableIV"]
    with pytest.raises(InputError, match="nope.toml: file: not found — fix: .*name of a bundled one"):
        db.load_problem("nope.toml")


# ---- item 5: discovery says what it did ---------------------------------------------------------------


def test_a_solver_path_scip_shadowed_by_the_bundled_one_is_reported(plugin_dir, monkeypatch):
    (plugin_dir / "scip.py").write_text(MERIT_ORDER.replace('"priority_list"', '"scip"'))
    [hidden] = shadowed_plugins()
    assert (hidden.name, hidden.source, hidden.winner_source) == ("scip", "solver path", "bundled")
    # `solvers` / `solvers --json`: the catalogue, limited to the two scip files (importing every
    # bundled plugin would cost a torch import per learner)
    keep = {str((plugin_dir / "scip.py").resolve()), str((ROOT / "solvers" / "scip.py").resolve())}
    monkeypatch.setattr(catalogue_module, "plugin_sources", lambda: [s for s in plugin_sources() if s.origin in keep])
    found = catalogue_module.plugin_catalogue(120)
    assert [s["origin"] for s in found.solvers] == [str((ROOT / "solvers" / "scip.py").resolve())]
    assert found.broken == [] and [s.origin for s in found.shadowed] == [str((plugin_dir / "scip.py").resolve())]
    assert "is ignored: " in found.warnings()[0] and "(bundled) has that name" in found.warnings()[0]


def test_missing_and_file_solver_path_entries_are_reported_and_the_search_is_listed(tmp_path, monkeypatch):
    plugin = tmp_path / "priority_list.py"
    plugin.write_text(MERIT_ORDER)
    monkeypatch.setenv(SOLVER_PATH_ENV, os.pathsep.join([str(tmp_path / "missing"), str(plugin)]))
    with pytest.raises(SolverNotFound) as info:
        plan_solvers("priority_list")
    said = str(info.value)
    assert said.startswith("no solver named 'priority_list'; available: ")
    assert f"folder {tmp_path / 'missing'} (missing: skipped)" in said
    assert f"folder {plugin} (a file, not a folder: skipped)" in said and "bundled plugins (" in said
    from dispatchbench.bench.plugins import discovery_warnings

    assert discovery_warnings() == [
        f"${SOLVER_PATH_ENV} entry {str(tmp_path / 'missing')!r} does not exist — fix: give an existing folder "
        "of plugins",
        f"${SOLVER_PATH_ENV} entry {str(plugin)!r} is a file, not a folder — fix: give the folder that holds it "
        f"({tmp_path})",
    ]
