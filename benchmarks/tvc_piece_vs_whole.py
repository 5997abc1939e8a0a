"""One per-instance MADRL-TVC model on its whole problem and on a piece of it: does the plan clear?

Why: a model trained on pieces of a 128-region instance (``learn/pieces.py``) misses low-load
states of the whole instance by 10-24 % while it decides a 32-region piece's states of the same
kind within 1-2 %. This script shows where the difference starts. For every state it prints the
gap to SCIP (``rel_gap=1e-9``, costs from the evaluator), whether the plan after the policy and
move rounds met every balance (before any repair), and the flips the repair by ratings made. It
prints these for the whole problem and for one random piece with that piece's own states of the
same family. Validation only: a validation-seed instance and validation states.

    python benchmarks/tvc_piece_vs_whole.py --model runs/m128 --regions 128 --piece 32 --family night_heavy
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dispatchbench.bench.plugins import make_solver
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import VALIDATION, validation_states
from dispatchbench.learn.marl_env import observation_matrix
from dispatchbench.learn.pieces import cut
from dispatchbench.learn.tvc.decision import decide_batch
from dispatchbench.learn.tvc.rounds import policy_rounds
from dispatchbench.learn.tvc.team import Team
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import Problem


def compare(team: Team, problem: Problem, family: str, stride: int) -> list[dict]:
    """Per state: gap to SCIP, whether the rounds' plan cleared, repair flips, groups on by type."""
    states = validation_states(problem, families=(family,), stride=stride)
    obs = observation_matrix(problem, states)
    run = policy_rounds(team, states, obs)
    decisions = decide_batch(team, states, obs)
    references = make_solver("scip").solve(problem, states)
    types = np.array([g.type.value for g in problem.groups])
    rows = []
    for j, (state, mine, ref) in enumerate(zip(states, decisions, references)):
        cost, best = evaluate(problem, state, mine.dispatch).cost, evaluate(problem, state, ref.dispatch).cost
        rows.append(
            {
                "state": state.label,
                "gap": (cost - best) / best,
                "rounds_plan_cleared": bool(run.result.feasible[j]),
                "repair_flips": mine.info["commitment_repaired"],
                "on_tvc": {t: int(mine.dispatch.on[types == t].sum()) for t in ("FDC", "ASC", "V2G")},
                "on_scip": {t: int(ref.dispatch.on[types == t].sum()) for t in ("FDC", "ASC", "V2G")},
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a per-instance model of generate_problem(REGIONS, 1000)")
    ap.add_argument("--regions", type=int, default=128)
    ap.add_argument("--piece", type=int, default=32, help="regions of the piece compared")
    ap.add_argument("--family", default="night_heavy")
    ap.add_argument("--stride", type=int, default=8)
    args = ap.parse_args()
    problem = generate_problem(args.regions, VALIDATION.seed(0))
    whole = make_solver(f"madrl_tvc[model={args.model}]").load(problem)
    regions = np.random.default_rng(args.piece).choice(len(problem.regions), args.piece, replace=False)
    piece, index = cut(problem, regions.tolist(), f"{args.piece}-region piece")
    part = Team(piece, whole.hp, whole.nets, whole.curves.rows(index))  # the same agents, their own curves
    for name, team, prob in (("whole", whole, problem), ("piece", part, piece)):
        for row in compare(team, prob, args.family, args.stride):
            print(json.dumps({"on": name, **row}))


if __name__ == "__main__":
    main()
