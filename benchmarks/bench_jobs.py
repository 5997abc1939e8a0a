"""Speed-up of ``run --jobs 2`` over ``--jobs 1`` (and of a 2-worker Dask LocalCluster) on a
CPU-bound shoot-out: PSO seeds 0-3 and NLopt on the 96-state real-data day.

Why these cells: both backends spend their time in Python/NumPy on one core per cell, so on a
2-core machine the best a second job can do is halve the wall time; the shortfall is process
start-ups, the one writer, and cells that do not divide evenly (five cells on two lanes). Each
configuration runs the same cells into a fresh folder and the costs are checked to be identical,
so the speed-up is for the same answers.

    nice -n 10 python benchmarks/bench_jobs.py            # -> benchmarks/results/jobs.json
    nice -n 10 python benchmarks/bench_jobs.py --no-dask  # without the Dask LocalCluster run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
DAY = ROOT / "problems" / "paper-4region-day.csv"
SPECS = "pso[iterations=60],nlopt"
SEEDS = [0, 1, 2, 3]


def timed_run(out: Path, **options) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    run_benchmark(PROBLEM, [DAY], SPECS, SEEDS, out, timeout=120, progress=False, **options)
    wall = time.perf_counter() - start
    frame = pd.read_parquet(out / "results.parquet").sort_values(["solver", "seed", "state"]).reset_index(drop=True)
    return wall, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster configuration")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "jobs.json")
    args = parser.parse_args()
    configs = [("jobs 1", {"jobs": 1}), ("jobs 2", {"jobs": 2})]
    if not args.no_dask:
        configs.append(("dask LocalCluster, 2 workers", {"jobs": 2, "executor": "dask"}))
    results, frames = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in configs:
            load_before = os.getloadavg()[0]
            wall, frame = timed_run(Path(tmp) / label.replace(" ", "_").replace(",", ""), **options)
            frames[label] = frame
            results[label] = {"wall_s": round(wall, 2), "rows": len(frame), "load_avg_1min_before": load_before,
                              "state_time_sum_s": round(float(frame["time_s"].sum()), 2)}
            print(f"{label}: {wall:.1f} s for {len(frame)} rows", flush=True)
    base = frames["jobs 1"]
    for label, frame in frames.items():
        same = frame[["status", "cost", "dispatch"]].equals(base[["status", "cost", "dispatch"]])
        results[label]["same_rows_as_jobs_1"] = bool(same)
        results[label]["speedup_vs_jobs_1"] = round(results["jobs 1"]["wall_s"] / results[label]["wall_s"], 3)
    meta = run_metadata()
    report = {
        "what": f"{SPECS} seeds {SEEDS[0]}-{SEEDS[-1]} on {DAY.name} ({len(base) // 5} states): "
                f"{len(SEEDS) + 1} cells, {len(base)} rows",
        "written": utc_timestamp(), "cpu_cores": meta.get("cpu_cores"), "cpu_model": meta.get("cpu_model"),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":  # the guard matters: Dask and process pools re-import this file in workers
    main()
