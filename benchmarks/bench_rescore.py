#!/usr/bin/env python3
"""How long the one re-scoring policy takes on a large results folder (``table``, ``report`` and
``load_results`` all pay it before showing anything).

The folder is built from one real run: SCIP on the paper's 96-interval day through the harness.
Its 96 rows are then repeated as many planned cells (spec ``scip[copy=k]``) as it takes to reach
``--rows``, with the run's plan extended to hold them, so every row is checked, hashed and
re-scored exactly as a run's rows would be. Timed: reading and checking the rows
(``read_results``: parse, columns and types, plan, duplicates), and the whole
``rescore_folders`` (inputs reloaded and hashed, every dispatch scored by ``evaluate_many``).
Also timed for comparison: what ``load_results`` did before (parse the log and make the frame,
nothing checked), and the evaluator called once per row, as the report did on top of that.

Usage::

    python benchmarks/bench_rescore.py [--rows 50000] [--json benchmarks/results/rescore.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.rescore import dispatch_arrays, load_results, rescore_folders
from dispatchbench.bench.results_store import MANIFEST_FILE, ROWS_FILE, read_results, rows_to_frame
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
DAY = ROOT / "problems" / "paper-4region-day.csv"


def build(folder: Path, rows_wanted: int) -> int:
    run_benchmark(PROBLEM, [DAY], "scip", [0], folder, timeout=120, progress=False)
    base = [json.loads(line) for line in (folder / ROWS_FILE).read_text().splitlines()]
    plan = json.loads((folder / MANIFEST_FILE).read_text().splitlines()[0])
    copies = max(1, rows_wanted // len(base))
    cell = plan["cells"][0]
    plan["cells"] += [{**cell, "solver": f"scip[copy={k}]"} for k in range(1, copies)]
    (folder / MANIFEST_FILE).write_text(json.dumps(plan, sort_keys=True) + "\n")
    with (folder / ROWS_FILE).open("a") as fh:
        for k in range(1, copies):
            fh.writelines(json.dumps({**r, "solver": f"scip[copy={k}]"}) + "\n" for r in base)
    for stale in ("results.parquet",):
        (folder / stale).unlink(missing_ok=True)
    return copies * len(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "rescore.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        rows = build(folder, args.rows)

        load_before = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        stored = read_results(folder)
        read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        scored = rescore_folders([folder])
        total_s, total_cpu = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        load_results(folder)
        api_s, api_cpu = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()  # what load_results did before: parse and frame only
        raw = (folder / ROWS_FILE).read_bytes().split(b"\n")[:-1]
        rows_to_frame([json.loads(line) for line in raw])
        unchecked_s, unchecked_cpu = time.perf_counter() - t0, time.process_time() - c0
        assert len(scored.frame) == rows and (scored.frame["cost_check"] == "ok").all()

        size = (folder / ROWS_FILE).stat().st_size
        problem = load_problem(PROBLEM)
        states = {s.label: s for s in load_states(DAY, problem)}
        sample = stored.rows[:5000]
        t0 = time.perf_counter()
        for r in sample:  # the old way: one evaluator call per row
            on, power, imports = dispatch_arrays(problem, r["dispatch"])
            evaluate(problem, states[r["state"]], Dispatch(np.array(on), np.array(power), np.array(imports)))
        per_row_s = (time.perf_counter() - t0) / len(sample)

    result = {
        "rows": rows,
        "log_mb": round(size / 2**20, 1),
        "read_and_check": {"wall_s": round(read_s, 2), "cpu_s": round(read_cpu, 2)},
        "rescore_folders (table, report)": {"wall_s": round(total_s, 2), "cpu_s": round(total_cpu, 2)},
        "load_results (API, JSON text)": {"wall_s": round(api_s, 2), "cpu_s": round(api_cpu, 2)},
        "unchecked parse + frame (load_results before)": {
            "wall_s": round(unchecked_s, 2),
            "cpu_s": round(unchecked_cpu, 2),
        },
        "one_evaluate_call_per_row_us": round(1e6 * per_row_s, 1),
        "one_evaluate_call_per_row_estimate_s": round(per_row_s * rows, 1),
        "load_average_1min": round(load_before, 1),
        "cpu_cores": os.cpu_count(),
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "note": "cpu_s is this process's CPU time: the machine was shared with other jobs (see load_average); "
        "rescore_folders includes read_and_check",
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
