"""Decision time and messages of the learned dispatchers, batched over a day, against SCIP.

Why: issue 10 asks for a day's states decided in one batch (every agent's networks on all states
at once, one vectorised price search) at ≤ 1 ms per state at the paper's size, and for the
message count per decision of the bids + exact tree aggregation (≤ 3,000 at the paper's size,
≤ 50,000 at 32 regions). SCIP is timed on the same states in the same run, so the ratio does not
depend on how busy the shared machine was.

    nice -n 5 python benchmarks/bench_decisions.py          # writes benchmarks/results/decisions.json

Models: short training runs (``--tvc-steps``, ``--maddpg-steps``; decision time hardly depends on
how well a model is trained, only on how often its commitment needs repair) unless trained
models are given. States: one generated validation day (96 intervals) of ``--family``; the
32-region instance comes from ``generate_problem(32, 0)``, where the messages of one decision are
counted with an untrained team (the protocol, not the policy, sets the count) and compared with
the documented formula.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dispatchbench import load_problem
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.formulations.distributed_search import CommGraph, DistributedSearch
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import validation_states
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.model.problem import Problem, State

ROOT = Path(__file__).resolve().parent.parent


def time_solver(problem: Problem, states: list[State], spec: str, repeat: int) -> dict[str, Any]:
    """Per-state time of one batched call (best of ``repeat``, after a warm call) and of one call per state."""
    solver = make_solver(spec)
    solver.solve(problem, states[:2])  # load the model / build the SCIP model outside the timing
    batched = []
    for _ in range(repeat):
        t = time.perf_counter()
        answers = solver.solve(problem, states)
        batched.append((time.perf_counter() - t) / len(states))
    t = time.perf_counter()
    for s in states:
        solver.solve(problem, [s])
    single = (time.perf_counter() - t) / len(states)
    messages = [a.info.get("messages", 0) for a in answers]
    return {
        "spec": spec,
        "states": len(states),
        "batched_s_per_state": min(batched),
        "batched_s_per_state_all": batched,
        "one_by_one_s_per_state": single,
        "messages_mean": statistics.mean(messages),
        "messages_max": max(messages),
        "repaired_states": sum(1 for a in answers if a.info.get("commitment_repaired")),
        "statuses": sorted({a.status for a in answers}),
    }


def messages_at(problem: Problem, n_states: int) -> dict[str, Any]:
    """Messages of one TVC decision (refine=0) on ``problem`` with an untrained team, and the formula."""
    from dispatchbench.learn.tvc.decision import decide_batch
    from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
    from dispatchbench.learn.tvc.team import Team

    team = Team(problem, Hyperparameters(), seed=0)
    states = validation_states(problem, families=("base_load",), stride=96 // n_states)[:n_states]
    decided = [d.info for d in decide_batch(team, states, observation_matrix(problem, states))]
    counts = [info["messages"] for info in decided]
    it = Hyperparameters().search_iterations
    return {
        "groups": len(problem.groups),
        "regions": len(problem.regions),
        "clearing_formula_bids_tree": DistributedSearch(problem, iterations=it).messages_per_decision(),
        "clearing_formula_star_ring_before": DistributedSearch(
            problem, CommGraph(within="star", between="ring"), iterations=it
        ).messages_per_decision(),
        "maddpg_clearing_formula_bids_tree": DistributedSearch(problem).messages_per_decision(),
        "tvc_measured_untrained": {
            "mean": statistics.mean(counts),
            "max": max(counts),
            "repaired": sum(1 for i in decided if i["commitment_repaired"]),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="base_load")
    ap.add_argument("--tvc-model", type=Path)
    ap.add_argument("--maddpg-model", type=Path)
    ap.add_argument("--tvc-steps", type=int, default=200)
    ap.add_argument("--maddpg-steps", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decisions.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    paper = load_problem(ROOT / "problems" / "paper-4region.toml")
    day = validation_states(paper, families=(args.family,))
    with tempfile.TemporaryDirectory() as tmp:
        tvc_model, maddpg_model, trained = args.tvc_model, args.maddpg_model, {}
        if tvc_model is None:
            tvc_model = Path(tmp) / "tvc"
            trained["madrl_tvc"] = (
                make_solver("madrl_tvc").fit(paper, seed=0, steps=args.tvc_steps, out_dir=tvc_model).time_s
            )
        if maddpg_model is None:
            maddpg_model = Path(tmp) / "maddpg"
            trained["maddpg"] = (
                make_solver("maddpg").fit(paper, seed=0, steps=args.maddpg_steps, out_dir=maddpg_model).time_s
            )
        rows = [
            time_solver(paper, day, spec, args.repeat)
            for spec in (
                f"madrl_tvc[model={tvc_model}]",
                f"madrl_tvc[model={tvc_model},refine=3]",
                f"maddpg[model={maddpg_model}]",
            )
        ]
    rows.append(time_solver(paper, day, "scip", 1))
    scip = rows[-1]["batched_s_per_state"]
    for row in rows:
        row["scip_over_this"] = scip / row["batched_s_per_state"]
    result = {
        "when": utc_timestamp(),
        "problem": paper.name,
        "states": f"validation day, family {args.family}",
        "training_s": trained,
        "training_steps": {"madrl_tvc": args.tvc_steps, "maddpg": args.maddpg_steps},
        "decisions": rows,
        "messages": {"paper": messages_at(paper, 12), "generated_32": messages_at(generate_problem(32, 0), 12)},
        "metadata": run_metadata(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    for row in rows:
        print(
            f"{row['spec']:<50} batched {1e3 * row['batched_s_per_state']:7.3f} ms/state  one-by-one "
            f"{1e3 * row['one_by_one_s_per_state']:7.3f} ms  SCIP/this {row['scip_over_this']:7.1f}  "
            f"messages {row['messages_mean']:.0f} (max {row['messages_max']})"
        )
    for name, m in result["messages"].items():
        print(name, json.dumps(m))
    print("written:", args.out)


if __name__ == "__main__":
    main()
