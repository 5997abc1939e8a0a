"""What a cell's child process costs to start, and what a state costs once it runs.

A cell is one solver spec x seed over the states of a file, run in a child process of its own
(``dispatchbench.bench.cell_runner``). This times, per spec: the cell's wall time, the sum of its
per-state times (as the harness measures them: from the child being ready, or the previous
answer, to the answer) and the difference — the start-up: interpreter, imports, plugin, set-up,
shutdown — plus one probe (``probe_specs``, which builds a spec once in a child).

It runs against whichever dispatchbench the interpreter imports, so the same script times the
``multiprocessing`` fork server with preloaded modules (before issue 20) and the ``subprocess``
child (after); run the two alternately on the same machine and compare medians::

    python benchmarks/bench_cell_start.py --model models/tvc --out benchmarks/results/cell-start-new.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import time
from pathlib import Path

from dispatchbench.bench import cell_runner
from dispatchbench.bench.plugins import parse_spec, plugin_origins

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
DAY = ROOT / "problems" / "paper-4region-day.csv"


def make_job(origin: str, spec: str, todo: tuple[int, ...]):
    """A CellJob for this version: paths before issue 20, bytes after."""
    fields = inspect.signature(cell_runner.CellJob).parameters
    if "cwd" in fields:  # before: the child read the files at these paths
        return cell_runner.CellJob(origin, os.getcwd(), str(PROBLEM), str(DAY), spec, 0, todo, 120.0)
    from dispatchbench.bench.harness import SolverPlan, path_payloads
    from dispatchbench.bench.job_payload import Blob
    from dispatchbench.contract.solver import Capabilities

    name, params = parse_spec(spec)
    plan = SolverPlan(spec, name, params, Capabilities(), origin, path_parameters=("model",))
    return cell_runner.CellJob(
        origin, Blob.of_file(PROBLEM), Blob.of_file(DAY), spec, 0, todo, 120.0, paths=path_payloads(plan)
    )


def time_cell(origin: str, spec: str, states: int) -> dict[str, float]:
    job = make_job(origin, spec, tuple(range(states)))
    start = time.perf_counter()
    outcomes = list(cell_runner.cell_outcomes(job))
    wall = time.perf_counter() - start
    times = [o["time_s"] for _, o in outcomes]
    assert all("answer" in o for _, o in outcomes), outcomes[0]
    return {
        "wall_s": wall,
        "states_s": sum(times),
        "start_s": wall - sum(times),
        "per_state_s": statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained madrl_tvc model folder (adds a TVC cell)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--states", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    specs = ["scip", "pso[particles=10,iterations=10]"]
    if args.model:
        specs.append(f"madrl_tvc[model={Path(args.model).resolve()}]")
    origins = plugin_origins()
    runs: dict[str, list] = {}
    for _ in range(args.repeats):
        for spec in specs:
            origin = origins[parse_spec(spec)[0]]
            runs.setdefault(spec, []).append(time_cell(origin, spec, args.states))
            start = time.perf_counter()
            cell_runner.probe_specs({origin: [spec]}, 180.0)
            runs.setdefault(f"probe {spec}", []).append({"wall_s": time.perf_counter() - start})
    summary = {
        spec: {key: round(statistics.median(r[key] for r in rows), 4) for key in rows[0]} for spec, rows in runs.items()
    }
    result = {
        "code": cell_runner.__file__,
        "child": "subprocess" if hasattr(cell_runner, "ChildProcess") else "multiprocessing forkserver",
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "states_per_cell": args.states,
        "repeats": args.repeats,
        "median": summary,
        "runs": runs,
    }
    text = json.dumps(result, indent=1)
    print(json.dumps({"child": result["child"], "load_average": result["load_average"], "median": summary}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
