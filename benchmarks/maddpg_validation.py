"""Train MADDPG (once for any size, or per instance) and score it against SCIP, size by size.

Why: issue 19 asks for one shared MADDPG model that decides at any size, within 5 % of SCIP on
average at 32 regions and with an answer for every state at 128; issue 18 asks for MADDPG's
violation penalty to be chosen on validation states. Both are measured the same way here: the
final policy decides every state *one state per call* (what a dispatcher does each interval, the
headline decision time), the evaluator scores each answer, and the gap of each state is taken to
SCIP's certified optimum (``rel_gap=1e-9``) on the same state.

Instances and states follow the protocol (``docs/protocol.md``): for ``--split validation`` the
generated instance of each size uses generator seed 1000 + replicate and its states
``validation_states(..., replicate)``; ``--split test --replicate N`` does the same with 2000 + N
(for the lead's final tables; nothing is tuned on them). ``--problem FILE`` adds a problem file
(e.g. the paper's instance) scored on the split's states for that file.

    # one model for any size: training instances of 4..32 regions (training seeds), 15 minutes
    nice -n 5 python benchmarks/maddpg_validation.py --train-sizes 4,8,16,32 --budget-s 900 \
        --model runs/maddpg-any --eval-sizes 4,8,16,32,64,128 --label any-size-seed0
    # per instance, the paper's problem, a penalty to compare
    nice -n 5 python benchmarks/maddpg_validation.py --problem problems/paper-4region.toml \
        --spec "maddpg[penalty_per_kw=20]" --steps 24000 --model runs/k20-s0 --label kappa20-seed0

SCIP's answers are cached under ``--cache`` (default ``runs/maddpg-validation-cache``, git-ignored),
keyed by problem, split, replicate and state selection. Results are merged by ``--label`` into
``--out`` (default ``benchmarks/results/maddpg-shared-validation.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dispatchbench import load_problem
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata
from dispatchbench.bench.scoring import Record, solve_and_score
from dispatchbench.contract.training import TrainingBudget, TrainingSet
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import SPLITS, split_states
from dispatchbench.learn.checkpoints import read_meta
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem, State
from dispatchbench.report.tables import state_family

ROOT = Path(__file__).resolve().parent.parent


def scip_reference(problem: Problem, states: list[State], cache: Path, key: str, time_limit: float) -> list[dict]:
    """SCIP's cost per state (``None`` when it found none), computed once per ``key``."""
    path = cache / f"scip-{key}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if [s["state"] for s in saved] == [s.label for s in states]:
            return saved
    out = []
    solver = make_solver("scip")
    for state in states:
        (rec,) = solve_and_score(problem, [state], solver, time_limit=time_limit)
        out.append({"state": state.label, "status": str(rec.status), "cost": rec.cost, "time_s": rec.time_s})
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def score(problem: Problem, states: list[State], spec: str, reference: list[dict]) -> dict[str, Any]:
    """Decide every state one per call, score it, and compare with SCIP state by state."""
    solver = make_solver(spec)
    solver.prepare(problem)
    records: list[Record] = []
    for state in states:
        records.extend(solve_and_score(problem, [state], solver))
    rows = []
    for state, rec, ref in zip(states, records, reference):
        gap = None if rec.cost is None or ref["cost"] is None else (rec.cost - ref["cost"]) / ref["cost"]
        rows.append(
            {
                "state": state.label,
                "family": state_family(state.label),
                "status": str(rec.status),
                "gap": gap,
                "time_s": rec.time_s,
                "messages": rec.info.get("messages"),
                "repaired": rec.info.get("commitment_repaired", 0),
                "reason": rec.reason[:200],
            }
        )
    solved = [r for r, ref in zip(rows, reference) if ref["cost"] is not None]
    gaps = [r["gap"] for r in solved if r["gap"] is not None]
    families: dict[str, list[float]] = {}
    for r in solved:
        if r["gap"] is not None:
            families.setdefault(r["family"], []).append(r["gap"])
    ours = [ref["cost"] for ref, r in zip(reference, rows) if ref["cost"] is not None and r["gap"] is not None]
    return {
        "problem": problem.name,
        "groups": len(problem.groups),
        "regions": len(problem.regions),
        "states": len(states),
        "scip_solved": len(solved),
        "answered": len(gaps),
        "mean_gap": statistics.mean(gaps) if gaps else None,
        "worst_gap": max(gaps) if gaps else None,
        "summed_gap": (
            sum((1 + r["gap"]) * c for r, c in zip([r for r in solved if r["gap"] is not None], ours)) / sum(ours) - 1
            if ours
            else None
        ),
        "family_mean_gap": {f: statistics.mean(v) for f, v in sorted(families.items())},
        "decision_s_median": statistics.median(r["time_s"] for r in rows),
        "scip_s_median": statistics.median(ref["time_s"] for ref in reference),
        "messages_median": statistics.median(r["messages"] for r in rows if r["messages"] is not None)
        if any(r["messages"] is not None for r in rows)
        else None,
        "repaired_states": sum(r["repaired"] > 0 for r in rows),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="maddpg", help="the learner's spec (hyper-parameters in brackets)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--train-sizes", default="", help="train one model on generated instances of these sizes")
    ap.add_argument("--problem", type=Path, action="append", default=[], help="train on / also score this file")
    ap.add_argument("--steps", type=int, default=None, help="training steps (per-instance default: the solver's)")
    ap.add_argument("--budget-s", type=float, default=None, help="training wall-time budget, seconds")
    ap.add_argument("--model", type=Path, required=True, help="model folder (trained into unless --skip-fit)")
    ap.add_argument("--skip-fit", action="store_true", help="score the model already in --model")
    ap.add_argument("--eval-sizes", default="", help="generated instances to score on (e.g. 4,8,16,32,64,128)")
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--stride", type=int, default=8, help="every stride-th interval of each family's day")
    ap.add_argument("--random", type=int, default=20, help="random states per instance")
    ap.add_argument("--large-stride", type=int, default=16, help="stride from 64 regions up (SCIP is slow there)")
    ap.add_argument("--large-random", type=int, default=10)
    ap.add_argument("--scip-limit", type=float, default=300.0, help="SCIP's time limit per state, seconds")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "maddpg-validation-cache")
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "maddpg-shared-validation.json")
    args = ap.parse_args()

    try:
        files = [load_problem(p) for p in args.problem]
    except InputError as exc:
        print(f"benchmarks/maddpg_validation.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    sizes = [int(s) for s in args.train_sizes.split(",") if s.strip()]
    learner = make_solver(args.spec)
    fit_info: dict[str, Any] = {}
    if not args.skip_fit:
        t0 = time.perf_counter()
        if sizes:
            budget = TrainingBudget(steps=args.steps, seconds=args.budget_s)  # instances: the spec's instances_per_size
            report = learner.fit(
                None, seed=args.seed, out_dir=args.model, budget=budget, training_set=TrainingSet(tuple(sizes))
            )
        else:
            if len(files) != 1:
                ap.error("give --train-sizes, or exactly one --problem to train on")
            steps = args.steps or learner.default_train_steps
            report = learner.fit(files[0], seed=args.seed, steps=steps, out_dir=args.model)
        fit_info = {"wall_s": time.perf_counter() - t0, **report.info}
        print(json.dumps({k: v for k, v in fit_info.items() if not isinstance(v, dict)}), flush=True)
    meta = read_meta(args.model)
    spec = f"maddpg[model={args.model}]"

    split = SPLITS[args.split]
    targets: list[tuple[Problem, str]] = [(p, "file") for p in files]
    targets += [
        (generate_problem(int(r), split.seed(args.replicate)), "generated")
        for r in args.eval_sizes.split(",")
        if r.strip()
    ]
    results = []
    for problem, kind in targets:
        large = len(problem.regions) >= 64
        stride, count = (args.large_stride, args.large_random) if large else (args.stride, args.random)
        states = split_states(problem, args.split, stride=stride, random_count=count, replicate=args.replicate)
        key = f"{problem.name}-{args.split}{args.replicate}-s{stride}-r{count}"
        reference = scip_reference(problem, states, args.cache, key, args.scip_limit)
        row = score(problem, states, spec, reference)
        row.update(kind=kind, stride=stride, random=count)
        results.append(row)
        brief = {k: row[k] for k in ("problem", "answered", "states", "mean_gap", "worst_gap", "decision_s_median")}
        print(json.dumps(brief), flush=True)

    out = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    out["what"] = (
        "MADDPG scored against SCIP (rel_gap 1e-9) per state, one state per call; gap = (cost - scip) / scip; "
        "benchmarks/maddpg_validation.py"
    )
    out["runs"][args.label] = {
        "spec": args.spec,
        "seed": args.seed,
        "train_sizes": sizes,
        "train_problems": [p.name for p in files] if not sizes else [],
        "split": args.split,
        "replicate": args.replicate,
        "model": {
            k: meta.get(k)
            for k in ("spec", "steps", "train_time_s", "training_set", "env_steps", "training_messages", "stopped_by")
        },
        "fit": fit_info,
        "results": results,
        "machine": {**run_metadata(), "load_average_at_end": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=lambda x: x.item() if isinstance(x, np.generic) else str(x)))
    print(f"written {args.out} [{args.label}]", flush=True)


if __name__ == "__main__":
    main()
