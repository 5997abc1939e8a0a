"""``dispatchbench reproduce scaling``: when does learning pay? Every method from 4 to 128 regions.

On the paper's one instance every decent method lands within a fraction of a percent, so the
benchmark cannot tell methods apart there. This study generates one instance per size (the
instance generator, test-split seed), draws its test states from every day family (the
protocol's test seeds: nothing here was tuned on them), trains each learner on that instance with
a stated budget, and runs every method through the same harness and evaluator:

- gap to SCIP's best solution per state (and to SCIP's dual bound where SCIP did not prove
  optimality), mean and worst;
- time per decision (wall time of one state, the harness's clock), training time, and the
  messages per decision of the distributed methods;
- log-scale plots of gap and time against the number of groups.

A learner whose budget at a size would break the study's time budget is *skipped with the
reason*, never dropped silently: the table says so.

Budget (why these numbers): the whole study must fit in 60 minutes on two cores, ``--quick``
in 5. The per-size numbers below were set from probes of each method's cost per state and per
training step on generated instances (validation seeds), never on the test states reported.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench import safe_files
from dispatchbench.bench.executors import make_executor
from dispatchbench.bench.model_cache import ModelCache
from dispatchbench.bench.plugins import parse_spec
from dispatchbench.bench.rescore import load_results
from dispatchbench.bench.results_store import parse_json_cell
from dispatchbench.bench.run_metadata import run_metadata, utc_timestamp
from dispatchbench.contract.info import read_info
from dispatchbench.contract.status import SUCCESS, Status
from dispatchbench.instances.generate_problem import write_problem
from dispatchbench.instances.protocol import TEST, test_states
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.state_file import states_to_frame
from dispatchbench.report import figures
from dispatchbench.report.document import Figure, Heading, Para, Table, code, plain, report_dir, to_html, to_markdown
from dispatchbench.report.reproduce import Budget, Outcome, train_models, workers_default
from dispatchbench.report.tables import method_name

SCALING_FILE = "scaling.json"
SUMMARY_FILE = "summary.csv"
INSTANCE_SEED = TEST.seed(0)  # the instances, like their states, come from the test split
SCIP_CERTIFIED = "scip"
SCIP_PRACTICAL = "scip[rel_gap=0.0001]"


@dataclass(frozen=True)
class ScalingBudget:
    """What the study runs at each size."""

    sizes: tuple[int, ...]
    intervals: tuple[int, ...]  # the day's intervals taken from every family's test day
    classical: tuple[str, ...]
    pso_seeds: tuple[int, ...]
    # learner spec -> {regions: training steps}; a size missing here is skipped with ``skip_reason``
    learned: dict[str, dict[int, int]]
    skip_reason: dict[str, str]
    timeout_s: float  # hard limit per state


CLASSICAL = (SCIP_CERTIFIED, SCIP_PRACTICAL, "nlopt[algorithm=LD_SLSQP]", "pso[iterations=60]")
FULL = ScalingBudget(
    sizes=(4, 8, 16, 32, 64, 128),
    intervals=(8, 72),  # 02:00 and 18:00 of each family's test day: 10 states per size
    classical=CLASSICAL,
    pso_seeds=(0, 1),
    # Steps per size, set from the cost of a step measured on validation-seed instances (not from
    # any result): TVC takes its default 1500 steps at the paper's size and, with its default
    # settings at every size (chosen on a validation instance at 32 regions: 0.67 % mean gap
    # against 30.5 % for cheaper large-instance settings), fewer as a step gets dearer — the
    # steps that fit about 10 minutes (benchmarks/bench_tvc_scale.py); MADDPG its default 24000
    # at the paper's size, then 3000 halved per doubling down to 600 (its first 500 steps only
    # fill the replay buffer; an update step costs ~0.35 s at 64 regions).
    learned={
        "madrl_tvc": {4: 1500, 8: 600, 16: 300, 32: 150, 64: 120, 128: 30},
        "maddpg": {4: 24000, 8: 3000, 16: 1500, 32: 750, 64: 750, 128: 600},
    },
    skip_reason={"madrl_tvc": "not skipped", "maddpg": "not skipped"},
    timeout_s=30.0,
)
QUICK = ScalingBudget(
    sizes=(4, 8, 16, 32),
    intervals=(40,),
    classical=CLASSICAL,
    pso_seeds=(0,),
    learned={"madrl_tvc": {4: 100}, "maddpg": {4: 300}},
    skip_reason={
        "madrl_tvc": "--quick trains learners on the smallest instance only",
        "maddpg": "--quick trains learners on the smallest instance only",
    },
    timeout_s=30.0,
)


@dataclass
class ScalingOutcome:
    """What happened, for ``scaling.json`` and the report."""

    out_dir: Path
    quick: bool
    budget: ScalingBudget
    wall_s: dict[str, float] = field(default_factory=dict)
    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def save(self) -> Path:
        path = self.out_dir / SCALING_FILE
        data = {
            "quick": self.quick,
            "budget": asdict(self.budget),
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


def pick_states(states: list[State], intervals: tuple[int, ...]) -> list[State]:
    """The given intervals of every family's day (labels ``<family>_d0_tNN``)."""
    wanted = {f"_t{k:02d}" for k in intervals}
    return [s for s in states if s.label[-4:] in wanted]


def prepare_instance(folder: Path, regions: int, intervals: tuple[int, ...]) -> tuple[Path, Path, Problem]:
    """Generate (or find, when already written) the size's problem file and test-state file."""
    folder.mkdir(parents=True, exist_ok=True)
    problem_path = folder / f"generated-{regions}r.toml"
    states_path = folder / f"generated-{regions}r-test.csv"
    problem = write_problem(problem_path, regions, INSTANCE_SEED)
    chosen = pick_states(test_states(problem), intervals)
    text = states_to_frame(chosen, problem).to_csv(index=False)
    if not states_path.exists() or states_path.read_text() != text:
        states_path.write_text(text)
    return problem_path, states_path, problem


# ---- the study ---------------------------------------------------------------------------------


def reproduce_scaling(
    out_dir: str | Path,
    *,
    quick: bool = False,
    cache_root: str | Path | None = None,
    workers: int | None = None,
    report_root: str | Path = "reports",
    report_name: str = "scaling",
    resume: bool = False,
    progress: bool = True,
    executor: str = "local",
    scheduler: str | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> ScalingOutcome:
    """Generate, train, run and report the scaling study into ``out_dir``; see the module docstring."""
    from dispatchbench.bench.harness import run_benchmark

    budget = QUICK if quick else FULL
    workers = workers or workers_default()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = ScalingOutcome(out_dir, quick, budget)
    cache = ModelCache(cache_root)
    start = time.perf_counter()
    for regions in budget.sizes:
        t0 = time.perf_counter()
        problem_path, states_path, problem = prepare_instance(out_dir / "instances", regions, budget.intervals)
        outcome.instances[regions] = {
            "problem": problem_path.name,
            "states": states_path.name,
            "groups": len(problem.groups),
            "regions": len(problem.regions),
        }
        say(f"scaling: {regions} regions, {len(problem.groups)} groups")
        learned_here = {spec: steps[regions] for spec, steps in budget.learned.items() if regions in steps}
        for spec in budget.learned:
            if regions not in budget.learned[spec]:
                outcome.skipped.append({"method": spec, "regions": regions, "reason": budget.skip_reason[spec]})
        size_budget = Budget(
            classical=budget.classical,
            pso="",
            pso_seeds=budget.pso_seeds,
            learned=learned_here,
            learned_seeds=(0,),
            timeout_s=budget.timeout_s,
        )
        size_outcome = Outcome(out_dir, quick, size_budget)
        with make_executor(executor, workers, scheduler) as ex:
            ex.workers = workers
            trained = train_models(problem_path, size_budget, cache, ex, size_outcome, progress)
        for model in size_outcome.models:
            outcome.models.append({**model, "regions": regions, "path": Path(model["path"]).name})
        outcome.failures += [{**f, "regions": str(regions)} for f in size_outcome.failures]
        models = [m for ms in trained.values() for m in ms]
        specs = [*budget.classical, *models]
        seeds_for = {s: [0] for s in specs if parse_spec(s)[0] != "pso"}
        summary = run_benchmark(
            problem_path,
            [states_path],
            specs,
            list(budget.pso_seeds),
            out_dir / f"n{regions}",
            timeout=budget.timeout_s,
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
        outcome.wall_s[f"{regions} regions"] = time.perf_counter() - t0
        outcome.save()
    outcome.wall_s["total"] = time.perf_counter() - start
    outcome.save()
    say("scaling: the report")
    build_scaling_report(out_dir, out_root=report_root, name=report_name)
    return outcome


# ---- analysis ----------------------------------------------------------------------------------


def size_rows(results_dir: Path, regions: int, groups: int) -> pd.DataFrame:
    """One row per (method, state, seed) with its gap to the exact methods' (SCIP's) best and to
    their dual bound. ``method`` is the plugin's label (the spec without a model path for rows
    written before labels existed)."""
    frame = load_results(results_dir).copy()
    frame["info_d"] = frame["info"].map(read_info)
    frame["method"] = frame["label"].fillna(frame["solver"].map(method_name)).astype(str)
    exact = frame[frame["exact"].fillna(False).astype(bool)]
    best = exact[exact["status"].isin(SUCCESS)].groupby("state")["cost"].min()
    bound = exact.assign(bound=exact["info_d"].map(lambda i: i.get("dual_bound"))).groupby("state")["bound"].max()
    proven = exact[exact["status"] == Status.OPTIMAL].groupby("state").size()
    frame["best"] = frame["state"].map(best)
    frame["bound"] = frame["state"].map(bound)
    frame["proven"] = frame["state"].map(proven).fillna(0) > 0
    ok = frame["status"].isin(SUCCESS)
    frame["gap_pct"] = np.where(ok, 100 * (frame["cost"] - frame["best"]) / frame["best"], np.nan)
    frame["bound_gap_pct"] = np.where(
        ok & ~frame["proven"], 100 * (frame["cost"] - frame["bound"]) / frame["cost"], np.nan
    )
    frame["messages"] = frame["info_d"].map(lambda i: i.get("messages"))
    frame["regions"], frame["groups"] = regions, groups
    return frame


def _model_methods(rows: pd.DataFrame) -> dict[tuple[int, str, str], str]:
    """(regions, learned spec without its model, model folder name) -> the method its rows are
    labelled as: what ties a trained model of the study's record to its rows."""
    out: dict[tuple[int, str, str], str] = {}
    for regions, spec, params, method in rows[["regions", "solver", "params", "method"]].itertuples(index=False):
        model = (parse_json_cell(params) or {}).get("model")
        if model:
            out.setdefault((int(regions), method_name(spec), Path(str(model)).name), method)
    return out


def summarise(rows: pd.DataFrame, models: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per (size, method): the numbers of the README's scaling table."""
    methods = _model_methods(rows)
    train_s: dict[tuple[int, str], list[float]] = {}
    for m in models:
        method = methods.get((int(m["regions"]), method_name(m["method"]), Path(m["path"]).name), m["method"])
        train_s.setdefault((int(m["regions"]), method), []).append(float(m["train_time_s"] or 0))
    out = []
    for (regions, method), g in rows.groupby(["regions", "method"], sort=True):
        ok = g["status"].isin(SUCCESS)
        skipped = g["reason"].fillna("").astype(str).str.startswith("skipped")
        failed = g.loc[~ok & ~skipped, "status"].value_counts()
        messages = pd.to_numeric(g["messages"], errors="coerce")
        out.append(
            {
                "regions": regions,
                "groups": int(g["groups"].iloc[0]),
                "method": method,
                "answers": f"{int(ok.sum())}/{len(g)}",
                "mean gap %": g["gap_pct"].mean(),
                "worst gap %": g["gap_pct"].max(),
                "gap to bound %": g["bound_gap_pct"].mean() if g["bound_gap_pct"].notna().any() else math.nan,
                "s per decision": g.loc[~skipped, "time_s"].median() if (~skipped).any() else math.nan,
                "training s": float(np.mean(train_s[(regions, method)])) if (regions, method) in train_s else math.nan,
                "messages per decision": messages.mean() if messages.notna().any() else math.nan,
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
    for regions, inst in record["instances"].items():
        results = out_dir / f"n{regions}"
        if (results / "rows.jsonl").exists() or any(results.glob("*.parquet")):
            frames.append(size_rows(results, int(regions), int(inst["groups"])))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return record, rows, summarise(rows, record["models"]) if len(rows) else pd.DataFrame()


# ---- report ------------------------------------------------------------------------------------


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
                    summary, "mean gap %", "mean gap to SCIP's best (%)", folder / "fig_scaling_gap.png"
                ),
                "Gap against groups: mean gap to SCIP's best solution per state, log scale "
                "(gaps below 1e-6 % are drawn at 1e-6 %)",
            )
        )
        figs.append(
            Figure(
                figures.scaling_panel(
                    summary, "s per decision", "seconds per decision (median)", folder / "fig_scaling_time.png"
                ),
                "Time against groups: median wall time per decision, log scale",
            )
        )
    machine = record.get("machine", {})
    blocks = [
        Heading(1, "Scaling study: every method from 4 to 128 regions"),
        Para(
            [
                plain("One generated instance per size ("),
                code("dispatchbench generate problem"),
                plain(
                    f", seed {INSTANCE_SEED}), test states from every day family (test seeds only), every method "
                    "through the same harness and evaluator. Gaps are to SCIP's best solution of the same state; "
                    "where SCIP did not prove optimality the gap to its dual bound is shown too. Mean and worst gap "
                    "are over the states a method answered with a feasible dispatch; 'answers' counts them "
                    "(states x seeds) and 'failures' says what happened to the rest. Messages per decision count "
                    "every scalar the distributed search sends, repairs of an unworkable learned commitment "
                    "included."
                ),
            ]
        ),
        Table(
            summary,
            digits=4,
            numeric=(
                "mean gap %",
                "worst gap %",
                "gap to bound %",
                "s per decision",
                "training s",
                "messages per decision",
            ),
        ),
        *figs,
        Heading(2, "Skipped, with the reason"),
        Table(skipped_table(record, rows), digits=3),
        Heading(2, "Failures"),
        Table(pd.DataFrame(record.get("failures", [])), digits=3),
        Heading(2, "Budget and machine"),
        Para(
            [
                plain(
                    f"quick: {record.get('quick')}; per-state limit {record['budget']['timeout_s']} s; PSO seeds "
                    f"{record['budget']['pso_seeds']}; learners trained once per instance (seed 0) with steps "
                    f"{record['budget']['learned']}; wall time: "
                    + ", ".join(f"{k} {v:.0f} s" for k, v in record.get("wall_s", {}).items())
                )
            ]
        ),
        Table(pd.DataFrame([{"field": k, "value": str(v)} for k, v in machine.items()]), digits=3),
    ]
    safe_files.write_text(folder, "report.md", to_markdown(blocks))  # temp file + rename, never through a link
    safe_files.write_text(folder, "report.html", to_html(blocks, title="dispatchbench scaling study"))
    safe_files.write_text(folder, SUMMARY_FILE, summary.to_csv(index=False))
    return folder
