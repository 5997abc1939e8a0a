"""The clearing's tree sums one message at a time against the vector passes, and what it does to a
decision at 128 regions: both timed in one run, as ratios.

Why: a clearing takes about 44 system sums (40 bisection steps and the brackets), each a
convergecast over a spanning tree of the CS nodes. Added one message at a time in Python, a sum
over 128 regions cost more than the rest of the step, and a third of the any-size TVC's online
decision time was spent there (cProfile, session s11). ``TreeSum.run`` now adds the tree level by
level, in the same order (bit for bit: ``tests/test_distributed_search.py``), beyond
``SMALL_TREE`` nodes; this script measures both ways, and a one-state-per-call TVC decision with
either, on the same states in the same run.

    python benchmarks/bench_tree_sums.py --model <an any-size TVC model>   # writes benchmarks/results/tree-sums.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import timeit
from pathlib import Path

import numpy as np

from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.formulations import distributed_search
from dispatchbench.formulations.distributed_search import TreeSum
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import VALIDATION, validation_states

ROOT = Path(__file__).resolve().parent.parent


def sums(sizes: list[int], batches: list[int], repeat: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        tree = TreeSum.on(n)
        for batch in batches:
            values = rng.normal(size=(batch, n))
            assert np.array_equal(tree.run(values), tree.run_message_by_message(values))
            loop = min(timeit.repeat(lambda: tree.run_message_by_message(values), number=repeat, repeat=3)) / repeat
            now = min(timeit.repeat(lambda: tree.run(values), number=repeat, repeat=3)) / repeat
            rows.append({"nodes": n, "batch": batch, "loop_s": loop, "run_s": now, "loop_over_run": loop / now})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def decisions(model: str, regions: int) -> dict:
    """One state per call, the validation states of a validation-seed instance: the message loop
    for every tree size (``SMALL_TREE`` raised), then as released; the same answers both ways."""
    problem = generate_problem(regions, VALIDATION.seed(0))
    states = validation_states(problem, stride=32)  # 00:00, 08:00 and 16:00 of every family
    solver = make_solver(f"madrl_tvc[model={model}]")
    solver.prepare(problem)
    out, answers = {}, {}
    released = distributed_search.SMALL_TREE
    for label, small in (("message_loop", 10**9), ("released", released)):
        distributed_search.SMALL_TREE = small
        times, got = [], []
        for state in states:
            t0 = time.perf_counter()
            got.append(solver.solve(problem, [state])[0])
            times.append(time.perf_counter() - t0)
        out[f"{label}_s_median"] = statistics.median(times)
        answers[label] = got
    distributed_search.SMALL_TREE = released
    same = all(
        np.array_equal(a.dispatch.power, b.dispatch.power) and np.array_equal(a.dispatch.on, b.dispatch.on)
        for a, b in zip(answers["message_loop"], answers["released"])
    )
    return {
        "regions": regions,
        "groups": len(problem.groups),
        "states": len(states),
        **out,
        "loop_over_released": out["message_loop_s_median"] / out["released_s_median"],
        "same_answers": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="an any-size MADRL-TVC model folder")
    ap.add_argument("--regions", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tree-sums.json")
    args = ap.parse_args()
    result = {
        "when": utc_timestamp(),
        "machine": run_metadata(),
        "small_tree": distributed_search.SMALL_TREE,
        "sums": sums([8, 32, 64, 128, 512], [1, 16, 400, 3000], repeat=50),
        "decision": decisions(args.model, args.regions),
    }
    print(json.dumps(result["decision"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
