"""A study's methods before the shoot-out: what each one is, and its trained models.

Both studies (the paper's and the scaling study) take their methods from a study file as spec
strings. What a method *is* comes from its plugin, not from its name: every spec is probed once
(in child processes, like the harness does) for its capabilities, so a method with
``train_steps`` must be a learner and a learner must have ``train_steps``. A method whose plugin
is missing or refuses its spec is left out with the reason, and the rest of the study runs.

Models train through :mod:`dispatchbench.bench.model_cache`, so a model trained before (same
problem file, spec, seed, steps and solver code) is reused, and through the run's executor: the
given number of fresh processes at once on this machine (one thread each), or Dask tasks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dispatchbench.bench.executors import Executor
from dispatchbench.bench.model_cache import ModelCache, model_key, train_cached
from dispatchbench.bench.plugins import parse_spec
from dispatchbench.model.errors import InputError
from dispatchbench.report.study_file import Method, Study


def workers_default() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class Methods:
    """The study's methods that can run, and the reasons of those that cannot."""

    runnable: tuple[Method, ...]
    capabilities: dict[str, Any]  # spec as written (variants included) -> its plugin's Capabilities
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def plain(self) -> list[Method]:
        """Methods that run as they are (no training)."""
        return [m for m in self.runnable if not m.trains]

    @property
    def learners(self) -> list[Method]:
        return [m for m in self.runnable if m.trains]

    def variants_of(self, method: Method) -> list[str]:
        """The method's variants whose spec the plugin accepted (as ``name[params]``)."""
        return [v for v in method.variants if _variant_text(method, v) in self.capabilities]


def _variant_text(method: Method, variant: str) -> str:
    return method.variant_specs(method.spec)[method.variants.index(variant)]


def probe_methods(study: Study, *, say: Callable[[str], None] | None = None) -> Methods:
    """Probe every method's spec (and each variant) for its plugin's capabilities; check them
    against the study file (``train_steps`` exactly for learners); leave out, with the reason,
    what cannot be created."""
    from dispatchbench.bench.harness import plan_solvers, spec_label

    texts = [m.spec for m in study.methods] + [_variant_text(m, v) for m in study.methods for v in m.variants]
    refused: list[tuple[str, str]] = []
    plans = plan_solvers(texts, refused=refused)
    capabilities: dict[str, Any] = {}
    failures = [{"method": text, "stage": "probe", "reason": why} for text, why in refused]
    left_out = {text for text, _ in refused}
    for text in texts:
        if text in left_out:
            continue
        name, _ = parse_spec(text)
        for plan in (p for p in plans if p.name == name):
            # a timed-out probe keeps the text as its spec and has no parameters
            if (plan.spec == text) if plan.failure else (spec_label(text, plan.params) == plan.spec):
                if plan.failure:
                    failures.append({"method": text, "stage": "probe", "reason": plan.failure})
                else:
                    capabilities[text] = plan.capabilities
                break
    runnable = []
    for m in study.methods:
        caps = capabilities.get(m.spec)
        if caps is None:
            continue
        if m.trains and not caps.learns:
            raise InputError(study.file, f"{m.where} train_steps", f"{m.spec!r} does not learn", "remove train_steps")
        if not m.trains and caps.learns:
            raise InputError(
                study.file, f"{m.where} spec", f"{m.spec!r} learns: it needs a trained model", "add train_steps = N"
            )
        runnable.append(m)
    if not runnable:
        reasons = "; ".join(f"{f['method']}: {f['reason']}" for f in failures[:2])
        raise InputError(study.file, "[[methods]]", f"none of them can run ({reasons})", "see `dispatchbench solvers`")
    for f in failures:
        if say is not None:
            say(f"left out: {f['method']}: {f['reason']}")
    return Methods(tuple(runnable), capabilities, failures)


# ---- training -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Training:
    """One learner's models on one problem: a model per seed, each ``steps`` steps."""

    spec: str
    seeds: tuple[int, ...]
    steps: int


@dataclass
class Trained:
    """What :func:`train_models` did: learner spec -> its model specs, each model, each failure."""

    specs: dict[str, list[str]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def _last_step(folder: Path) -> int:
    """Steps done so far by a training writing into ``folder`` (from its loss log)."""
    try:
        with (folder / "loss.csv").open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 200))
            tail = fh.read().decode(errors="ignore").strip().splitlines()
        return int(float(tail[-1].split(",")[0])) if tail and tail[-1][0].isdigit() else 0
    except (OSError, ValueError, IndexError):
        return 0


def train_models(
    problem_file: Path, trainings: list[Training], cache: ModelCache, executor: Executor, progress: bool
) -> Trained:
    """Train (or find in the cache) every model through ``executor``; a failed training is
    recorded and the others go on."""
    done = Trained()
    jobs: list[tuple[str, int, int]] = []
    for t in trainings:
        done.specs[t.spec] = []
        for seed in t.seeds:
            hit = cache.lookup(model_key(problem_file, t.spec, seed, t.steps))
            if hit:
                done.specs[t.spec].append(hit.spec(t.spec))
                done.models.append(_model_record(t.spec, seed, t.steps, hit.path, True, hit.train_time_s))
            else:
                jobs.append((t.spec, seed, t.steps))
    if not jobs:
        return done
    jobs.sort(key=lambda job: -job[2])  # longest first: the workers finish closer together
    total = sum(steps for _, _, steps in jobs)
    bar = tqdm(
        total=total,
        unit="step",
        desc=f"train {len(jobs)} models",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    folders = [cache.folder(model_key(problem_file, *job)) for job in jobs]
    finished: set[int] = set()

    def tick() -> None:
        running = sum(jobs[k][2] if k in finished else _last_step(folders[k]) for k in range(len(jobs)))
        bar.update(max(0, running - bar.n))

    calls = [(str(cache.root), str(problem_file), spec, seed, steps) for spec, seed, steps in jobs]
    for k, model, error in executor.call_all(train_cached, calls, tick):
        spec, seed, steps = jobs[k]
        finished.add(k)
        if error is not None:  # one failed training must not stop the others
            done.failures.append(
                {"method": spec, "stage": "train", "reason": f"seed {seed}: {type(error).__name__}: {error}"}
            )
            tqdm.write(f"training {spec} seed {seed} failed: {error}", file=sys.stderr)
            continue
        done.specs[spec].append(model.spec(spec))
        done.models.append(_model_record(spec, seed, steps, model.path, False, model.train_time_s))
        if progress:
            tqdm.write(f"trained {spec} seed {seed}: {steps} steps in {model.train_time_s:.0f} s", file=sys.stderr)
    bar.update(total - bar.n)
    bar.close()
    return done


def _model_record(spec: str, seed: int, steps: int, path: Path, cached: bool, train_s: float | None) -> dict[str, Any]:
    return {
        "method": spec,
        "seed": seed,
        "steps": steps,
        "path": str(path),
        "cached": cached,
        "train_time_s": train_s,
    }


def shootout_specs(methods: Methods, trained: Trained) -> tuple[list[str], dict[str, list[int]]]:
    """Every spec of a shoot-out and its seeds: the plain methods with their seeds, then each
    trained model once (its training seed is the spread the tables show), then the models again
    with each accepted variant (a search added at decision time is a row of its own)."""
    specs = [m.spec for m in methods.plain]
    seeds = {m.spec: list(m.seeds) for m in methods.plain}
    models: list[str] = []
    variants: list[str] = []
    for m in methods.learners:
        own = trained.specs.get(m.spec, [])
        models += own
        accepted = set(methods.variants_of(m))
        for model in own:
            variants += [v for v, text in zip(m.variant_specs(model), m.variants) if text in accepted]
    for spec in models + variants:
        seeds[spec] = [0]
    return specs + models + variants, seeds
