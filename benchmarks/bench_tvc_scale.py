"""MADRL-TVC at 32 and 128 regions: train with the study's budget, then decide the scaling study's
test states and time SCIP (rel_gap 1e-9) on the same states in the same run.

Why: issue 10 asks whether the learned policy trains and decides at scale, at what gap, and how
much faster a decision is than the certified solve — a ratio only means something when both sides
are timed in one run on the same states. Costs come from the evaluator (``solve_and_score``),
decision times are the plugin's per-state times, batched (one call for all states) and one state
per call (the online time, medians), SCIP's are its solve times.

    nice python benchmarks/bench_tvc_scale.py --regions 32,128 --out benchmarks/results/tvc-scale.json

Instances are ``generate_problem(R, seed)`` with the seed of ``studies/scaling.toml``; states are the
study's test states (intervals 02:00 and 18:00 of every family's test day, the study's test replicate,
or ``--replicate N``'s instance and states).
A model trained by ``dispatchbench train`` (for example with no options: the default budget) is
decided with ``--reuse --steps R:N``, N being the steps that training reports.
``--split validation`` is how settings and budgets are chosen: a validation-seed instance
(``generate_problem(R, 1000)``) and its validation states, never the study's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import torch

from dispatchbench.bench.plugins import make_solver, parse_spec
from dispatchbench.bench.run_metadata import run_metadata
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import VALIDATION
from dispatchbench.report.study_file import TestStates, load_study
from dispatchbench.report.tables import state_family

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study("scaling")  # studies/scaling.toml: its instances, states and budgets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", default="32,128")
    ap.add_argument("--spec", default="madrl_tvc", help="the learner spec trained at every size")
    ap.add_argument("--steps", default="", help="steps per size, e.g. 32:200,128:20 (default: the study's budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="validation: a validation-seed instance and states, for choosing settings",
    )
    ap.add_argument(
        "--replicate",
        type=int,
        default=None,
        help="test split: the replicate of the instance and its states (default: the study's); a method "
        "changed after a replicate was read is measured on the next one (docs/protocol.md, rule 6)",
    )
    ap.add_argument(
        "--intervals",
        default=",".join(map(str, STUDY.test_states.intervals)),
        help="intervals of each family's day to decide (default: the study's)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="decide with the models this script already trained in --runs (same spec, seed and "
        "steps; refused otherwise) instead of training again; train_s is read from the model",
    )
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "tvc-scale")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tvc-scale.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = {int(k): int(v) for k, v in (p.split(":") for p in args.steps.split(",") if p)} or next(
        (dict(m.train_steps) for m in STUDY.methods if m.spec == args.spec and isinstance(m.train_steps, dict)), {}
    )
    intervals = tuple(int(i) for i in args.intervals.split(","))
    if args.split == "test":
        generate, picked = STUDY.generate, STUDY.test_states  # the study's own instances and states
        if args.replicate is not None:
            generate = dataclasses.replace(generate, replicate=args.replicate)
            picked = dataclasses.replace(picked, replicate=args.replicate)
        instance_seed = generate.seed
    else:  # validation: a validation-seed instance, the same intervals, validation states
        instance_seed, picked = VALIDATION.seed(0), TestStates("validation")
    picked = dataclasses.replace(picked, intervals=intervals)
    rows = []
    for regions in [int(r) for r in args.regions.split(",")]:
        problem = generate_problem(regions, instance_seed)
        states = picked.draw(problem)
        budget = steps.get(regions)
        if budget is None:
            raise SystemExit(f"no step budget for {regions} regions: give --steps {regions}:N")
        out = args.runs / f"{args.split}-{regions}r-seed{args.seed}"
        if args.reuse:
            train_s = reused_training_time(out, args.spec, args.seed, budget)
        else:
            t0 = time.perf_counter()
            make_solver(args.spec).fit(problem, seed=args.seed, steps=budget, out_dir=out)
            train_s = time.perf_counter() - t0
        scip = solve_and_score(problem, states, make_solver("scip"))
        learned = make_solver(f"madrl_tvc[model={out}]")
        t1 = time.perf_counter()
        tvc = solve_and_score(problem, states, learned)
        call_s = (time.perf_counter() - t1) / len(states)
        one_by_one = [solve_and_score(problem, [state], learned)[0] for state in states]  # the online time
        gaps, families = [], {}
        for state, mine, ref in zip(states, tvc, scip):
            if mine.cost is None or ref.cost is None:
                continue
            gap = (mine.cost - ref.cost) / ref.cost
            gaps.append(gap)
            families.setdefault(state_family(state.label), []).append(gap)
        decision_s = statistics.mean(r.time_s for r in tvc)
        online_s = statistics.median(r.time_s for r in one_by_one)
        scip_s = statistics.mean(r.time_s for r in scip)
        scip_median_s = statistics.median(r.time_s for r in scip)
        row = {
            "regions": regions,
            "groups": len(problem.groups),
            "states": len(states),
            "steps": budget,
            "train_s": train_s,
            "reused_model": args.reuse,
            "answered": len(gaps),
            "statuses": {s: sum(r.status == s for r in tvc) for s in {r.status for r in tvc}},
            # SCIP stops at its 60 s default time limit: a 'feasible' reference is its incumbent
            "scip_statuses": {s: sum(r.status == s for r in scip) for s in {r.status for r in scip}},
            "gap_mean": statistics.mean(gaps) if gaps else None,
            "gap_worst": max(gaps) if gaps else None,
            "gap_by_family": {f: {"mean": statistics.mean(g), "worst": max(g)} for f, g in families.items()},
            "decision_s_per_state": decision_s,  # batched: one call for all states, per state
            "decision_s_one_state_per_call": online_s,  # median
            "scip_s_median": scip_median_s,
            "scip_over_tvc_one_state_per_call": scip_median_s / online_s,
            "one_by_one_equals_batched": all(
                a.dispatch is not None and b.dispatch is not None and (a.dispatch.on == b.dispatch.on).all()
                for a, b in zip(tvc, one_by_one)
            ),
            "solve_call_s_per_state": call_s,
            "scip_s_per_state": scip_s,
            "scip_over_tvc": scip_s / decision_s if decision_s else None,
            "messages_mean": statistics.mean(r.info.get("messages", 0) for r in tvc),
            "repaired": sum(r.info.get("commitment_repaired", 0) > 0 for r in tvc),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "gap_by_family"}), flush=True)
    out = {
        "spec": args.spec,
        "seed": args.seed,
        "split": args.split,
        "instance_seed": instance_seed,
        "states_seed": picked.seed,
        "intervals": intervals,
        "machine": {**run_metadata(), "load_average_at_end": os.getloadavg()},
        "sizes": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))
    print(f"written {args.out}")


def reused_training_time(folder: Path, spec: str, seed: int, steps: int) -> float:
    """The training time recorded in a model this script trained, after checking it is the model
    asked for (its spec, seed and step count)."""
    meta = json.loads((folder / "model.json").read_text())
    found, wanted = (meta.get("spec"), meta.get("seed"), meta.get("steps")), (spec, seed, steps)
    # the model records its spec with the defaults it resolved (madrl_tvc -> madrl_tvc[share=agent]):
    # the spec asked for matches when its name and every parameter it gives agree
    name, params = parse_spec(spec)
    model_name, model_params = parse_spec(str(meta.get("spec", "")))
    same_spec = name == model_name and all(model_params.get(k) == v for k, v in params.items())
    if not same_spec or found[1:] != wanted[1:]:
        raise SystemExit(f"{folder}: the model there is (spec, seed, steps) = {found}, not {wanted}; drop --reuse")
    return float(meta["train_time_s"])


if __name__ == "__main__":
    main()
