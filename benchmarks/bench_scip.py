"""Time the SCIP backend: model build vs solve, persistent vs rebuilt per state.

Why: the SCIP plugin keeps one Pyomo model per problem and re-solves it after changing the
state's mutable parameters (``scip_persistent``); ``scip[persistent=false]`` builds a fresh
model for every state (``scip_direct``). This script measures whether persistence pays off on
the Table IV state and over a day of states, and that both modes return the same optima.

    nice -n 10 python benchmarks/bench_scip.py            # writes benchmarks/results/scip.json

Sets timed (each with both modes):
- the Table IV state, solved ``--repeat`` times with a fresh solver each time;
- the shipped day (``problems/paper-4region-day.csv``, 96 intervals) if present, or ``--states``;
- ``--random`` seeded random feasible states (uniform over a box around the paper's magnitudes,
  kept when the exact pre-check passes).

Build time is what the plugin reports as ``build_s`` (persistent: a full build for the first
state, then only the parameter update); solve time is ``solve_s`` (persistent: the first solve
also hands the whole model to SCIP). Costs are the evaluator's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from dispatchbench import State, evaluate, load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.formulations.compile_pyomo import build_model
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import Problem

ROOT = Path(__file__).resolve().parent.parent
MODES = {"persistent": "scip", "rebuilt": "scip[persistent=false]"}


def random_feasible_states(problem: Problem, n: int, seed: int) -> list[State]:
    """Demand per region uniform in [0, 0.9 * (local capacity at full V2G + cs_max)], V2G
    availability uniform in [0, 1.5 * p_max]; states the pre-check rejects are redrawn."""
    rng = np.random.default_rng(seed)
    top = {r.name: sum(g.delivery * g.p_max for g in problem.groups_in(r.name)) + r.cs_max for r in problem.regions}
    v_top = {g.name: 1.5 * g.p_max for g in problem.groups if g.is_v2g}
    out: list[State] = []
    while len(out) < n:
        state = State(
            f"random{len(out):03d}",
            {r: float(rng.uniform(0, 0.9 * top[r])) for r in problem.region_names},
            {g: float(rng.uniform(0, v_top[g])) for g in problem.v2g_names},
        )
        if infeasibility_reason(problem, state) is None:
            out.append(state)
    return out


def time_mode(problem: Problem, states: list[State], spec: str) -> dict[str, Any]:
    """Solve ``states`` in one call of the plugin and summarise its timings and results."""
    solver = make_solver(spec)
    start, cpu_start = time.perf_counter(), time.process_time()
    answers = solver.solve(problem, states)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    build = [a.info["build_s"] for a in answers]
    solve = [a.info["solve_s"] for a in answers]
    costs = [evaluate(problem, s, a.dispatch).cost if a.dispatch is not None else None for s, a in zip(states, answers)]
    return {
        "solver": solver.spec,
        "n_states": len(states),
        "statuses": {st: sum(a.status == st for a in answers) for st in sorted({a.status for a in answers})},
        "wall_s": wall,
        "wall_per_state_ms": 1e3 * wall / len(states),
        "cpu_s": cpu,  # this process only: less sensitive than wall time to other jobs on the machine
        "solve_ms_median": 1e3 * statistics.median(solve),
        "solve_ms_max": 1e3 * max(solve),
        "build_s_total": sum(build),
        "solve_s_total": sum(solve),
        "first_state": {"build_ms": 1e3 * build[0], "solve_ms": 1e3 * solve[0]},
        "later_states_median": (
            {"build_ms": 1e3 * statistics.median(build[1:]), "solve_ms": 1e3 * statistics.median(solve[1:])}
            if len(states) > 1
            else None
        ),
        "max_gap": max((a.info["gap"] or 0.0) for a in answers),
        "costs": costs,
    }


def compare(problem: Problem, states: list[State]) -> dict[str, Any]:
    out: dict[str, Any] = {mode: time_mode(problem, states, spec) for mode, spec in MODES.items()}
    p, r = out["persistent"], out["rebuilt"]
    diffs = [abs(a - b) / max(abs(b), 1.0) for a, b in zip(p["costs"], r["costs"]) if a is not None and b is not None]
    out["max_rel_cost_difference"] = max(diffs) if diffs else None
    out["persistent_speedup"] = r["wall_s"] / p["wall_s"]
    out["persistent_speedup_cpu"] = r["cpu_s"] / p["cpu_s"]
    out["time_saved_per_state_ms"] = (r["wall_s"] - p["wall_s"]) * 1e3 / len(states)
    out["total_cost"] = sum(c for c in p["costs"] if c is not None)
    for mode in MODES:
        out[mode].pop("costs")
    return out


def table_iv(problem: Problem, state: State, repeat: int) -> dict[str, Any]:
    """One state from a cold solver, ``repeat`` times: what a single ``dispatchbench solve`` pays."""
    out: dict[str, Any] = {}
    for mode, spec in MODES.items():
        runs = [time_mode(problem, [state], spec) for _ in range(repeat)]
        out[mode] = {
            "build_ms_median": statistics.median(r["first_state"]["build_ms"] for r in runs),
            "solve_ms_median": statistics.median(r["first_state"]["solve_ms"] for r in runs),
            "wall_ms_median": statistics.median(1e3 * r["wall_s"] for r in runs),
            "cpu_ms_median": statistics.median(1e3 * r["cpu_s"] for r in runs),
            "cost": runs[0]["costs"][0],
        }
    builds = []
    for _ in range(repeat):
        start = time.perf_counter()
        build_model(problem)
        builds.append(time.perf_counter() - start)
    out["pyomo_build_only_ms_median"] = 1e3 * statistics.median(builds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", type=Path, default=ROOT / "problems" / "paper-4region.toml")
    parser.add_argument("--table-iv", type=Path, default=ROOT / "problems" / "paper-4region-tableIV.csv")
    parser.add_argument(
        "--states",
        type=Path,
        default=ROOT / "problems" / "paper-4region-day.csv",
        help="a day of states (skipped if the file does not exist)",
    )
    parser.add_argument("--random", type=int, default=96, help="number of seeded random feasible states")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="cold solves of the Table IV state per mode")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scip.json")
    args = parser.parse_args()

    problem = load_problem(args.problem)
    result: dict[str, Any] = {"created": utc_timestamp(), "metadata": run_metadata(), "problem": problem.name}
    (tiv,) = load_states(args.table_iv, problem)
    result["table_iv"] = table_iv(problem, tiv, args.repeat)
    sets: dict[str, list[State]] = {}
    if args.states.is_file():
        day = load_states(args.states, problem)
        feasible = [s for s in day if infeasibility_reason(problem, s) is None]
        sets[f"file:{args.states.name}"] = feasible
        result["day_infeasible_states"] = len(day) - len(feasible)
    if args.random:
        sets[f"random:{args.random}@seed{args.seed}"] = random_feasible_states(problem, args.random, args.seed)
    result["state_sets"] = {name: compare(problem, states) for name, states in sets.items()}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    t = result["table_iv"]
    p, b = t["persistent"], t["rebuilt"]
    print(
        f"Table IV ({problem.name}): cost {p['cost']:.4f}; cold solve (median of {args.repeat}) "
        f"persistent {p['wall_ms_median']:.1f} ms wall / {p['cpu_ms_median']:.1f} ms CPU, "
        f"rebuilt {b['wall_ms_median']:.1f} ms wall / {b['cpu_ms_median']:.1f} ms CPU; "
        f"Pyomo build alone {t['pyomo_build_only_ms_median']:.1f} ms"
    )
    for name, r in result["state_sets"].items():
        p, b = r["persistent"], r["rebuilt"]
        print(
            f"{name}: {p['n_states']} states; persistent {p['wall_s']:.2f} s wall / {p['cpu_s']:.2f} s CPU "
            f"(build {p['build_s_total']:.2f} + solve {p['solve_s_total']:.2f}), "
            f"rebuilt {b['wall_s']:.2f} s wall / {b['cpu_s']:.2f} s CPU "
            f"(build {b['build_s_total']:.2f} + solve {b['solve_s_total']:.2f}); "
            f"speed-up x{r['persistent_speedup']:.2f} "
            f"wall, x{r['persistent_speedup_cpu']:.2f} CPU; solve per state median {p['solve_ms_median']:.0f} ms, "
            f"max {p['solve_ms_max']:.0f} ms; max rel cost diff {r['max_rel_cost_difference']:.1e}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
