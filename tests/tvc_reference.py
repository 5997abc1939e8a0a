"""Saved MADRL-TVC decisions: the reference a refactor of the learner must reproduce bit for bit.

Why: MADRL-TVC is many small parts (offers, features, policy and move rounds, repair, the
training competition); moving them between files must not change a single number. This module
trains tiny models through the plugin's public interface only (``make_solver(...).fit`` and
``solve``), records a hash of the trained networks and of the rest of the checkpoint (buffers,
optimiser moments, random states), and the decisions at saved states (on/off, power, imports and
the message accounting) with ``refine=0`` and ``refine=3``. ``tests/test_tvc_reference.py`` runs
the same cases again and compares.

Written with the code before the split into ``dispatchbench/learn/tvc/``, and regenerated (a
change meant to change the numbers) when the method became one policy per group type for any
size (shared networks, calibrated curves, sampled counterfactuals, zones of movers):

    python tests/tvc_reference.py          # writes tests/data/tvc_reference.json

Floats are stored as JSON numbers (Python writes the shortest repr that reads back exactly), so
equality is bit equality. The hashes hold on the machine and library versions that wrote them
and CPU capability (torch's kernels round differently elsewhere); the file records them and the
test is skipped, naming the difference, when they differ. Re-recorded on 2026-12-04 on an
AVX-512 machine: the code was unchanged (the same file came out at 59e1148 and at 27dbd78 there),
the earlier recording came from a machine whose kernels rounded differently. Regenerated again
when repaired plans got the move rounds once more (decision.moves_after_repair): the training
hashes stayed the same; only the decisions at repaired states changed. Regenerated when the
repair flipped in every region at once, in tree passes (``repair.py``; ``repair_passes`` joined
the info): the training hashes and every dispatch stayed the same; only the messages of repairs
that made two flips in one pass changed. Regenerated when the hand-over feature
(``handover_saving``) and the move rounds changed (s12), and when its partner became one
candidate per region (s13): both change the networks' inputs, so the training hashes changed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dispatchbench import State, load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.instances.protocol import test_states
from dispatchbench.learn.checkpoints import load_checkpoint
from dispatchbench.model.problem import Problem

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REFERENCE = DATA / "tvc_reference.json"
REFINES = (0, 3)
INFO_FIELDS = (
    "messages",
    "searches",
    "moves",
    "move_hearings",
    "move_returns",
    "commitment_repaired",
    "repair_passes",
    "refined_flips",
    "balanced",
    "price",
    "iterations",
)


@dataclass(frozen=True)
class Case:
    """One tiny training and the states its model decides."""

    name: str
    problem: Path
    spec: str
    seed: int
    steps: int

    def load(self) -> Problem:
        return load_problem(self.problem)


def _spec(**params: Any) -> str:
    return "madrl_tvc[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"


# share=type written out: the reference was recorded when it was the default (now ``auto``: per
# agent on one problem, which the gen8 case covers)
FAST = dict(share="type", states_per_step=2, search_rounds=3, batch_size=128, log_every=50)
CASES = (
    # the paper's instance, as tests/test_madrl_tvc.py's paper_model trains it
    Case("paper", ROOT / "problems" / "paper-4region.toml", _spec(**FAST), seed=0, steps=12),
    # a generated 8-region instance (19 groups), one network per agent, a mover per block of two
    # regions, more exploration of moves and sampled counterfactuals, so those paths are covered too
    Case(
        "gen8",
        DATA / "gen8-seed7.toml",
        _spec(**{**FAST, "share": "agent"}, zone_regions=2, move_explore=0.5, max_flips=8, max_swaps=16),
        seed=1,
        steps=6,
    ),
    # commitment off: offers only (no policy or move rounds, no competition)
    Case("convex", ROOT / "problems" / "paper-4region-convex.toml", _spec(**FAST), seed=0, steps=5),
)


def reference_states(case: Case, problem: Problem) -> list[State]:
    """Table IV and every 8th interval of the real-data day (paper instances), and generated
    test-seed states: every 12th interval of one day of each family and a few random states."""
    states: list[State] = []
    if case.name in ("paper", "convex"):
        states += load_states(ROOT / "problems" / "paper-4region-tableIV.csv", problem)
        states += load_states(ROOT / "problems" / "paper-4region-day.csv", problem)[::8]
    stride, random_count = (48, 2) if case.name == "convex" else (12, 4)
    states += test_states(problem, stride=stride, random_count=random_count)
    return states


def _update_tree(digest: Any, value: Any) -> None:
    """Feed a nested structure of tensors, arrays and plain values into ``digest`` canonically."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(f"<{key}>".encode())
            _update_tree(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"[{len(value)}".encode())
        for item in value:
            _update_tree(digest, item)
    elif isinstance(value, torch.Tensor):
        value = value.detach().contiguous()
        digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
        digest.update(value.numpy().tobytes() if value.dtype != torch.bfloat16 else value.float().numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    else:
        digest.update(repr(value).encode())


def tree_sha256(value: Any) -> str:
    digest = hashlib.sha256()
    _update_tree(digest, value)
    return digest.hexdigest()


def model_hashes(folder: Path) -> dict[str, str]:
    """``networks``: every network's weights; ``training_state``: optimisers, replay buffers,
    agents' scales and random states — everything else a resumed run continues from."""
    ckpt = load_checkpoint(folder)
    return {
        "networks": tree_sha256(ckpt.networks),
        "training_state": tree_sha256({"optimizers": ckpt.optimizers, "state": ckpt.state, "step": ckpt.step}),
    }


def state_json(state: State) -> dict[str, Any]:
    return {"label": state.label, "demand": dict(state.demand), "v2g_available": dict(state.v2g_available)}


def state_from_json(data: dict[str, Any]) -> State:
    return State(data["label"], dict(data["demand"]), dict(data["v2g_available"]))


def decisions(problem: Problem, model: Path, states: list[State], refine: int) -> list[dict[str, Any]]:
    """Every state's answer in one batch, as JSON-ready numbers (exact floats)."""
    answers = make_solver(f"madrl_tvc[model={model},refine={refine}]").solve(problem, states)
    out = []
    for state, answer in zip(states, answers):
        out.append(
            {
                "state": state.label,
                "status": answer.status,
                "on": [bool(x) for x in answer.dispatch.on],
                "power": [float(x) for x in answer.dispatch.power],
                "imports": [float(x) for x in answer.dispatch.imports],
                "info": {k: answer.info[k] for k in INFO_FIELDS},
            }
        )
    return out


def run_case(case: Case, folder: Path, states: list[State] | None = None) -> dict[str, Any]:
    """Train ``case`` into ``folder`` and decide its states (the saved ones when given)."""
    problem = case.load()
    make_solver(case.spec).fit(problem, seed=case.seed, steps=case.steps, out_dir=folder)
    states = reference_states(case, problem) if states is None else states
    return {
        "problem": str(case.problem.relative_to(ROOT)),
        "spec": case.spec,
        "seed": case.seed,
        "steps": case.steps,
        "hashes": model_hashes(folder),
        "states": [state_json(s) for s in states],
        "decisions": {str(r): decisions(problem, folder, states, r) for r in REFINES},
    }


def environment() -> dict[str, str]:
    """What the hashes hold on: library versions and the CPU's vector instructions torch's kernels
    use (the same versions round differently on an AVX2 and an AVX-512 machine)."""
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def dumps(data: dict[str, Any]) -> str:
    """The reference as JSON with one line per state and per decision (small, and diffs by state)."""

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    lines = ["{", f' "environment": {compact(data["environment"])},', ' "cases": {']
    for n, (name, case) in enumerate(data["cases"].items()):
        lines.append(f"  {compact(name)}: {{")
        for key in ("problem", "spec", "seed", "steps", "hashes"):
            lines.append(f"   {compact(key)}: {compact(case[key])},")
        lines.append('   "states": [')
        lines.append(",\n".join(f"    {compact(s)}" for s in case["states"]))
        lines.append("   ],")
        lines.append('   "decisions": {')
        for k, (refine, rows) in enumerate(case["decisions"].items()):
            lines.append(f"    {compact(refine)}: [")
            lines.append(",\n".join(f"     {compact(r)}" for r in rows))
            lines.append("    ]" + ("," if k < len(case["decisions"]) - 1 else ""))
        lines.append("   }")
        lines.append("  }" + ("," if n < len(data["cases"]) - 1 else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    out: dict[str, Any] = {"environment": environment(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            out["cases"][case.name] = run_case(case, Path(tmp) / case.name)
            print(f"{case.name}: {len(out['cases'][case.name]['states'])} states", file=sys.stderr)
    REFERENCE.write_text(dumps(out))
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
