"""``dispatchbench report DIR``: a results directory turned into a report colleagues can read.

What the report trusts, and why: a results row carries a stored cost, but the report shows
none of them. The rows are read and re-scored by the one policy every reader uses
(:mod:`dispatchbench.bench.rescore`): the problem and state files the rows name are reloaded
(their SHA-256 checked, so a file edited after the run is refused), every stored dispatch is
rebuilt and scored again by the evaluator, and a row that claims a cost without a dispatch, that
no run planned, or that repeats another is refused with the file and line. A stored result the
evaluator disagrees with is shown with the evaluator's verdict and listed under Failures.
Tables IV/V are then made by :mod:`dispatchbench.report.tables` from those costs, and every figure
draws recomputed quantities (fed-back energy, losses, costs) of real dispatches.

Learned methods appear in the results as one solver spec per trained model
(``madrl_tvc[model=DIR]``); the report folds them into one method per algorithm with the
training seed (read from the model's ``model.json``) as the seed, so seeds give a spread, not
separate rows. The model directory also holds the training log that Fig. 5 is drawn from.

The report is a list of sections (:func:`build_report` calls one builder per section, each
returning document blocks): summary, Tables IV and V, unseen test days, Fig. 5, the day's
dispatch figures, Fig. 9, run time, failures and notes, metadata.

Output: ``reports/<name>/report.html`` (self-contained: figures inlined as base64 PNG),
``report.md`` and the PNG files beside it, each written by temporary file and rename, never
through a link. Everything a user or a plugin wrote (names, labels, specs, error messages) is
escaped, methods appear under short labels with the full spec in a legend, paths are shown
relative to the project, and ``name`` must be a plain folder name.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench import safe_files
from dispatchbench.bench.plugins import PluginProvenance, parse_spec
from dispatchbench.bench.rescore import CHECK_NO_DISPATCH, CHECK_OK, rescore_folders
from dispatchbench.bench.results_store import REPRODUCE_FILE, parse_json_cell
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.contract.info import read_info
from dispatchbench.contract.status import FAILURES, SUCCESS
from dispatchbench.instances.provenance import Provenance, describe
from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError, SolverNotFound
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import GroupType, Problem, State
from dispatchbench.report import decision_cost, figures, matched_budgets, tables
from dispatchbench.report.document import (
    Block,
    Figure,
    Heading,
    Para,
    Table,
    cell_text,
    check_report_name,
    code,
    plain,
    report_dir,
    strong,
    to_html,
    to_markdown,
)
from dispatchbench.report.tables import cost_per_hour, fold_learned_models

# ---- loading and re-scoring -------------------------------------------------------------------


@dataclass
class ScoredResults:
    """Results rows re-scored by the evaluator (:mod:`dispatchbench.bench.rescore`): ``cost``,
    ``status`` and ``max_violation`` are the evaluator's, ``cost_check`` says where the stored
    verdict differed. ``frame`` gains ``method`` (spec without the model path) and ``run_seed``
    (training seed for learned methods, else the run's seed)."""

    frame: pd.DataFrame
    problem: Problem
    states: dict[str, list[State]]  # states_sha256 -> states in file order
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # model dir -> model.json
    notes: list[str] = field(default_factory=list)  # what reading the rows found (rows without a plan)


def load_scored(results_dir: str | Path) -> ScoredResults:
    """Load a results directory through the re-scoring policy; one problem per report."""
    results_dir = Path(results_dir)
    rescored = rescore_folders([results_dir])
    frame = rescored.frame
    if frame.empty:
        raise InputError(results_dir, "results", "holds no rows", "run `dispatchbench run` into it first")
    if len(rescored.problems) != 1:
        raise InputError(
            results_dir,
            "problem_file",
            "rows of several problems in one directory",
            "report one problem per results directory",
        )
    (problem,) = rescored.problems.values()
    states = {states_sha: sts for (_, states_sha), sts in rescored.states.items()}
    frame, models = fold_learned_models(frame)
    notes = [n for n in rescored.notes if not n.startswith("WARNING")]  # disagreements: under Failures
    return ScoredResults(frame=frame, problem=problem, states=states, models=models, notes=notes)


def as_table_input(scored: ScoredResults) -> pd.DataFrame:
    """The rows as the tables module reads them: learned models folded into one method per
    algorithm (training seed as seed); costs are already the evaluator's."""
    frame = scored.frame.copy()
    frame["solver"] = frame["method"]
    frame["seed"] = frame["run_seed"].astype("Int64")
    return frame


# ---- which states are the day and which the Table IV state --------------------------------------


def day_states_sha(scored: ScoredResults, exclude: tuple[str, ...] = ()) -> str | None:
    """The state file with the most states (at least 2): the day the day-figures show. A set of
    unseen test states (``exclude``, or any file of generated states of several families) is no
    day, and is passed over while there is another file."""
    sizes = {sha: len(sts) for sha, sts in scored.states.items() if len(sts) >= 2 and sha not in exclude}
    days = {sha: n for sha, n in sizes.items() if not tables.several_families(s.label for s in scored.states[sha])}
    sizes = days or sizes
    return max(sizes, key=sizes.__getitem__) if sizes else None


def reference_method(frame: pd.DataFrame) -> str | None:
    """The certified optimum among the report's methods (labels): see
    :func:`decision_cost.certified_reference`."""
    return decision_cost.certified_reference(frame, "method")


def day_costs(frame: pd.DataFrame, day_sha: str) -> pd.DataFrame:
    """Recomputed cost per interval (rows: state index) and method (columns): median over seeds."""
    day = frame[frame["states_sha256"] == day_sha]
    table = day.pivot_table(index="state_index", columns="method", values="cost", aggfunc="median", dropna=False)
    n = int(day["states_count"].max())
    return table.reindex(range(n))


def day_average_per_method(frame: pd.DataFrame, day_sha: str) -> pd.Series:
    """Mean over seeds of the day's average cost per hour (only seeds with every interval feasible)."""
    day = frame[frame["states_sha256"] == day_sha]
    n = int(day["states_count"].max())
    per_seed = day.groupby(["method", "run_seed"])["cost"].agg(["sum", "count"])
    complete = per_seed[per_seed["count"] == n]
    return (complete["sum"] / (n / 4.0)).groupby(level="method").mean().sort_values()


def choose_dispatch_method(scored: ScoredResults, day_sha: str, requested: str | None) -> tuple[str, int, str]:
    """``(method, seed, why)`` for the dispatch figures: the requested method, else the best
    learned one by day-average cost, else the best method overall. Of several seeds the one
    with the median day cost is shown (a typical run, not the luckiest)."""
    frame = scored.frame
    averages = day_average_per_method(frame, day_sha)
    if requested:
        if requested not in set(frame["method"]):
            raise InputError(
                "--method",
                requested,
                "is not a method of these results",
                f"choose one of: {', '.join(sorted(frame['method'].unique()))}",
            )
        if requested not in averages.index:
            raise InputError(
                "--method",
                requested,
                "has no complete feasible day in these results",
                f"choose one of: {', '.join(averages.index) or '(none)'}",
            )
        method, why = requested, "chosen with --method"
    else:
        if averages.empty:
            raise InputError(
                "results",
                "day",
                "no method has a feasible dispatch for every interval of the day",
                "check the run's failures (dispatchbench table DIR)",
            )
        learned = set(frame.loc[frame["learns"].fillna(False).astype(bool), "method"])
        best_learned = [m for m in averages.index if m in learned]
        if best_learned:
            method, why = best_learned[0], "best learned method by day-average cost"
        else:
            method, why = averages.index[0], "best method by day-average cost (no learned method with a complete day)"
    day = frame[(frame["states_sha256"] == day_sha) & (frame["method"] == method)]
    n = int(day["states_count"].max())
    sums = day.groupby("run_seed")["cost"].agg(["sum", "count"])
    sums = sums[sums["count"] == n].sort_values("sum")
    seed = int(sums.index[(len(sums) - 1) // 2])
    return method, seed, why + (f"; seed {seed} (median of {len(sums)} seeds)" if len(sums) > 1 else "")


# ---- one method's day, recomputed ------------------------------------------------------------


@dataclass(frozen=True)
class DaySeries:
    """One method's dispatches over the day and what the evaluator makes of them, per interval."""

    states: list[State]
    power: np.ndarray  # (T, G) kW, battery side for V2G
    imports: np.ndarray  # (T, R) kW
    fed_back: np.ndarray  # (T, G) kW delivered by V2G groups (0 elsewhere)
    losses: np.ndarray  # (T, G) kW
    cost: np.ndarray  # (T,)


def day_series(scored: ScoredResults, day_sha: str, method: str, seed: int) -> DaySeries:
    problem = scored.problem
    states = scored.states[day_sha]
    rows = scored.frame[
        (scored.frame["states_sha256"] == day_sha)
        & (scored.frame["method"] == method)
        & (scored.frame["run_seed"] == seed)
    ].sort_values("state_index")
    by_label = {r.state: r for r in rows.itertuples(index=False)}
    power, imports, fed, losses, cost = [], [], [], [], []
    for state in states:
        dispatch = Dispatch.from_json(problem, parse_json_cell(by_label[state.label].dispatch))
        ev = evaluate(problem, state, dispatch)
        power.append(dispatch.power)
        imports.append(dispatch.imports)
        fed.append(ev.fed_back)
        losses.append(ev.losses)
        cost.append(ev.cost)
    return DaySeries(states, np.array(power), np.array(imports), np.array(fed), np.array(losses), np.array(cost))


def v2g_tables(problem: Problem, series: DaySeries) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Fig. 6 inputs: per V2G group the energy fed back, lost and left unused (kWh per interval),
    and the feedback ratio ``x / v``."""
    energy, ratio = {}, {}
    for i, group in enumerate(problem.groups):
        if not group.is_v2g:
            continue
        avail = np.array([s.v2g_available[group.name] for s in series.states])
        x = series.power[:, i]
        energy[f"{group.name} (region {group.region})"] = pd.DataFrame(
            {
                "fed back (F)": series.fed_back[:, i] * figures.HOURS_PER_INTERVAL,
                "losses (L)": series.losses[:, i] * figures.HOURS_PER_INTERVAL,
                "unused availability": np.maximum(avail - x, 0.0) * figures.HOURS_PER_INTERVAL,
            }
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[group.name] = np.where(avail > 0, x / avail, np.nan)
    return energy, pd.DataFrame(ratio)


def region_tables(problem: Problem, series: DaySeries) -> dict[str, pd.DataFrame]:
    """Fig. 7 inputs: per region demand, delivered power by charger type, and net import (kW)."""
    out = {}
    delivered = series.power * problem.delivery  # V2G: efficiency * x = F
    for r, region in enumerate(problem.region_names):
        frame = {"demand": np.array([s.demand[region] for s in series.states])}
        for kind in GroupType:
            cols = [i for i, g in enumerate(problem.groups) if g.region == region and g.type is kind]
            frame[kind.value] = delivered[:, cols].sum(axis=1) if cols else np.zeros(len(series.states))
        frame["import"] = series.imports[:, r]
        out[region] = pd.DataFrame(frame)
    return out


def supply_table(problem: Problem, series: DaySeries) -> tuple[pd.DataFrame, np.ndarray]:
    """Fig. 8 inputs: local supply per region (kW) and the total demand."""
    local = (problem.incidence @ series.power.T).T
    demand = np.array([s.total_demand for s in series.states])
    return pd.DataFrame(local, columns=list(problem.region_names)), demand


# ---- training logs (Fig. 5) and run-time ------------------------------------------------------


def training_curves(scored: ScoredResults) -> dict[str, list[pd.DataFrame]]:
    """Per learned method, one frame per trained model: ``step, reward, loss`` from its training log.

    A log that cannot be read (a model folder edited or truncated since training) is left out
    of Fig. 5 rather than stopping the report: the tables do not depend on it.
    """
    curves: dict[str, list[pd.DataFrame]] = {}
    learned = scored.frame.dropna(subset=["model_dir"])[["method", "model_dir"]].drop_duplicates()
    for method, model_dir in learned.itertuples(index=False):
        rewards, loss = Path(model_dir) / "rewards.csv", Path(model_dir) / "loss.csv"
        if not (rewards.is_file() and loss.is_file()):
            continue
        try:
            r = pd.read_csv(rewards)[["step", "mean_reward"]].rename(columns={"mean_reward": "reward"})
            lo = pd.read_csv(loss)
            frame = pd.concat([r.assign(loss=np.nan), lo.assign(reward=np.nan)], ignore_index=True)
            frame = frame.astype({"step": float, "reward": float, "loss": float}).sort_values("step")
        except (OSError, ValueError, KeyError, pd.errors.ParserError):
            continue
        curves.setdefault(method, []).append(frame)
    return curves


# ---- method labels and paths as a reader sees them ---------------------------------------------


def method_label(row: Mapping[str, Any]) -> str:
    """The one place a method's display name is made: the row's ``label`` (the plugin's own,
    stored by the harness: ``NLopt AUGLAG+DIRECT-L``, not the whole spec) when present, else the
    spec itself (rows written before labels existed). The full spec stays in the legends."""
    label = row.get("label")
    if isinstance(label, str) and label:
        return label
    return str(row["method"])


def own_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Each method's :func:`method_label` (from its first row that has a label)."""
    given = frame.dropna(subset=["label"]).groupby("method")["label"].first() if "label" in frame else {}
    return {m: method_label({"label": given[m] if m in given else None, "method": m}) for m in frame["method"].unique()}


def method_order(frame: pd.DataFrame) -> list[str]:
    """Methods exact first, then classical, then learned (by the plugins' capability flags, not
    their names), alphabetically by label within each kind."""
    flags = frame.groupby("method")[["exact", "learns"]].first().fillna(False).astype(bool)
    labels = own_labels(frame)

    def rank(method: str) -> tuple[int, str, str]:
        exact, learns = flags.loc[method, "exact"], flags.loc[method, "learns"]
        return (2 if learns else 0 if exact else 1), labels[method], method

    return sorted(flags.index, key=rank)


def method_labels(frame: pd.DataFrame, methods: list[str] | None = None) -> dict[str, str]:
    """Unique labels of ``methods`` (default: every method, in :func:`method_order`), in that
    order. The plugin's label is kept where it is unique; methods that share one (two specs of a
    plugin whose ``label`` ignores a parameter) each get their own written parameters beside it,
    ``Cheapest first [reserve=0.1]`` and ``Cheapest first [defaults]``: a reader sees what
    differs, where a numbered ``(2)`` would say nothing."""
    own = own_labels(frame)
    chosen = method_order(frame) if methods is None else methods
    counts = Counter(own.get(m, m) for m in chosen)
    labels: dict[str, str] = {}
    for m in chosen:
        base = own.get(m, m)
        labels[m] = base if counts[base] == 1 else f"{base} [{_written_params(m)}]"
    repeated = Counter(labels.values())
    return {m: label if repeated[label] == 1 else f"{own.get(m, m)} [{m}]" for m, label in labels.items()}


def _written_params(method: str) -> str:
    """The parameters a spec writes out (``reserve=0.1``), or ``defaults``; the spec itself if it
    does not parse (a hand-made row)."""
    try:
        _, params = parse_spec(method)
    except SolverNotFound:
        return method
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "defaults"


def shown_path(path_text: Any, results_dir: Path) -> str:
    """A path as the report may print it: relative to the working directory (the project), the
    results folder's parent or the bundled problems, else only its last two parts — never an
    absolute machine path, which says where someone's home is and helps no reader."""
    if path_text is None or (isinstance(path_text, float) and math.isnan(path_text)):
        return "-"
    path = Path(str(path_text))
    if not path.is_absolute():
        return path.as_posix()
    roots = [Path.cwd(), results_dir.resolve().parent]
    try:
        roots.append(problems_dir().parent)
    except InputError:
        pass
    for root in roots:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return "/".join(["…", *path.parts[-2:]])


def runtime_table(scored: ScoredResults, day_sha: str | None, test_sha: str | None = None) -> pd.DataFrame:
    """Time per decision (per state, as the harness measured it around each solve) per method, and
    training time per model for the learned methods; the unseen test states (``test_sha``) get a
    column of their own when there are any."""
    frame = scored.frame[scored.frame["status"].isin(SUCCESS)]
    order = method_order(scored.frame)
    labels = method_labels(scored.frame, order)
    every = scored.frame  # online time counts every answered state, a timeout's time included
    scip_online = decision_cost.online_seconds(every[decision_cost.reference_mask(every)])
    rows = []
    for method in order:
        part = frame[frame["method"] == method]
        if part.empty:
            continue
        models = [scored.models.get(d, {}) for d in part["model_dir"].dropna().unique()]
        day = part[part["states_sha256"] == day_sha] if day_sha else part.iloc[0:0]
        single = part[~part["states_sha256"].isin([day_sha, test_sha])]
        test = part[part["states_sha256"] == test_sha] if test_sha else None
        steps = sorted({str(m["steps"]) for m in models if isinstance(m, dict) and m.get("steps") is not None})
        learned = bool(part["learns"].fillna(False).astype(bool).any())
        rows.append(
            {
                "method": labels[method],
                "seeds": str(part["run_seed"].nunique()),  # a count, as in Tables IV and V
                **decision_cost.decision_columns(
                    every[every["method"] == method], scip_online, models, learned=learned
                ),
                "s per decision, day median": day["time_s"].median() if len(day) else math.nan,
                "s per decision, day p95": day["time_s"].quantile(0.95) if len(day) else math.nan,
                "s per decision, Table IV": single["time_s"].median() if len(single) else math.nan,
                **(
                    {"s per decision, test states median": test["time_s"].median() if len(test) else math.nan}
                    if test is not None
                    else {}
                ),
                "steps": ", ".join(steps),
                MESSAGES: _mean_messages(part),
            }
        )
    return decision_cost.shown(pd.DataFrame(rows))


MESSAGES = "messages per decision"  # the distributed methods' own count (info["messages"]), as the scaling report


def _mean_messages(rows: pd.DataFrame) -> float | str:
    """Mean scalars sent per decision over ``rows`` (—: the method counts none, e.g. a central solver)."""
    counts = pd.to_numeric(rows["info"].map(lambda i: read_info(i).get("messages")), errors="coerce")
    return float(counts.mean()) if counts.notna().any() else decision_cost.MISSING


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plugin_provenance_text(part: pd.DataFrame, where: Path) -> str:
    """Which plugin code answered a method's rows: its source and file with the file's SHA-256,
    or its package and version; several when the rows come from different versions."""
    seen: dict[str, None] = {}
    for row in part.to_dict("records"):
        found = PluginProvenance.from_row({k: (None if _missing(v) else v) for k, v in row.items()})
        if found is None:
            seen["not recorded (rows written before plugin provenance)"] = None
            continue
        place = shown_path(found.origin, where) if found.origin.endswith(".py") else found.origin
        what = f"{found.package} {found.version}" if found.package else ""
        sha = f"sha256 {found.sha256[:12]}" if found.sha256 else ""
        seen[f"{found.source}: {', '.join(x for x in (place, what, sha) if x)}"] = None
    return "; ".join(seen) or "-"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def metadata_table(scored: ScoredResults, results_dir: Path | None = None) -> pd.DataFrame:
    """Every metadata column's distinct values (one value each when the run was on one machine)."""
    frame = scored.frame
    where = Path(results_dir) if results_dir is not None else Path.cwd()
    rows = [
        (
            "problem",
            f"{scored.problem.name} ({shown_path(frame['problem_file'].iloc[0], where)}, sha256 "
            f"{str(frame['problem_sha256'].iloc[0])[:12]})",
        )
    ]
    for path, sha, n in (
        frame[["states_file", "states_sha256", "states_count"]].drop_duplicates().itertuples(index=False)
    ):
        rows.append(("states file", f"{shown_path(path, where)} ({n} states, sha256 {str(sha)[:12]})"))
    for col in METADATA_COLUMNS:
        if col in frame:
            values = sorted({_shown_value(str(v), where) for v in frame[col].dropna().unique()})
            rows.append((col, ", ".join(values) or "-"))
    rows.append(("run ids", ", ".join(sorted(str(v) for v in frame["run_id"].dropna().unique()))))
    stamps = frame["timestamp"].dropna()
    if len(stamps):
        rows.append(("rows written", f"{stamps.min()} to {stamps.max()}"))
    labels = method_labels(frame)
    for method, label in labels.items():
        part = frame[frame["method"] == method]
        params = parse_json_cell(part["params"].iloc[0])
        params = dict(params) if isinstance(params, dict) else {}
        params.pop("model", None)
        rows.append((f"budget: {label}", ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(defaults)"))
        rows.append((f"plugin: {label}", plugin_provenance_text(part, where)))
    described: set[str] = set()
    for model_dir, meta in sorted(scored.models.items()):
        if not isinstance(meta, dict) or not meta:
            continue
        solver = str(meta.get("solver", "?"))
        if solver not in described:
            described.add(solver)
            hyper = meta.get("hyperparameters", {})
            hyper = hyper if isinstance(hyper, dict) else {}
            rows.append((f"hyperparameters: {solver}", ", ".join(f"{k}={v}" for k, v in sorted(hyper.items()))))
        seconds = meta.get("train_time_s")
        seconds = f"{seconds:.1f} s training" if _is_number(seconds) else "training time unknown"
        rows.append(
            (
                f"model: {solver} seed {meta.get('seed', '?')}",
                f"{meta.get('steps', '?')} steps, {seconds}, {shown_path(model_dir, where)}",
            )
        )
    return pd.DataFrame(rows, columns=["item", "value"])


def _shown_value(value: str, where: Path) -> str:
    """A metadata value with any machine path in it (an install from ``file:///home/...``) shown
    as :func:`shown_path` shows paths."""
    if value.startswith("file://"):
        return "file:" + shown_path(value[len("file://") :], where)
    return shown_path(value, where) if value.startswith("/") else value


def failures_table(scored: ScoredResults) -> pd.DataFrame:
    """Rows that did not succeed, and disagreements between stored and recomputed costs."""
    frame = scored.frame
    labels = method_labels(frame)
    bad = frame[~frame["status"].isin(SUCCESS)]
    rows = [
        {
            "method": labels[m],
            "states file": Path(str(f)).name,
            "status": s,
            "rows": len(p),
            "first reason": p["reason"].iloc[0],
        }
        for (m, f, s), p in bad.groupby(["method", "states_file", "status"])
    ]
    mismatch = frame[~frame["cost_check"].isin([CHECK_OK, CHECK_NO_DISPATCH])]
    rows += [
        {
            "method": labels[m],
            "states file": Path(str(f)).name,
            "status": "evaluator disagrees",
            "rows": len(p),
            "first reason": p["cost_check"].iloc[0],
        }
        for (m, f), p in mismatch.groupby(["method", "states_file"])
    ]
    return pd.DataFrame(rows, columns=["method", "states file", "status", "rows", "first reason"])


# ---- the report -------------------------------------------------------------------------------


@dataclass
class ReportFiles:
    """What ``build_report`` wrote, and what a caller may want to print."""

    out_dir: Path
    html: Path
    markdown: Path
    figures: list[Path]
    dispatch_method: str | None
    notes: list[str]


def _paper_table(
    pt: Any, labels: dict[str, str], order: list[str], base_label: str, paper_problem: bool = True
) -> tuple[list[Block], str]:
    """Blocks of one of Tables IV/V: short labels in exact → classical → learned order, the full
    specs in a legend, then the definitions and the paper's own numbers."""
    table = pt.table.set_index("method")
    methods = [m for m in order if m in table.index]
    rows = []
    for m in methods:
        r = table.loc[m]
        failed = ", ".join(f"{int(r[s])} {s}" for s in (*FAILURES, "missing") if r[s])
        cost = (
            "n/a"
            if math.isnan(r["cost"])
            else f"{r['cost']:,.2f}" + ("" if math.isnan(r["ci95"]) else f" ± {r['ci95']:,.2f}")
        )
        rows.append(
            {
                "method": labels[m],
                "type": r["type"],
                "seeds": str(r["seeds"]),
                "cost": cost if not (math.isnan(r["cost"]) and failed) else f"n/a ({failed})",
                "best / worst seed": ""
                if r["seeds"] < 2 or math.isnan(r["best"])
                else f"{r['best']:,.2f} / {r['worst']:,.2f}",
                f"vs {base_label}": _pct(r["improvement"]),
                "gap to exact": _pct(r["gap_to_exact"]),
                decision_cost.ONLINE: cell_text(float(r["online_s"]), 4),
                decision_cost.RATIO: cell_text(float(r["online_ratio_to_scip"]), 1),
                "failed": failed or "0",
            }
        )
    shown = pd.DataFrame(rows)
    legend = [plain("Methods: ")]
    for i, m in enumerate(methods):
        legend += [plain("; " if i else ""), strong(labels[m]), plain(" = "), code(m)]
    legend.append(plain("."))
    if pt.number == "IV":
        title = f"Table IV — operating cost at one observation state ({pt.scope})"
        definition = "Cost: the evaluator's cost of each method's dispatch at this state."
    else:
        title = f"Table V — average cost per hour over a day ({pt.scope})"
        definition = (
            "Cost per hour: mean over the day's intervals of the evaluator's cost C_t, times 4 "
            "(four 15-minute intervals per hour) — Σ C_t / 24 for a 96-interval day. A method "
            "that did not solve every interval for every seed has no value (n/a) and shows its failures."
        )
    blocks: list[Block] = [
        Heading(3, title),
        Table(
            shown,
            numeric=(
                "seeds",
                "cost",
                "best / worst seed",
                f"vs {base_label}",
                "gap to exact",
                decision_cost.ONLINE,
                decision_cost.RATIO,
            ),
        ),
        Para(legend),
        Para(
            [
                plain(
                    f"{definition} Stochastic methods: mean over seeds ± half-width of the 95 % confidence interval "
                    f"(Student t). vs {base_label}: improvement over the baseline, (C_baseline − C) / C_baseline, "
                    "the paper's column. Gap: (C − C_exact) / C_exact against the lowest cost of an exact method. "
                    f"{decision_cost.ONLINE}: median wall time per state, one state per call; {decision_cost.RATIO}: "
                    "the SCIP reference's median online time in the same rows divided by the method's."
                )
            ]
        ),
    ]
    if paper_problem:  # the paper's own numbers mean nothing beside a generated or third-party problem
        blocks.append(Para([plain(tables.paper_numbers(pt.number))]))
    return blocks, title


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:+.3f} %"


# ---- the unseen test states ---------------------------------------------------------------------


def test_states_record(repro: dict[str, Any], scored: ScoredResults) -> dict[str, Any] | None:
    """What ``reproduce`` recorded about the test states it generated, if these results hold that
    very file (same SHA-256). Only that record says the states were drawn with a test seed: the
    labels of a validation set are the same."""
    record = repro.get("test_states")
    if not isinstance(record, dict) or record.get("sha256") not in scored.states:
        return None
    return record


def _gap_cell(line: pd.Series) -> str:
    """``mean (worst)`` to the reference, with every answer that has no cost counted beside it."""
    failed = ", ".join(f"{int(line[s])} {s}" for s in (*FAILURES, "missing") if line[s])
    if math.isnan(line["mean_gap"]):
        return f"n/a ({failed})" if failed else "n/a"
    text = f"{_pct(line['mean_gap'])} ({_pct(line['worst_gap'])})"
    return f"{text}; {failed}" if failed else text


def test_replicate_label(rows: pd.DataFrame, seed: Any) -> str:
    """How the tables name the test states: from the rows' ``split``/``replicate`` when they record
    them, else from the generator seed reproduce recorded ("development test" for seed 2000)."""
    if "split" in rows and rows["split"].notna().any():
        pairs = rows[["split", "replicate"]].drop_duplicates()
        return ", ".join(describe(sp, rep) for sp, rep in pairs.itertuples(index=False))
    return Provenance.of_seed(int(seed)).describe() if isinstance(seed, int) else "—"


def _test_states_section(
    rows: pd.DataFrame, record: dict[str, Any], reference: str | None, labels: dict[str, str], order: list[str]
) -> list[Block]:
    """The section "Unseen test days": every method's gap to the exact reference per family, and
    in plain words what the learned methods reach there."""
    seed, n = record.get("seed", "?"), record.get("states", "?")
    families = [str(f) for f in record.get("families", []) if f != "random"]
    per_day = rows[rows["state"].map(tables.state_family).isin(families)]["state"].nunique() // max(1, len(families))
    intro = (
        f"These {n} states were never trained or tuned on: they were generated with the protocol's test "
        f"seed {seed} (docs/protocol.md: training seeds 0–999, validation 1000–1999, test 2000–2999) — "
        f"one day of each of the {len(families)} families ({', '.join(families)}), one interval in "
        f"{record.get('stride', '?')} ({per_day} states per family), plus {record.get('random_count', '?')} "
        f"random states (file {record.get('file', '?')})."
    )
    kind = test_replicate_label(rows, seed)
    if kind == "development test":
        intro += (
            " They are the development test replicate (seed 2000): looked at during development, so not a "
            "fresh test (docs/protocol.md, rule 6 and 'What was looked at')."
        )
    elif kind.startswith("test replicate"):
        intro += f" They are {kind}: evaluated once for this model version (docs/protocol.md)."
    blocks: list[Block] = [
        Heading(2, f"Unseen test days (protocol test seeds): {kind}"),
        Para([plain(intro)]),
    ]
    if reference is None:
        return blocks + [Para([plain("No exact method solved these states to optimality: no gaps to show.")])]
    gaps = tables.family_gaps(rows, reference)
    if gaps.empty:
        return blocks + [Para([plain("No method besides the reference ran on these states.")])]
    columns = list(dict.fromkeys(gaps["family"]))
    shown = []
    for m in [m for m in order if m in set(gaps["method"])]:
        part = gaps[gaps["method"] == m].set_index("family")
        shown.append(
            {
                "method": labels[m],
                "seeds": str(int(part["seeds"].iloc[0])),
                **{f: _gap_cell(part.loc[f]) for f in columns},
            }
        )
    counts = gaps.drop_duplicates("family").set_index("family")
    shown.append(
        {
            "method": f"states compared (no {labels[reference]} cost: left out)",
            "seeds": "",
            **{
                f: f"{int(counts.loc[f, 'states'])}"
                + (f" ({int(counts.loc[f, 'excluded'])} left out)" if counts.loc[f, "excluded"] else "")
                for f in columns
            },
        }
    )
    blocks += [
        Table(pd.DataFrame(shown), numeric=tuple(columns)),
        Para(
            [
                plain(
                    f"Each cell: mean gap to {labels[reference]}, (C − C_ref) / C_ref in percent, over the family's "
                    f"states (several seeds: the mean over seeds of each seed's mean gap), and in brackets the worst "
                    "state of any seed; costs are the evaluator's. Answers without a cost (infeasible, timeout, "
                    "error, missing) are counted in the cell and not averaged over. A state where "
                    f"{labels[reference]} has no cost is left out for every method and counted in the last row. "
                    "Column all: every test state together."
                )
            ]
        ),
    ]
    overall = gaps[gaps["family"] == tables.ALL_FAMILIES].set_index("method")
    learned = [
        m
        for m in order
        if m in overall.index and bool(rows.loc[rows["solver"] == m, "learns"].fillna(False).astype(bool).any())
    ]
    classical = [
        m for m in order if m in overall.index and m not in learned and not math.isnan(overall.loc[m, "mean_gap"])
    ]
    if learned:

        def reach(m: str) -> str:
            line = overall.loc[m]
            failed = sum(int(line[s]) for s in (*FAILURES, "missing"))
            answers = f"{failed} of {int(line['solved']) + failed} answers without a cost"
            if math.isnan(line["mean_gap"]):
                return f"{labels[m]} has no answer with a cost ({answers})"
            seeds = f", mean over {int(line['seeds'])} seeds" if line["seeds"] > 1 else ""
            return (
                f"{labels[m]} is on average {_pct(line['mean_gap'])} above {labels[reference]}{seeds} "
                f"(worst state {_pct(line['worst_gap'])}), with {answers}"
            )

        said = [reach(m) for m in learned]
        best = min(classical, key=lambda m: overall.loc[m, "mean_gap"]) if classical else None
        also = f"; for comparison, the closest classical method: {reach(best)}" if best else ""
        blocks.append(
            Para(
                [strong("What the learned methods reach on unseen states:"), plain(" " + "; ".join(said) + also + ".")]
            )
        )
    return blocks


# ---- the report, section by section ------------------------------------------------------------


@dataclass
class ReportContext:
    """What the sections of one report share, worked out once; sections add notes and figures."""

    scored: ScoredResults
    results_dir: Path
    out: Path  # the report folder (figures are written there)
    order: list[str]  # methods: exact, classical, learned
    labels: dict[str, str]  # method -> display label
    colors: dict[str, Any]  # label -> colour, the same in every figure
    reference: str | None  # the certified optimum's method
    repro: dict[str, Any]  # reproduce.json, or {}
    test_record: dict[str, Any] | None  # what reproduce recorded about the unseen test states
    day_sha: str | None
    table_rows: pd.DataFrame  # the rows as the tables module reads them
    notes: list[str] = field(default_factory=list)
    pngs: list[Path] = field(default_factory=list)
    chosen: str | None = None  # the method Figs. 6-8 show

    @property
    def paper_problem(self) -> bool:
        """Whether these results are on the paper's problem (then the paper's own numbers are quoted)."""
        return tables.is_paper_problem(self.scored.problem)

    @property
    def test_sha(self) -> str | None:
        return str(self.test_record["sha256"]) if self.test_record else None

    @property
    def day_file(self) -> str | None:
        rows = self.table_rows.loc[self.table_rows["states_sha256"] == self.day_sha, "states_file"]
        return str(rows.iloc[0]) if self.day_sha and len(rows) else None


def build_report(
    results_dir: str | Path,
    *,
    out_root: str | Path = "reports",
    name: str | None = None,
    method: str | None = None,
    baseline: str | None = None,
    state: str = "tableIV",
) -> ReportFiles:
    """Write ``<out_root>/<name>/report.md``, ``report.html`` and the figures' PNG files.

    ``baseline`` (spec, solver name or label) is what the improvement column is relative to; by
    default the certified optimum's method. Every option is checked before anything is written:
    a typo leaves no half-made report."""
    results_dir = Path(results_dir)
    report_dir_name = name if name is not None else results_dir.resolve().name
    check_report_name(report_dir_name)
    scored = load_scored(results_dir)
    order = method_order(scored.frame)
    repro = _reproduce_record(results_dir)
    budgets = [b for b in repro.get("budgets") or [] if isinstance(b, dict)]
    labels = matched_budgets.relabelled(method_labels(scored.frame, order), own_labels(scored.frame), budgets)
    method = _checked_method(scored, labels, method)
    table_rows = as_table_input(scored)
    reference = reference_method(scored.frame)
    base = _checked_baseline(table_rows, labels, baseline, reference or order[0])
    out = report_dir(out_root, report_dir_name)
    planted = [p for p in [out / "report.md", out / "report.html", *sorted(out.glob("fig*.png"))] if p.is_symlink()]
    if planted:  # refused before anything is written or deleted
        raise safe_files.link_error(planted[0])
    for old in sorted(out.glob("fig*.png")):
        old.unlink()
    test_record = test_states_record(repro, scored)
    ctx = ReportContext(
        scored=scored,
        results_dir=results_dir,
        out=out,
        order=order,
        labels=labels,
        colors=figures.method_colors([labels[m] for m in order]),
        reference=reference,
        repro=repro,
        test_record=test_record,
        day_sha=day_states_sha(scored, exclude=(str(test_record["sha256"]),) if test_record else ()),
        table_rows=table_rows,
        notes=list(scored.notes),
    )
    blocks: list[Block] = [
        *summary_section(ctx),
        *paper_tables_section(ctx, base, state),
        *test_days_section(ctx),
        *training_section(ctx),
        *dispatch_section(ctx, method),
        *cost_over_day_section(ctx),
        *runtime_section(ctx),
        *budgets_section(ctx, budgets),
        *failures_section(ctx),
        *metadata_section(ctx),
    ]
    title = f"dispatchbench report: {scored.problem.name}"
    md_path = safe_files.write_text(out, "report.md", to_markdown(blocks))
    html_path = safe_files.write_text(out, "report.html", to_html(blocks, title=title))
    return ReportFiles(out, html_path, md_path, ctx.pngs, ctx.chosen, ctx.notes)


def _checked_method(scored: ScoredResults, labels: dict[str, str], method: str | None) -> str | None:
    """``--method`` as a method of the results (its spec or its label), or an InputError listing them."""
    if method is None:
        return None
    method = {label: m for m, label in labels.items()}.get(method, method)
    if method not in set(scored.frame["method"]):
        raise InputError(
            "--method",
            method,
            "is not a method of these results",
            f"choose one of: {', '.join(sorted(scored.frame['method'].unique()))}",
        )
    return method


def _checked_baseline(table_rows: pd.DataFrame, labels: dict[str, str], baseline: str | None, default: str) -> str:
    """The method the improvement column is relative to: ``baseline`` as a spec, solver name or
    label of the results (else an InputError listing the methods present), or ``default``."""
    if baseline is None:
        return default
    by_label = {label: m for m, label in labels.items()}
    if baseline in by_label:
        return by_label[baseline]
    return tables.resolve_baseline(table_rows, baseline)


def summary_section(ctx: ReportContext) -> list[Block]:
    """The title, what the results hold, and how many stored dispatches were re-scored."""
    frame = ctx.scored.frame
    checked = int((frame["cost_check"] != CHECK_NO_DISPATCH).sum())
    disagree = int((~frame["cost_check"].isin([CHECK_OK, CHECK_NO_DISPATCH])).sum())
    return [
        Heading(1, f"dispatchbench report: {ctx.scored.problem.name}"),
        Para(
            [
                plain("Results: "),
                code(shown_path(ctx.results_dir.resolve(), ctx.results_dir)),
                plain(
                    f" - {len(frame)} rows, {frame['method'].nunique()} methods "
                    f"({', '.join(ctx.labels[m] for m in ctx.order)})."
                ),
            ]
        ),
        Para(
            [
                plain(
                    "Every cost and energy below was recomputed by the evaluator from the stored dispatches "
                    f"({checked} dispatches re-scored; "
                ),
                plain("all stored costs agree with the evaluator).")
                if not disagree
                else strong(f"{disagree} disagree with the stored result"),
                plain("" if not disagree else " - listed under Failures)."),
            ]
        ),
    ]


def paper_tables_section(ctx: ReportContext, base: str, state: str) -> list[Block]:
    """Tables IV and V, by the tables module, from the evaluator's costs."""
    rows = ctx.table_rows
    base_label = ctx.labels.get(base, base)
    blocks: list[Block] = [Heading(2, "Tables IV and V")]
    if (rows["state"] == state).any():
        table = tables.table_iv(rows, state, base)
        blocks += _paper_table(table, ctx.labels, ctx.order, base_label, ctx.paper_problem)[0]
    else:
        ctx.notes.append(f"no state {state!r} in the results: Table IV left out")
    if ctx.day_file:
        table = tables.table_v(rows, ctx.day_file, base)
        blocks += _paper_table(table, ctx.labels, ctx.order, base_label, ctx.paper_problem)[0]
    else:
        ctx.notes.append("no day (multi-state file) in the results: Table V and the day figures left out")
    return blocks


def test_days_section(ctx: ReportContext) -> list[Block]:
    """The unseen test days, when reproduce recorded these results' test states."""
    if not ctx.test_record:
        return []
    rows = ctx.table_rows[ctx.table_rows["states_sha256"] == ctx.test_sha]
    return _test_states_section(rows, ctx.test_record, ctx.reference, ctx.labels, ctx.order)


def training_section(ctx: ReportContext) -> list[Block]:
    """Fig. 5: training reward and loss of the learned methods, from their models' logs."""
    curves = {ctx.labels[m]: c for m, c in training_curves(ctx.scored).items()}
    blocks: list[Block] = [Heading(2, "Fig. 5 - training curves")]
    if not curves:
        ctx.notes.append("no training logs: Fig. 5 left out")
        return blocks + [Para([plain("No learned method with a training log in these results.")])]
    seeds = ", ".join(f"{m} {len(r)}" for m, r in sorted(curves.items()))
    p = figures.training_reward(curves, ctx.out / "fig5a_training_reward.png")
    q = figures.training_loss(curves, ctx.out / "fig5b_training_loss.png")
    ctx.pngs += [p, q]
    return blocks + [
        Figure(
            p,
            "Fig. 5a: team reward of each learned method at its 10 fixed probe states "
            "(states drawn once from the training distribution, never evaluation states), "
            f"median over seeds with the min-max band (seeds: {seeds}).",
        ),
        Figure(
            q,
            "Fig. 5b: total training loss per step (sum of the agents' Q-network losses for "
            "MADRL-TVC, of the critics' losses for MADDPG), median over seeds with the min-max band.",
        ),
    ]


def dispatch_section(ctx: ReportContext, method: str | None) -> list[Block]:
    """Figs. 6-8 from one method's own dispatches over the day."""
    if not ctx.day_sha:
        return []
    try:
        chosen, seed, why = choose_dispatch_method(ctx.scored, ctx.day_sha, method)
    except InputError as exc:
        if method:
            raise
        ctx.notes.append(str(exc))
        return []
    ctx.chosen = chosen
    problem, frame = ctx.scored.problem, ctx.scored.frame
    series = day_series(ctx.scored, ctx.day_sha, chosen, seed)
    shown = ctx.labels[chosen]
    label = f"{shown}, seed {seed}" if frame.loc[frame["method"] == chosen, "run_seed"].nunique() > 1 else shown
    blocks: list[Block] = [
        Heading(2, "Dispatch over the day"),
        Para(
            [
                plain("Figures 6-8 show the dispatches of "),
                strong(shown),
                plain(
                    f" ({why}) on {Path(str(ctx.day_file)).name}; {len(series.states)} intervals of "
                    f"15 minutes, day cost recomputed: {series.cost.sum():,.2f} "
                    f"({cost_per_hour(series.cost):,.2f} per hour)."
                ),
            ]
        ),
    ]
    energy, ratio = v2g_tables(problem, series)
    if energy:
        p = figures.v2g_energy(energy, ctx.out / "fig6a_v2g_energy.png", label)
        q = figures.v2g_feedback_ratio(ratio, ctx.out / "fig6b_v2g_feedback_ratio.png", label)
        ctx.pngs += [p, q]
        blocks += [
            Figure(
                p,
                "Fig. 6a: per V2G group and interval, energy drawn from plugged-in batteries "
                "and fed back into the region (F = efficiency x), lost in conversion "
                "(L = (1 - efficiency) x) and available but unused (v - x), in kWh per 15 minutes.",
            ),
            Figure(
                q,
                "Fig. 6b: feedback ratio x / v (eq. 6) of each V2G group; gaps where no V2G power was available.",
            ),
        ]
    p = figures.regional_service(region_tables(problem, series), ctx.out / "fig7_regional_service.png", label)
    supply, demand = supply_table(problem, series)
    q = figures.regional_supply(supply, demand, ctx.out / "fig8_regional_supply.png", label)
    ctx.pngs += [p, q]
    return blocks + [
        Figure(
            p,
            "Fig. 7: per region, power delivered by each charger type (V2G: fed-back power F) "
            "and imported from the main grid, stacked, against the region's demand (black); "
            "exports show below zero.",
        ),
        Figure(
            q,
            "Fig. 8: local supply of each region, stacked, against the total demand (dashed): "
            "the main grid only moves power between regions, so the stack meets the demand line.",
        ),
    ]


def cost_over_day_section(ctx: ReportContext) -> list[Block]:
    """Fig. 9: every method's cost per interval of the day, and its gap to the optimum."""
    if not ctx.day_sha:
        return []
    costs = day_costs(ctx.scored.frame, ctx.day_sha)
    costs = costs[[m for m in ctx.order if m in costs.columns]]
    p = figures.cost_per_interval(costs.rename(columns=ctx.labels), ctx.out / "fig9a_cost_per_interval.png", ctx.colors)
    ctx.pngs.append(p)
    blocks: list[Block] = [
        Heading(2, "Fig. 9 - cost over the day"),
        Figure(
            p,
            "Fig. 9a: evaluator cost of every 15-minute interval of the day for each method "
            "(median over seeds); a gap in a line is an interval without a feasible dispatch.",
        ),
    ]
    reference = ctx.reference
    if not (reference and reference in costs):
        ctx.notes.append("no exact method with optimal results: Fig. 9b (gap to the optimum) left out")
        return blocks
    gaps = costs.drop(columns=[reference]).sub(costs[reference], axis=0).div(costs[reference], axis=0) * 100.0
    q = figures.gap_to_optimum(
        gaps.rename(columns=ctx.labels), ctx.out / "fig9b_gap_to_optimum.png", ctx.colors, ctx.labels[reference]
    )
    ctx.pngs.append(q)
    return blocks + [
        Figure(
            q,
            f"Fig. 9b: each method's gap to the certified optimum ({ctx.labels[reference]}) per "
            "interval, (C - C_opt) / C_opt in percent, median over seeds.",
        )
    ]


def runtime_section(ctx: ReportContext) -> list[Block]:
    """Time per decision and training time per method, and reproduce's stage times."""
    runtime = runtime_table(ctx.scored, ctx.day_sha, ctx.test_sha)
    blocks: list[Block] = [
        Heading(2, "Run time"),
        Table(
            runtime,
            numeric=tuple(
                c for c in runtime.columns if c.startswith("s per") or c in (*decision_cost.NUMERIC_COLUMNS, MESSAGES)
            ),
        ),
        Para(
            [
                plain(
                    "Time per decision: wall time the harness measured around each state's solve, one state "
                    "per call (all agents and the balancing search for learned methods). "
                    + decision_cost.DEFINITIONS
                    + " Training time: wall time of "
                ),
                code("fit"),
                plain(
                    " per trained model (mean over the method's models). Messages per decision: scalars the "
                    "method's agents sent to decide one state, by the counting rules of the distributed search "
                    "(a scalar to a neighbour is one message, a tree sum over n CS nodes 2(n − 1)); — for a "
                    "method that decides centrally."
                ),
            ]
        ),
    ]
    if ctx.repro:
        wall = ctx.repro.get("wall_s", {})
        stages = pd.DataFrame(
            [{"stage": k, "wall time (s)": v} for k, v in wall.items()] if isinstance(wall, dict) else []
        )
        blocks += [
            Heading(3, "Wall time of dispatchbench reproduce"),
            Table(stages, 1, ("wall time (s)",)),
            Para([plain("Budget: "), code(json.dumps(ctx.repro.get("budget", {}), sort_keys=True, default=str))]),
        ]
    return blocks


def budget_summary(ctx: ReportContext, budgets: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per method on the test states (all states without them): mean gap to the certified
    optimum per state, answers, online time and, for a budgeted spec, its budget — the input of
    :func:`matched_budgets.best_per_budget` and the gap-vs-time figure."""
    frame = ctx.scored.frame
    if ctx.test_sha:
        frame = frame[frame["states_sha256"] == ctx.test_sha]
    ok = frame["status"].isin(SUCCESS) & frame["cost"].notna()
    ref = frame[ok & (frame["method"] == ctx.reference)].groupby(["states_sha256", "state"])["cost"].min()
    by_spec = {matched_budgets.canonical(b["spec"]): b for b in budgets if "spec" in b}
    problem = ctx.scored.problem
    lines = []
    for method in ctx.order:
        part = frame[frame["method"] == method]
        if part.empty or method == ctx.reference:
            continue
        solved = part[ok.loc[part.index]]
        base = ref.reindex(pd.MultiIndex.from_frame(solved[["states_sha256", "state"]])).to_numpy(float)
        gaps = 100 * (solved["cost"].to_numpy(float) - base) / base
        b = by_spec.get(matched_budgets.canonical(method), {})
        lines.append(
            {
                "instance": problem.name,
                "regions": len(problem.regions),
                "groups": len(problem.groups),
                "method": ctx.labels[method],
                "spec": method,
                "answers": f"{len(solved)}/{len(part)}",
                "mean gap %": float(np.nanmean(gaps)) if np.isfinite(gaps).any() else math.nan,
                decision_cost.ONLINE: decision_cost.online_seconds(part),
                "learns": bool(part["learns"].fillna(False).astype(bool).any()),
                "budget_multiple": b.get("multiple", math.nan),
                "budget_s": b.get("seconds", math.nan),
                "budget_of": b.get("of"),
                "budget_base": own_labels(part).get(method) if b else None,
            }
        )
    return pd.DataFrame(lines)


def budgets_section(ctx: ReportContext, budgets: list[dict[str, Any]]) -> list[Block]:
    """Matched budgets at the paper's size: the best method per budget level and the figure."""
    if not any("spec" in b for b in budgets) or ctx.reference is None:
        return []
    summary = budget_summary(ctx, budgets)
    best = matched_budgets.best_per_budget(summary)
    drawn = matched_budgets.figures_per_size(summary, ctx.out, figures.gap_against_time)
    ctx.pngs += [p for p, _ in drawn]
    where = "the unseen test states" if ctx.test_sha else "every state of the run"
    return [
        Heading(2, "Matched budgets: what each method reaches in the learner's time"),
        Para(
            [
                plain(
                    f"On {where}: each classical method with budgets ran again with a per-state time limit of "
                    "1×, 10× and 100× the learner's median online decision time in this run (one state per "
                    "call). Gap: mean over answered states of (C − C_opt) / C_opt against the certified "
                    f"optimum ({ctx.labels[ctx.reference]}). Best: the lowest mean gap among the budgeted "
                    "methods at that multiple and every other method (learned, a heuristic, a distributed "
                    "method, an unbudgeted solver) whose own median online time is within it; only methods "
                    "that answered every state are ranked, the others are listed with their answers."
                )
            ]
        ),
        Table(best, digits=4, numeric=("regions", "seconds", "mean gap %")),
        *[Figure(p, caption) for p, caption in drawn],
    ]


def failures_section(ctx: ReportContext) -> list[Block]:
    """Rows without success, disagreements with the evaluator, reproduce's failed stages, and
    the notes every section left (so it comes after them)."""
    failed = failures_table(ctx.scored)
    repro_failures = ctx.repro.get("failures", [])
    if isinstance(repro_failures, list) and repro_failures:
        extra = pd.DataFrame(
            [
                {
                    "method": str(f.get("method")),
                    "states file": "-",
                    "status": f"failed at {f.get('stage')}",
                    "rows": 0,
                    "first reason": str(f.get("reason")),
                }
                for f in repro_failures
                if isinstance(f, dict)
            ]
        )
        failed = pd.concat([failed, extra], ignore_index=True) if len(extra) else failed
    blocks: list[Block] = [Heading(2, "Failures"), Table(failed)]
    if ctx.notes:
        blocks.append(Para([plain("Notes: " + "; ".join(ctx.notes) + ".")]))
    return blocks


def metadata_section(ctx: ReportContext) -> list[Block]:
    return [Heading(2, "Metadata"), Table(metadata_table(ctx.scored, ctx.results_dir))]


def _reproduce_record(results_dir: Path) -> dict[str, Any]:
    """``reproduce``'s record of its stages, or ``{}`` when absent or unreadable."""
    try:
        data = json.loads(safe_files.read_bytes(results_dir, REPRODUCE_FILE).decode("utf-8"))
    except (OSError, ValueError):  # absent, or not JSON: the report is made without it
        return {}
    return data if isinstance(data, dict) else {}
