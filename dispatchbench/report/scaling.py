"""``dispatchbench reproduce scaling`` (or any study file of kind ``scaling``): when does learning pay?

On the paper's one instance every decent method lands within a fraction of a percent, so the
benchmark cannot tell methods apart there. A scaling study runs every method on instances of
several sizes: generated ones (``[generate]``: the instance generator with a protocol split's
seed, and its test states from every day family) or the user's own problem and state files
(``[[instances]]``). Each learner is trained on each instance with the study file's budget, and
every method runs through the same harness and evaluator:

- gap to the exact methods' best solution per state (and to their dual bound, the documented
  ``info`` key ``dual_bound``, where none proved optimality), mean and worst;
- time per decision (wall time of one state, the harness's clock), training time, and the
  messages per decision of the distributed methods;
- log-scale plots of gap and time against the number of groups.

A learner the study gives no steps for at a size is *skipped with the reason*, never dropped
silently: the table says so. The bundled study is ``studies/scaling.toml`` (its budgets, and why).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench import safe_files
from dispatchbench.bench.executors import make_executor
from dispatchbench.bench.model_cache import ModelCache
from dispatchbench.bench.rescore import load_results
from dispatchbench.bench.results_store import parse_json_cell
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.contract.info import read_info
from dispatchbench.contract.status import SUCCESS, Status
from dispatchbench.instances.generate_problem import write_problem
from dispatchbench.instances.provenance import describe, write_sidecar
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import states_to_frame
from dispatchbench.report import decision_cost, figures, matched_budgets
from dispatchbench.report.document import Figure, Heading, Para, Table, code, plain, report_dir, to_html, to_markdown
from dispatchbench.report.study_file import INSTANCE_FILES, Method, Study, TestStates
from dispatchbench.report.study_file import load_study as read_study_file
from dispatchbench.report.study_methods import (
    Trained,
    Training,
    probe_methods,
    shootout_specs,
    train_models,
    workers_default,
)
from dispatchbench.report.tables import method_name, read_model_meta

HIDDEN_COLUMNS = ("spec", "learns", "budget_multiple", "budget_s", "budget_of", "budget_base")  # in summary.csv only
SCALING_FILE = "scaling.json"
SUMMARY_FILE = "summary.csv"


@dataclass
class ScalingOutcome:
    """What happened, for ``scaling.json`` and the report."""

    out_dir: Path
    study: Study
    wall_s: dict[str, float] = field(default_factory=dict)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def quick(self) -> bool:
        return self.study.quick

    def save(self) -> Path:
        path = self.out_dir / SCALING_FILE
        data = {
            "study": self.study.name,
            "study_file": str(self.study.file),
            "study_sha256": self.study.sha256,
            "quick": self.quick,
            "budget": self.study.record(),
            "baseline": self.study.baseline,
            "wall_s": self.wall_s,
            "instances": self.instances,
            "models": self.models,
            "failures": self.failures,
            "skipped": self.skipped,
            "written": utc_timestamp(),
            "machine": run_metadata(),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(path)
        return path


# ---- instances ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeInputs:
    """One instance of the study, as the harness runs it."""

    key: str  # "4" for a generated size, the instance's name otherwise
    results: str  # its results folder inside the study's folder
    problem_path: Path
    states_paths: tuple[Path, ...]
    problem: Problem
    seed: int | None = None  # the generator seed of a generated instance


def write_test_states(path: Path, problem: Problem, tests: TestStates) -> Path:
    """The instance's protocol states, written only when their text changed (``--resume``)."""
    text = states_to_frame(tests.draw(problem), problem).to_csv(index=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    write_sidecar(path, tests.seed)  # every row of these states records their split and replicate
    return path


def study_instances(study: Study, folder: Path) -> list[SizeInputs]:
    """Generate (or find, when already written) every instance's problem and state files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if study.generate is not None:
        assert study.test_states is not None
        for regions in study.generate.regions:
            problem_path = folder / f"generated-{regions}r.toml"
            seed = study.generate.seed
            problem = write_problem(problem_path, regions, seed, study.generate.commitment)
            states = write_test_states(folder / f"generated-{regions}r-test.csv", problem, study.test_states)
            out.append(SizeInputs(str(regions), f"n{regions}", problem_path, (states,), problem, seed))
    for inst in study.instances:
        problem = load_problem(inst.problem)
        state_files = list(inst.states)
        if study.test_states is not None:
            state_files.append(write_test_states(folder / f"{inst.name}-test.csv", problem, study.test_states))
        out.append(SizeInputs(inst.name, inst.name, inst.problem, tuple(state_files), problem))
    return out


# ---- the study ---------------------------------------------------------------------------------


def reproduce_scaling(
    out_dir: str | Path,
    target: str | Path | Study = "scaling",
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
) -> ScalingOutcome:
    """Generate, train, run and report the scaling study ``target`` (a study file, a bundled
    study's name, or a loaded :class:`Study`) into ``out_dir``; see the module docstring.
    ``workers``, ``executor`` and ``scheduler`` override the study's ``[run]`` table."""
    from dispatchbench.bench.harness import run_benchmark

    study = target if isinstance(target, Study) else read_study_file(target, quick=quick)
    if study.kind != "scaling":
        raise InputError(study.file, "[study] kind", f"is {study.kind!r}", "run it with `dispatchbench reproduce`")
    workers = workers or study.run.jobs or workers_default()
    executor = executor or study.run.executor
    scheduler = scheduler or study.run.scheduler
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = ScalingOutcome(out_dir, study)
    cache = ModelCache(cache_root)
    start = time.perf_counter()
    methods = probe_methods(study, say=say)
    outcome.failures += methods.failures
    anywhere = [m for m in methods.learners if m.any_size is not None]
    any_size = Trained()
    if anywhere:  # one model per seed for every instance, trained once, before any instance runs
        say(f"{study.name}: training {', '.join(m.spec for m in anywhere)} once for any size")
        with make_executor(executor, workers, scheduler) as ex:
            ex.workers = workers
            any_size = train_models(None, [_any_size_training(m) for m in anywhere], cache, ex, progress)
        outcome.failures += any_size.failures
    for size in study_instances(study, out_dir / INSTANCE_FILES):
        t0 = time.perf_counter()
        problem, regions = size.problem, len(size.problem.regions)
        outcome.instances[size.key] = {
            "problem": size.problem_path.name,
            "states": size.states_paths[0].name,
            "states_files": [p.name for p in size.states_paths],
            "groups": len(problem.groups),
            "regions": regions,
            "results": size.results,
            "seed": size.seed,
        }
        say(f"{study.name}: {size.key if size.seed is None else f'{regions} regions'}, {len(problem.groups)} groups")
        trainings = []
        for m in methods.learners:
            if m.any_size is not None:
                continue
            steps = m.steps_at(regions)
            if steps is None:
                outcome.skipped.append({"method": m.spec, "regions": regions, "reason": m.skip_text(regions)})
            else:
                trainings.append(Training(m.spec, m.seeds, steps))
        with make_executor(executor, workers, scheduler) as ex:
            ex.workers = workers
            trained = train_models(size.problem_path, trainings, cache, ex, progress)
        trained.specs.update(any_size.specs)
        trained.models += any_size.models
        for model in trained.models:
            # the training cost the learner recorded travels with the record: the report finds the
            # model folder by name only (the cache is the machine's, not the study's)
            meta = read_model_meta(str(model["path"]))
            cost = {k: meta[k] for k in decision_cost.TRAINING_KEYS if k in meta and k != "train_time_s"}
            outcome.models.append(
                {**cost, **model, "regions": regions, "instance": size.key, "path": Path(model["path"]).name}
            )
        outcome.failures += [{**f, "regions": str(regions)} for f in trained.failures]
        specs, seeds_for = shootout_specs(methods, trained)
        summary = run_benchmark(
            size.problem_path,
            list(size.states_paths),
            specs,
            [0],
            out_dir / size.results,
            timeout=study.run.timeout_s,
            resume=resume,
            force=not resume,
            progress=progress,
            jobs=workers,
            executor=executor,
            scheduler=scheduler,
            seeds_for=seeds_for,
            skip_bad_specs=True,
        )
        for spec, why in summary.refused:
            outcome.failures.append({"method": spec, "stage": "run", "reason": why, "regions": str(regions)})
        budgets = matched_budgets.run_budgets(
            methods.plain,
            size.problem_path,
            size.states_paths,
            out_dir / size.results,
            timeout_s=study.run.timeout_s,
            progress=progress,
            jobs=workers,
        )
        outcome.instances[size.key]["budgets"] = budgets
        for b in budgets:
            if "reason" in b:
                outcome.skipped.append({"method": f"{b['method']} @{b['multiple']:g}x", "regions": regions,
                                        "reason": b["reason"]})  # fmt: skip
        outcome.wall_s[f"{regions} regions" if size.seed is not None else size.key] = time.perf_counter() - t0
        outcome.save()
    outcome.wall_s["total"] = time.perf_counter() - start
    outcome.save()
    say(f"{study.name}: the report")
    build_scaling_report(out_dir, out_root=report_root, name=report_name or study.report_name)
    return outcome


def _any_size_training(m: Method) -> Training:
    assert m.any_size is not None
    return Training(m.spec, m.seeds, m.any_size.steps or 0, m.any_size.sizes, m.any_size.seconds)


# ---- analysis ----------------------------------------------------------------------------------


# mean over states of (cost − the baseline's cost) / the baseline's cost; the baseline is the study
# file's ``baseline`` spec (the bundled study: the priority-list heuristic, issue 21)
BASELINE_COLUMN = "vs baseline %"
ANY_SIZE_SUFFIX = " (any size)"  # the label of a model trained once on generated sizes (``train = {...}``)


def size_rows(
    results_dir: Path,
    regions: int,
    groups: int,
    instance: str = "",
    budgets: list[dict[str, Any]] | None = None,
    baseline: str | None = None,
    any_size: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """One row per (method, state, seed) with its gap to the best solution of the exact methods
    (their plugins' ``exact`` capability, stored in every row) and to their best dual bound.
    ``method`` is the plugin's label (the spec without a model path for rows written before
    labels existed)."""
    frame = load_results(results_dir).copy()
    frame["info_d"] = frame["info"].map(read_info)
    frame["method"] = frame["label"].fillna(frame["solver"].map(method_name)).astype(str)
    if any_size:  # a model trained once for every size: its rows stand beside the per-instance ones
        folder = frame["params"].map(lambda p: Path(str((parse_json_cell(p) or {}).get("model") or "")).name)
        frame.loc[folder.isin(any_size), "method"] += ANY_SIZE_SUFFIX
    frame = matched_budgets.relabel(frame, budgets or [], matched_budgets.learner_labels(frame))
    ref = frame[frame["exact"].fillna(False).astype(bool)]
    best = ref[ref["status"].isin(SUCCESS)].groupby("state")["cost"].min()
    bound = ref.assign(bound=ref["info_d"].map(lambda i: i.get("dual_bound"))).groupby("state")["bound"].max()
    proven = ref[ref["status"] == Status.OPTIMAL].groupby("state").size()
    frame["best"] = frame["state"].map(best)
    frame["bound"] = frame["state"].map(bound)
    frame["proven"] = frame["state"].map(proven).fillna(0) > 0
    ok = frame["status"].isin(SUCCESS)
    frame["gap_pct"] = np.where(ok, 100 * (frame["cost"] - frame["best"]) / frame["best"], np.nan)
    frame["bound_gap_pct"] = np.where(
        ok & ~frame["proven"], 100 * (frame["cost"] - frame["bound"]) / frame["cost"], np.nan
    )
    frame["messages"] = frame["info_d"].map(lambda i: i.get("messages"))
    # the study's baseline method (a spec it lists), every row compared with it per state
    specs = frame["solver"].astype(str)
    target = matched_budgets.canonical(baseline) if baseline else None
    same = [spec for spec in specs.unique() if matched_budgets.canonical(spec) == target]  # each spec parsed once
    reference = frame[specs.isin(same) & ok]
    base = frame["state"].map(reference.groupby("state")["cost"].min())
    frame["vs_baseline_pct"] = np.where(ok & base.notna(), 100 * (frame["cost"] - base) / base, np.nan)
    frame["regions"], frame["groups"], frame["instance"] = regions, groups, instance
    return frame


def _model_methods(rows: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """(instance, learned spec without its model, model folder name) -> the method its rows are
    labelled as: what ties a trained model of the study's record to its rows."""
    out: dict[tuple[str, str, str], str] = {}
    for instance, spec, params, method in rows[["instance", "solver", "params", "method"]].itertuples(index=False):
        model = (parse_json_cell(params) or {}).get("model")
        if model:
            out.setdefault((str(instance), method_name(spec), Path(str(model)).name), method)
    return out


def _training_records(m: dict[str, Any]) -> dict[str, Any]:
    """A trained model's cost fields: its ``model.json`` (every key the learner recorded), with the
    study's own record of the training time where the model file does not say it."""
    meta = read_model_meta(str(m.get("path", "")))
    return {**m, **{k: v for k, v in meta.items() if v is not None}}


def summarise(rows: pd.DataFrame, models: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per (instance, method): the numbers of the README's scaling table, with the
    decision-time and training-cost columns of :mod:`decision_cost` (online time, its ratio to
    SCIP's online time at the same size in the same run, offline batched time, training cost and
    break-even against that SCIP)."""
    methods = _model_methods(rows)
    trained: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in models:
        instance = str(m.get("instance", m["regions"]))
        method = methods.get((instance, method_name(m["method"]), Path(m["path"]).name), m["method"])
        trained.setdefault((instance, method), []).append(_training_records(m))
    reference = rows[decision_cost.reference_mask(rows)]
    scip_online = {str(i): decision_cost.online_seconds(g) for i, g in reference.groupby("instance")}
    out = []
    for (regions, instance, method), g in rows.groupby(["regions", "instance", "method"], sort=True):
        ok = g["status"].isin(SUCCESS)
        skipped = g["reason"].fillna("").astype(str).str.startswith("skipped")
        failed = g.loc[~ok & ~skipped, "status"].value_counts()
        messages = pd.to_numeric(g["messages"], errors="coerce")
        learned = bool(g["learns"].fillna(False).astype(bool).any()) if "learns" in g else False
        out.append(
            {
                "instance": g["instance_name"].iloc[0],
                "regions": regions,
                "groups": int(g["groups"].iloc[0]),
                "method": method,
                "spec": method_name(str(g["solver"].iloc[0])),
                "answers": f"{int(ok.sum())}/{len(g)}",
                "mean gap %": g["gap_pct"].mean(),
                "worst gap %": g["gap_pct"].max(),
                "gap to bound %": g["bound_gap_pct"].mean() if g["bound_gap_pct"].notna().any() else math.nan,
                **decision_cost.decision_columns(
                    g,
                    scip_online.get(str(instance), math.nan),
                    trained.get((str(instance), method), []),
                    learned=learned,
                ),
                "messages per decision": messages.mean() if messages.notna().any() else math.nan,
                BASELINE_COLUMN: g["vs_baseline_pct"].mean() if g["vs_baseline_pct"].notna().any() else math.nan,
                "learns": learned,
                "budget_multiple": g["budget_multiple"].iloc[0],
                "budget_s": g["budget_s"].iloc[0],
                "budget_of": g["budget_of"].iloc[0],
                "budget_base": g["budget_base"].iloc[0],
                "failures": ", ".join(
                    [f"{n} {s}" for s, n in failed.items()]
                    + ([f"{int(skipped.sum())} skipped"] if skipped.any() else [])
                ),
            }
        )
    return pd.DataFrame(out)


def skipped_table(record: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    """Learners the budget left out, and methods that declined a size themselves (their ``skip``)."""
    out = [dict(r) for r in record.get("skipped", [])]
    if len(rows):
        declined = rows[rows["reason"].fillna("").astype(str).str.startswith("skipped")]
        for (method, regions), g in declined.groupby(["solver", "regions"]):
            out.append({"method": method, "regions": regions, "reason": str(g["reason"].iloc[0])})
    return pd.DataFrame(out)


def load_study(out_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    path = out_dir / SCALING_FILE
    if not path.is_file():
        raise InputError(out_dir, SCALING_FILE, "not found", "run `dispatchbench reproduce scaling` into it first")
    record = json.loads(path.read_text())
    frames = []
    for key, inst in record["instances"].items():
        results = out_dir / inst.get("results", f"n{key}")
        if (results / "rows.jsonl").exists() or any(results.glob("*.parquet")):
            rows = size_rows(
                results,
                int(inst["regions"]),
                int(inst["groups"]),
                key,
                inst.get("budgets"),
                record.get("baseline"),
                {Path(str(m["path"])).name for m in record["models"] if m.get("any_size")},
            )
            frames.append(rows.assign(instance_name=Path(str(inst["problem"])).stem))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return record, rows, summarise(rows, record["models"]) if len(rows) else pd.DataFrame()


# ---- report ------------------------------------------------------------------------------------


def _method_budget(method: dict[str, Any]) -> str:
    """``spec`` with its seeds and training steps, as the study file gave them."""
    text = f"{method.get('spec')} seeds {method.get('seeds')}"
    if method.get("train_steps") is not None:
        text += f", trained once per instance and seed with steps {method['train_steps']}"
    if method.get("any_size"):
        recipe = method["any_size"]
        limits = [f"{recipe['steps']} steps"] if recipe.get("steps") else []
        limits += [f"{recipe['seconds']:g} s of wall time"] if recipe.get("seconds") else []
        text += (
            f", trained once per seed on generated instances of {recipe['sizes']} regions (training generator "
            f"seeds) within {' or '.join(limits)}, then deciding every instance zero-shot"
        )
    if method.get("variants"):
        text += f", variants {method['variants']}"
    return text


def build_scaling_report(out_dir: str | Path, *, out_root: str | Path = "reports", name: str = "scaling") -> Path:
    """``reports/<name>/``: the scaling table, its plots and the study's metadata (HTML + Markdown)."""
    out_dir = Path(out_dir)
    record, rows, summary = load_study(out_dir)
    folder = report_dir(out_root, name)
    for old in folder.glob("fig*.png"):
        old.unlink()
    figs = []
    if len(summary):
        figs.append(
            Figure(
                figures.scaling_panel(
                    summary, "mean gap %", "mean gap to the exact methods' best (%)", folder / "fig_scaling_gap.png"
                ),
                "Gap against groups: mean gap to the exact methods' best solution per state, log scale "
                "(gaps below 1e-6 % are drawn at 1e-6 %)",
            )
        )
        figs.append(
            Figure(
                figures.scaling_panel(
                    summary,
                    decision_cost.ONLINE,
                    "seconds per decision, online (median)",
                    folder / "fig_scaling_time.png",
                ),
                "Time against groups: median wall time per decision, one state per call (online), log scale",
            )
        )
    budget_blocks: list[Any] = []
    if len(summary) and summary["budget_multiple"].notna().any():
        best = matched_budgets.best_per_budget(summary)
        budget_blocks = [
            Heading(2, "Matched budgets: what each method reaches in the learner's time"),
            Para(
                [
                    plain(
                        "Each classical method with budgets ran again as its own spec with a per-state time limit "
                        "of 1×, 10× and 100× the learner's median online decision time on the same instance "
                        "(measured in this run, one state per call); SCIP answers with its incumbent or times out "
                        "without one, PSO with its best particle, NLopt with its best feasible point. The "
                        "unbudgeted SCIP rows are the references. Best at each budget: the lowest mean gap among "
                        "the budgeted methods at that multiple and every other method (learned, a heuristic, a "
                        "distributed method, an unbudgeted solver) whose own median online time is within it; a "
                        "multiple at or above the per-state limit is not run again (the unbudgeted row ran under "
                        "that limit). Only methods that answered every state are ranked, the others are listed "
                        "with their answers."
                    )
                ]
            ),
            Table(best, digits=4, numeric=("regions", "seconds", "mean gap %")),
            *[
                Figure(p, caption)
                for p, caption in matched_budgets.figures_per_size(summary, folder, figures.gap_against_time)
            ],
        ]
    shown_summary = decision_cost.shown(summary.drop(columns=[c for c in HIDDEN_COLUMNS if c in summary]))
    machine = record.get("machine", {})
    study = record.get("budget", {})
    sizes = sorted(int(i["regions"]) for i in record["instances"].values()) or [0]
    seeds = {i.get("seed") for i in record["instances"].values()} - {None}
    where = (
        [
            plain("One generated instance per size ("),
            code("dispatchbench generate problem"),
            plain(f", seed {min(seeds)})"),
        ]
        if seeds
        else [plain("The study's own problem files")]
    )
    tests = study.get("test_states") or {}
    blocks: list[Heading | Para | Table | Figure] = [
        Heading(1, f"Scaling study {record.get('study', name)}: every method from {sizes[0]} to {sizes[-1]} regions"),
        Para(
            [
                *where,
                plain(
                    (
                        f", states from every day family ({tests.get('split')} seeds only: "
                        f"{describe(tests.get('split'), tests.get('replicate', 0))})"
                        if tests
                        else ", with their state files"
                    )
                    + ", every method through the same harness and evaluator. Gaps are to the best solution of "
                    "the exact methods on the same state; where none proved optimality the gap to their dual "
                    "bound is shown too. Mean and worst gap "
                    "are over the states a method answered with a feasible dispatch; 'answers' counts them "
                    "(states x seeds) and 'failures' says what happened to the rest. 'vs baseline %' compares each "
                    "answer with the study's baseline method's on the same state (negative: cheaper; the bundled "
                    "study's baseline is the priority-list heuristic, with no training and no search). "
                    "Messages per decision count every scalar the distributed search sends, repairs of an "
                    "unworkable learned commitment included."
                ),
            ]
        ),
        Table(
            shown_summary,
            digits=4,
            numeric=(
                "mean gap %",
                "worst gap %",
                "gap to bound %",
                *decision_cost.NUMERIC_COLUMNS,
                "messages per decision",
                BASELINE_COLUMN,
            ),
        ),
        Para([plain(decision_cost.DEFINITIONS)]),
        *figs,
        *budget_blocks,
        Heading(2, "Skipped, with the reason"),
        Table(skipped_table(record, rows), digits=3),
        Heading(2, "Cells that failed"),
        Para(
            [
                plain(
                    "A cell (one method on one instance) that crashed or was stopped as a whole. Answers without a "
                    "feasible dispatch within a cell (infeasible, timeout, a false 'infeasible' on a feasible state) "
                    "are counted per method in the summary's 'failures' column."
                )
            ]
        ),
        Table(pd.DataFrame(record.get("failures", [])), digits=3),
        Heading(2, "Budget and machine"),
        Para(
            [
                plain("Study file "),
                code(str(record.get("study_file", "?"))),
                plain(
                    f" (SHA-256 {str(record.get('study_sha256', '?'))[:12]}); quick: {record.get('quick')}; per-state "
                    f"limit {study.get('run', {}).get('timeout_s')} s; methods: "
                    + "; ".join(_method_budget(m) for m in study.get("methods", []))
                    + "; wall time: "
                    + ", ".join(f"{k} {v:.0f} s" for k, v in record.get("wall_s", {}).items())
                ),
            ]
        ),
        Table(pd.DataFrame([{"field": k, "value": str(v)} for k, v in machine.items()]), digits=3),
    ]
    safe_files.write_text(folder, "report.md", to_markdown(blocks))  # temp file + rename, never through a link
    safe_files.write_text(folder, "report.html", to_html(blocks, title="dispatchbench scaling study"))
    safe_files.write_text(folder, SUMMARY_FILE, summary.to_csv(index=False))
    return folder
