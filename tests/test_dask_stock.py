"""A stock Dask cluster with no shared file system (issue 20, item 7).

``dask scheduler`` and ``dask worker ADDR --nworkers 1 --nthreads 1`` are started exactly as the
docs say — no configuration, no environment variable (the worker is daemonic, as Dask makes
it) — each in a working folder of its own, with the worker's inputs cache in its own folder.
The shoot-out's problem and states exist only in the driver's memory; a folder a spec names
exists only beside the driver. Costs must equal a local run's, and every row must name the
worker's host and CPU. (``python -m dask`` is the ``dask`` command of this environment.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import dispatchbench as db
from dispatchbench.bench.job_payload import Blob
from dispatchbench.bench.plugins import SOLVER_PATH_ENV
from dispatchbench.model.errors import InputError

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
KEY = ["solver", "seed", "state"]
SAME = ["status", "cost", "dispatch", "max_violation"]


def _stock_env(**extra: str) -> dict[str, str]:
    """The environment minus any Dask setting (a stock worker) and minus the solver path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_") and k != SOLVER_PATH_ENV}
    return {**env, **extra}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and one stock worker, each started in an empty folder of its own."""
    sched_dir, worker_dir = tmp_path_factory.mktemp("scheduler"), tmp_path_factory.mktemp("worker")
    log = open(sched_dir / "scheduler.log", "w+")  # noqa: SIM115 (closed at teardown)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
        cwd=sched_dir,
        env=_stock_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address, deadline = None, time.monotonic() + 120
    while address is None:
        assert scheduler.poll() is None and time.monotonic() < deadline, (sched_dir / "scheduler.log").read_text()
        found = re.search(r"Scheduler at:\s+(tcp://\S+)", (sched_dir / "scheduler.log").read_text())
        address = found.group(1) if found else time.sleep(0.2)
    cache = worker_dir / "inputs-cache"
    worker = subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        cwd=worker_dir,
        env=_stock_env(DISPATCHBENCH_INPUT_CACHE=str(cache)),
        stdout=open(worker_dir / "worker.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(1, timeout=180)
        daemonic = client.run(lambda: __import__("multiprocessing").current_process().daemon)
    try:
        yield {"address": address, "cache": cache, "daemonic": list(daemonic.values())}
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def rows(out: Path) -> pd.DataFrame:
    return db.load_results(out).sort_values(KEY).reset_index(drop=True)


def test_a_stock_worker_runs_a_shoot_out_from_objects_in_memory(cluster, tmp_path, monkeypatch):
    assert cluster["daemonic"] == [True]  # Dask's default, untouched
    monkeypatch.setenv("DISPATCHBENCH_INPUT_CACHE", str(tmp_path / "driver-cache"))
    problem = db.load_problem(ROOT / "problems" / "paper-4region.toml")
    day = db.load_states(ROOT / "problems" / "paper-4region-day.csv", problem)
    table_iv = db.load_states(ROOT / "problems" / "paper-4region-tableIV.csv", problem)[0]
    odd = db.State("odd", {r: d * 0.97 + 1 / 3 for r, d in table_iv.demand.items()}, dict(table_iv.v2g_available))
    states = [table_iv, day[10], day[60], odd]  # built here, never written by us
    specs = "scip,pso[particles=10,iterations=10]"
    local = db.run(problem, states, specs, seeds=[0, 1], out=tmp_path / "local", progress=False, timeout=120)
    remote = db.run(
        problem,
        states,
        specs,
        seeds=[0, 1],
        out=tmp_path / "dask",
        progress=False,
        timeout=120,
        executor="dask",
        scheduler=cluster["address"],
    )
    a, b = rows(local), rows(remote)
    assert len(a) == len(b) == 4 * 3 and a[KEY].equals(b[KEY])
    pd.testing.assert_frame_equal(a[SAME], b[SAME])
    assert set(b["status"]) <= {"optimal", "feasible"}
    table_iv_cost = b.set_index(["solver", "state"]).loc[("scip", "tableIV"), "cost"]
    assert f"{table_iv_cost:.4f}" == "4903.9687"
    assert b["worker_host"].notna().all() and b["worker_cpu"].notna().all()
    # the worker read the inputs from its own cache, by content: the driver sent no path
    problem_sha = b["problem_sha256"].iloc[0]
    copies = [p for p in cluster["cache"].glob("*/*") if p.is_file() and Blob.of_file(p).sha256 == problem_sha]
    assert copies and problem_sha == Blob.of_file(b["problem_file"].iloc[0]).sha256


def test_a_folder_named_by_a_spec_travels_to_the_worker(cluster, tmp_path, monkeypatch):
    """``from_folder[data=answers]``: a relative path beside the driver only; the row keeps it."""
    driver = tmp_path / "driver"
    (driver / "answers").mkdir(parents=True)
    scip = db.solve("paper-4region.toml", "paper-4region-tableIV.csv", solver="scip")
    record = scip.iloc[0]
    groups = list(record["dispatch"])
    (driver / "answers" / "answers.json").write_text(
        json.dumps(
            {
                "tableIV": {
                    "on": [record["dispatch"][g]["on"] for g in groups],
                    "power": [record["dispatch"][g]["power"] for g in groups],
                    "imports": list(record["imports"].values()),
                }
            }
        )
    )
    monkeypatch.chdir(driver)
    monkeypatch.setenv(SOLVER_PATH_ENV, str(PLUGINS / "folder_data"))  # the driver's; the worker has none
    out = db.run(
        "paper-4region.toml",
        "paper-4region-tableIV.csv",
        "from_folder[data=answers]",
        out=driver / "out",
        progress=False,
        executor="dask",
        scheduler=cluster["address"],
    )
    row = db.load_results(out).iloc[0]
    assert row["solver"] == "from_folder[data=answers]" and json.loads(row["params"])["data"] == "answers"
    assert row["status"] == "feasible" and row["cost"] == pytest.approx(record["cost"], rel=1e-12)
    assert json.loads(row["info"])["folder"] == "answers"  # the worker's copy keeps the folder's name
    copies = list(cluster["cache"].glob("*/answers/answers.json"))
    assert copies and copies[0].read_text() == (driver / "answers" / "answers.json").read_text()


BAD_ADDRESSES = [
    ("tcp://127.0.0.1", "is not SCHEME://HOST:PORT"),
    ("scheduler.example", "is not SCHEME://HOST:PORT"),
    ("tcp://127.0.0.1:70000", "port in 1..65535"),
    ("http://127.0.0.1:8786", "scheme 'http' is not one Dask speaks"),
    ("inproc://192.0.2.2/1/2", "in-process address"),
    ("ucx://127.0.0.1:8786", "needs UCX"),
    ("tcp://127.0.0.1:9", "nothing listens there"),
    ("tcp://no-such-host.invalid:8786", "does not resolve"),
]


def run_args(out: Path, address: str) -> list[str]:
    return [
        "run", "-p", "paper-4region.toml", "-s", "paper-4region-tableIV.csv", "--solvers", "scip",
        "--out", str(out), "--executor", "dask", "--scheduler", address,
    ]  # fmt: skip


@pytest.mark.parametrize("address, says", BAD_ADDRESSES)
def test_a_bad_scheduler_address_is_one_line_within_seconds(tmp_path, capsys, monkeypatch, address, says):
    from dispatchbench.cli import main

    monkeypatch.setattr(sys, "argv", ["dispatchbench", *run_args(tmp_path / "out", address)])
    start = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        main()
    assert time.perf_counter() - start < 5  # the check itself: no connection wait for any of these
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("error: --scheduler: ") and says in line, line
    assert not (tmp_path / "out").exists()  # before any work


def test_an_unreachable_scheduler_through_the_console_script(tmp_path):
    proc = subprocess.run(
        [Path(sys.executable).with_name("dispatchbench"), *run_args(tmp_path / "out", "tcp://127.0.0.1:9")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: --scheduler: 'tcp://127.0.0.1:9': nothing listens there (connection refused) — fix: give the "
        "address `dask scheduler` printed, e.g. tcp://10.0.0.5:8786"
    ]


def test_something_listening_that_is_not_a_scheduler_fails_within_the_connect_limit(tmp_path):
    import socket

    from dispatchbench.bench.executors import DASK_CONNECT_TIMEOUT_S, check_scheduler

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts connections, never answers
    try:
        start = time.perf_counter()
        with pytest.raises(InputError, match="did not answer as a Dask scheduler"):
            check_scheduler(f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        assert time.perf_counter() - start < DASK_CONNECT_TIMEOUT_S + 2
    finally:
        silent.close()


def test_a_worker_address_is_not_a_scheduler(cluster):
    from dispatchbench.bench.executors import check_scheduler

    with distributed.Client(cluster["address"], timeout=30) as client:
        [worker] = client.scheduler_info()["workers"]
    with pytest.raises(InputError, match="is a Dask Worker, not the scheduler"):
        check_scheduler(worker)
