"""Trained models cached by what determines them, so a second ``reproduce`` skips training.

A model is fully determined by the problem file's content, the learning solver and its
parameters, the seed, the number of steps — and the solver's own code. The cache key is the
SHA-256 of exactly these (the plugin's source file is hashed too: a model trained by older code
is not the model the current code would train). Caching lives in this one module, apart from
the runner, so that what makes two models "the same" is decided in one place (benchopt's cache
bugs came from mixing the two).

A cache entry is a folder ``<root>/<solver>-seed<seed>-<key[:16]>`` holding what ``fit`` writes
(``model.json``, ``checkpoint.pt``, the training logs) plus ``cache.json``, written only after
``fit`` returned: a folder without it is an interrupted training, which is resumed from its
checkpoint when there is one, else started again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dispatchbench.bench.plugins import make_solver
from dispatchbench.model.problem_file import load_problem

CACHE_ENV = "DISPATCHBENCH_MODEL_CACHE"
MARKER = "cache.json"


def default_root() -> Path:
    """``$DISPATCHBENCH_MODEL_CACHE``, else ``$XDG_CACHE_HOME/dispatchbench/models`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dispatchbench" / "models"


@dataclass(frozen=True)
class ModelKey:
    """Everything a trained model depends on."""

    problem_sha256: str
    solver: str  # solver name
    params: dict[str, Any]  # every parameter after defaults, without ``model``
    seed: int
    steps: int
    code_sha256: str  # the plugin's source file

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()

    @property
    def folder_name(self) -> str:
        return f"{self.solver}-seed{self.seed}-{self.digest[:16]}"


def model_key(problem_file: str | Path, spec: str, seed: int, steps: int) -> ModelKey:
    """The key of training ``spec`` on ``problem_file`` with ``seed`` for ``steps`` steps."""
    solver = make_solver(spec)
    if not solver.capabilities.learns:
        raise ValueError(f"solver {solver.name!r} does not learn: nothing to cache")
    params = {k: v for k, v in solver.params.items() if k != "model"}
    source = inspect.getsourcefile(type(solver))
    code = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else ""
    problem_sha = hashlib.sha256(Path(problem_file).read_bytes()).hexdigest()
    return ModelKey(problem_sha, solver.name, params, int(seed), int(steps), code)


@dataclass(frozen=True)
class CachedModel:
    """A finished model in the cache."""

    path: Path
    key: ModelKey
    train_time_s: float  # wall time of the fit that made it (0 when only resumed to completion)
    hit: bool  # found in the cache (no training this time)

    def spec(self, spec: str) -> str:
        """``spec`` with ``model=`` pointing at this model (other parameters kept)."""
        name, _, rest = spec.partition("[")
        inner = rest.rstrip("]")
        parts = [p for p in inner.split(",") if p.strip() and not p.strip().startswith("model=")]
        return f"{name}[{','.join([*parts, f'model={self.path}'])}]"


class ModelCache:
    """A folder of trained models keyed by :class:`ModelKey`."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_root()

    def folder(self, key: ModelKey) -> Path:
        return self.root / key.folder_name

    def lookup(self, key: ModelKey) -> CachedModel | None:
        """The finished model for ``key``, or ``None`` (absent or interrupted)."""
        marker = self.folder(key) / MARKER
        try:
            data = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if data.get("digest") != key.digest:
            return None
        return CachedModel(self.folder(key), key, float(data.get("train_time_s", 0.0)), hit=True)

    def train(self, problem_file: str | Path, spec: str, seed: int, steps: int, *,
              progress: bool = False) -> CachedModel:
        """Return the cached model, training it first if it is not there (resuming an interrupted one)."""
        key = model_key(problem_file, spec, seed, steps)
        found = self.lookup(key)
        if found:
            return found
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        solver = make_solver(spec)
        resume = (folder / "checkpoint.pt").is_file()
        report = solver.fit(load_problem(problem_file), seed=seed, steps=steps, out_dir=folder, resume=resume,
                            progress=progress)
        marker = {"digest": key.digest, "key": asdict(key), "train_time_s": report.time_s, "steps": report.steps,
                  "resumed": resume}
        tmp = folder / (MARKER + ".tmp")
        tmp.write_text(json.dumps(marker, indent=2, sort_keys=True, default=str))
        os.replace(tmp, folder / MARKER)
        return CachedModel(folder, key, report.time_s, hit=False)


def train_cached(root: str, problem_file: str, spec: str, seed: int, steps: int) -> CachedModel:
    """Module-level entry point for worker processes (pickles by name): one model into the cache."""
    import torch

    torch.set_num_threads(1)  # two trainings share the two cores
    return ModelCache(root).train(problem_file, spec, seed, steps)
