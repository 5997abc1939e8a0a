"""Reference MADDPG: AgileRL's MADDPG on dispatchbench's PettingZoo environment, scored against SCIP.

Why: the project's MADDPG (``solvers/maddpg.py``) is hand-written. A reader who sees its gap to
SCIP cannot tell how much is the method (MADDPG on one-step dispatch episodes with the env's
action mapping) and how much is this implementation. This script trains a maintained library's
MADDPG — AgileRL's ``agilerl.algorithms.MADDPG`` driven by AgileRL's own off-policy trainer
``train_multi_agent_off_policy`` and replay buffer — on the unchanged environment
``dispatchbench.learn.pettingzoo_env.DispatchEnv`` with the project MADDPG's reward weights and the
same number of environment transitions (6,000: one sampled state and one joint action per
step, as in ``Maddpg.fit``). The final policy is then executed exactly as the environment maps
actions (``marl_env.outcome``: action mapping, distributed search closing the balances), each
dispatch is scored by ``dispatchbench.model.evaluate.evaluate``, and the costs are compared with
SCIP on the Table IV state and on the protocol's test states (``test_states(stride=4,
random_count=30)``, grouped by family). The same actions are also scored through the project
MADDPG's execution path (``decide_batch``: the env's mapping plus its cost-blind commitment
repair), which is what the library's policy would score as a solver here. The project's own
MADDPG is trained and scored on the same states in the same run (skip with
``--no-project-maddpg``), so the numbers sit side by side under the same machine load.
Configurations (``--configs``): ``library-defaults`` (AgileRL's defaults, Gaussian noise: see
``LIBRARY_DEFAULTS``), ``matched`` (the project MADDPG's batch, learning rates, update rate and
warm-up) and ``library-defaults-ou`` (AgileRL exactly as shipped).

Install (AgileRL is NOT a project extra: agilerl 2.58.0 requires ``pettingzoo<1.27`` while the
project pins pettingzoo 1.27.0 — see ``benchmarks/results/reference-maddpg-install.txt``). Use a
throwaway venv that sees the project's packages and keeps torch 2.13.0; inside it pip replaces
pettingzoo with 1.26.1, which has the same ``ParallelEnv`` API the environment uses. ``peft`` is
listed because agilerl 2.58.0 imports it when ``agilerl.algorithms`` loads but declares it only in
its ``llm`` extras::

    python -m venv --system-site-packages /tmp/refvenv
    echo "torch==2.13.0" > /tmp/refvenv-constraints.txt
    /tmp/refvenv/bin/pip install -c /tmp/refvenv-constraints.txt agilerl==2.58.0 peft==0.21.0
    nice -n 10 /tmp/refvenv/bin/python benchmarks/reference_maddpg.py --seeds 0,1,2

Writes ``benchmarks/results/reference-maddpg.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    from agilerl.algorithms import MADDPG
    from agilerl.components.replay_buffer import ReplayBuffer
    from agilerl.training.train_multi_agent_off_policy import train_multi_agent_off_policy
except ImportError as exc:  # the usual case in the project's own environment: say how to get it
    print(
        f"benchmarks/reference_maddpg.py: cannot import AgileRL ({exc}); run it with the venv python "
        "described at the top of this file (agilerl==2.58.0 peft==0.21.0, torch==2.13.0)",
        file=sys.stderr,
    )
    raise SystemExit(2) from None

from dispatchbench import load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.run_metadata import run_metadata
from dispatchbench.bench.scoring import Record, solve_and_score
from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.instances.protocol import test_states
from dispatchbench.learn.marl_env import observation_matrix, outcome
from dispatchbench.learn.pettingzoo_env import DispatchEnv
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import Evaluation, evaluate
from dispatchbench.model.problem import Problem, State
from dispatchbench.report.tables import cost_per_hour, state_family
from dispatchbench.solvers.maddpg import Hyperparameters as ProjectHyperparameters
from dispatchbench.solvers.maddpg import decide_batch

ROOT = Path(__file__).resolve().parent.parent
PROJECT_STEPS = 6000  # Maddpg.default_train_steps: one state, one joint action, one update per step
REWARD = ProjectHyperparameters().reward()  # the project MADDPG's reward weights (penalty 12/kW)

# AgileRL's MADDPG defaults, except the exploration noise: AgileRL's Ornstein-Uhlenbeck noise is
# reset at every episode end, and every episode here is one step, so OU noise would be a single
# increment of std expl_noise·sqrt(dt) = 0.01. Gaussian noise (AgileRL's O_U_noise=False) keeps
# the intended std 0.1.
LIBRARY_DEFAULTS: dict[str, Any] = {
    "O_U_noise": False,
    "expl_noise": 0.1,
    "batch_size": 64,
    "lr_actor": 1e-3,
    "lr_critic": 1e-2,
    "learn_step": 5,
    "gamma": 0.95,
    "tau": 0.01,
    "learning_delay": 0,
}
# The project MADDPG's budget knobs on AgileRL's algorithm: one update per transition after 500
# warm-up transitions, batch 128, both learning rates 1e-3, two hidden layers of 64.
MATCHED: dict[str, Any] = {
    "O_U_noise": False,
    "expl_noise": 0.1,
    "batch_size": 128,
    "lr_actor": 1e-3,
    "lr_critic": 1e-3,
    "learn_step": 1,
    "gamma": 0.95,
    "tau": 0.01,
    "learning_delay": 500,
}
# AgileRL exactly as shipped (Ornstein-Uhlenbeck noise), to show what the noise switch above changes.
LIBRARY_DEFAULTS_OU: dict[str, Any] = {**LIBRARY_DEFAULTS, "O_U_noise": True}
CONFIGS = {"library-defaults": LIBRARY_DEFAULTS, "matched": MATCHED, "library-defaults-ou": LIBRARY_DEFAULTS_OU}
VERSIONED = ("agilerl", "torch", "pettingzoo", "tensordict", "gymnasium", "numpy")
# Every config: AgileRL's MLP encoder with one hidden layer of 64 (its default has two) and a head
# of 64, i.e. each actor is 3 -> 64 -> 64 -> 64 -> tanh, close to the project's two hidden layers of 64.
NET_CONFIG = {"encoder_config": {"hidden_size": [64]}, "head_config": {"hidden_size": [64]}}


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_agilerl(
    problem: Problem, seed: int, steps: int, config: dict[str, Any], evo_steps: int
) -> tuple[MADDPG, float]:
    """AgileRL's own trainer, one agent in the population, no HPO, no mutation: plain MADDPG."""
    seed_all(seed)
    env = DispatchEnv(problem, seed=seed, reward=REWARD)
    ids = list(env.possible_agents)
    algo_kw = {k: v for k, v in config.items() if k != "learning_delay"}
    agent = MADDPG(
        observation_spaces=[env.observation_space(a) for a in ids],
        action_spaces=[env.action_space(a) for a in ids],
        agent_ids=ids,
        net_config=NET_CONFIG,
        device="cpu",
        **algo_kw,
    )
    memory = ReplayBuffer(max_size=100_000)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        pop, _ = train_multi_agent_off_policy(
            env,
            env_name="dispatchbench_v0",
            algo="MADDPG",
            pop=[agent],
            memory=memory,
            max_steps=steps,
            evo_steps=evo_steps,
            eval_loop=1,
            learning_delay=config["learning_delay"],
            verbose=False,
        )
    return pop[0], time.perf_counter() - t0


def agilerl_raw_actions(agent: MADDPG, problem: Problem, states: Sequence[State]) -> np.ndarray:
    """``(B, G)`` deterministic actions in [-1, 1] (no exploration noise) from the env's observations."""
    agent.set_training_mode(False)
    obs = observation_matrix(problem, states)  # (B, G, 3), the env's own observation code
    actions, _ = agent.get_action({a: obs[:, i, :] for i, a in enumerate(problem.group_names)})
    return np.stack([np.asarray(actions[a]).reshape(len(states)) for a in problem.group_names], axis=1)


def env_records(
    problem: Problem, states: Sequence[State], raw: np.ndarray, search: DistributedSearch, spec: str
) -> list[Record]:
    """Each state's dispatch exactly as ``DispatchEnv.step`` builds it, scored by the evaluator."""
    out = []
    for state, row in zip(states, raw):
        dispatch = outcome(problem, state, row, reward=REWARD, search=search).dispatch
        ev = evaluate(problem, state, dispatch)
        out.append(
            Record(
                state=state.label,
                solver=spec,
                status="feasible" if ev.feasible else "infeasible",
                cost=ev.cost if ev.feasible else None,
                max_violation=ev.max_violation,
                time_s=0.0,
                dispatch=dispatch,
                info=violation_info(ev),
            )
        )
    return out


def repaired_records(
    problem: Problem, states: Sequence[State], raw: np.ndarray, search: DistributedSearch, spec: str
) -> list[Record]:
    """The same actions through the project MADDPG's execution path (``decide_batch``: the env's
    mapping plus a cost-blind commitment repair when the balances cannot be met) — what the
    library's policy would score if it were plugged in as a solver here."""
    out = []
    for state, answer in zip(states, decide_batch(problem, states, raw, search, time.perf_counter())):
        ev = evaluate(problem, state, answer.dispatch)
        out.append(
            Record(
                state=state.label,
                solver=spec,
                status="feasible" if ev.feasible else "infeasible",
                cost=ev.cost if ev.feasible else None,
                max_violation=ev.max_violation,
                time_s=0.0,
                info={"repaired": answer.info.get("commitment_repaired", 0), **violation_info(ev)},
            )
        )
    return out


def violation_info(ev: Evaluation) -> dict[str, Any]:
    """Which constraint family an infeasible dispatch breaks most, and by how many kW."""
    if ev.feasible:
        return {}
    family = max(ev.violations, key=ev.violations.get)
    return {"violated": family, "violation_kw": ev.violations[family]}


def gap(cost: float | None, ref: float | None) -> float | None:
    return None if cost is None or ref is None else (cost - ref) / ref


def set_summary(name: str, recs: Sequence[Record], refs: Sequence[Record]) -> dict[str, Any]:
    """Table IV: the one state's gap. A family: the per-hour gap over the whole day (None unless
    every state was feasible: never averaged over fewer states), the mean and worst state gap."""
    ok = [(r, ref) for r, ref in zip(recs, refs) if r.cost is not None and ref.cost is not None]
    gaps = [gap(r.cost, ref.cost) for r, ref in ok]
    solved_by_scip = sum(ref.cost is not None for ref in refs)
    whole = len(ok) == solved_by_scip and solved_by_scip == len(refs)
    row: dict[str, Any] = {
        "states": len(recs),
        "feasible": sum(r.cost is not None for r in recs),
        "scip_solved": solved_by_scip,
        "mean_state_gap": statistics.mean(gaps) if gaps else None,
        "worst_state_gap": max(gaps) if gaps else None,
    }
    if name == "tableIV":
        row["gap"] = gaps[0] if gaps else None
        row["cost"], row["scip_cost"] = recs[0].cost, refs[0].cost
    else:
        row["per_hour_gap"] = (
            gap(cost_per_hour([r.cost for r, _ in ok]), cost_per_hour([ref.cost for _, ref in ok]))
            if whole and ok
            else None
        )
    violated = Counter(r.info["violated"] for r in recs if "violated" in r.info)
    if violated:
        row["infeasible_by_family"] = dict(violated)
        row["violation_kw_max"] = max(r.info["violation_kw"] for r in recs if "violation_kw" in r.info)
    if any("repaired" in r.info for r in recs):
        row["states_repaired"] = sum(r.info.get("repaired", 0) > 0 for r in recs)
    return row


def score_sets(sets: dict[str, list[State]], recs_of, reference: dict[str, list[Record]]) -> dict[str, Any]:
    return {name: set_summary(name, recs_of(name, states), reference[name]) for name, states in sets.items()}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of each headline number, per learner and execution path (None where no
    seed had it: a family whose day was not wholly feasible has no per-hour gap)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for path in ("env_mapping", "with_project_repair", "solver_path"):
            if path in run:
                groups.setdefault(f"{run['config']} / {path}", []).append(run[path])
    out: dict[str, Any] = {}
    for key, sets in groups.items():
        row: dict[str, Any] = {"seeds": len(sets)}
        for name in sets[0]:
            for metric in ("gap", "per_hour_gap", "mean_state_gap", "worst_state_gap", "feasible"):
                values = [s[name].get(metric) for s in sets if s[name].get(metric) is not None]
                if metric in sets[0][name]:
                    row[f"{name}.{metric}"] = statistics.mean(values) if len(values) == len(sets) else None
        out[key] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", type=Path, default=ROOT / "problems" / "paper-4region.toml")
    ap.add_argument("--table-iv", type=Path, default=ROOT / "problems" / "paper-4region-tableIV.csv")
    ap.add_argument("--steps", type=int, default=PROJECT_STEPS, help="environment transitions per seed")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--configs", default="library-defaults,matched", help=f"AgileRL settings: {', '.join(CONFIGS)}")
    ap.add_argument("--evo-steps", type=int, default=500, help="AgileRL trainer: transitions between its evaluations")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--random", type=int, default=30)
    ap.add_argument("--no-project-maddpg", action="store_true", help="skip training the project's MADDPG alongside")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reference-maddpg.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"--configs: unknown {c!r}; use {', '.join(CONFIGS)}")

    try:
        problem = load_problem(args.problem)
        sets: dict[str, list[State]] = {"tableIV": load_states(args.table_iv, problem)}
    except (InputError, OSError) as exc:  # one line naming the file, exit 2
        print(f"benchmarks/reference_maddpg.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for state in test_states(problem, stride=args.stride, random_count=args.random):
        sets.setdefault(f"test:{state_family(state.label)}", []).append(state)
    t0 = time.perf_counter()
    reference = {name: solve_and_score(problem, states, make_solver("scip")) for name, states in sets.items()}
    scip_s = time.perf_counter() - t0
    search = DistributedSearch(problem)

    runs: list[dict[str, Any]] = []

    def write() -> None:  # after every seed, so a stopped run keeps what it finished
        scip = {
            n: {
                "solved": sum(r.cost is not None for r in recs),
                "cost_tableIV_or_per_hour": recs[0].cost
                if n == "tableIV"
                else cost_per_hour([r.cost for r in recs if r.cost is not None]),
            }
            for n, recs in reference.items()
        }
        out = {
            "what": "AgileRL MADDPG vs the project's MADDPG on paper-4region, gaps to SCIP (cost - scip) / scip",
            "problem": problem.name,
            "steps": args.steps,
            "seeds": args.seeds,
            "reward": REWARD.__dict__,
            "agilerl_configs": {c: CONFIGS[c] for c in configs},
            "agilerl_net_config": NET_CONFIG,
            "evo_steps": args.evo_steps,
            "versions": {d: version(d) for d in VERSIONED},
            "states": {n: len(s) for n, s in sets.items()},
            "test_states": {"stride": args.stride, "random": args.random},
            "scip": {"solve_all_s": scip_s, **scip},
            "machine": {
                **run_metadata(),
                "load_average_at_end": os.getloadavg(),
                "torch_threads": torch.get_num_threads(),
            },
            "summary": summarise(runs),
            "runs": runs,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(out, indent=2, default=lambda x: x.item() if isinstance(x, np.generic) else str(x))
        )
        print(f"written {args.out}", flush=True)

    for seed in [int(s) for s in args.seeds.split(",")]:
        for cname in configs:
            agent, wall = train_agilerl(problem, seed, args.steps, CONFIGS[cname], args.evo_steps)
            raw = {name: agilerl_raw_actions(agent, problem, states) for name, states in sets.items()}
            spec = f"agilerl-maddpg[{cname}]"
            row = {
                "learner": "agilerl.MADDPG",
                "config": cname,
                "seed": seed,
                "steps": args.steps,
                "train_wall_s": wall,
                "env_mapping": score_sets(sets, lambda n, s: env_records(problem, s, raw[n], search, spec), reference),
                "with_project_repair": score_sets(
                    sets, lambda n, s: repaired_records(problem, s, raw[n], search, spec), reference
                ),
                "on_fraction": {n: float((r >= 0).mean()) for n, r in raw.items()},
            }
            runs.append(row)
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "config": cname,
                        "wall_s": round(wall, 1),
                        "tableIV": row["env_mapping"]["tableIV"]["gap"],
                        **{n: v["per_hour_gap"] for n, v in row["env_mapping"].items() if n != "tableIV"},
                    }
                ),
                flush=True,
            )
        if not args.no_project_maddpg:
            with tempfile.TemporaryDirectory() as tmp:
                learner = make_solver("maddpg")
                t1 = time.perf_counter()
                learner.fit(problem, seed=seed, steps=args.steps, out_dir=Path(tmp), progress=False)
                wall = time.perf_counter() - t1
                solver = make_solver(f"maddpg[model={tmp}]")
                scored = {name: solve_and_score(problem, states, solver, seed=seed) for name, states in sets.items()}
            row = {
                "learner": "dispatchbench maddpg (solvers/maddpg.py)",
                "config": "project defaults",
                "seed": seed,
                "steps": args.steps,
                "train_wall_s": wall,
                "solver_path": score_sets(sets, lambda n, s: scored[n], reference),
            }
            runs.append(row)
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "config": "project",
                        "wall_s": round(wall, 1),
                        "tableIV": row["solver_path"]["tableIV"]["gap"],
                        **{n: v["per_hour_gap"] for n, v in row["solver_path"].items() if n != "tableIV"},
                    }
                ),
                flush=True,
            )
        write()


if __name__ == "__main__":
    main()
