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
from dispatchbench.bench.harness import parse_seeds, plan_solvers, run_benchmark
from dispatchbench.bench.plugins import discover, make_solver
from dispatchbench.bench.results_store import ROW_COLUMNS, ResultsStore
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError, SolverNotFound
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
    assert parse_seeds("4294967295") == [2**32 - 1]
    for bad in ("a", "4-2", "-1", "1,,2", "4294967296", "99999999999999999999", "0-20000"):
        with pytest.raises(InputError, match="--seeds"):
            parse_seeds(bad)


def test_spec_labels_keep_what_the_user_wrote():
    plans = plan_solvers(
        "scip, scip[time_limit=30, rel_gap=1e-6], scip[rel_gap=1e-6,time_limit=30], scip[persistent=true]"
    )
    assert [p.spec for p in plans] == ["scip", "scip[rel_gap=1e-06,time_limit=30.0]", "scip[persistent=True]"]
    assert plans[1].params == {**make_solver("scip").params, "rel_gap": 1e-6, "time_limit": 30.0}  # defaults filled


def test_scip_on_table_iv_state_row_content(tmp_path):
    summary = run_benchmark(PROBLEM, [TABLE_IV], "scip", [0, 1, 2], tmp_path / "out", progress=False)
    assert summary.statuses == {"optimal": 1}  # deterministic: one row, seed 0, whatever the seeds
    frame = results(tmp_path / "out")
    assert list(frame.columns) == list(ROW_COLUMNS)
    r = frame.iloc[0]
    assert (r["state"], r["solver"], r["solver_name"], r["seed"], r["status"]) == (
        "tableIV",
        "scip",
        "scip",
        0,
        "optimal",
    )
    assert r["cost"] == pytest.approx(OPTIMUM, rel=1e-6)
    assert r["problem"] == "paper-4region" and len(r["problem_sha256"]) == 64 and len(r["states_sha256"]) == 64
    assert json.loads(r["params"])["persistent"] is True
    info = json.loads(r["info"])
    assert info["gap"] is not None and info["evaluated_cost"] == pytest.approx(r["cost"])
    for col in (
        "python_version",
        "dispatchbench_version",
        "pyomo_version",
        "pyscipopt_version",
        "numpy_version",
        "cpu_model",
        "cpu_cores",
        "ram_gb",
        "os",
        "hostname",
        "timestamp",
        "run_id",
    ):
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


def _cli(args: list[str], plugins: Path = TEST_PLUGINS, **kwargs) -> subprocess.Popen:
    """The command as a user starts it from a terminal. Ctrl-C's default disposition is restored
    in the child: a process inherits an *ignored* SIGINT (a test worker or a background job may
    run with it ignored), and Python then leaves it ignored, so the interrupt test would see the
    run go on to its per-state limit and exit 0 instead of stopping."""
    env = dict(os.environ, DISPATCHBENCH_SOLVER_PATH=str(plugins))
    return subprocess.Popen(
        [sys.executable, "-m", "dispatchbench", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def _rows_on_disk(out: Path) -> int:
    path = out / "rows.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Wait until the blocker plugin has written its marker: the run is provably mid-way."""
    deadline = time.monotonic() + 180
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "run never reached the blocking plugin"
        time.sleep(0.05)


def _table_without_times(out: Path) -> pd.DataFrame:
    tables = make_tables([out], "scip", out_dir=out / "tables")
    return tables.tables[0].table.drop(
        columns=["time_per_state_s", "online_s", "online_ratio_to_scip", "offline_batched_s"]
    )


def _blocked_run(multi: Path, out: Path, release: Path, *extra: str) -> subprocess.Popen:
    """SCIP over the six states, then the blocker, which stops at its first state until ``release``
    exists. Serial order: once the marker exists, exactly SCIP's six rows are on disk."""
    return _cli(
        [
            "run",
            "--problem",
            str(PROBLEM),
            "--states",
            str(multi),
            "--out",
            str(out),
            "--no-progress",
            "--solvers",
            f"scip,blocker[release={release}]",
            *extra,
        ]
    )


def test_ctrl_c_keeps_finished_rows_and_the_table(tmp_path, multi):
    out, release = tmp_path / "out", tmp_path / "release"
    proc = _blocked_run(multi, out, release)
    _wait_for(Path(f"{release}.waiting"), proc)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=180)[1]
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert _rows_on_disk(out) == 6  # SCIP's six; the blocked state was never answered
    assert len(pd.read_parquet(out / "results.parquet")) == 6  # written on the way out
    assert len(pd.read_parquet(out / "parts")) == 6


def test_killed_run_resumes_to_the_same_table(tmp_path, multi, test_plugins):
    interrupted, release = tmp_path / "interrupted", tmp_path / "release"
    proc = _blocked_run(multi, interrupted, release)
    _wait_for(Path(f"{release}.waiting"), proc)
    proc.kill()  # SIGKILL: no clean-up at all
    proc.wait(60)  # reaped, so the orphaned solver process sees its parent gone and exits
    proc.communicate(timeout=60)
    kept = ResultsStore(interrupted).read_rows()
    assert len(kept) == 6 and {r["solver"] for r in kept} == {"scip"}

    release.write_text("go")
    resumed = _blocked_run(multi, interrupted, release, "--resume")
    assert resumed.wait(180) == 0, resumed.communicate()
    rows = ResultsStore(interrupted).read_rows()
    new = [r for r in rows if r["run_id"] != kept[0]["run_id"]]
    assert len(new) == 6 and {r["solver"] for r in new} == {f"blocker[release={release}]"}
    assert len({(r["solver"], r["seed"], r["state"]) for r in rows}) == len(rows) == 12
    assert len(pd.read_parquet(interrupted / "parts")) == 12  # the parts cover the log exactly

    straight = tmp_path / "straight"
    run_benchmark(PROBLEM, [multi], f"scip,blocker[release={release}]", [0], straight, progress=False)
    left = _table_without_times(interrupted)
    right = _table_without_times(straight)
    pd.testing.assert_frame_equal(left, right)


def test_a_second_writer_is_refused_while_a_run_holds_the_folder(tmp_path, multi):
    out, release = tmp_path / "out", tmp_path / "release"
    first = _blocked_run(multi, out, release)
    _wait_for(Path(f"{release}.waiting"), first)  # the first run holds the lock and is mid-way
    second = _blocked_run(multi, out, release, "--resume")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert err.strip().count("\n") == 0 and "another run" in err and str(first.pid) in err, err
    release.write_text("go")
    assert first.wait(180) == 0, first.communicate()
    rows = ResultsStore(out).read_rows()
    assert len(rows) == 12 and len({(r["solver"], r["state"]) for r in rows}) == 12  # no duplicates


def test_plugins_cannot_change_their_own_score(tmp_path, monkeypatch):
    """A plugin that zeroes the demand it was handed, and one that patches the evaluator and the
    scoring module, are reported with the true cost."""
    monkeypatch.setenv("DISPATCHBENCH_SOLVER_PATH", str(TEST_PLUGINS / "hostile"))
    run_benchmark(PROBLEM, [TABLE_IV], "zero_demand,patch_evaluator", [0], tmp_path / "out", progress=False)
    frame = results(tmp_path / "out").set_index("solver")
    assert frame.loc["zero_demand", "status"] == "infeasible"
    assert "regional balance" in frame.loc["zero_demand", "reason"]
    assert pd.isna(frame.loc["zero_demand", "cost"])
    assert frame.loc["patch_evaluator", "status"] == "optimal"
    assert frame.loc["patch_evaluator", "cost"] == pytest.approx(OPTIMUM, rel=1e-6)
    assert json.loads(frame.loc["patch_evaluator", "info"])["evaluated_cost"] == pytest.approx(OPTIMUM, rel=1e-6)
    tables = make_tables([tmp_path / "out"], "patch_evaluator")
    assert not any("disagree" in n for n in tables.notes)
    assert "4,903.97" in tables.text or "4903.97" in tables.text


def test_solve_scores_a_copy_the_plugin_cannot_touch(tmp_path):
    proc = _cli(
        ["solve", "-p", str(PROBLEM), "-s", str(TABLE_IV), "--solver", "zero_demand", "--json"],
        plugins=TEST_PLUGINS / "hostile",
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    record = json.loads(out.splitlines()[0])
    assert record["status"] == "infeasible" and record["cost"] is None and "regional balance" in record["reason"]


def test_a_plugin_whose_import_hangs_costs_only_its_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPATCHBENCH_SOLVER_PATH", str(TEST_PLUGINS / "hanging"))
    # the limit covers SCIP's own import (pyomo: 1-4 s in a fresh interpreter on a busy machine)
    summary = run_benchmark(
        PROBLEM, [TABLE_IV], "import_hang,scip", [0], tmp_path / "out", startup_timeout=10, progress=False
    )
    assert not summary.interrupted
    frame = results(tmp_path / "out").set_index("solver")
    assert frame.loc["import_hang", "status"] == "error"
    assert "did not finish within 10 s" in frame.loc["import_hang", "reason"]
    assert frame.loc["scip", "status"] == "optimal"
    assert "dispatchbench_plugin_import_hang" not in sys.modules  # never imported here


@pytest.mark.parametrize(
    "args, says",
    [
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),
        (["--timeout", "1e300"], "--timeout"),
        (["--timeout", "-1"], "--timeout"),
        (["--seeds", "99999999999999999999"], "--seeds"),
        (["--seeds", "0-99999999"], "--seeds"),
        (["--jobs", "0"], "--jobs"),
        (["--executor", "ray"], "--executor"),
        (["--startup-timeout", "nan"], "--startup-timeout"),
    ],
)
def test_bad_run_options_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, says):
    from dispatchbench.cli import main

    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "dispatchbench",
            "run",
            "-p",
            str(PROBLEM),
            "-s",
            str(TABLE_IV),
            "--solvers",
            "scip",
            "--out",
            str(out),
            *args,
        ],
    )
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error:") and err.count("\n") == 1 and says in err
    assert not out.exists()  # before any work


def test_out_naming_an_existing_file_is_refused(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    for out in (existing, existing / "sub"):
        with pytest.raises(InputError, match="is a file|existing file"):
            run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, progress=False)
    assert existing.read_text() == "keep me"


def test_a_huge_seed_is_never_stored(tmp_path):
    with pytest.raises(InputError, match="seed"):
        run_benchmark(PROBLEM, [TABLE_IV], "scip", [2**32], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="seed"):
        ResultsStore(tmp_path / "x").append({"seed": 10**20, "state": "s"})
    assert not (tmp_path / "x" / "rows.jsonl").exists()


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
