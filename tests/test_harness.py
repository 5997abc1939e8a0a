"""The run harness: real solvers in child processes, hard timeouts, crashes, resume, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dispatchbench import evaluate, load_problem, load_states
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError, SolverNotFound
from dispatchbench.bench.harness import parse_seeds, plan_solvers, run_benchmark
from dispatchbench.bench.plugins import discover
from dispatchbench.bench.results_store import ROW_COLUMNS, ResultsStore
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.report.tables import make_tables

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"
OPTIMUM = 4903.9687

# six feasible states around the Table IV state (checked by the pre-check in every run)
MULTI = """state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6
s0,100,120,50,530,70,150
s1,90,110,45,480,60,120
s2,80,100,40,420,50,100
s3,110,130,60,560,80,150
s4,70,90,35,380,40,90
s5,95,115,55,500,65,140
"""


@pytest.fixture
def multi(tmp_path) -> Path:
    path = tmp_path / "multi.csv"
    path.write_text(MULTI)
    return path


@pytest.fixture
def test_plugins(monkeypatch):
    monkeypatch.setenv("DISPATCHBENCH_SOLVER_PATH", str(TEST_PLUGINS))


def results(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results.parquet")


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds("3, 1-2, 3") == [3, 1, 2]
    for bad in ("a", "4-2", "-1", "1,,2"):
        with pytest.raises(InputError, match="--seeds"):
            parse_seeds(bad)


def test_spec_labels_keep_what_the_user_wrote():
    plans = plan_solvers("scip, scip[time_limit=30, rel_gap=1e-6], scip[rel_gap=1e-6,time_limit=30], scip[persistent=true]")
    assert [p.spec for p in plans] == ["scip", "scip[rel_gap=1e-06,time_limit=30.0]", "scip[persistent=True]"]
    assert plans[1].params == {"rel_gap": 1e-6, "time_limit": 30.0, "persistent": True}


def test_scip_on_table_iv_state_row_content(tmp_path):
    summary = run_benchmark(PROBLEM, [TABLE_IV], "scip", [0, 1, 2], tmp_path / "out", progress=False)
    assert summary.statuses == {"optimal": 1}  # deterministic: one row, seed 0, whatever the seeds
    frame = results(tmp_path / "out")
    assert list(frame.columns) == list(ROW_COLUMNS)
    r = frame.iloc[0]
    assert (r["state"], r["solver"], r["solver_name"], r["seed"], r["status"]) == ("tableIV", "scip", "scip", 0, "optimal")
    assert r["cost"] == pytest.approx(OPTIMUM, rel=1e-6)
    assert r["problem"] == "paper-4region" and len(r["problem_sha256"]) == 64 and len(r["states_sha256"]) == 64
    assert json.loads(r["params"])["persistent"] is True
    info = json.loads(r["info"])
    assert info["gap"] is not None and info["evaluated_cost"] == pytest.approx(r["cost"])
    for col in ("python_version", "dispatchbench_version", "pyomo_version", "pyscipopt_version", "numpy_version",
                "cpu_model", "cpu_cores", "ram_gb", "os", "hostname", "timestamp", "run_id"):
        assert pd.notna(r[col]), col
    assert set(METADATA_COLUMNS) <= set(frame.columns)
    # the stored dispatch is the one the evaluator scored: re-evaluating it gives the stored cost
    problem = load_problem(PROBLEM)
    state = load_states(TABLE_IV, problem)[0]
    dispatch = Dispatch.from_json(problem, json.loads(r["dispatch"]))
    assert evaluate(problem, state, dispatch).cost == pytest.approx(r["cost"], rel=1e-12)
    assert [g for g, on in zip(problem.group_names, dispatch.on) if not on] == ["FDC1", "FDC2", "ASC7"]


@pytest.mark.parametrize("spec", ["nlopt", "pso"])
def test_other_classical_backends_if_present(tmp_path, spec):
    if spec not in discover():
        pytest.skip(f"no {spec} plugin in solvers/ yet")
    run_benchmark(PROBLEM, [TABLE_IV], f"scip,{spec}", [0, 1], tmp_path / "out", timeout=120, progress=False)
    frame = results(tmp_path / "out")
    rows = frame[frame["solver_name"] == spec]
    assert len(rows) == (2 if discover()[spec].capabilities.stochastic else 1)
    problem = load_problem(PROBLEM)
    state = load_states(TABLE_IV, problem)[0]
    for _, r in rows.iterrows():
        assert r["status"] in {"optimal", "feasible", "infeasible"}, r["reason"]
        if r["status"] in {"optimal", "feasible"}:  # costs come from the evaluator, and none beats SCIP
            ev = evaluate(problem, state, Dispatch.from_json(problem, json.loads(r["dispatch"])))
            assert r["cost"] == pytest.approx(ev.cost, rel=1e-12)
            assert r["cost"] >= OPTIMUM * (1 - 1e-6)


def test_hang_raise_and_crash_are_recorded_and_the_run_goes_on(tmp_path, test_plugins):
    two = tmp_path / "two.csv"
    two.write_text("\n".join(MULTI.splitlines()[:3]) + "\n")
    out = tmp_path / "out"
    summary = run_benchmark(PROBLEM, [two], "sleeper,raiser,crasher,scip", [0], out, timeout=1.5, progress=False)
    assert not summary.interrupted
    frame = results(out).set_index(["solver", "state"])
    assert len(frame) == 8
    assert frame.loc[("sleeper", "s0"), "status"] == "timeout"
    assert "hard limit of 1.5 s" in frame.loc[("sleeper", "s0"), "reason"]
    assert frame.loc[("sleeper", "s0"), "time_s"] >= 1.5
    assert frame.loc[("sleeper", "s1"), "status"] == "timeout"
    assert frame.loc[("sleeper", "s1"), "reason"].startswith("not attempted")
    for state in ("s0", "s1"):  # an exception costs only the state it happened in
        assert frame.loc[("raiser", state), "status"] == "error"
        assert "RuntimeError: deliberate failure" in frame.loc[("raiser", state), "reason"]
        assert frame.loc[("scip", state), "status"] == "optimal"
    assert frame.loc[("crasher", "s0"), "status"] == "error"
    assert "SIGSEGV" in frame.loc[("crasher", "s0"), "reason"]
    assert frame["cost"].notna().sum() == 2  # only SCIP's rows carry a cost


def test_refuses_existing_results_unless_resume_or_force(tmp_path):
    out = tmp_path / "out"
    run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, progress=False)
    with pytest.raises(InputError, match="--resume"):
        run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, progress=False)
    again = run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, resume=True, progress=False)
    assert (again.rows_written, again.rows_skipped) == (0, 1)
    forced = run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, force=True, progress=False)
    assert forced.rows_written == 1 and len(ResultsStore(out).read_rows()) == 1


def test_bad_solver_spec_fails_before_any_work(tmp_path):
    with pytest.raises(SolverNotFound, match="nosuch"):
        run_benchmark(PROBLEM, [TABLE_IV], "scip,nosuch", [0], tmp_path / "out", progress=False)
    with pytest.raises(SolverNotFound, match="no parameter"):
        run_benchmark(PROBLEM, [TABLE_IV], "scip[bogus=1]", [0], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_torn_last_line_is_dropped_on_resume(tmp_path, multi):
    out = tmp_path / "out"
    run_benchmark(PROBLEM, [multi], "scip", [0], out, progress=False)
    store = ResultsStore(out)
    lines = store.rows_path.read_text().splitlines(keepends=True)
    store.rows_path.write_text("".join(lines[:4]) + lines[4][:50])  # SIGKILL in the middle of a write
    summary = run_benchmark(PROBLEM, [multi], "scip", [0], out, resume=True, progress=False)
    assert summary.rows_written == 2 and len(store.read_rows()) == 6


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, DISPATCHBENCH_SOLVER_PATH=str(TEST_PLUGINS))
    return subprocess.Popen([sys.executable, "-m", "dispatchbench", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _rows_on_disk(out: Path) -> int:
    path = out / "rows.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def _interrupt_after(proc: subprocess.Popen, out: Path, rows: int, sig: int) -> str:
    """Send ``sig`` once ``rows`` rows are on disk; return what the run printed on stderr."""
    deadline = time.monotonic() + 120
    while _rows_on_disk(out) < rows:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.05)
    proc.send_signal(sig)
    return proc.communicate(timeout=60)[1]


def _table_without_times(out: Path) -> pd.DataFrame:
    tables = make_tables([out], "scip", out_dir=out / "tables")
    return tables.tables[0].table.drop(columns=["time_per_state_s"])


RUN_ARGS = ["run", "--problem", str(PROBLEM), "--solvers", "scip,slow_scip[delay=0.4]", "--no-progress"]


def test_ctrl_c_keeps_finished_rows_and_the_table(tmp_path, multi):
    out = tmp_path / "out"
    proc = _cli([*RUN_ARGS, "--states", str(multi), "--out", str(out)])
    stderr = _interrupt_after(proc, out, 7, signal.SIGINT)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    kept = _rows_on_disk(out)
    assert 7 <= kept < 12
    assert len(pd.read_parquet(out / "results.parquet")) == kept  # rebuilt on the way out


def test_killed_run_resumes_to_the_same_table(tmp_path, multi, test_plugins):
    interrupted = tmp_path / "interrupted"
    proc = _cli([*RUN_ARGS, "--states", str(multi), "--out", str(interrupted)])
    _interrupt_after(proc, interrupted, 8, signal.SIGKILL)  # SCIP's 6 states and 2 of slow_scip's
    kept = ResultsStore(interrupted).read_rows()
    assert 8 <= len(kept) < 12

    resumed = _cli([*RUN_ARGS, "--states", str(multi), "--out", str(interrupted), "--resume"])
    assert resumed.wait(120) == 0, resumed.communicate()
    rows = ResultsStore(interrupted).read_rows()
    new = [r for r in rows if r["run_id"] != kept[0]["run_id"]]
    assert len(new) == 12 - len(kept)  # only the missing (solver, seed, state) were computed
    assert {r["solver"] for r in new} == {"slow_scip[delay=0.4]"}
    assert len({(r["solver"], r["seed"], r["state"]) for r in rows}) == 12

    straight = tmp_path / "straight"
    run_benchmark(PROBLEM, [multi], "scip,slow_scip[delay=0.4]", [0], straight, progress=False)
    pd.testing.assert_frame_equal(_table_without_times(interrupted), _table_without_times(straight))


def test_same_command_same_seeds_identical_numbers(tmp_path, multi):
    specs = "scip"
    if "pso" in discover():  # a small swarm: same seeds must give the same particles, whatever the size
        small = {k: v for k, v in {"particles": 10, "iterations": 20}.items() if k in discover()["pso"].parameters}
        specs += ",pso[" + ",".join(f"{k}={v}" for k, v in small.items()) + "]"
    runs = []
    for name in ("a", "b"):
        run_benchmark(PROBLEM, [multi], specs, [0, 1], tmp_path / name, timeout=120, progress=False)
        frame = results(tmp_path / name).sort_values(["solver", "seed", "state"]).reset_index(drop=True)
        runs.append(frame)
    pd.testing.assert_series_equal(runs[0]["cost"], runs[1]["cost"])
    pd.testing.assert_series_equal(runs[0]["status"], runs[1]["status"])
    pd.testing.assert_series_equal(runs[0]["dispatch"], runs[1]["dispatch"])
