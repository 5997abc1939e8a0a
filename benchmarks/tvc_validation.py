"""MADRL-TVC models on the protocol's states of one instance: gaps to SCIP, decision times, messages.

Why: every setting of the any-size design (features, targets, counterfactual sampling, movers,
budgets) is chosen by looking at validation states (``docs/protocol.md``), and each choice is
logged with its numbers (``benchmarks/results/tvc-anysize-validation.json``, one entry per
``--label``). The script decides the states with each model one state per call (the online
headline) and in one batch (offline), scores every answer with the evaluator and compares with
SCIP (``rel_gap=1e-9``) on the same states. SCIP's answers are cached per (problem, states) in
``--scip-cache`` (git-ignored runs folder), since at 128–512 regions they take minutes;
``--time-scip`` re-solves them in this run so a speed ratio is measured in one run.

    nice -n 5 python benchmarks/tvc_validation.py --problem gen:128:1000 --model runs/tvc-any \\
        --days 1 --stride 8 --random 10 --label any-size-128

``--no-scip`` skips SCIP (no gaps; for messages and times at sizes where SCIP takes minutes a
state and no cached answers exist).

``--problem`` is a file or ``gen:REGIONS:SEED`` (a generated instance; use validation generator
seeds 1000–1999 for choosing anything). States are the validation split's (seed 1000 +
``--replicate``) unless ``--split test`` is given (the lead's final evaluation only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

import torch

from dispatchbench import load_problem
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import split_states
from dispatchbench.model.problem import Problem, State
from dispatchbench.report.tables import state_family

ROOT = Path(__file__).resolve().parent.parent


def problem_of(text: str) -> Problem:
    if text.startswith("gen:"):
        _, regions, seed = text.split(":")
        return generate_problem(int(regions), int(seed))
    return load_problem(text)


def scip_reference(problem: Problem, states: list[State], cache: Path, fresh: bool) -> dict[str, dict]:
    """SCIP's evaluated cost and time per state label (from the cache unless ``fresh``)."""
    key = hashlib.sha256(
        repr((problem.name, len(problem.groups), [(s.label, sorted(s.demand.items())) for s in states])).encode()
    ).hexdigest()[:16]
    path = cache / f"{problem.name}-{key}.json"
    if path.exists() and not fresh:
        return json.loads(path.read_text())
    found = {}
    for state, rec in zip(states, solve_and_score(problem, states, make_solver("scip"))):
        found[state.label] = {"cost": rec.cost, "status": rec.status.value, "time_s": rec.time_s}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found))
    return found


def evaluate_model(problem: Problem, states: list[State], spec: str, reference: dict[str, dict]) -> dict:
    """One model: one state per call (the headline time) and the batch (offline), scored."""
    solver = make_solver(spec)
    t0 = time.perf_counter()
    solver.prepare(problem)  # loading (and an any-size model's calibration): once, outside the decisions
    prepare_s = time.perf_counter() - t0
    one_by_one = []
    for state in states:
        one_by_one += solve_and_score(problem, [state], solver)
    batched = solve_and_score(problem, states, solver)
    gaps, worst_state, families = [], None, {}
    for state, rec in zip(states, one_by_one):
        ref = reference[state.label]["cost"]
        if rec.cost is None or ref is None:
            gaps.append(None)
            continue
        gap = (rec.cost - ref) / ref
        gaps.append(gap)
        families.setdefault(state_family(state.label), []).append(gap)
        if worst_state is None or gap > worst_state[1]:
            worst_state = (state.label, gap)
    answered = [g for g in gaps if g is not None]
    same = all(
        a.dispatch is not None and b.dispatch is not None and (a.dispatch.on == b.dispatch.on).all()
        for a, b in zip(one_by_one, batched)
    )
    info = one_by_one[0].info if one_by_one else {}
    fixed = [r.info for r in one_by_one if r.info.get("commitment_repaired", 0) > 0]
    passes = [i["repair_passes"] for i in fixed if "repair_passes" in i]  # absent before the repair in passes
    return {
        "spec": spec,
        "answered": len(answered),
        "states": len(states),
        "gap_mean": statistics.mean(answered) if answered else None,
        "gap_worst": max(answered) if answered else None,
        "worst_state": worst_state[0] if worst_state else None,
        "states_above_1pct": sum(g > 0.01 for g in answered),
        "gap_by_family": {f: {"mean": statistics.mean(g), "worst": max(g), "n": len(g)} for f, g in families.items()},
        "decision_s_one_state_per_call": statistics.median(r.time_s for r in one_by_one),
        "decision_s_batched": statistics.median(r.time_s for r in batched),
        "batched_equals_one_by_one": same,
        "prepare_s": prepare_s,
        "messages_mean": statistics.mean(r.info.get("messages", 0) for r in one_by_one),
        "messages_max": max(r.info.get("messages", 0) for r in one_by_one),
        "searches_mean": statistics.mean(r.info.get("searches", 0) for r in one_by_one),
        "move_hearings_mean": statistics.mean(r.info.get("move_hearings", 0) for r in one_by_one),
        "repaired": len(fixed),
        "repair_flips_mean": statistics.mean(i["commitment_repaired"] for i in fixed) if fixed else 0,
        "repair_flips_max": max((i["commitment_repaired"] for i in fixed), default=0),
        "repair_passes_mean": statistics.mean(passes) if passes else None,
        "repair_passes_max": max(passes, default=None),
        "calibration": {
            k: info[k] for k in ("calibration_bills", "calibration_s", "offer_publication_messages") if k in info
        },
        "per_state": {s.label: g for s, g in zip(states, gaps)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True)
    ap.add_argument("--model", required=True, help="model folders, comma-separated (or full specs with [])")
    ap.add_argument("--extra", default="", help="spec parameters added to every model, e.g. refine=3")
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--random", type=int, default=0)
    ap.add_argument("--families", default="", help="only these day families (comma-separated)")
    ap.add_argument("--time-scip", action="store_true", help="solve SCIP again in this run (timing)")
    ap.add_argument("--no-scip", action="store_true", help="no SCIP reference: messages and times only, no gaps")
    ap.add_argument("--scip-cache", type=Path, default=ROOT / "runs" / "scip-cache")
    ap.add_argument("--label", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tvc-anysize-validation.json")
    args = ap.parse_args()
    if args.split == "test" and args.replicate != 0 and not os.environ.get("DISPATCHBENCH_FINAL_TEST"):
        raise SystemExit("test replicates beyond 0 are the lead's final evaluation: set DISPATCHBENCH_FINAL_TEST=1")
    torch.set_num_threads(1)
    problem = problem_of(args.problem)
    families = tuple(args.families.split(",")) if args.families else None
    states = split_states(
        problem,
        args.split,
        days=args.days,
        random_count=args.random,
        replicate=args.replicate,
        families=families,
        stride=args.stride,
    )
    t0 = time.perf_counter()
    if args.no_scip:
        reference = {s.label: {"cost": None, "status": "not run", "time_s": None} for s in states}
    else:
        reference = scip_reference(problem, states, args.scip_cache, args.time_scip)
    scip_s = [r["time_s"] for r in reference.values() if r["time_s"] is not None]
    scip_median = statistics.median(scip_s) if scip_s else None
    models = []
    for folder in args.model.split(","):
        spec = folder if "[" in folder else f"madrl_tvc[model={folder}{',' + args.extra if args.extra else ''}]"
        row = evaluate_model(problem, states, spec, reference)
        meta_path = Path(folder.split("model=")[-1].split(",")[0].rstrip("]")) / "model.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            row["model"] = {
                k: meta.get(k)
                for k in ("scope", "spec", "seed", "train_steps", "train_time_s", "budget", "stopped_by", "problem")
            }
        row["scip_over_tvc_one_state_per_call"] = (
            scip_median / row["decision_s_one_state_per_call"] if scip_median is not None else None
        )
        models.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("per_state", "gap_by_family")}), flush=True)
        print("  by family:", json.dumps(row["gap_by_family"]), flush=True)
    entry = {
        "problem": args.problem,
        "regions": len(problem.regions),
        "groups": len(problem.groups),
        "split": args.split,
        "replicate": args.replicate,
        "states": {"days": args.days, "stride": args.stride, "random": args.random, "count": len(states)},
        "scip": {
            "median_s": scip_median,
            "timed_in_this_run": args.time_scip,
            "statuses": sorted({r["status"] for r in reference.values()}),
        },
        "models": models,
        "note": args.note,
        "wall_s": time.perf_counter() - t0,
        "machine": {**run_metadata(), "load_average_at_end": os.getloadavg()},
    }
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[args.label] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, default=float))
    print(f"written {args.out} [{args.label}]")


if __name__ == "__main__":
    main()
