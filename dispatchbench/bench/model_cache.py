"""Trained models cached by what determines them, so a second ``reproduce`` skips training.

A model is fully determined by the problem file's content (or, for one model for any size, the
generated sizes it trains on and its wall-time budget), the learning solver and its parameters,
the seed, the number of steps — and the code that trains it. The cache key is the
SHA-256 of exactly these. "The code" is the plugin's source file *and* every ``dispatchbench``
module it imports, followed transitively (read with ``ast``, nothing executed): a change to the
environment, the distributed search or the lifecycle trains a different model, so it must miss
the cache as surely as a change to the plugin itself. Caching lives in this one module, apart from
the runner, so that what makes two models "the same" is decided in one place (benchopt's cache
bugs came from mixing the two).

A cache entry is a folder ``<root>/<solver>-seed<seed>-<key[:16]>`` holding what ``fit`` writes
(``model.json``, ``checkpoint.pt``, the training logs) plus ``cache.json``, written only after
``fit`` returned: a folder without it is an interrupted training, which is resumed from its
checkpoint when there is one, else started again.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dispatchbench.bench.plugins import make_solver
from dispatchbench.contract.learner import Learner
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
    code_sha256: str  # the plugin's source file and every dispatchbench module it imports (transitively)
    # one model for any size (``TrainingSet``): the generated sizes and the wall-time budget; empty
    # for a model of one problem file, and then left out of the digest (keys written before stay valid)
    generated: tuple[int, ...] = ()
    seconds: float | None = None

    @property
    def digest(self) -> str:
        fields = asdict(self)
        if not self.generated:
            fields.pop("generated")
            fields.pop("seconds")
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def folder_name(self) -> str:
        return f"{self.solver}-seed{self.seed}-{self.digest[:16]}"


def model_key(
    problem_file: str | Path | None,
    spec: str,
    seed: int,
    steps: int,
    *,
    generated: tuple[int, ...] = (),
    seconds: float | None = None,
) -> ModelKey:
    """The key of training ``spec`` on ``problem_file`` with ``seed`` for ``steps`` steps — or,
    with ``problem_file`` None, on generated instances of the sizes ``generated`` for at most
    ``steps`` steps (0: no step limit) and ``seconds`` of wall time."""
    solver = make_solver(spec)
    if not isinstance(solver, Learner):
        raise ValueError(f"solver {solver.name!r} does not learn: nothing to cache")
    params = {k: v for k, v in solver.params.items() if k != "model"}
    source = inspect.getsourcefile(type(solver))
    code = code_sha256(code_closure(Path(source), type(solver).__module__)) if source else ""
    if problem_file is None:
        if not generated:
            raise ValueError("a model key needs a problem file or generated sizes")
        problem_sha = hashlib.sha256(f"generated:{','.join(map(str, generated))}".encode()).hexdigest()
        return ModelKey(problem_sha, solver.name, params, int(seed), int(steps), code, tuple(generated), seconds)
    problem_sha = hashlib.sha256(Path(problem_file).read_bytes()).hexdigest()
    return ModelKey(problem_sha, solver.name, params, int(seed), int(steps), code)


def code_closure(source: Path, module: str, package: str = "dispatchbench") -> dict[str, Path]:
    """``source`` (the file of ``module``) and the file of every ``package`` module it imports,
    directly or through other such modules, by module name — with the ``__init__`` of every
    subpackage such a module lives in (importing ``pkg.sub.mod`` runs ``pkg/sub/__init__.py``
    first), so a learner split into a subpackage (``dispatchbench.learn.tvc``) is covered
    whole. The root package's own ``__init__`` is left out unless imported by name: it is the
    public API's index of lazy names, and adding a name to it changes no model."""
    found: dict[str, Path] = {module: Path(source)}
    todo = [(module, Path(source))]
    while todo:
        name, path = todo.pop()
        for target in _imported(name, path, is_package=path.name == "__init__.py") | _parents(name, package):
            if target in found or not (target == package or target.startswith(package + ".")):
                continue
            try:
                spec = importlib.util.find_spec(target)
            except (ImportError, ValueError):  # ``from pkg.mod import name``: ``pkg.mod.name`` is no module
                spec = None
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            found[target] = Path(spec.origin)
            todo.append((target, Path(spec.origin)))
    return found


def _parents(module: str, package: str) -> set[str]:
    """The subpackages ``module`` lives in, below ``package``: ``a.b.c.d`` -> ``{a.b, a.b.c}``."""
    parts = module.split(".")
    if parts[0] != package:
        return set()
    return {".".join(parts[:k]) for k in range(2, len(parts))}


def code_sha256(files: dict[str, Path]) -> str:
    """One hash of the contents of ``files`` (module name -> file)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name].read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _imported(module: str, path: Path, *, is_package: bool) -> set[str]:
    """Module names a file imports (and ``pkg.name`` for each ``from pkg import name``)."""
    tree = ast.parse(path.read_bytes())
    base = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return {n for n in names if n}


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

    def train(
        self,
        problem_file: str | Path | None,
        spec: str,
        seed: int,
        steps: int,
        *,
        progress: bool = False,
        generated: tuple[int, ...] = (),
        seconds: float | None = None,
    ) -> CachedModel:
        """Return the cached model, training it first if it is not there (resuming an interrupted
        one). ``problem_file`` None: one model for any size, on generated instances of the sizes
        ``generated``, within ``steps`` (0: none) and ``seconds``."""
        from dispatchbench.contract.training import TrainingBudget, TrainingSet

        key = model_key(problem_file, spec, seed, steps, generated=generated, seconds=seconds)
        found = self.lookup(key)
        if found:
            return found
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        solver = make_solver(spec)
        if not isinstance(solver, Learner):
            raise ValueError(f"solver {solver.name!r} does not learn: nothing to train")
        resume = (folder / "checkpoint.pt").is_file()
        if problem_file is None:
            if not solver.any_size:
                raise ValueError(f"solver {solver.name!r} trains one model per instance, not for any size")
            report = solver.fit(
                None,
                seed=seed,
                steps=None,
                out_dir=folder,
                resume=resume,
                progress=progress,
                budget=TrainingBudget(steps=steps or None, seconds=seconds),
                training_set=TrainingSet(tuple(generated)),
            )
        else:
            report = solver.fit(
                load_problem(problem_file), seed=seed, steps=steps, out_dir=folder, resume=resume, progress=progress
            )
        marker = {
            "digest": key.digest,
            "key": asdict(key),
            "train_time_s": report.time_s,
            "steps": report.steps,
            "resumed": resume,
        }
        tmp = folder / (MARKER + ".tmp")
        tmp.write_text(json.dumps(marker, indent=2, sort_keys=True, default=str))
        os.replace(tmp, folder / MARKER)
        return CachedModel(folder, key, report.time_s, hit=False)


def train_cached(
    root: str,
    problem_file: str | None,
    spec: str,
    seed: int,
    steps: int,
    generated: tuple[int, ...] = (),
    seconds: float | None = None,
) -> CachedModel:
    """Module-level entry point for worker processes (pickles by name): one model into the cache."""
    import torch

    torch.set_num_threads(1)  # two trainings share the two cores
    return ModelCache(root).train(problem_file, spec, seed, steps, generated=tuple(generated), seconds=seconds)
