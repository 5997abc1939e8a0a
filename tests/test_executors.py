"""Where cells run: ``--jobs N`` on this machine and ``--executor dask`` on a Dask LocalCluster
give the same rows as a plain serial run, and a Dask run killed mid-way resumes with nothing
lost or duplicated. Real solvers (SCIP, PSO) throughout; no timing is asserted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dispatchbench.bench.executors import DaskExecutor, Event, PoolExecutor, SerialExecutor, make_executor
from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.results_store import ResultsStore
from dispatchbench.model.errors import InputError

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
DAY = ROOT / "problems" / "paper-4region-day.csv"
TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"
SPECS = "scip,pso[iterations=20,particles=20]"
KEY = ["solver", "seed", "states_sha256", "state"]
SAME = ["status", "cost", "dispatch", "max_violation"]


@pytest.fixture
def day4(tmp_path) -> Path:
    """The first four intervals of the real-data day: a quick multi-state file."""
    path = tmp_path / "day4.csv"
    path.write_text("".join(DAY.read_text().splitlines(keepends=True)[:5]))
    return path


def rows(out: Path) -> pd.DataFrame:
    frame = pd.read_parquet(out / "results.parquet")
    return frame.sort_values(KEY).reset_index(drop=True)


def assert_same_rows(left: Path, right: Path) -> None:
    a, b = rows(left), rows(right)
    assert len(a) == len(b) and a[KEY].equals(b[KEY])
    pd.testing.assert_frame_equal(a[SAME], b[SAME])


def test_jobs_2_gives_the_same_rows_as_jobs_1(tmp_path, day4):
    for jobs in (1, 2):
        run_benchmark(
            PROBLEM, [TABLE_IV, day4], SPECS, [0, 1], tmp_path / f"j{jobs}", jobs=jobs, timeout=120, progress=False
        )
    assert_same_rows(tmp_path / "j1", tmp_path / "j2")
    frame = rows(tmp_path / "j2")
    assert len(frame) == 3 * 5 and set(frame["status"]) <= {"optimal", "feasible"}
    assert len(pd.read_parquet(tmp_path / "j2" / "parts")) == len(frame)  # one part per cell, covering every row
    assert len(list((tmp_path / "j2" / "parts").glob("*.parquet"))) == 6


def test_dask_local_cluster_gives_the_same_costs_as_a_local_run(tmp_path, day4):
    run_benchmark(PROBLEM, [TABLE_IV, day4], SPECS, [0, 1], tmp_path / "local", timeout=120, progress=False)
    run_benchmark(
        PROBLEM,
        [TABLE_IV, day4],
        SPECS,
        [0, 1],
        tmp_path / "dask",
        timeout=120,
        progress=False,
        executor="dask",
        jobs=2,
    )
    assert_same_rows(tmp_path / "local", tmp_path / "dask")
    scip = rows(tmp_path / "dask").query("solver == 'scip' and state == 'tableIV'")
    assert scip["cost"].iloc[0] == pytest.approx(4903.9687, rel=1e-6)


def _wait_until(check, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 300
    while not check():
        assert proc.poll() is None, f"run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_a_killed_dask_run_resumes_with_nothing_lost_or_duplicated(tmp_path, day4):
    """SIGKILL the driver while SCIP's cell is written and the blocker's cell is provably running
    on a worker; --resume then computes exactly the blocker's rows."""
    out, release = tmp_path / "out", tmp_path / "release"
    env = dict(os.environ, DISPATCHBENCH_SOLVER_PATH=str(TEST_PLUGINS))
    args = [
        sys.executable,
        "-m",
        "dispatchbench",
        "run",
        "-p",
        str(PROBLEM),
        "-s",
        str(day4),
        "--out",
        str(out),
        "--solvers",
        f"scip,blocker[release={release}]",
        "--executor",
        "dask",
        "--jobs",
        "2",
        "--no-progress",
    ]
    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _wait_until(
            lambda: Path(f"{release}.waiting").exists() and len(ResultsStore(out).read_rows()) == 4,
            driver,
            "SCIP's rows and the blocked cell",
        )
        driver.send_signal(signal.SIGKILL)
        driver.wait(60)
    kept = ResultsStore(out).read_rows()
    assert len(kept) == 4 and {r["solver"] for r in kept} == {"scip"}

    release.write_text("go")
    with open(tmp_path / "second.log", "w") as log:
        resumed = subprocess.run(
            [*args, "--resume"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    assert resumed.returncode == 0, (tmp_path / "second.log").read_text()
    all_rows = ResultsStore(out).read_rows()
    keys = [(r["solver"], r["seed"], r["state"]) for r in all_rows]
    assert len(keys) == len(set(keys)) == 8  # nothing lost, nothing duplicated
    assert {r["solver"] for r in all_rows if r["run_id"] != kept[0]["run_id"]} == {f"blocker[release={release}]"}
    assert {r["status"] for r in all_rows} == {"optimal"}
    assert len(pd.read_parquet(out / "parts")) == 8


def test_executor_choice_and_errors():
    assert isinstance(make_executor("local", 1), SerialExecutor)
    assert isinstance(make_executor("local", 3), PoolExecutor)
    with pytest.raises(InputError, match="--executor"):
        make_executor("ray", 2)
    with pytest.raises(InputError, match="nothing listens there"):
        DaskExecutor(1, "tcp://127.0.0.1:9", connect_timeout=2)  # nothing listens on the discard port
    assert Event(0, None).outcome is None


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_call_all_runs_functions_and_reports_their_errors(kind):
    """What ``reproduce`` trains its models through: results by number, an exception as a value."""
    ticks = []
    with make_executor(kind, 2) as ex:
        got = {
            k: (result, error)
            for k, result, error in ex.call_all(pow, [(2, 3), ("a", 2), (3, 2)], lambda: ticks.append(1))
        }
    assert got[0] == (8, None) and got[2] == (9, None)
    assert got[1][0] is None and isinstance(got[1][1], TypeError)
