"""Does SCIP's default reach today's optimum on every state of the scaling study? (issue 21)

Why: the plugin's defaults changed (``benchmarks/bench_scip_best.py`` chose them); a default must
be faster *with the same optima*. This solves every state of ``studies/scaling.toml`` (its
generated test instances, 4 to 128 regions, intervals 8 and 72 of every family's test day) with
the old settings and the new default, in this process, and checks that both are certified and
that their evaluator costs agree within 1e-6 relative. Nothing is tuned on these states: they
only check the chosen default.

    nice -n 10 python benchmarks/check_scip_default.py   # -> benchmarks/results/scip-default-check.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # BLAS threads spinning would count as CPU time

import argparse
import json
import time
from pathlib import Path
from typing import Any

from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.model.evaluate import evaluate
from dispatchbench.report.study_file import TestStates

ROOT = Path(__file__).resolve().parent.parent
OLD = "scip[formulation=bigm,warm_start=none,emphasis=none]"
SAME = 1e-6


def solve_all(spec: str, problem: Any, states: list[Any]) -> list[dict[str, Any]]:
    solver = make_solver(spec)
    solver.prepare(problem)
    rows = []
    for state in states:
        start, cpu = time.perf_counter(), time.process_time()
        (answer,) = solver.solve(problem, [state], time_limit=300.0)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        cost = evaluate(problem, state, answer.dispatch).cost if answer.dispatch is not None else None
        rows.append({"state": state.label, "status": answer.status, "cost": cost, "wall_s": wall, "cpu_s": cpu})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", default="4,8,16,32,64,128")
    parser.add_argument("--new", default="scip")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scip-default-check.json")
    args = parser.parse_args()
    tests = TestStates(split="test", intervals=(8, 72))
    out: dict[str, Any] = {"created": utc_timestamp(), "old": OLD, "new": args.new, "sizes": {}}
    for regions in (int(r) for r in args.regions.split(",")):
        problem = generate_problem(regions, tests.seed)
        states = tests.draw(problem)
        old, new = solve_all(OLD, problem, states), solve_all(args.new, problem, states)
        same = [
            o["status"] == n["status"] == "optimal" and abs(o["cost"] - n["cost"]) <= SAME * abs(o["cost"])
            for o, n in zip(old, new)
        ]
        out["sizes"][str(regions)] = {
            "groups": len(problem.groups),
            "old": old,
            "new": new,
            "same_optimum": same,
            "max_rel_difference": max(abs(o["cost"] - n["cost"]) / abs(o["cost"]) for o, n in zip(old, new)),
            "old_cpu_s": sum(o["cpu_s"] for o in old),
            "new_cpu_s": sum(n["cpu_s"] for n in new),
        }
        size = out["sizes"][str(regions)]
        print(
            f"{regions} regions: {sum(same)}/{len(same)} same certified optimum, max rel. difference "
            f"{size['max_rel_difference']:.2g}; CPU old {size['old_cpu_s']:.1f} s, new {size['new_cpu_s']:.1f} s",
            flush=True,
        )
        out["metadata"] = run_metadata()
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
