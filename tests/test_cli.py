"""The command line, as a user meets it.

A few runs go through the installed ``dispatchbench`` script in a subprocess (the real entry
point, exit status and streams); the many bad-input cases call the same ``main()`` in-process,
which is identical apart from the interpreter start-up that would cost a second each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dispatchbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
PAPER = str(PROBLEMS / "paper-4region.toml")
TABLE_IV = str(PROBLEMS / "paper-4region-tableIV.csv")
HEADER = "state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6"


def run_script(*args: str) -> subprocess.CompletedProcess:
    """The installed console script (falling back to ``python -m dispatchbench``)."""
    exe = shutil.which("dispatchbench")
    cmd = [exe] if exe else [sys.executable, "-m", "dispatchbench"]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def run_main(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else code), out, err


@pytest.fixture
def multi_states(tmp_path) -> Path:
    """Table IV, a state region D cannot serve, and a mild state."""
    path = tmp_path / "day.csv"
    path.write_text(
        f"{HEADER}\ntableIV,100,120,50,530,70,150\nshort,100,120,50,1000,70,150\nmild,80,100,60,300,70,150\n"
    )
    return path


# ---- solve ------------------------------------------------------------------------------------


def test_solve_json_table_iv_through_the_console_script():
    proc = run_script("solve", "--problem", PAPER, "--states", TABLE_IV, "--solver", "scip", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert {"state", "solver", "status", "cost", "max_violation", "time_s", "dispatch", "imports"} <= set(rec)
    assert rec["state"] == "tableIV" and rec["solver"] == "scip" and rec["status"] == "optimal"
    assert rec["cost"] == pytest.approx(4903.9687, rel=1e-6)
    assert 0 <= rec["max_violation"] <= 1e-6 * 800 and rec["time_s"] > 0
    assert list(rec["dispatch"]) == ["FDC1", "FDC2", "FDC3", "FDC4", "V2G5", "V2G6", "ASC7", "ASC8", "ASC9"]
    assert all(set(v) == {"on", "power"} for v in rec["dispatch"].values())
    assert {g for g, v in rec["dispatch"].items() if not v["on"]} == {"FDC1", "FDC2", "ASC7"}
    assert set(rec["imports"]) == {"A", "B", "C", "D"}
    assert sum(rec["imports"].values()) == pytest.approx(0.0, abs=1e-4)
    assert rec["info"]["primal_bound"] == pytest.approx(rec["cost"], rel=1e-6)


def test_solve_multi_state_file_reports_infeasible_and_solves_the_rest(capsys, monkeypatch, multi_states):
    code, out, err = run_main(
        capsys, monkeypatch, "solve", "-p", PAPER, "-s", str(multi_states), "--solver", "scip", "--json"
    )
    assert code == 0 and err == ""
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["state"] for r in recs] == ["tableIV", "short", "mild"]
    assert [r["status"] for r in recs] == ["optimal", "infeasible", "optimal"]
    short = recs[1]
    assert short["cost"] is None and short["dispatch"] is None and short["imports"] is None
    assert "region D" in short["reason"] and "shortfall 300 kW" in short["reason"]
    assert recs[0]["cost"] == pytest.approx(4903.9687, rel=1e-6) and recs[2]["cost"] > 0


def test_solve_readable_table(multi_states):
    proc = run_script("solve", "-p", PAPER, "-s", str(multi_states), "--solver", "scip[persistent=false]")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "paper-4region: scip[persistent=False]" in out  # the spec is not eaten as Rich markup
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "optimal" in rows["tableIV"] and "4903.9687" in rows["tableIV"] and "FDC1, FDC2, ASC7" in rows["tableIV"]
    assert "infeasible" in rows["short"]
    assert "optimal" in rows["mild"]
    assert (
        "short: state infeasible: region D: demand 1000 kW exceeds local capacity 500 kW plus CS import "
        "limit 200 kW (shortfall 300 kW)"
    ) in out


def test_solve_single_state_shows_the_dispatch(capsys, monkeypatch):
    code, out, _ = run_main(
        capsys,
        monkeypatch,
        "solve",
        "-p",
        str(PROBLEMS / "wood-wollenberg-3a.toml"),
        "-s",
        str(PROBLEMS / "wood-wollenberg-3a.csv"),
        "--solver",
        "scip",
    )
    assert code == 0
    assert "8194.3561" in out and "(commitment" in out
    for unit, power in (("unit1", "393.1698"), ("unit2", "334.6038"), ("unit3", "122.2264")):
        assert any(unit in line and power in line for line in out.splitlines()), unit
    assert "import area" in out


# ---- solvers and validate ---------------------------------------------------------------------


def test_solvers_lists_scip_with_capabilities_and_parameters(capsys, monkeypatch):
    code, out, _ = run_main(capsys, monkeypatch, "solvers")
    assert code == 0
    for text in ("scip", "exact", "commitment", "rel_gap=1e-09", "time_limit=60.0", "persistent=True"):
        assert text in out, text


def test_validate_problem(capsys, monkeypatch):
    code, out, err = run_main(capsys, monkeypatch, "validate", PAPER)
    assert code == 0 and err == ""
    assert "problem 'paper-4region' is valid: 4 regions, 9 groups (4 FDC, 3 ASC, 2 V2G), commitment on" in out


def test_validate_state_file_names_infeasible_states(capsys, monkeypatch, multi_states):
    code, out, _ = run_main(capsys, monkeypatch, "validate", str(multi_states), "--problem", PAPER)
    assert code == 0
    assert "3 states for problem 'paper-4region', 2 feasible" in out
    assert "state short: infeasible: region D" in out


# ---- bad input: exit 2, one line on stderr, no traceback ---------------------------------------


def bad_files(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """id -> (command line, texts the one-line message must contain)."""
    (tmp / "unknown_key.toml").write_text(
        Path(PAPER).read_text().replace("cs_max = 200.0", "cs_max = 200.0\nlimit = 1", 1)
    )
    (tmp / "syntax.toml").write_text("[problem\nname = 'x'\n")
    (tmp / "p_min.toml").write_text(Path(PAPER).read_text().replace("p_min = 100.0", "p_min = 700.0", 1))
    (tmp / "cell.csv").write_text(f"{HEADER}\ns,100,abc,50,530,70,150\n")
    (tmp / "dup.csv").write_text(f"{HEADER}\ns,1,1,1,1,1,1\ns,1,1,1,1,1,1\n")
    (tmp / "empty.csv").write_text("")
    solve = ["solve", "-p", PAPER, "-s", TABLE_IV]
    return {
        "missing problem file": (
            ["solve", "-p", str(tmp / "nope.toml"), "-s", TABLE_IV],
            [str(tmp / "nope.toml"), "not found", "fix:"],
        ),
        "missing state file": (
            ["solve", "-p", PAPER, "-s", str(tmp / "nope.csv")],
            [str(tmp / "nope.csv"), "not found", "fix:"],
        ),
        "unknown key": (
            ["solve", "-p", str(tmp / "unknown_key.toml"), "-s", TABLE_IV],
            ["unknown_key.toml", "region 'A'", "unknown key 'limit'", "fix: remove it"],
        ),
        "TOML syntax": (
            ["solve", "-p", str(tmp / "syntax.toml"), "-s", TABLE_IV],
            ["syntax.toml", "TOML syntax", "line 1", "fix:"],
        ),
        "p_min > p_max": (
            ["validate", str(tmp / "p_min.toml")],
            ["p_min.toml", "group 'FDC1'.p_min", "p_min 700.0 > p_max 600.0", "fix: make p_min <= p_max"],
        ),
        "non-numeric cell": (
            ["solve", "-p", PAPER, "-s", str(tmp / "cell.csv")],
            ["cell.csv", "line 2, state 's', column 'd_B'", "'abc'", "fix:"],
        ),
        "duplicate label": (
            ["validate", str(tmp / "dup.csv"), "--problem", PAPER],
            ["dup.csv", "line 3, state 's'", "label used twice", "fix:"],
        ),
        "empty state file": (
            ["solve", "-p", PAPER, "-s", str(tmp / "empty.csv")],
            ["empty.csv", "is empty", "fix: write the header " + HEADER],
        ),
        "state file for another problem": (
            ["solve", "-p", PAPER, "-s", str(PROBLEMS / "wood-wollenberg-3a.csv")],
            [
                "wood-wollenberg-3a.csv",
                "column 'd_area'",
                "does not match problem 'paper-4region'",
                "fix: the header must be",
            ],
        ),
        "unknown solver": (
            [*solve, "--solver", "cplex"],
            ["--solver cplex", "no solver named 'cplex'", "scip", "fix: run 'dispatchbench solvers'"],
        ),
        "unknown solver parameter": (
            [*solve, "--solver", "scip[gap=0.1]"],
            ["--solver scip[gap=0.1]", "no parameter 'gap'", "rel_gap", "fix:"],
        ),
        "bad solver parameter value": (
            [*solve, "--solver", "scip[rel_gap=tiny]"],
            ["rel_gap='tiny' is not a float", "fix:"],
        ),
        "malformed solver spec": ([*solve, "--solver", "scip[rel_gap"], ["malformed", "fix:"]),
        "non-positive time limit": ([*solve, "--time-limit", "0"], ["--time-limit 0", "fix:"]),
        "missing solver": (solve, ["--solver: missing", "fix: give --solver, e.g. --solver scip"]),
        "missing option": (
            ["solve", "-s", TABLE_IV],
            ["dispatchbench solve", "Missing option '--problem'", "fix: see 'dispatchbench solve --help'"],
        ),
        "non-integer seed": ([*solve, "--seed", "x"], ["Invalid value for '--seed'", "fix:"]),
        "unknown command": (["sovle"], ["No such command 'sovle'", "fix: see 'dispatchbench --help'"]),
        "state file without its problem": (
            ["validate", TABLE_IV],
            ["paper-4region-tableIV.csv", "fix: add --problem FILE.toml"],
        ),
    }


BAD_IDS = [
    "missing problem file",
    "missing state file",
    "unknown key",
    "TOML syntax",
    "p_min > p_max",
    "non-numeric cell",
    "duplicate label",
    "empty state file",
    "state file for another problem",
    "unknown solver",
    "unknown solver parameter",
    "bad solver parameter value",
    "malformed solver spec",
    "non-positive time limit",
    "missing solver",
    "missing option",
    "non-integer seed",
    "unknown command",
    "state file without its problem",
]


def test_every_bad_case_is_run(tmp_path):
    assert list(bad_files(tmp_path)) == BAD_IDS


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_input_exits_2_with_one_line(capsys, monkeypatch, tmp_path, case):
    args, expected = bad_files(tmp_path)[case]
    code, out, err = run_main(capsys, monkeypatch, *args)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])


def test_bad_input_through_the_console_script_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(Path(PAPER).read_text().replace('type = "ASC"', 'type = "AC"', 1))
    proc = run_script("solve", "--problem", str(bad), "--states", TABLE_IV)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f'error: {bad}: group \'ASC7\'.type: \'AC\' is not a charger type — fix: use type = "FDC", "ASC" or "V2G"'
    ]


def test_run_with_a_bad_spec_stops_before_any_cell(tmp_path):
    out = tmp_path / "out"
    proc = run_script(
        "run", "-p", PAPER, "-s", TABLE_IV, "--solvers", "scip,pso[w=nan]", "--out", str(out), "--no-progress"
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "w=nan" in proc.stderr, proc.stderr
    assert not (out / "rows.jsonl").exists() or not (out / "rows.jsonl").read_text().strip()


def test_a_plugin_whose_constructor_raises_is_one_line_in_solve(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken_init.py").write_text(
        "from dispatchbench.contract.solver import Solver\n\n"
        "class BrokenInit(Solver):\n"
        "    name = 'broken_init'\n"
        "    def __init__(self, **params):\n"
        "        raise RuntimeError('cannot open the licence file\\nsecond line')\n"
        "    def solve(self, problem, states, *, seed=0, time_limit=None):\n"
        "        return []\n"
    )
    exe = shutil.which("dispatchbench")
    cmd = [exe] if exe else [sys.executable, "-m", "dispatchbench"]
    proc = subprocess.run(
        [*cmd, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", "broken_init"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DISPATCHBENCH_SOLVER_PATH": str(folder)},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert "RuntimeError: cannot open the licence file" in proc.stderr


def test_repeated_and_out_of_range_spec_keys_are_refused_at_parse_time():
    from dispatchbench.bench.plugins import make_solver, parse_spec
    from dispatchbench.model.errors import SolverNotFound

    with pytest.raises(SolverNotFound, match="given twice"):
        parse_spec("pso[w=1,w=2]")
    for spec in (
        "scip[time_limit=-1]",
        "scip[rel_gap=1]",
        "pso[w=nan]",
        "pso[c1=inf]",
        "pso[particles=0]",
        "nlopt[xtol_rel=-1]",
        "nlopt[max_patterns=-1]",
        "nlopt[commitment=foo]",
        "pso[decode=x]",
    ):
        with pytest.raises(SolverNotFound, match="solver '(scip|pso|nlopt)': parameter"):
            make_solver(spec)
    assert make_solver("pso[w=0.5,particles=10]").params["particles"] == 10
