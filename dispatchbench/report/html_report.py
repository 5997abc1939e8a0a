"""``dispatchbench report DIR``: a results directory turned into a report colleagues can read.

What the report trusts, and why: a results row carries a stored cost, but the report shows
none of them. It reloads the problem and state files the rows name (checking their SHA-256, so
a file edited after the run is caught), rebuilds every stored dispatch and scores it again with
:func:`dispatchbench.model.evaluate.evaluate`. The stored cost is only compared with the recomputed
one; a disagreement is listed in the report. Tables IV/V are then made by
:mod:`dispatchbench.report.tables` from the recomputed costs, and every figure draws recomputed
quantities (fed-back energy, losses, costs) of real dispatches.

Learned methods appear in the results as one solver spec per trained model
(``madrl_tvc[model=DIR]``); the report folds them into one method per algorithm with the
training seed (read from the model's ``model.json``) as the seed, so seeds give a spread, not
separate rows. The model directory also holds the training log that Fig. 5 is drawn from.

Output: ``reports/<name>/report.html`` (self-contained: figures inlined as base64 PNG),
``report.md`` and the PNG files beside it. Everything a user or a plugin wrote (names, labels,
specs, error messages) is escaped, methods appear under short labels with the full spec in a
legend, paths are shown relative to the project, and ``name`` must be a plain folder name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench.results_store import REPRODUCE_FILE, file_sha256, load_results, parse_json_cell
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.contract.defaults import DEFAULT_BASELINE
from dispatchbench.contract.status import FAILURES, SUCCESS, Status
from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import GroupType, Problem, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states
from dispatchbench.report import figures, tables
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

COST_MATCH_RTOL = 1e-9  # stored vs recomputed cost: the same formula, so only rounding may differ

# ---- loading and re-scoring -------------------------------------------------------------------


@dataclass
class ScoredResults:
    """Results rows with every dispatch re-scored by the evaluator.

    ``frame`` gains ``method`` (spec without the model path), ``run_seed`` (training seed for
    learned methods, else the run's seed), ``eval_cost`` (null unless the recomputed dispatch is
    feasible and the row succeeded), ``eval_violation`` and ``cost_check``.
    """

    frame: pd.DataFrame
    problem: Problem
    states: dict[str, list[State]]  # states_sha256 -> states in file order
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # model dir -> model.json


def _resolve(path_text: str, results_dir: Path) -> Path:
    path = Path(path_text)
    for candidate in (path, results_dir / path, results_dir.parent / path):
        if candidate.is_file():
            return candidate
    return path


def _checked_file(path_text: str, sha: str, results_dir: Path, what: str) -> Path:
    path = _resolve(path_text, results_dir)
    if not path.is_file():
        raise InputError(
            results_dir,
            f"{what} {path_text}",
            "named by the results but not found",
            "run the report where the run's input files are, or restore the file",
        )
    if file_sha256(path) != sha:
        raise InputError(
            results_dir,
            f"{what} {path}",
            "changed since the run (SHA-256 differs)",
            "restore the file the run used, or re-run the benchmark",
        )
    return path


def load_scored(results_dir: str | Path) -> ScoredResults:
    """Load a results directory and re-score every dispatch in it with the evaluator."""
    results_dir = Path(results_dir)
    frame = load_results(results_dir).copy()
    if frame.empty:
        raise InputError(results_dir, "results", "holds no rows", "run `dispatchbench run` into it first")
    problems = frame[["problem_file", "problem_sha256"]].drop_duplicates()
    if problems["problem_sha256"].nunique() != 1:
        raise InputError(
            results_dir,
            "problem_file",
            "rows of several problems in one directory",
            "report one problem per results directory",
        )
    problem = load_problem(_checked_file(problems.iloc[0, 0], problems.iloc[0, 1], results_dir, "problem file"))
    states: dict[str, list[State]] = {}
    for path_text, sha in frame[["states_file", "states_sha256"]].drop_duplicates().itertuples(index=False):
        if sha not in states:
            states[sha] = load_states(_checked_file(path_text, sha, results_dir, "states file"), problem)

    frame, models = fold_learned_models(frame)
    _rescore(frame, problem, states)
    return ScoredResults(frame=frame, problem=problem, states=states, models=models)


def _rescore(frame: pd.DataFrame, problem: Problem, states: dict[str, list[State]]) -> None:
    by_label = {sha: {s.label: s for s in sts} for sha, sts in states.items()}
    eval_cost, eval_violation, check = [], [], []
    for row in frame[["states_sha256", "state", "status", "cost", "dispatch"]].itertuples(index=False):
        data = parse_json_cell(row.dispatch)
        if data is None or data.get("dispatch") is None:
            eval_cost.append(math.nan)
            eval_violation.append(math.nan)
            check.append("no dispatch")
            continue
        state = by_label[row.states_sha256][row.state]
        ev = evaluate(problem, state, Dispatch.from_json(problem, data))
        ok = row.status in SUCCESS and ev.feasible
        eval_cost.append(ev.cost if ok else math.nan)
        eval_violation.append(ev.max_violation)
        stored = None if pd.isna(row.cost) else float(row.cost)
        if row.status in SUCCESS and not ev.feasible:
            check.append(f"stored {row.status}, evaluator: violates {ev.worst} by {ev.max_violation:.3g} kW")
        elif row.status not in SUCCESS and ev.feasible and row.status == Status.INFEASIBLE:
            check.append("stored infeasible, evaluator: feasible")
        elif ok and (stored is None or abs(stored - ev.cost) > COST_MATCH_RTOL * max(1.0, abs(ev.cost))):
            check.append(f"stored cost {stored} != evaluator {ev.cost:.6f}")
        else:
            check.append("ok")
    frame["eval_cost"] = eval_cost
    frame["eval_violation"] = eval_violation
    frame["cost_check"] = check


def as_table_input(scored: ScoredResults) -> pd.DataFrame:
    """The rows as the tables module reads them, with costs replaced by the evaluator's and
    learned models folded into one method per algorithm (training seed as seed)."""
    frame = scored.frame.copy()
    frame["cost"] = frame["eval_cost"]
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
    """The certified optimum: the exact method with the most optimal rows (an exact method run at
    a practical gap certifies fewer), ties by spec."""
    exact = frame[frame["exact"].fillna(False).astype(bool) & (frame["status"] == Status.OPTIMAL)]
    if exact.empty:
        return None
    counts = exact.groupby("method").size()
    return min(counts.index, key=lambda m: (-counts[m], m))


def day_costs(frame: pd.DataFrame, day_sha: str) -> pd.DataFrame:
    """Recomputed cost per interval (rows: state index) and method (columns): median over seeds."""
    day = frame[frame["states_sha256"] == day_sha]
    table = day.pivot_table(index="state_index", columns="method", values="eval_cost", aggfunc="median", dropna=False)
    n = int(day["states_count"].max())
    return table.reindex(range(n))


def day_average_per_method(frame: pd.DataFrame, day_sha: str) -> pd.Series:
    """Mean over seeds of the day's average cost per hour (only seeds with every interval feasible)."""
    day = frame[frame["states_sha256"] == day_sha]
    n = int(day["states_count"].max())
    per_seed = day.groupby(["method", "run_seed"])["eval_cost"].agg(["sum", "count"])
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
    sums = day.groupby("run_seed")["eval_cost"].agg(["sum", "count"])
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


def own_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Each method's name for a table column, as its plugin labelled it (the rows' ``label``:
    ``NLopt AUGLAG+DIRECT-L``, not ``nlopt[algorithm=AUGLAG,inner_algorithm=GN_DIRECT_L,...]``);
    the spec for rows written before labels existed. The full spec stays in the legends."""
    given = frame.dropna(subset=["label"]).groupby("method")["label"].first() if "label" in frame else {}
    return {m: str(given[m]) if m in given else str(m) for m in frame["method"].unique()}


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
    order; a second method with the same label gets ``(2)``."""
    own = own_labels(frame)
    labels: dict[str, str] = {}
    used: dict[str, int] = {}
    for m in method_order(frame) if methods is None else methods:
        base = own[m]
        used[base] = used.get(base, 0) + 1
        labels[m] = base if used[base] == 1 else f"{base} ({used[base]})"
    return labels


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
    rows = []
    for method in order:
        part = frame[frame["method"] == method]
        if part.empty:
            continue
        day = part[part["states_sha256"] == day_sha] if day_sha else part.iloc[0:0]
        single = part[~part["states_sha256"].isin([day_sha, test_sha])]
        test = part[part["states_sha256"] == test_sha] if test_sha else None
        models = [scored.models.get(d, {}) for d in part["model_dir"].dropna().unique()]
        train = [m["train_time_s"] for m in models if isinstance(m, dict) and _is_number(m.get("train_time_s"))]
        steps = sorted({str(m["steps"]) for m in models if isinstance(m, dict) and m.get("steps") is not None})
        rows.append(
            {
                "method": labels[method],
                "seeds": ", ".join(str(s) for s in sorted(part["run_seed"].unique())),
                "s per decision, day median": day["time_s"].median() if len(day) else math.nan,
                "s per decision, day p95": day["time_s"].quantile(0.95) if len(day) else math.nan,
                "s per decision, Table IV": single["time_s"].median() if len(single) else math.nan,
                **(
                    {"s per decision, test states median": test["time_s"].median() if len(test) else math.nan}
                    if test is not None
                    else {}
                ),
                "training s per model": float(np.mean(train)) if train else math.nan,
                "steps": ", ".join(steps),
            }
        )
    return pd.DataFrame(rows)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
    mismatch = frame[~frame["cost_check"].isin(["ok", "no dispatch"])]
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


def _paper_table(pt: Any, labels: dict[str, str], order: list[str], base_label: str) -> tuple[list[Block], str]:
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
                "s / state": cell_text(float(r["time_per_state_s"]), 4),
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
        paper = tables.PAPER_TABLE_IV
    else:
        title = f"Table V — average cost per hour over a day ({pt.scope})"
        definition = (
            "Cost per hour: mean over the day's intervals of the evaluator's cost C_t, times 4 "
            "(four 15-minute intervals per hour) — Σ C_t / 24 for a 96-interval day. A method "
            "that did not solve every interval for every seed has no value (n/a) and shows its failures."
        )
        paper = tables.PAPER_TABLE_V
    quoted = ", ".join(f"{name} {cost:,.2f} ({printed})" for name, (cost, printed) in paper.items())
    pso = paper["PSO"][0]
    recomputed = ", ".join(f"{name} {_pct((pso - cost) / pso)}" for name, (cost, _) in paper.items() if name != "PSO")
    blocks: list[Block] = [
        Heading(3, title),
        Table(shown, numeric=("seeds", "cost", "best / worst seed", f"vs {base_label}", "gap to exact", "s / state")),
        Para(legend),
        Para(
            [
                plain(
                    f"{definition} Stochastic methods: mean over seeds ± half-width of the 95 % confidence interval "
                    f"(Student t). vs {base_label}: improvement over the baseline, (C_baseline − C) / C_baseline, "
                    "the paper's column. Gap: (C − C_exact) / C_exact against the lowest cost of an exact method."
                )
            ]
        ),
        Para(
            [
                plain(
                    f"The paper's own Table {pt.number} (cost, and in brackets its printed improvement over its PSO): "
                    f"{quoted}. Recomputed from its costs, the improvements are {recomputed}. {tables.PAPER_CAVEAT}"
                )
            ]
        ),
    ]
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
    failed = ", ".join(f"{int(line[s])} {s}" for s in (*tables.FAILURES, "missing") if line[s])
    if math.isnan(line["mean_gap"]):
        return f"n/a ({failed})" if failed else "n/a"
    text = f"{_pct(line['mean_gap'])} ({_pct(line['worst_gap'])})"
    return f"{text}; {failed}" if failed else text


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
    blocks: list[Block] = [Heading(2, "Unseen test days (protocol test seeds)"), Para([plain(intro)])]
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
            failed = sum(int(line[s]) for s in (*tables.FAILURES, "missing"))
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


def _write(path: Path, text: str) -> None:
    """Write a report file; a link left in its place is replaced, never followed out of the folder."""
    if path.is_symlink():
        path.unlink()
    path.write_text(text, encoding="utf-8")


def build_report(
    results_dir: str | Path,
    *,
    out_root: str | Path = "reports",
    name: str | None = None,
    method: str | None = None,
    baseline: str = DEFAULT_BASELINE,
    state: str = "tableIV",
) -> ReportFiles:
    """Write ``<out_root>/<name>/report.md``, ``report.html`` and the figures' PNG files."""
    results_dir = Path(results_dir)
    if name is not None:
        report_dir_name = name
    else:
        report_dir_name = results_dir.resolve().name
    check_report_name(report_dir_name)
    scored = load_scored(results_dir)
    if method is not None:  # checked before anything is written: a typo leaves no half-made report
        by_label = {label: m for m, label in method_labels(scored.frame).items()}
        method = by_label.get(method, method)
        if method not in set(scored.frame["method"]):
            raise InputError(
                "--method",
                method,
                "is not a method of these results",
                f"choose one of: {', '.join(sorted(scored.frame['method'].unique()))}",
            )
    out = report_dir(out_root, report_dir_name)
    for old in out.glob("fig*.png"):
        if old.is_file() or old.is_symlink():
            old.unlink()
    frame, problem, notes = scored.frame, scored.problem, []
    repro = _reproduce_record(results_dir)
    test_record = test_states_record(repro, scored)
    test_sha = str(test_record["sha256"]) if test_record else None
    day_sha = day_states_sha(scored, exclude=(test_sha,) if test_sha else ())
    reference = reference_method(frame)
    order = method_order(frame)
    labels = method_labels(frame, order)
    colors = figures.method_colors([labels[m] for m in order])
    pngs: list[Path] = []
    blocks: list[Block] = [Heading(1, f"dispatchbench report: {problem.name}")]

    checked = int((frame["cost_check"] != "no dispatch").sum())
    disagree = int((~frame["cost_check"].isin(["ok", "no dispatch"])).sum())
    blocks.append(
        Para(
            [
                plain("Results: "),
                code(shown_path(results_dir.resolve(), results_dir)),
                plain(
                    f" - {len(frame)} rows, {frame['method'].nunique()} methods "
                    f"({', '.join(labels[m] for m in order)})."
                ),
            ]
        )
    )
    blocks.append(
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
        )
    )

    # Tables IV and V, by the tables module, from the recomputed costs
    table_rows = as_table_input(scored)
    try:
        base = tables.resolve_baseline(table_rows, baseline)
    except InputError:
        base = reference or table_rows["solver"].iloc[0]
        notes.append(f"baseline {baseline!r} is not in the results: improvements are over {labels.get(base, base)}")
    base_label = labels.get(base, base)
    blocks.append(Heading(2, "Tables IV and V"))
    if (table_rows["state"] == state).any():
        blocks += _paper_table(tables.table_iv(table_rows, state, base), labels, order, base_label)[0]
    else:
        notes.append(f"no state {state!r} in the results: Table IV left out")
    day_file = table_rows.loc[table_rows["states_sha256"] == day_sha, "states_file"].iloc[0] if day_sha else None
    if day_file:
        blocks += _paper_table(tables.table_v(table_rows, day_file, base), labels, order, base_label)[0]
    else:
        notes.append("no day (multi-state file) in the results: Table V and the day figures left out")
    if test_record:
        blocks += _test_states_section(
            table_rows[table_rows["states_sha256"] == test_sha], test_record, reference, labels, order
        )

    # Fig. 5 training curves
    curves = {labels[m]: c for m, c in training_curves(scored).items()}
    blocks.append(Heading(2, "Fig. 5 - training curves"))
    if curves:
        seeds = ", ".join(f"{m} {len(r)}" for m, r in sorted(curves.items()))
        p = figures.training_reward(curves, out / "fig5a_training_reward.png")
        blocks.append(
            Figure(
                p,
                "Fig. 5a: team reward of each learned method at its 10 fixed probe states "
                "(states drawn once from the training distribution, never evaluation states), "
                f"median over seeds with the min-max band (seeds: {seeds}).",
            )
        )
        q = figures.training_loss(curves, out / "fig5b_training_loss.png")
        blocks.append(
            Figure(
                q,
                "Fig. 5b: total training loss per step (sum of the agents' Q-network losses for "
                "MADRL-TVC, of the critics' losses for MADDPG), median over seeds with the min-max band.",
            )
        )
        pngs += [p, q]
    else:
        blocks.append(Para([plain("No learned method with a training log in these results.")]))
        notes.append("no training logs: Fig. 5 left out")

    # Dispatch figures (6-8) from one method's own day, and Fig. 9 for every method
    chosen = None
    if day_sha:
        try:
            chosen, seed, why = choose_dispatch_method(scored, day_sha, method)
        except InputError as exc:
            if method:
                raise
            notes.append(str(exc))
        if chosen:
            series = day_series(scored, day_sha, chosen, seed)
            shown = labels[chosen]
            label = f"{shown}, seed {seed}" if frame.loc[frame["method"] == chosen, "run_seed"].nunique() > 1 else shown
            blocks += [
                Heading(2, "Dispatch over the day"),
                Para(
                    [
                        plain("Figures 6-8 show the dispatches of "),
                        strong(shown),
                        plain(
                            f" ({why}) on {Path(str(day_file)).name}; {len(series.states)} intervals of "
                            f"15 minutes, day cost recomputed: {series.cost.sum():,.2f} "
                            f"({cost_per_hour(series.cost):,.2f} per hour)."
                        ),
                    ]
                ),
            ]
            energy, ratio = v2g_tables(problem, series)
            if energy:
                p = figures.v2g_energy(energy, out / "fig6a_v2g_energy.png", label)
                blocks.append(
                    Figure(
                        p,
                        "Fig. 6a: per V2G group and interval, energy drawn from plugged-in batteries "
                        "and fed back into the region (F = efficiency x), lost in conversion "
                        "(L = (1 - efficiency) x) and available but unused (v - x), in kWh per 15 minutes.",
                    )
                )
                q = figures.v2g_feedback_ratio(ratio, out / "fig6b_v2g_feedback_ratio.png", label)
                blocks.append(
                    Figure(
                        q,
                        "Fig. 6b: feedback ratio x / v (eq. 6) of each V2G group; gaps where no V2G "
                        "power was available.",
                    )
                )
                pngs += [p, q]
            p = figures.regional_service(region_tables(problem, series), out / "fig7_regional_service.png", label)
            blocks.append(
                Figure(
                    p,
                    "Fig. 7: per region, power delivered by each charger type (V2G: fed-back power F) "
                    "and imported from the main grid, stacked, against the region's demand (black); "
                    "exports show below zero.",
                )
            )
            supply, demand = supply_table(problem, series)
            q = figures.regional_supply(supply, demand, out / "fig8_regional_supply.png", label)
            blocks.append(
                Figure(
                    q,
                    "Fig. 8: local supply of each region, stacked, against the total demand (dashed): "
                    "the main grid only moves power between regions, so the stack meets the demand line.",
                )
            )
            pngs += [p, q]

        costs = day_costs(frame, day_sha)
        costs = costs[[m for m in order if m in costs.columns]]
        blocks.append(Heading(2, "Fig. 9 - cost over the day"))
        p = figures.cost_per_interval(costs.rename(columns=labels), out / "fig9a_cost_per_interval.png", colors)
        blocks.append(
            Figure(
                p,
                "Fig. 9a: evaluator cost of every 15-minute interval of the day for each method "
                "(median over seeds); a gap in a line is an interval without a feasible dispatch.",
            )
        )
        pngs.append(p)
        if reference and reference in costs:
            gaps = costs.drop(columns=[reference]).sub(costs[reference], axis=0).div(costs[reference], axis=0) * 100.0
            q = figures.gap_to_optimum(
                gaps.rename(columns=labels), out / "fig9b_gap_to_optimum.png", colors, labels[reference]
            )
            blocks.append(
                Figure(
                    q,
                    f"Fig. 9b: each method's gap to the certified optimum ({labels[reference]}) per "
                    "interval, (C - C_opt) / C_opt in percent, median over seeds.",
                )
            )
            pngs.append(q)
        else:
            notes.append("no exact method with optimal results: Fig. 9b (gap to the optimum) left out")

    # Run time, failures, metadata
    runtime = runtime_table(scored, day_sha, test_sha)
    blocks += [
        Heading(2, "Run time"),
        Table(runtime, numeric=tuple(c for c in runtime.columns if c.startswith(("s per", "training")))),
        Para(
            [
                plain(
                    "Time per decision: wall time the harness measured around each state's solve (all agents "
                    "and the balancing search for learned methods). Training time: wall time of "
                ),
                code("fit"),
                plain(" per trained model."),
            ]
        ),
    ]
    if repro:
        wall = repro.get("wall_s", {})
        stages = pd.DataFrame(
            [{"stage": k, "wall time (s)": v} for k, v in wall.items()] if isinstance(wall, dict) else []
        )
        blocks += [
            Heading(3, "Wall time of dispatchbench reproduce"),
            Table(stages, 1, ("wall time (s)",)),
            Para([plain("Budget: "), code(json.dumps(repro.get("budget", {}), sort_keys=True, default=str))]),
        ]
    failed = failures_table(scored)
    repro_failures = repro.get("failures", []) if repro else []
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
    blocks += [Heading(2, "Failures"), Table(failed)]
    if notes:
        blocks.append(Para([plain("Notes: " + "; ".join(notes) + ".")]))
    blocks += [Heading(2, "Metadata"), Table(metadata_table(scored, results_dir))]

    md_path = out / "report.md"
    _write(md_path, to_markdown(blocks))
    html_path = out / "report.html"
    _write(html_path, to_html(blocks, title=f"dispatchbench report: {problem.name}"))
    return ReportFiles(out, html_path, md_path, pngs, chosen, notes)


def _reproduce_record(results_dir: Path) -> dict[str, Any]:
    """``reproduce``'s record of its stages, or ``{}`` when absent or unreadable."""
    path = results_dir / REPRODUCE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
