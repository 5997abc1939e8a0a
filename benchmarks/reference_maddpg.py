"""Reference MADDPG: AgileRL's MADDPG on dispatchbench's PettingZoo environment, scored against SCIP.

Why: the project's MADDPG (``solvers/maddpg.py``) is hand-written. To tell how much of its gap to
SCIP is the method and how much the implementation, a maintained library's MADDPG — AgileRL's
``agilerl.algorithms.MADDPG`` driven by AgileRL's own off-policy trainer
``train_multi_agent_off_policy`` and replay buffer — is trained on the project's environment
(``dispatchbench.learn.pettingzoo_env.DispatchEnv``, the project MADDPG's reward weights) with the
project's **action format** and the same number of environment steps as ``maddpg``'s default
(``Maddpg.default_train_steps``), then scored on the same states as the project's MADDPG, trained
beside it in the same run (``--project-specs``).

The action format (issue 18, item 7): each charger group decides a discrete on/off and a continuous
power fraction ``u ∈ [0, 1]``, mapped exactly as the project maps its actors' outputs
(``learn.maddpg.decision.raw_actions``: off is ``-1``, on runs at ``lb + u·(ub − lb)``). AgileRL's
MADDPG gives each agent one action space, ``Discrete`` (trained through a Gumbel-softmax, as the
project's on/off head) or ``Box``; it has no hybrid space. So ``OnOffPowerEnv`` gives every group two
AgileRL agents on the group's own observation: ``<group>-on`` with ``Discrete(2)`` and
``<group>-power`` with ``Box(0, 1, (1,))``, both rewarded with the group's reward, every critic seeing
every agent's observation and action (MADDPG's centralised critic). The one change to the library:
its ``concatenate_spaces`` refuses a mix of Discrete and Box when it builds the critics' action space
(``TypeError: Unsupported space types: {Discrete, Box}``, quoted in
``benchmarks/results/reference-maddpg-install.txt``), although its ``learn`` stacks a discrete agent's
action as its one-hot vector beside the Box actions anyway; ``widened_spaces`` hands it a Discrete(n)
as the Box of that one-hot vector, so the critics are built with the width ``learn`` feeds them.

Scoring: the library's deterministic actions are scored (1) exactly as the environment maps them
(``marl_env.outcome``) and (2) through the project MADDPG's execution path (``decide_batch``: the
same mapping plus the cost-blind commitment repair, eagerness = the on-agent's probability margin),
which is how the project's MADDPG is scored. States: ``--split validation`` (default, for checks) or
``--split test --replicate N`` (the lead's final tables), ``--stride``/``--random`` as in
``benchmarks/train_learned.py``; ``--reported`` adds the paper's Table IV state and real-data day.

Install (AgileRL is NOT a project extra: agilerl 2.58.0 requires ``pettingzoo<1.27`` while the
project pins 1.27.0 — ``benchmarks/results/reference-maddpg-install.txt``)::

    python -m venv --system-site-packages /tmp/maddpg-refvenv
    echo "torch==2.13.0" > /tmp/maddpg-refvenv-constraints.txt
    /tmp/maddpg-refvenv/bin/pip install -c /tmp/maddpg-refvenv-constraints.txt agilerl==2.58.0 peft==0.21.0
    nice -n 5 /tmp/maddpg-refvenv/bin/python benchmarks/reference_maddpg.py --seeds 0 --split validation \
        --out benchmarks/results/reference-maddpg-validation.json

Writes ``--out`` after every seed.
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
    import agilerl.algorithms.maddpg as agilerl_maddpg
    from agilerl.algorithms import MADDPG
    from agilerl.components.replay_buffer import ReplayBuffer
    from agilerl.training.train_multi_agent_off_policy import train_multi_agent_off_policy
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
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
from dispatchbench.instances.protocol import split_states
from dispatchbench.learn.maddpg.decision import decide_batch, raw_actions
from dispatchbench.learn.marl_env import observation_matrix, outcome
from dispatchbench.learn.pettingzoo_env import DispatchEnv
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import Evaluation, evaluate
from dispatchbench.model.problem import Problem, State
from dispatchbench.report.tables import cost_per_hour, state_family
from dispatchbench.solvers.maddpg import Hyperparameters as ProjectHyperparameters
from dispatchbench.solvers.maddpg import Maddpg

ROOT = Path(__file__).resolve().parent.parent
PROJECT_STEPS = Maddpg.default_train_steps  # one state, one joint action per step, as in Maddpg.fit
REWARD = ProjectHyperparameters().reward()  # the project MADDPG's environment reward weights

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
# warm-up transitions, batch 128, both learning rates 1e-3 (five times the updates of the defaults).
MATCHED: dict[str, Any] = {**LIBRARY_DEFAULTS, "batch_size": 128, "lr_critic": 1e-3, "learn_step": 1}
MATCHED["learning_delay"] = 500
CONFIGS = {"library-defaults": LIBRARY_DEFAULTS, "matched": MATCHED}
VERSIONED = ("agilerl", "torch", "pettingzoo", "tensordict", "gymnasium", "numpy")
# AgileRL's MLP encoder with one hidden layer of 64 (its default has two) and a head of 64: each
# actor is 3 -> 64 -> 64 -> 64 -> output, close to the project's two hidden layers of 64.
NET_CONFIG = {"encoder_config": {"hidden_size": [64]}, "head_config": {"hidden_size": [64]}}


class OnOffPowerEnv(ParallelEnv):
    """``DispatchEnv`` with the project's action format: two AgileRL agents per group (module docstring)."""

    metadata = {"name": "dispatchbench_onoff_power_v0", "render_modes": []}

    def __init__(self, inner: DispatchEnv) -> None:
        self.inner = inner
        self.groups = list(inner.possible_agents)
        # no "_" in the ids: AgileRL would group "<prefix>_<k>" agents onto one shared network
        self.possible_agents = [f"{g}-on" for g in self.groups] + [f"{g}-power" for g in self.groups]
        self.agents: list[str] = []
        self._on = spaces.Discrete(2)
        self._power = spaces.Box(0.0, 1.0, (1,), np.float32)

    def observation_space(self, agent: str):
        return self.inner.observation_space(agent.rsplit("-", 1)[0])

    def action_space(self, agent: str):
        return self._on if agent.endswith("-on") else self._power

    def _per_agent(self, per_group: dict[str, Any]) -> dict[str, Any]:
        return {f"{g}-{part}": v for g, v in per_group.items() for part in ("on", "power")}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.inner.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._per_agent(obs), self._per_agent(info)

    def step(self, actions: dict[str, Any]):
        on = np.array([float(np.asarray(actions[f"{g}-on"]).reshape(-1)[0]) for g in self.groups])
        u = np.array([float(np.asarray(actions[f"{g}-power"]).reshape(-1)[0]) for g in self.groups])
        raw = raw_actions(on, np.clip(u, 0.0, 1.0), self.inner.problem.commitment)
        obs, rew, term, trunc, info = self.inner.step({g: np.array([a]) for g, a in zip(self.groups, raw)})
        self.agents = []
        return tuple(self._per_agent(x) for x in (obs, rew, term, trunc, info))


def widened_spaces(space_list: list) -> Any:
    """AgileRL's ``concatenate_spaces`` with a Discrete(n) read as the Box of its one-hot vector,
    which is what its ``learn`` stacks into the critics' input (module docstring)."""
    return _concatenate(
        [spaces.Box(0.0, 1.0, (int(s.n),), np.float32) if isinstance(s, spaces.Discrete) else s for s in space_list]
    )


_concatenate = agilerl_maddpg.concatenate_spaces


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_agilerl(
    problem: Problem, seed: int, steps: int, config: dict[str, Any], evo_steps: int
) -> tuple[MADDPG, float, str]:
    """AgileRL's own trainer, one agent in the population, no HPO, no mutation: plain MADDPG.
    Returns the trained algorithm, its wall time and the library's refusal of the default build."""
    seed_all(seed)
    env = OnOffPowerEnv(DispatchEnv(problem, seed=seed, reward=REWARD))
    ids = list(env.possible_agents)
    algo_kw = {k: v for k, v in config.items() if k != "learning_delay"}
    kwargs = dict(
        observation_spaces=[env.observation_space(a) for a in ids],
        action_spaces=[env.action_space(a) for a in ids],
        agent_ids=ids,
        net_config=NET_CONFIG,
        device="cpu",
        **algo_kw,
    )
    refusal = ""
    try:
        agent = MADDPG(**kwargs)
    except TypeError as exc:  # the mixed Discrete/Box critic space: see widened_spaces
        refusal = f"{type(exc).__name__}: {exc}"
        agilerl_maddpg.concatenate_spaces = widened_spaces
        try:
            seed_all(seed)
            agent = MADDPG(**kwargs)
        finally:
            agilerl_maddpg.concatenate_spaces = _concatenate
    memory = ReplayBuffer(max_size=100_000)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        pop, _ = train_multi_agent_off_policy(
            env,
            env_name="dispatchbench_onoff_power_v0",
            algo="MADDPG",
            pop=[agent],
            memory=memory,
            max_steps=steps,
            evo_steps=evo_steps,
            eval_loop=1,
            learning_delay=config["learning_delay"],
            verbose=False,
        )
    return pop[0], time.perf_counter() - t0, refusal


def agilerl_actions(agent: MADDPG, problem: Problem, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray]:
    """``(B, G)`` deterministic raw actions in the environment's format and the on/off margins."""
    agent.set_training_mode(False)
    obs = observation_matrix(problem, states)  # (B, G, 3), the env's own observation code
    per_agent = {}
    for i, g in enumerate(problem.group_names):
        per_agent[f"{g}-on"] = obs[:, i, :]
        per_agent[f"{g}-power"] = obs[:, i, :]
    processed, raw = agent.get_action(per_agent)
    n = len(states)
    on = np.stack([np.asarray(processed[f"{g}-on"]).reshape(n) for g in problem.group_names], axis=1)
    u = np.stack([np.asarray(processed[f"{g}-power"]).reshape(n) for g in problem.group_names], axis=1)
    probs = np.stack([np.asarray(raw[f"{g}-on"]).reshape(n, 2) for g in problem.group_names], axis=1)
    margin = probs[..., 1] - probs[..., 0]
    return raw_actions(on.astype(float), np.clip(u, 0.0, 1.0), problem.commitment), margin


def env_records(problem: Problem, states: Sequence[State], raw: np.ndarray, search: DistributedSearch) -> list[Record]:
    """Each state's dispatch exactly as ``DispatchEnv.step`` builds it, scored by the evaluator."""
    out = []
    for state, row in zip(states, raw):
        dispatch = outcome(problem, state, row, reward=REWARD, search=search).dispatch
        ev = evaluate(problem, state, dispatch)
        out.append(_record(state, ev, {}))
    return out


def repaired_records(
    problem: Problem, states: Sequence[State], raw: np.ndarray, margin: np.ndarray, search: DistributedSearch
) -> list[Record]:
    """The same actions through the project MADDPG's execution path (``decide_batch``)."""
    out = []
    answers = decide_batch(problem, states, raw, search, time.perf_counter(), eagerness=margin)
    for state, answer in zip(states, answers):
        ev = evaluate(problem, state, answer.dispatch)
        out.append(_record(state, ev, {"repaired": answer.info.get("commitment_repaired", 0)}))
    return out


def _record(state: State, ev: Evaluation, info: dict[str, Any]) -> Record:
    if not ev.feasible:
        family = max(ev.violations, key=ev.violations.get)
        info = {**info, "violated": family, "violation_kw": ev.violations[family]}
    return Record(
        state=state.label,
        solver="agilerl-maddpg",
        status="feasible" if ev.feasible else "infeasible",
        cost=ev.cost if ev.feasible else None,
        max_violation=ev.max_violation,
        time_s=0.0,
        info=info,
    )


def gap(cost: float | None, ref: float | None) -> float | None:
    return None if cost is None or ref is None else (cost - ref) / ref


def set_summary(recs: Sequence[Record], refs: Sequence[Record]) -> dict[str, Any]:
    """Mean and worst state gap over the states SCIP solved, the per-hour gap (None unless every
    such state had a feasible answer: never averaged over fewer states), feasible counts."""
    solved = [(r, ref) for r, ref in zip(recs, refs) if ref.cost is not None]
    ok = [(r, ref) for r, ref in solved if r.cost is not None]
    gaps = [gap(r.cost, ref.cost) for r, ref in ok]
    row: dict[str, Any] = {
        "states": len(recs),
        "scip_solved": len(solved),
        "feasible": len(ok),
        "mean_state_gap": statistics.mean(gaps) if gaps else None,
        "worst_state_gap": max(gaps) if gaps else None,
        "per_hour_gap": gap(cost_per_hour([r.cost for r, _ in ok]), cost_per_hour([ref.cost for _, ref in ok]))
        if ok and len(ok) == len(solved)
        else None,
    }
    violated = Counter(r.info["violated"] for r in recs if "violated" in r.info)
    if violated:
        row["infeasible_by_family"] = dict(violated)
    if any("repaired" in r.info for r in recs):
        row["states_repaired"] = sum(r.info.get("repaired", 0) > 0 for r in recs)
    return row


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds per learner and execution path (None where a seed lacks the number)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for path in ("env_mapping", "with_project_repair", "solver_path"):
            if path in run:
                groups.setdefault(f"{run['config']} / {path}", []).append(run[path])
    out: dict[str, Any] = {}
    for key, sets in groups.items():
        row: dict[str, Any] = {"seeds": len(sets)}
        for name in sets[0]:
            for metric in ("mean_state_gap", "worst_state_gap", "per_hour_gap", "feasible"):
                values = [s[name].get(metric) for s in sets if s[name].get(metric) is not None]
                row[f"{name}.{metric}"] = statistics.mean(values) if len(values) == len(sets) else None
        out[key] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", type=Path, default=ROOT / "problems" / "paper-4region.toml")
    ap.add_argument("--steps", type=int, default=PROJECT_STEPS, help="environment steps per seed")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--configs", default="library-defaults", help=f"AgileRL settings: {', '.join(CONFIGS)}")
    ap.add_argument("--evo-steps", type=int, default=1000, help="AgileRL trainer: transitions between its evaluations")
    ap.add_argument("--split", default="validation", choices=("validation", "test"))
    ap.add_argument("--replicate", type=int, default=0, help="the split's replicate (test: the lead decides)")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--random", type=int, default=30)
    ap.add_argument("--reported", action="store_true", help="also score the Table IV state and the real-data day")
    ap.add_argument(
        "--project-specs",
        default="maddpg[sharing=agent],maddpg[sharing=type]",
        help="project MADDPG specs trained beside it on the same states ('' for none)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reference-maddpg-validation.json")
    args = ap.parse_args()
    torch.set_num_threads(1)  # several threads on a loaded 2-core machine slow AgileRL's updates tenfold
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"--configs: unknown {c!r}; use {', '.join(CONFIGS)}")
    specs = [s.strip() for s in args.project_specs.split(";" if ";" in args.project_specs else ",") if s.strip()]
    specs = _rejoin_brackets(specs)

    try:
        problem = load_problem(args.problem)
        sets: dict[str, list[State]] = {}
        if args.reported:
            sets["tableIV"] = load_states(ROOT / "problems" / "paper-4region-tableIV.csv", problem)
            sets["real_day"] = load_states(ROOT / "problems" / "paper-4region-day.csv", problem)
    except (InputError, OSError) as exc:  # one line naming the file, exit 2
        print(f"benchmarks/reference_maddpg.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    chosen = split_states(problem, args.split, stride=args.stride, random_count=args.random, replicate=args.replicate)
    for state in chosen:
        sets.setdefault(f"{args.split}:{state_family(state.label)}", []).append(state)
    t0 = time.perf_counter()
    reference = {name: solve_and_score(problem, states, make_solver("scip")) for name, states in sets.items()}
    scip_s = time.perf_counter() - t0
    search = DistributedSearch(problem)
    runs: list[dict[str, Any]] = []

    def write() -> None:  # after every seed, so a stopped run keeps what it finished
        out = {
            "what": "AgileRL MADDPG (on/off + power fraction) vs the project's MADDPG; gaps (cost - scip) / scip",
            "problem": problem.name,
            "steps": args.steps,
            "seeds": args.seeds,
            "split": args.split,
            "replicate": args.replicate,
            "test_states": {"stride": args.stride, "random": args.random},
            "reward": REWARD.__dict__,
            "agilerl_configs": {c: CONFIGS[c] for c in configs},
            "agilerl_net_config": NET_CONFIG,
            "evo_steps": args.evo_steps,
            "versions": {d: version(d) for d in VERSIONED},
            "states": {n: len(s) for n, s in sets.items()},
            "scip_solve_all_s": scip_s,
            "machine": {**run_metadata(), "load_average_at_end": os.getloadavg(), "torch_threads": 1},
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
            agent, wall, refusal = train_agilerl(problem, seed, args.steps, CONFIGS[cname], args.evo_steps)
            actions = {name: agilerl_actions(agent, problem, states) for name, states in sets.items()}
            row = {
                "learner": "agilerl.MADDPG (on/off Discrete(2) + power Box(0,1) per group)",
                "config": cname,
                "seed": seed,
                "steps": args.steps,
                "train_wall_s": wall,
                "library_refusal_of_the_mixed_critic_space": refusal,
                "env_mapping": {
                    n: set_summary(env_records(problem, s, actions[n][0], search), reference[n])
                    for n, s in sets.items()
                },
                "with_project_repair": {
                    n: set_summary(repaired_records(problem, s, *actions[n], search), reference[n])
                    for n, s in sets.items()
                },
                "on_fraction": {n: float((a[0] >= 0).mean()) for n, a in actions.items()},
            }
            runs.append(row)
            print(json.dumps({"seed": seed, "config": cname, "wall_s": round(wall, 1)}), flush=True)
            write()
        for spec in specs:
            with tempfile.TemporaryDirectory() as tmp:
                learner = make_solver(spec)
                t1 = time.perf_counter()
                report = learner.fit(problem, seed=seed, steps=args.steps, out_dir=Path(tmp), progress=False)
                wall = time.perf_counter() - t1
                solver = make_solver(f"maddpg[model={tmp}]")  # the model keeps its own hyper-parameters
                scored = {name: solve_and_score(problem, states, solver, seed=seed) for name, states in sets.items()}
            runs.append(
                {
                    "learner": f"dispatchbench {spec} (solvers/maddpg.py)",
                    "config": spec,
                    "seed": seed,
                    "steps": args.steps,
                    "train_wall_s": wall,
                    "training_cost": {k: v for k, v in report.info.items() if k != "training_messages_detail"},
                    "solver_path": {n: set_summary(scored[n], reference[n]) for n in sets},
                }
            )
            print(json.dumps({"seed": seed, "config": spec, "wall_s": round(wall, 1)}), flush=True)
            write()


def _rejoin_brackets(parts: list[str]) -> list[str]:
    """Specs split on commas, put back together where a comma sat inside brackets."""
    out: list[str] = []
    for part in parts:
        if out and out[-1].count("[") > out[-1].count("]"):
            out[-1] += "," + part
        else:
            out.append(part)
    return out


if __name__ == "__main__":
    main()
