"""Measure merit_order, lagrangian and admm against SCIP on VALIDATION states (never test states).

The defaults of the three classical plugins (iteration caps, step sizes, ADMM's rho) were chosen
from this script's output: the paper problem's validation day (seed 1000, every 24th interval of
each family, plus random states) and generated validation instances ``generate_problem(n, 1000)``
at 32 and 128 regions (one or two intervals of each family). SCIP's optimum of each state (gap
1e-9) is computed once and cached in ``benchmarks/results/classical-peers-scip-<size>.json``.

    python benchmarks/bench_classical_peers.py [--sizes 4 32 128] [--specs merit_order 'admm[rho=0.1]' ...]
        [--first N] [--out benchmarks/results/classical-peers-<sizes>.json]

Writes per size and method: mean and worst gap to SCIP, infeasible count, median and max seconds
per state (wall, and CPU of this process: on a shared machine the wall time is several times the
CPU time), mean messages per state, and the rows themselves. BLAS runs on one thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread: process CPU time is then the method's time
import argparse
import json
import statistics
import time
from pathlib import Path

from dispatchbench.bench.plugins import make_solver
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import validation_states
from dispatchbench.model.bundled import find_input
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import load_problem

RESULTS = Path(__file__).with_name("results")


def instance(size: int) -> tuple[Problem, list[State]]:
    """The validation problem and states of one size (4: the paper's problem)."""
    if size == 4:
        problem = load_problem(find_input("paper-4region.toml"))
        return problem, validation_states(problem, stride=24, random_count=5)
    problem = generate_problem(size, 1000)
    return problem, validation_states(problem, stride=48)  # 00:00 and 12:00 of every family


def scip_reference(size: int, problem: Problem, states: list[State]) -> dict[str, float]:
    path = RESULTS / f"classical-peers-scip-{size}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if set(cached["optimum"]) >= {s.label for s in states}:
            return cached["optimum"]
    scip = make_solver("scip[time_limit=900]")  # certified optima: no 60 s default limit at 128 regions
    scip.prepare(problem)
    optimum: dict[str, float] = {}
    times, statuses = [], {}
    for state in states:
        start = time.perf_counter()
        (answer,) = scip.solve(problem, [state])
        times.append(time.perf_counter() - start)
        assert answer.dispatch is not None, (state.label, answer.message)
        statuses[state.label] = [answer.status.value, answer.info.get("gap")]
        ev = evaluate(problem, state, answer.dispatch)
        optimum[state.label] = ev.cost
    path.write_text(
        json.dumps({"problem": problem.name, "optimum": optimum, "status_gap": statuses, "scip_s": times}, indent=1)
    )
    return optimum


def measure(spec: str, problem: Problem, states: list[State], optimum: dict[str, float]) -> dict:
    solver = make_solver(spec)
    solver.prepare(problem)
    rows = []
    for state in states:
        start, cpu = time.perf_counter(), time.process_time()
        (answer,) = solver.solve(problem, [state])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        row = {"state": state.label, "status": answer.status.value, "s": elapsed, "cpu_s": cpu, "info": answer.info}
        if answer.dispatch is not None:
            d: Dispatch = answer.dispatch
            ev = evaluate(problem, state, d)
            row["feasible"] = bool(ev.feasible)
            row["cost"] = ev.cost
            row["gap_pct"] = 100 * (ev.cost - optimum[state.label]) / optimum[state.label] if ev.feasible else None
        rows.append(row)
    gaps = [r["gap_pct"] for r in rows if r.get("gap_pct") is not None]
    msgs = [r["info"].get("messages", 0) for r in rows]
    return {
        "spec": spec,
        "states": len(rows),
        "infeasible": sum(r.get("gap_pct") is None for r in rows),
        "gap_mean_pct": statistics.fmean(gaps) if gaps else None,
        "gap_worst_pct": max(gaps) if gaps else None,
        "s_median": statistics.median(r["s"] for r in rows),
        "s_max": max(r["s"] for r in rows),
        "cpu_s_median": statistics.median(r["cpu_s"] for r in rows),
        "cpu_s_max": max(r["cpu_s"] for r in rows),
        "messages_mean": statistics.fmean(msgs),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 32, 128])
    parser.add_argument("--specs", nargs="+", default=["merit_order", "lagrangian", "admm"])
    parser.add_argument("--first", type=int, default=0, help="only the first N states of each size (0: all)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/classical-peers-<sizes>.json")
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS / ("classical-peers-" + "-".join(map(str, args.sizes)) + ".json")
    out: dict = {"note": "validation states only (seed 1000); gaps to SCIP gap 1e-9", "sizes": {}}
    for size in args.sizes:
        problem, states = instance(size)
        optimum = scip_reference(size, problem, states)
        states = states[: args.first] if args.first else states
        out["sizes"][str(size)] = {}
        for spec in args.specs:
            result = measure(spec, problem, states, optimum)
            out["sizes"][str(size)][spec] = result
            summary = {k: v for k, v in result.items() if k != "rows"}
            print(size, json.dumps(summary), flush=True)
    args.out.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
