"""The training lifecycle every learner shares: seeds, hyper-parameters, model files, loading, Fig. 5.

Each algorithm keeps its networks, update rules and training loop in its own file (one readable
file per algorithm, as in CleanRL). What is *not* about the algorithm lives here, once, so two
learners cannot drift apart on it:

- **hyper-parameters** are one dataclass per learner, turned into the plugin's spec
  ``parameters`` (so ``madrl_tvc[q_lr=5e-4]`` works on the command line and shows in the spec);
  a trained model records them in ``model.json``, the one place a resumed run or a solve reads
  them back from;
- **seeding**: Python, NumPy and torch from the run's seed, torch on one thread (runs share
  cores, and one thread is as fast for these small networks);
- **model files** (``checkpoints.py``): ``model.json`` with the same fields for every learner,
  ``checkpoint.pt`` loaded as data only;
- **resume and load**: the same checks (folder, format, solver, problem fingerprint) with the
  same one-line errors, and a trained model read once per (folder, problem fingerprint);
- **budgets**: :class:`TrainingBudget` (steps, wall time or both; ``exhausted`` between steps)
  and :class:`TrainingSet` (generated instances for a model of any size), the contract's own
  objects, re-exported here for learner code;
- **any-size models**: a model trained on generated instances records the group types and the
  rating ranges it saw (:func:`rating_coverage`); ``solve`` on a problem outside them is refused
  in one line naming the group, the rating and the range (:func:`uncovered`), where a model of
  one instance is refused by its problem fingerprint;
- **group order**: the fingerprint ignores the order groups and regions are listed in, and a
  model records the order it was trained in (``group_order``, ``region_order``); a learner
  executes on the problem re-listed in that order (:func:`in_trained_order`) and hands the
  dispatch back in the caller's order (:func:`to_problem_order`), so agents are keyed by group
  name, never by position in the file;
- **the Fig. 5 probe reward**: one function and one violation penalty, so the curves of two
  learners in one figure are on one scale.

This module is part of the learning layer: it never imports the benchmark layer above it. Its
plugin base, :class:`LearnerPlugin`, is a :class:`~dispatchbench.contract.learner.Learner` (the
contract sits below this layer), so a learning plugin subclasses it alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import platform
import random
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
import torch

from dispatchbench.contract.learner import Learner
from dispatchbench.contract.training import TrainingBudget, TrainingSet, parse_duration

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
from dispatchbench.instances.protocol import TRAINING
from dispatchbench.learn.checkpoints import (
    ANY_SIZE,
    CHECKPOINT_FILE,
    META_FILE,
    Checkpoint,
    ModelFileError,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from dispatchbench.learn.marl_env import RewardConfig, cost_scale
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import Problem, State

T = TypeVar("T")
H = TypeVar("H", bound="DataclassInstance")  # a hyper-parameter dataclass
__all__ = ["TrainingBudget", "TrainingSet", "parse_duration"]  # re-exported for learners (the rest: module API)

# Fig. 5: one penalty per kW of violation for every learner (the environment's default)
PROBE_PENALTY_PER_KW = RewardConfig().penalty_per_kw


# ---- hyper-parameters ------------------------------------------------------------------------
def spec_parameters(hyperparameters: type, **execution: Any) -> dict[str, Any]:
    """A plugin's ``parameters``: its execution options (``model``, ...) then every hyper-parameter."""
    clash = set(execution) & {f.name for f in fields(hyperparameters)}
    if clash:
        raise TypeError(f"execution options {sorted(clash)} shadow hyper-parameters")
    return {**execution, **asdict(hyperparameters())}


def from_params(hyperparameters: type[H], params: Mapping[str, Any]) -> H:
    """The dataclass filled from a solver's (already cast and range-checked) parameters."""
    return hyperparameters(**{f.name: params[f.name] for f in fields(hyperparameters)})


def from_meta(
    hyperparameters: type[H],
    meta: Mapping[str, Any],
    folder: str | Path,
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> H:
    """The hyper-parameters a model was trained with, as recorded in its ``model.json``, checked
    as data before any tensor is built from them: each has its default's type (an int is not a
    bool or a float), is finite, and lies in the learner's declared ``ranges`` and ``choices``
    (the plugin's ``parameter_ranges``/``parameter_choices``, the lists a spec is checked with)."""
    path = Path(folder) / META_FILE
    saved = meta["hyperparameters"]
    names = {f.name for f in fields(hyperparameters)}
    unknown, missing = sorted(set(saved) - names), sorted(names - set(saved))
    if unknown or missing:
        what = f"unknown {', '.join(unknown)}" if unknown else f"no {', '.join(missing)}"
        raise ModelFileError(path, f"hyperparameters: {what} (written by other code)")
    values = {}
    for f in fields(hyperparameters):
        why = _hyperparameter_problem(saved[f.name], f.default, (ranges or {}).get(f.name), (choices or {}).get(f.name))
        if why:
            raise ModelFileError(path, f"hyperparameters.{f.name}: {repr(saved[f.name])[:60]} {why}")
        values[f.name] = float(saved[f.name]) if isinstance(f.default, float) else saved[f.name]
    return hyperparameters(**values)


def _hyperparameter_problem(
    value: Any, default: Any, bounds: tuple[float | None, float | None] | None, choices: tuple[str, ...] | None
) -> str | None:
    """Why ``value`` cannot stand where the dataclass has ``default`` (None if it can)."""
    kind = type(default)
    if kind is bool:
        return None if isinstance(value, bool) else "is not true or false"
    if kind is str:
        if not isinstance(value, str) or len(value) > 256:
            return "is not a short text"
        return None if choices is None or value in choices else f"is not one of {', '.join(choices)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number ({kind.__name__} expected)"
    if kind is int and not isinstance(value, int):
        return "is not a whole number"
    if isinstance(value, float) and not math.isfinite(value):  # ints are finite (and may exceed a float)
        return "is not a finite number"
    if kind is float and abs(value) > 1e300:  # 10**400 would overflow float() when the dataclass is built
        return "is not a finite number"
    if bounds is not None:
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            return f"is outside [{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    return None


def conflicts(hp: Any, given: Mapping[str, Any]) -> list[str]:
    """Hyper-parameters set explicitly in a spec that differ from a model's own."""
    mine = asdict(hp)
    return [f"{k}={given[k]!r} (model: {mine[k]!r})" for k in sorted(given) if k in mine and given[k] != mine[k]]


# ---- seeding ---------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch; torch on one thread."""
    torch.set_num_threads(1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def capture_rng(generators: Mapping[str, np.random.Generator]) -> dict[str, Any]:
    """Every random state a training loop uses: named NumPy generators (dicts of ints), torch's
    (a uint8 tensor) and Python's (a list): all of it data, none of it pickled."""
    version_, internal, gauss = random.getstate()
    return {
        "numpy": {k: g.bit_generator.state for k, g in generators.items()},
        "torch": torch.get_rng_state(),
        "python": [version_, list(internal), gauss],
    }


def restore_rng(states: Mapping[str, Any], generators: Mapping[str, np.random.Generator]) -> None:
    for k, g in generators.items():
        if k in states["numpy"]:
            g.bit_generator.state = states["numpy"][k]
    torch.set_rng_state(states["torch"])
    version_, internal, gauss = states["python"]
    random.setstate((version_, tuple(internal), gauss))


# ---- what a model is -------------------------------------------------------------------------
def problem_fingerprint(problem: Problem) -> str:
    """Hash of what a trained policy depends on structurally: groups, types, regions, ranges, CS
    limits. Costs are left out on purpose — learners never read them — and so is the order the
    file lists groups and regions in (sorted by name): agents are keyed by group name."""
    parts: list[tuple[object, ...]] = sorted(
        (g.name, g.type.value, g.region, g.p_min, g.p_max, g.efficiency) for g in problem.groups
    )
    parts += sorted((r.name, r.cs_max) for r in problem.regions) + [("commitment", problem.commitment)]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


COVERAGE_TOLERANCE = 0.2  # a rating may lie this share of a seen range's ends beyond them (samples miss the extremes)


def group_ratings(group: Any) -> dict[str, float]:
    """What an agent knows of itself besides its type: its size, its turndown (least output over
    its size) and, for V2G, its efficiency. Never a cost coefficient."""
    ratings = {"p_max": float(group.p_max), "turndown": float(group.p_min / group.p_max) if group.p_max else 0.0}
    if group.is_v2g:
        ratings["efficiency"] = float(group.efficiency)
    return ratings


def generated_instances(sizes: Sequence[int], per_size: int, seed: int) -> list[tuple[int, int]]:
    """``(regions, generator seed)`` of the training instances of an any-size model: ``per_size``
    instances of each size, generator seeds drawn from the training split (``docs/protocol.md``)
    by the run's seed; listed with the sizes interleaved, so the steps that take turns over them
    visit every size equally often whenever they stop."""
    rng = np.random.default_rng([seed, 19])
    seeds = {r: rng.choice(np.arange(TRAINING.first, TRAINING.last + 1), per_size, replace=False) for r in sizes}
    return [(r, int(seeds[r][j])) for j in range(per_size) for r in sizes]


def rating_coverage(problems: Sequence[Problem]) -> dict[str, Any]:
    """The group types, the ranges of their ratings and of the CS limits seen in ``problems``:
    what an any-size model records so it can refuse a problem it never saw the like of."""
    ratings: dict[str, dict[str, list[float]]] = {}
    cs = [float(r.cs_max) for p in problems for r in p.regions]
    for problem in problems:
        for group in problem.groups:
            seen = ratings.setdefault(group.type.value, {})
            for key, value in group_ratings(group).items():
                lo, hi = seen.get(key, [value, value])
                seen[key] = [min(lo, value), max(hi, value)]
    return {
        "types": sorted(ratings),
        "ratings": {t: ratings[t] for t in sorted(ratings)},
        "cs_max": [min(cs), max(cs)] if cs else [0.0, 0.0],
        "commitment": sorted({bool(p.commitment) for p in problems}),
        "tolerance": COVERAGE_TOLERANCE,
    }


def _widened(bounds: Sequence[float], tolerance: float) -> tuple[float, float]:
    lo, hi = bounds
    return lo - tolerance * abs(lo), hi + tolerance * abs(hi)


def uncovered(coverage: Mapping[str, Any], problem: Problem) -> str | None:
    """Why an any-size model that saw ``coverage`` cannot decide ``problem`` (``None``: it can):
    a commitment setting, a group type, a group's rating or a CS limit outside what it was
    trained on (ranges widened by their ``tolerance``), named with the range."""
    tol = float(coverage.get("tolerance", 0.0))
    if bool(problem.commitment) not in coverage["commitment"]:
        return (
            f"problem {problem.name!r} has commitment={problem.commitment}, the model only saw {coverage['commitment']}"
        )
    for group in problem.groups:
        kind = group.type.value
        if kind not in coverage["types"]:
            seen = ", ".join(coverage["types"])
            return f"group {group.name} is of type {kind}, which the model never saw (it saw {seen})"
        for key, value in group_ratings(group).items():
            lo, hi = _widened(coverage["ratings"][kind][key], tol)
            if not lo - 1e-9 <= value <= hi + 1e-9:
                return (
                    f"group {group.name} ({kind}) has {key} {value:g}, outside the range the model saw "
                    f"for {kind} groups ({lo:g} to {hi:g}, with a {tol:.0%} margin)"
                )
    lo, hi = _widened(coverage["cs_max"], tol)
    for region in problem.regions:
        if not lo - 1e-9 <= region.cs_max <= hi + 1e-9:
            return (
                f"region {region.name} has cs_max {region.cs_max:g}, outside the range the model saw ({lo:g} to {hi:g})"
            )
    return None


def in_trained_order(problem: Problem, meta: Mapping[str, Any]) -> Problem:
    """``problem`` with its groups and regions listed in the order the model was trained in
    (``problem`` itself when it already is, or for a model that recorded no order). Call only
    after the fingerprints matched, i.e. the same groups and regions by name."""
    groups, regions = meta.get("group_order"), meta.get("region_order")
    if not groups or (
        list(problem.group_names) == list(groups)
        and list(problem.region_names) == list(regions or problem.region_names)
    ):
        return problem
    by_group = {g.name: g for g in problem.groups}
    by_region = {r.name: r for r in problem.regions}
    return dataclasses.replace(
        problem,
        groups=tuple(by_group[name] for name in groups),
        regions=tuple(by_region[name] for name in (regions or problem.region_names)),
    )


def trained_problem(folder: str | Path, problem: Problem, solver: str) -> Problem:
    """``problem`` listed in the training order of the model in ``folder`` (after the usual checks,
    which raise :class:`ModelFileError`); ``problem`` itself when no model is given."""
    if not str(folder):
        return problem
    return in_trained_order(problem, require_model(folder, problem, solver))


def to_problem_order(dispatch: Dispatch, trained: Problem, problem: Problem) -> Dispatch:
    """A dispatch decided on ``trained`` (:func:`in_trained_order`) in ``problem``'s own order."""
    if trained is problem:
        return dispatch
    g = [trained.group_names.index(name) for name in problem.group_names]
    r = [trained.region_names.index(name) for name in problem.region_names]
    return Dispatch(on=dispatch.on[g].copy(), power=dispatch.power[g].copy(), imports=dispatch.imports[r].copy())


def versions() -> dict[str, str]:
    """Library versions a model was trained with (a model is only reproducible with them)."""
    try:
        own = version("dispatchbench")
    except PackageNotFoundError:
        own = "unknown"
    return {
        "dispatchbench": own,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def model_meta(
    *, solver: str, spec: str, problem: Problem, hyperparameters: Any, seed: int, train_time_s: float, **learner: Any
) -> dict[str, Any]:
    """The fields of ``model.json`` every learner writes (``steps`` is added when saving), plus
    the learner's own (observation names, sampler, action format, ...)."""
    return {
        "solver": solver,
        "spec": spec,
        "problem": problem.name,
        "problem_fingerprint": problem_fingerprint(problem),
        "group_order": list(problem.group_names),
        "region_order": list(problem.region_names),
        "hyperparameters": asdict(hyperparameters),
        "seed": int(seed),
        "train_time_s": float(train_time_s),
        "versions": versions(),
        **learner,
    }


def save(
    out_dir: Path,
    *,
    step: int,
    networks: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    state: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> None:
    """Save a checkpoint and its ``model.json`` (see :func:`model_meta`)."""
    save_checkpoint(
        Path(out_dir),
        step=step,
        networks=dict(networks),
        optimizers=dict(optimizers),
        state=dict(state),
        meta=dict(meta),
    )


class TrainingClock:
    """Training wall time across resumes: a resumed run goes on from the seconds its checkpoint
    recorded, so a model's ``train_time_s`` is its whole training, not the last session's."""

    def __init__(self) -> None:
        self.earlier = 0.0
        self._t0 = time.perf_counter()

    def __call__(self) -> float:
        return self.earlier + time.perf_counter() - self._t0


def run_steps(
    start: int, budget: TrainingBudget, elapsed: Callable[[], float], one_step: Callable[[int], None]
) -> tuple[int, str]:
    """Steps from ``start + 1`` while ``budget`` lasts (a time budget still gets one step: a model
    of no steps decides nothing); never a step expected to end past the budget's seconds (the
    last step's duration is the estimate). The steps themselves never read the clock, so a run
    stopped by time at step N is the run of ``steps=N``. Returns ``(steps done, "steps" | "time")``."""
    step, last_s = start, 0.0
    while not (budget.steps is not None and step >= budget.steps) and (
        step == start or not budget.exhausted(step, elapsed(), last_s)
    ):
        began = time.perf_counter()
        step += 1
        one_step(step)
        last_s = time.perf_counter() - began
    return step, "steps" if budget.steps is not None and step >= budget.steps else "time"


def load_networks(networks: Mapping[str, torch.nn.Module], ckpt: Checkpoint, folder: str | Path, solver: str) -> None:
    """Load every network's saved weights. A checkpoint whose networks do not fit this code (other
    inputs or layers: written by another version of the learner) is refused as a model-file error
    naming the network, not left to surface as a torch traceback."""
    for name, net in networks.items():
        try:
            net.load_state_dict(ckpt.networks[name])
        except (KeyError, RuntimeError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            detail = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]  # torch: a header, then why
            raise ModelFileError(
                Path(folder) / CHECKPOINT_FILE,
                f"network {name!r} does not fit this version of {solver} ({detail[:200]})",
            ) from None


def _mismatch(meta: Mapping[str, Any], problem: Problem, solver: str) -> str | None:
    if meta["solver"] != solver:
        return f"the model was trained by {meta['solver']!r}, not {solver!r}"
    if meta.get("scope") == ANY_SIZE:
        return uncovered(meta["coverage"], problem)
    if meta["problem_fingerprint"] != problem_fingerprint(problem):
        return (
            f"the model was trained for problem {meta['problem']!r} (fingerprint {meta['problem_fingerprint']}), "
            f"not {problem.name!r} (fingerprint {problem_fingerprint(problem)}): other groups, ranges or CS limits"
        )
    for key, names in (("group_order", problem.group_names), ("region_order", problem.region_names)):
        order = meta.get(key)
        if order is not None and sorted(order) != sorted(names):  # the fingerprint matched: names must too
            return f"{key} does not list the problem's {len(names)} {key.split('_')[0]}s (it lists {len(order)})"
    return None


def check_folder(folder: str | Path, solver: str) -> dict[str, Any]:
    """What can be checked when a spec is parsed, before the problem is known: the folder exists
    and holds a readable ``model.json`` written by this solver. Raises :class:`ModelFileError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(
            folder,
            "model folder not found" if not folder.exists() else "not a folder",
            "give model= the --out folder of a `dispatchbench train` run",
        )
    meta = read_meta(folder)
    if meta["solver"] != solver:
        raise ModelFileError(
            folder / META_FILE,
            f"the model was trained by {meta['solver']!r}, not {solver!r}",
            f"use {meta['solver']}[model={folder}] or a model trained by {solver}",
        )
    return meta


def require_model(folder: str | Path, problem: Problem, solver: str) -> dict[str, Any]:
    """``model.json`` of a model that can serve ``problem`` for ``solver``; else one-line
    :class:`ModelFileError` naming the problem (name and fingerprint) it was trained for."""
    folder = Path(folder)
    meta = read_meta(folder)
    if not (folder / CHECKPOINT_FILE).is_file():
        raise ModelFileError(folder / CHECKPOINT_FILE, "not found: the folder holds no trained model")
    why = _mismatch(meta, problem, solver)
    if why:
        fix = f"train {solver} on {problem.name!r} with `dispatchbench train`"
        if meta.get("scope") == ANY_SIZE:
            fix = f"train {solver} on instances like {problem.name!r} (`dispatchbench train -p` or --generated)"
        raise ModelFileError(folder / META_FILE, why, fix)
    return meta


def check_model(folder: str | Path, problem: Problem, solver: str) -> str | None:
    """Why the model in ``folder`` cannot serve ``problem`` for ``solver`` (``None`` if it can)."""
    if not str(folder):
        return (
            f"{solver} needs a trained model: run `dispatchbench train --solver {solver} "
            f"--out DIR ...` and then use {solver}[model=DIR]"
        )
    try:
        require_model(folder, problem, solver)
    except ModelFileError as exc:
        return str(exc)
    return None


def open_for_resume(folder: str | Path, problem: Problem, solver: str) -> Checkpoint:
    """The checkpoint a resumed run continues from, refused (one line) when it is not this
    solver's, not this problem's, or not a safe model file."""
    folder = Path(folder)
    meta = read_meta(folder)
    why = _mismatch(meta, problem, solver)
    if why:
        raise ModelFileError(
            folder / META_FILE,
            why,
            "resume with the problem and solver it was trained with, or drop --resume to train a new model",
        )
    return load_checkpoint(folder)


class LoadedModel(Generic[T]):
    """A solver instance's trained model, read from disk once per (folder, problem fingerprint).

    ``build`` turns the checkpoint into whatever the learner executes; the same checks run
    before it for every learner, and a failure is a :class:`ModelFileError` (one line).
    """

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._value: T | None = None

    def get(self, folder: str | Path, problem: Problem, solver: str, build: Callable[[Checkpoint], T]) -> T:
        key = (str(Path(folder).resolve()), problem_fingerprint(problem))
        if self._key != key:
            if not str(folder):
                raise ValueError(check_model(folder, problem, solver))
            require_model(folder, problem, solver)
            value = build(load_checkpoint(folder))
            self._key, self._value = key, value
        return self._value  # type: ignore[return-value]


class LearnerPlugin(Learner):
    """What a learning plugin's class shares (``class MadrlTvc(LearnerPlugin)``): construction
    with a ``model`` folder checked early, the hyper-parameters the spec set explicitly, ``skip``
    for a missing, unsafe or foreign model, and the resume prologue of ``fit``. The plugin
    supplies ``fit``, ``solve`` and ``load(problem)``, and its parameters from
    :func:`spec_parameters` (which gives it the ``model`` parameter the contract asks for).
    """

    hyperparameter_class: ClassVar[type]  # the learner's hyper-parameter dataclass
    path_parameters: ClassVar[tuple[str, ...]] = ("model",)  # the model folder travels with a cell
    # any-size learners: the hyper-parameter naming how networks are shared ("share", "sharing");
    # a model for any size needs one network per group type ("type", or "auto" resolving to it)
    sharing_parameter: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)  # Solver.__init__: cast and range-check
        names = {f.name for f in fields(self.hyperparameter_class)}
        self._given = {k: self.params[k] for k in params if k in names}  # set in the spec, not defaulted
        if self.params["model"]:  # the whole model.json, hyper-parameters too, before any work
            self._from_meta(check_folder(self.params["model"], self.name), self.params["model"])
        self._model: LoadedModel[Any] = LoadedModel()

    def hyperparameters(self) -> Any:
        return from_params(self.hyperparameter_class, self.params)

    def _from_meta(self, meta: Mapping[str, Any], folder: str | Path) -> Any:
        """A model's recorded hyper-parameters, checked against this plugin's declared ranges."""
        ranges = getattr(self, "parameter_ranges", {})
        return from_meta(self.hyperparameter_class, meta, folder, ranges, getattr(self, "parameter_choices", {}))

    @abstractmethod
    def load(self, problem: Problem) -> Any:
        """The trained model for ``problem``, read once per (model folder, problem) (:class:`LoadedModel`)."""

    def skip(self, problem: Problem) -> str | None:
        why = check_model(self.params["model"], problem, self.name)
        if why is None:
            try:
                self.load(problem)
            except ModelFileError as exc:
                why = str(exc)
        return why

    def begin_fit(
        self, problem: Problem, out_dir: Path, *, resume: bool, options: Mapping[str, Any]
    ) -> tuple[Problem, Checkpoint | None, Any]:
        """``(problem, checkpoint or None, hyper-parameters)`` for a new or resumed training: a
        resumed run continues in its own group order with the hyper-parameters it was trained with."""
        if options:
            first = fields(self.hyperparameter_class)[0].name
            raise ValueError(
                f"{self.name}: fit() takes no option {sorted(options)[0]!r}; hyper-parameters go in "
                f"the spec, e.g. {self.name}[{first}=...]"
            )
        ckpt = open_for_resume(out_dir, problem, self.name) if resume else None
        if ckpt is None:
            return problem, None, self.hyperparameters()
        problem = in_trained_order(problem, ckpt.meta)  # agents are keyed by group name
        hp = self._from_meta(ckpt.meta, out_dir)
        if conflicts(hp, self._given):
            raise ModelFileError(
                out_dir / META_FILE,
                "a resumed run keeps the hyper-parameters it was trained "
                f"with; the spec sets {', '.join(conflicts(hp, self._given))}",
                "drop them from the spec, or train a new model without --resume",
            )
        return problem, ckpt, hp

    def begin_generated_fit(
        self, training_set: TrainingSet, out_dir: Path, *, resume: bool, options: Mapping[str, Any]
    ) -> tuple[Checkpoint | None, Any]:
        """The prologue of an any-size training: networks shared per type (what decides any
        size), and a resumed run continues its own training sizes with its own hyper-parameters."""
        if options:
            raise ValueError(f"{self.name}: fit() takes no option {sorted(options)[0]!r}")
        if not resume:
            hp = self.hyperparameters()
            sharing = getattr(hp, self.sharing_parameter)
            if sharing not in ("type", "auto"):
                raise InputError(
                    "--solver",
                    f"{self.name}[{self.sharing_parameter}={sharing}]",
                    "a model for any size needs networks shared per group type",
                    f"give {self.sharing_parameter}=type or auto, or train on one problem (--problem FILE)",
                )
            return None, hp
        meta = read_meta(out_dir)
        if meta.get("solver") != self.name or meta.get("scope") != ANY_SIZE:
            raise ModelFileError(out_dir / META_FILE, "not an any-size model of this solver: cannot resume it")
        if tuple(meta["training_set"]["sizes"]) != training_set.sizes:
            raise ModelFileError(
                out_dir / META_FILE,
                f"trained on sizes {meta['training_set']['sizes']}, not {list(training_set.sizes)}",
                "resume with the same --generated sizes, or drop --resume",
            )
        ckpt = load_checkpoint(out_dir)
        return ckpt, self.trained_hyperparameters(ckpt, out_dir)

    def trained_hyperparameters(self, ckpt: Checkpoint, folder: Path) -> Any:
        """The hyper-parameters a loaded model was trained with; a spec that contradicts them is refused."""
        hp = self._from_meta(ckpt.meta, folder)
        if conflicts(hp, self._given):
            raise ModelFileError(
                folder / META_FILE,
                "the spec sets hyper-parameters the model was not "
                f"trained with: {', '.join(conflicts(hp, self._given))}",
                "drop them from the spec (a model keeps its own)",
            )
        return hp


# ---- Fig. 5 ----------------------------------------------------------------------------------
def probe_reward(problem: Problem, state: State, dispatch: Dispatch) -> float:
    """Fig. 5 quantity for any learner: minus the evaluated cost plus one fixed penalty per kW of
    violation, in units of the environment's cost scale."""
    ev = evaluate(problem, state, dispatch)
    return -(ev.cost + PROBE_PENALTY_PER_KW * sum(ev.violations.values())) / cost_scale(problem)


# ---- parameter ranges ------------------------------------------------------------------------
# Inclusive bounds, checked on a spec and on a model.json alike. Every one is finite: a value a
# spec or a downloaded model.json sets must not allocate without end or loop for days (issue 20:
# q_hidden=10^9, refine=10^9).
POSITIVE = (1e-12, 1e6)  # learning rates, temperatures, clips: "> 0" is a tiny floor
COUNT = (1, 1_000_000)  # sizes, periods, batches, buffers (rows), warm-up states
NON_NEGATIVE = (0, 1_000_000)  # counts that may be 0, weights and penalties
FRACTION = (0.0, 1.0)
WIDTH = (1, 4096)  # hidden widths, curve knots: one agent's 4,096-wide layer is ~64 MB of weights
ROUNDS = (0, 100)  # rounds per decision or state (refine, moves, gossip, search): each one is a clearing
BISECTIONS = (1, 64)  # bisection steps: a double has 53 bits, halving further changes nothing


def training_spec(solver: str, hp: Any) -> str:
    """The spec that trains ``hp`` (non-default hyper-parameters only, as ``Solver.spec`` writes it)."""
    default = asdict(type(hp)())
    changed = {k: v for k, v in asdict(hp).items() if v != default[k]}
    return f"{solver}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]" if changed else solver
