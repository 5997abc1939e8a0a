"""``dispatchbench reproduce paper`` (or any study file of kind ``paper``): a comparison from one command.

What runs is a study file (:mod:`dispatchbench.report.study_file`; the paper's is
``studies/paper.toml``, with its budgets and why): one problem, its reported cases, the protocol's
unseen test states, the methods as specs with their seeds and training steps. The pipeline, in
three stages, each timed (``DIR/reproduce.json``):

1. **train** - every learned method, every seed, with the study's steps; through the model
   cache, so a second run skips this stage (:mod:`dispatchbench.report.study_methods`).
2. **run** - the shoot-out for every method on the reported cases and on the protocol's unseen
   test states (``docs/protocol.md``; written to ``DIR/test-states-seed<seed>.csv`` by
   :func:`write_test_states`): one harness run (each cell in its own process under a hard time
   limit) with ``--jobs`` cells at once, or on Dask, into ``DIR``.
3. **report** - ``dispatchbench report`` on the results, with the study's baseline and state.

A method that cannot run (plugin missing, training crashed) is recorded with the reason in
``reproduce.json`` and in the report, and the rest goes on.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatchbench.bench import safe_files
from dispatchbench.bench.executors import make_executor
from dispatchbench.bench.model_cache import ModelCache
from dispatchbench.bench.results_store import REPRODUCE_FILE, ResultsStore, file_sha256
from dispatchbench.bench.run_metadata import utc_timestamp
from dispatchbench.instances.provenance import Provenance, write_sidecar
from dispatchbench.instances.state_families import FAMILIES, RANDOM, write_states
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem_file import load_problem
from dispatchbench.report import matched_budgets
from dispatchbench.report.html_report import build_report
from dispatchbench.report.study_file import Study, TestStates, load_study
from dispatchbench.report.study_methods import Training, probe_methods, shootout_specs, train_models, workers_default
from dispatchbench.report.tables import state_family


@dataclass
class Outcome:
    """What happened, for ``reproduce.json``, the report and the command's summary."""

    out_dir: Path
    study: Study
    wall_s: dict[str, float] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    rows: int = 0
    report: Path | None = None
    workers: int = 1
    executor: str = "local"
    test_states: dict[str, Any] = field(default_factory=dict)  # what write_test_states wrote, for the report
    budgets: list[dict[str, Any]] = field(default_factory=list)  # matched budgets (report/matched_budgets.py)

    @property
    def quick(self) -> bool:
        return self.study.quick

    def save(self) -> Path:
        path = self.out_dir / REPRODUCE_FILE
        data = {
            "study": self.study.name,
            "study_file": str(self.study.file),
            "study_sha256": self.study.sha256,
            "quick": self.quick,
            "budget": self.study.record(),
            "wall_s": self.wall_s,
            "models": self.models,
            "failures": self.failures,
            "rows": self.rows,
            "report": str(self.report) if self.report else None,
            "written": utc_timestamp(),
            "workers": self.workers,
            "executor": self.executor,
            "test_states": self.test_states,
            "budgets": self.budgets,
        }
        safe_files.write_text(self.out_dir, REPRODUCE_FILE, json.dumps(data, indent=2, default=str))  # no links
        return path


# ---- stage 2: the shoot-out -------------------------------------------------------------------

TEST_STATES_FILE = "test-states-seed{seed}.csv"


def write_test_states(problem_file: Path, out_dir: Path, tests: TestStates) -> tuple[Path, dict[str, Any]]:
    """Write the protocol's test states (never trained or tuned on) into ``out_dir`` with the
    same writer as ``dispatchbench generate states``; return the file and what the report says
    about it. The draw depends only on (seed, family, index), so a rerun writes the same bytes
    and ``--resume`` keeps its rows."""
    problem = load_problem(problem_file)
    states = tests.draw(problem)
    path = out_dir / TEST_STATES_FILE.format(seed=tests.seed)
    write_states(path, problem, states)
    write_sidecar(path, tests.seed)  # the harness reads it: every row records split and replicate
    drawn = {state_family(s.label) for s in states}
    families = [f for f in (*FAMILIES, RANDOM) if f in drawn]
    return path, {
        "file": path.name,
        "sha256": file_sha256(path),
        "split": tests.split,
        "seed": tests.seed,
        "replicate": tests.replicate,
        "days": 1,
        "stride": tests.stride,
        "intervals": list(tests.intervals),
        "random_count": tests.random,
        "states": len(states),
        "families": families,
    }


def run_shootout(
    problem_file: Path,
    states: list[Path],
    specs: list[str],
    seeds_for: dict[str, list[int]],
    out_dir: Path,
    timeout_s: float,
    failures: list[dict[str, str]],
    *,
    resume: bool,
    progress: bool,
    jobs: int,
    executor: str,
    scheduler: str | None,
    provenance: dict[Path, Provenance] | None = None,
) -> None:
    """One harness run of every spec into ``out_dir`` (each with its own seeds); specs that
    cannot be created are appended to ``failures`` and left out, the rest runs. ``provenance``
    names the split of state files without a sidecar (the reported cases)."""
    from dispatchbench.bench.harness import run_benchmark

    summary = run_benchmark(
        problem_file,
        states,
        specs,
        [0],
        out_dir,
        timeout=timeout_s,
        resume=resume,
        force=not resume,
        progress=progress,
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        seeds_for=seeds_for,
        skip_bad_specs=True,
        provenance=provenance,
    )
    for spec, why in summary.refused:
        failures.append({"method": spec, "stage": "run", "reason": why})


# ---- the pipeline -----------------------------------------------------------------------------


def reproduce(
    target: str | Path | Study,
    out_dir: str | Path,
    *,
    quick: bool = False,
    cache_root: str | Path | None = None,
    workers: int | None = None,
    report_root: str | Path = "reports",
    report_name: str | None = None,
    resume: bool = False,
    progress: bool = True,
    executor: str | None = None,
    scheduler: str | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> Outcome:
    """Train, run and report the paper study ``target`` (a study file, a bundled study's name, or
    a loaded :class:`Study`) into ``out_dir``; see the module docstring. ``workers`` (``--jobs``),
    ``executor`` and ``scheduler`` override the study's ``[run]`` table."""
    study = target if isinstance(target, Study) else load_study(target, quick=quick)
    if study.kind != "paper" or study.problem is None or study.baseline is None:
        raise InputError(study.file, "[study] kind", f"is {study.kind!r}", "run it with `dispatchbench reproduce`")
    workers = workers or study.run.jobs or workers_default()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("--jobs", repr(workers), "is not a number of processes (at least 1)", "give e.g. --jobs 2")
    executor = executor or study.run.executor
    scheduler = scheduler or study.run.scheduler
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem_file = study.problem.file
    states = list(study.problem.cases)
    outcome = Outcome(out_dir, study, workers=workers, executor=executor)
    if study.test_states is not None:
        test_file, outcome.test_states = write_test_states(problem_file, out_dir, study.test_states)
        states.append(test_file)
    methods = probe_methods(study, say=say)
    outcome.failures += methods.failures
    start = time.perf_counter()

    learners = methods.learners
    say(
        f"reproduce {study.name}{' --quick' if study.quick else ''}: stage 1/3, training learned methods "
        f"({', '.join(f'{m.spec} x {len(m.seeds)} seed(s)' for m in learners) or 'none'})"
    )
    t0 = time.perf_counter()
    trainings = [Training(m.spec, m.seeds, m.train_steps) for m in learners if isinstance(m.train_steps, int)]
    with make_executor(executor, workers, scheduler) as ex:
        ex.workers = workers  # trainings run in fresh processes even where cells would run serially
        trained = train_models(problem_file, trainings, ModelCache(cache_root), ex, progress)
    outcome.models += trained.models
    outcome.failures += trained.failures
    outcome.wall_s["train"] = time.perf_counter() - t0
    outcome.save()

    tests = outcome.test_states
    say(
        f"stage 2/3, the shoot-out on {len(study.problem.cases)} reported case file(s)"
        + (f" and {tests['states']} unseen test states (seed {tests['seed']})" if tests else "")
    )
    t0 = time.perf_counter()
    specs, seeds_for = shootout_specs(methods, trained)
    run_shootout(
        problem_file,
        states,
        specs,
        seeds_for,
        out_dir,
        study.run.timeout_s,
        outcome.failures,
        resume=resume,
        progress=progress,
        jobs=workers,
        executor=executor,
        scheduler=scheduler,
        provenance={Path(case): Provenance("reported") for case in study.problem.cases},
    )
    outcome.budgets = matched_budgets.run_budgets(
        methods.plain,
        problem_file,
        states,
        out_dir,
        timeout_s=study.run.timeout_s,
        progress=progress,
        jobs=workers,
        provenance={Path(case): Provenance("reported") for case in study.problem.cases},
    )
    outcome.rows = len(ResultsStore(out_dir).read_rows())
    outcome.wall_s["run"] = time.perf_counter() - t0
    outcome.wall_s["train + run"] = time.perf_counter() - start
    outcome.save()

    say("stage 3/3, the report")
    t0 = time.perf_counter()
    files = build_report(
        out_dir,
        out_root=report_root,
        name=report_name or study.report_name,
        baseline=study.baseline,
        state=study.problem.state,
    )
    outcome.report = files.html
    outcome.wall_s["report"] = time.perf_counter() - t0
    outcome.wall_s["total"] = time.perf_counter() - start
    outcome.save()
    return outcome
