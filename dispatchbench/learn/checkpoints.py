"""Saving and loading trained models: networks, optimizers, RNG states and the training step.

A run's folder holds ``checkpoint.pt`` (everything needed to resume training bit for bit) and
``model.json`` (what the model is: solver, problem, seed, steps, hyper-parameters), so a
``solver[model=DIR]`` can refuse a model trained on another problem with a clear reason
instead of producing nonsense. Writes are atomic: an interrupted save never leaves a broken
checkpoint behind a good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dispatchbench.model.problem import Problem

CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "model.json"
FORMAT = 1


def problem_fingerprint(problem: Problem) -> str:
    """Hash of what a trained policy depends on structurally: groups, types, regions, ranges, CS
    limits. Costs are left out on purpose — learners never read them."""
    parts = [(g.name, g.type.value, g.region, g.p_min, g.p_max, g.efficiency) for g in problem.groups]
    parts += [(r.name, r.cs_max) for r in problem.regions] + [("commitment", problem.commitment)]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def capture_rng(generators: dict[str, np.random.Generator]) -> dict[str, Any]:
    """Every random state a training loop uses: named NumPy generators, torch and ``random``."""
    return {"numpy": {k: g.bit_generator.state for k, g in generators.items()},
            "torch": torch.get_rng_state(), "python": random.getstate()}


def restore_rng(states: dict[str, Any], generators: dict[str, np.random.Generator]) -> None:
    for k, g in generators.items():
        if k in states["numpy"]:
            g.bit_generator.state = states["numpy"][k]
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])


@dataclass
class Checkpoint:
    step: int
    networks: dict[str, dict[str, Any]]  # state dicts
    optimizers: dict[str, dict[str, Any]]
    rng: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(out_dir: Path, *, step: int, networks: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], rng: dict[str, Any],
                    extra: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "step": step,
               "networks": {k: v.state_dict() for k, v in networks.items()},
               "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
               "rng": rng, "extra": extra or {}}
    tmp = out_dir / (CHECKPOINT_FILE + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, out_dir / CHECKPOINT_FILE)
    info = {"format": FORMAT, **(meta or {}), "steps": step}
    tmp_meta = out_dir / (META_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(info, indent=2, default=_jsonable))
    os.replace(tmp_meta, out_dir / META_FILE)


def load_checkpoint(out_dir: Path) -> Checkpoint:
    out_dir = Path(out_dir)
    payload = torch.load(out_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    meta = json.loads((out_dir / META_FILE).read_text()) if (out_dir / META_FILE).exists() else {}
    return Checkpoint(step=int(payload["step"]), networks=payload["networks"], optimizers=payload["optimizers"],
                      rng=payload["rng"], extra=payload.get("extra", {}), meta=meta)


def check_model(out_dir: str | Path, problem: Problem, solver_name: str) -> str | None:
    """Why the model in ``out_dir`` cannot serve ``problem`` for ``solver_name`` (``None`` if it can)."""
    if not str(out_dir):
        return (f"{solver_name} needs a trained model: run `dispatchbench train --solver {solver_name} "
                f"--out DIR ...` and then use {solver_name}[model=DIR]")
    out_dir = Path(out_dir)
    if not (out_dir / CHECKPOINT_FILE).exists() or not (out_dir / META_FILE).exists():
        return f"model folder {out_dir} has no {CHECKPOINT_FILE} and {META_FILE} (train one with `dispatchbench train`)"
    meta = json.loads((out_dir / META_FILE).read_text())
    if meta.get("solver") != solver_name:
        return f"model {out_dir} was trained by {meta.get('solver')!r}, not {solver_name!r}"
    if meta.get("problem_fingerprint") != problem_fingerprint(problem):
        return (f"model {out_dir} was trained on problem {meta.get('problem')!r}, which has other groups, ranges "
                f"or CS limits than {problem.name!r}")
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to model.json")
