"""Where one MADRL-TVC training step spends its time, at a given instance size.

Why: issue 19 (item 2) asks for training that costs seconds per step at 128 regions; a step is
many clearings (the policy rounds, every counterfactual plan the competition scores), feature
hearings, network updates and cost fits, and only a profile says which of them to make cheaper.
The script trains a team on a generated validation-seed instance (``generate_problem(R, 1000)``)
through the learner's own training loop, after a short warm-up that is not timed, and profiles
``--steps`` steps with cProfile: the cumulative time of the parts named in ``PARTS`` (a part
missing in a version of the code reads 0) and the wall time per step. Results are merged into
one JSON file under a ``--label`` (``before``/``after`` a change), per size.

    nice -n 5 python benchmarks/profile_tvc_step.py --regions 32,128 --label after \
        --out benchmarks/results/tvc-profile.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dispatchbench.bench.plugins import make_solver
from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import VALIDATION

ROOT = Path(__file__).resolve().parent.parent

# (label, file suffix, function name): cumulative seconds of each, read from the profile
PARTS = (
    ("clearing (price search)", "formulations/balancing.py", "balance"),
    ("features after a clearing", "tvc/features.py", "after_clearing"),
    ("policy and move rounds", "tvc/rounds.py", "policy_rounds"),
    ("targets: plan competition and counterfactuals", "tvc/training.py", "store_targets"),
    ("  scoring tried plans (clear + true cost)", "tvc/competition.py", "score"),
    ("  local search (compete)", "tvc/competition.py", "compete"),
    ("  team cost of plans", "model/evaluate.py", "group_costs"),
    ("network updates (first design)", "tvc/team.py", "update_commitment"),
    ("network updates (shared policy)", "tvc/policy.py", "update"),
    ("cost curves (calibration fit)", "tvc/curves.py", "fit_curves"),
    ("  commitment and move targets", "tvc/competition.py", "commitment_targets"),
    ("  sampled counterfactuals of move points", "tvc/training.py", "point_samples"),
    ("monitor rewards (Fig. 5 log)", "tvc/training.py", "monitor_reward"),
    ("state sampling", "learn/marl_env.py", "sample_many"),
)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    total = 0.0
    for (path, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and path.replace(os.sep, "/").endswith(suffix):
            total += ct
    return total


def profile_size(regions: int, spec: str, steps: int, warm: int) -> dict:
    """Train ``warm`` steps untimed, then profile ``steps`` more (resumed from the checkpoint)."""
    problem = generate_problem(regions, VALIDATION.seed(0))
    solver = make_solver(spec)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        t0 = time.perf_counter()
        solver.fit(problem, seed=0, steps=warm, out_dir=out)
        warm_s = time.perf_counter() - t0
        prof = cProfile.Profile()
        t1, c1 = time.perf_counter(), time.process_time()
        prof.enable()
        make_solver(spec).fit(problem, seed=0, steps=warm + steps, out_dir=out, resume=True)
        prof.disable()
        wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    stats = pstats.Stats(prof)
    parts = {label: cumulative(stats, suffix, name) / steps for label, suffix, name in PARTS}
    return {
        "regions": regions,
        "groups": len(problem.groups),
        "spec": spec,
        "profiled_steps": steps,
        "untimed_steps_before": warm,
        "untimed_s": warm_s,
        "wall_s_per_step": wall / steps,  # includes resuming (loading the checkpoint) once
        "cpu_s_per_step": cpu / steps,  # this process's CPU time: what a step costs on an idle core
        "seconds_per_step": parts,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", default="32,128")
    ap.add_argument("--spec", default="madrl_tvc[checkpoint_every=100000]")
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per size")
    ap.add_argument("--warm", type=int, default=1, help="untimed steps first (buffers filled)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tvc-profile.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    rows = []
    for regions in [int(r) for r in args.regions.split(",")]:
        row = profile_size(regions, args.spec, args.steps, args.warm)
        print(json.dumps(row, indent=1), flush=True)
        rows.append(row)
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[args.label] = {"revision": revision.stdout.strip(), "sizes": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
