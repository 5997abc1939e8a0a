"""Time every available backend per state over a day, through the run harness, with the ratio to SCIP.

Why through the harness: it is what produces the tables, so the times here are the times in
Table IV/V — each backend in its own process, one state at a time, wall time measured around
each state by the same code for all of them (the first state of a cell includes whatever the
backend does on its first call: building a model, loading a network).

    nice -n 10 python benchmarks/bench_backends.py                  # -> benchmarks/results/backends.json
    nice -n 10 python benchmarks/bench_backends.py --learned "madrl_tvc[model=models/tvc]"

Solvers: one spec per discovered plugin that does not learn, with default parameters (or
``--solvers``), plus the learned specs given with ``--learned`` (they need a trained model).
States: ``problems/<problem>-day.csv`` (any ``problems/*day*.csv`` for the problem) if present,
else ``--random`` seeded random feasible states (see ``bench_scip.random_feasible_states``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dispatchbench import load_problem
from dispatchbench.bench.harness import parse_seeds, run_benchmark
from dispatchbench.bench.plugins import discover, split_specs
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.model.errors import InputError
from dispatchbench.model.state_file import load_states, states_to_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scip import random_feasible_states  # noqa: E402  (sibling script: one state sampler, not two)

ROOT = Path(__file__).resolve().parent.parent


def day_file(problem_path: Path) -> Path | None:
    """The shipped day for this problem: ``<stem>-day.csv``, else any ``*day*.csv`` that loads."""
    problem = load_problem(problem_path)
    candidates = [problem_path.with_name(f"{problem_path.stem}-day.csv")]
    candidates += sorted(problem_path.parent.glob("*day*.csv"))
    for path in candidates:
        try:
            if path.is_file() and load_states(path, problem):
                return path
        except InputError:
            continue
    return None


def default_specs() -> list[str]:
    return [name for name, cls in sorted(discover().items()) if not cls.capabilities.learns]


def summarise(frame: pd.DataFrame) -> dict[str, Any]:
    """Per spec: time per state (mean, median, first state, the rest), statuses and ratio to SCIP."""
    out: dict[str, Any] = {}
    for spec, rows in frame.groupby("solver", sort=False):
        times = rows["time_s"].dropna().tolist()
        first = rows[rows["state_index"] == rows["state_index"].min()]["time_s"].dropna().tolist()
        rest = rows[rows["state_index"] != rows["state_index"].min()]["time_s"].dropna().tolist()
        out[spec] = {
            "solver_name": rows["solver_name"].iloc[0],
            "rows": len(rows),
            "seeds": sorted(int(s) for s in rows["seed"].unique()),
            "statuses": {k: int(v) for k, v in rows["status"].value_counts().items()},
            "time_per_state_s": statistics.fmean(times) if times else None,
            "median_time_per_state_s": statistics.median(times) if times else None,
            "first_state_time_s": statistics.fmean(first) if first else None,
            "later_states_time_s": statistics.fmean(rest) if rest else None,
            "total_time_s": float(sum(times)),
        }
    scip = out.get("scip", {}).get("time_per_state_s")
    for entry in out.values():
        t = entry["time_per_state_s"]
        entry["ratio_to_scip"] = (t / scip) if (scip and t is not None) else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", type=Path, default=ROOT / "problems" / "paper-4region.toml")
    parser.add_argument("--states", type=Path, help="state file (default: the problem's day file)")
    parser.add_argument("--random", type=int, default=96, help="random states if no day file exists")
    parser.add_argument("--solvers", help="specs to time (default: every non-learning plugin)")
    parser.add_argument("--learned", default="", help='learned specs with their model, e.g. "madrl_tvc[model=DIR]"')
    parser.add_argument("--seeds", default="0", help="seeds for stochastic solvers (time only needs one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="hard limit per state, seconds")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "benchmarks" / "results" / "backends-run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "backends.json")
    args = parser.parse_args()

    problem = load_problem(args.problem)
    states_path = args.states or day_file(args.problem)
    if states_path is None:
        states_path = Path(tempfile.mkdtemp()) / f"random-{args.random}.csv"
        states_to_frame(random_feasible_states(problem, args.random, seed=0), problem).to_csv(states_path, index=False)
    specs = split_specs(args.solvers) if args.solvers else default_specs()
    specs += split_specs(args.learned)

    summary = run_benchmark(
        args.problem, [states_path], specs, parse_seeds(args.seeds), args.run_dir, timeout=args.timeout, force=True
    )
    frame = pd.read_parquet(args.run_dir / "results.parquet")
    result = {
        "what": "wall time per state of each backend through the run harness (one process per cell, "
        "one state at a time); ratio_to_scip = time_per_state_s / SCIP's",
        "timestamp": utc_timestamp(),
        "problem": str(args.problem),
        "states_file": str(states_path),
        "states": int(frame["states_count"].max()),
        "timeout_s": args.timeout,
        "run_dir": str(args.run_dir),
        "interrupted": summary.interrupted,
        "machine": run_metadata(),
        "backends": summarise(frame),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for spec, entry in result["backends"].items():
        ratio = entry["ratio_to_scip"]
        t = entry["time_per_state_s"]
        print(
            f"{spec:40s} "
            + ("no time" if t is None else f"{t:.4f} s/state")
            + (f"  x{ratio:.2f} SCIP" if ratio is not None else "")
            + f"  {entry['statuses']}"
        )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
