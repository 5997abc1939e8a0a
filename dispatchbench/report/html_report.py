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
``report.md`` and the PNG files beside it.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.report import figures
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem import GroupType, Problem, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.bench.results_store import REPRODUCE_FILE, file_sha256, load_results, parse_json_cell
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.model.state_file import load_states
from dispatchbench.report.tables import cost_per_hour, fold_learned_models

SUCCESS = ("optimal", "feasible")
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
        raise InputError(results_dir, f"{what} {path_text}", "named by the results but not found",
                         "run the report where the run's input files are, or restore the file")
    if file_sha256(path) != sha:
        raise InputError(results_dir, f"{what} {path}", "changed since the run (SHA-256 differs)",
                         "restore the file the run used, or re-run the benchmark")
    return path


def load_scored(results_dir: str | Path) -> ScoredResults:
    """Load a results directory and re-score every dispatch in it with the evaluator."""
    results_dir = Path(results_dir)
    frame = load_results(results_dir).copy()
    if frame.empty:
        raise InputError(results_dir, "results", "holds no rows", "run `dispatchbench run` into it first")
    problems = frame[["problem_file", "problem_sha256"]].drop_duplicates()
    if problems["problem_sha256"].nunique() != 1:
        raise InputError(results_dir, "problem_file", "rows of several problems in one directory",
                         "report one problem per results directory")
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
        elif row.status not in SUCCESS and ev.feasible and row.status == "infeasible":
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

def day_states_sha(scored: ScoredResults) -> str | None:
    """The state file with the most states (at least 2): the day the day-figures show."""
    sizes = {sha: len(sts) for sha, sts in scored.states.items() if len(sts) >= 2}
    return max(sizes, key=sizes.__getitem__) if sizes else None


def reference_method(frame: pd.DataFrame) -> str | None:
    """The certified optimum: SCIP if present, else another exact method with optimal rows."""
    exact = frame[frame["exact"].fillna(False).astype(bool) & (frame["status"] == "optimal")]
    if exact.empty:
        return None
    methods = sorted(exact["method"].unique(), key=lambda m: (not m.startswith("scip"), m))
    return methods[0]


def day_costs(frame: pd.DataFrame, day_sha: str) -> pd.DataFrame:
    """Recomputed cost per interval (rows: state index) and method (columns): median over seeds."""
    day = frame[frame["states_sha256"] == day_sha]
    table = day.pivot_table(index="state_index", columns="method", values="eval_cost", aggfunc="median",
                            dropna=False)
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
            raise InputError("--method", requested, "is not a method of these results",
                             f"choose one of: {', '.join(sorted(frame['method'].unique()))}")
        if requested not in averages.index:
            raise InputError("--method", requested, "has no complete feasible day in these results",
                             f"choose one of: {', '.join(averages.index) or '(none)'}")
        method, why = requested, "chosen with --method"
    else:
        if averages.empty:
            raise InputError("results", "day", "no method has a feasible dispatch for every interval of the day",
                             "check the run's failures (dispatchbench table DIR)")
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
    rows = scored.frame[(scored.frame["states_sha256"] == day_sha) & (scored.frame["method"] == method)
                        & (scored.frame["run_seed"] == seed)].sort_values("state_index")
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
        energy[f"{group.name} (region {group.region})"] = pd.DataFrame({
            "fed back (F)": series.fed_back[:, i] * figures.HOURS_PER_INTERVAL,
            "losses (L)": series.losses[:, i] * figures.HOURS_PER_INTERVAL,
            "unused availability": np.maximum(avail - x, 0.0) * figures.HOURS_PER_INTERVAL,
        })
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
    """Per learned method, one frame per trained model: ``step, reward, loss`` from its training log."""
    curves: dict[str, list[pd.DataFrame]] = {}
    learned = scored.frame.dropna(subset=["model_dir"])[["method", "model_dir"]].drop_duplicates()
    for method, model_dir in learned.itertuples(index=False):
        rewards, loss = Path(model_dir) / "rewards.csv", Path(model_dir) / "loss.csv"
        if not (rewards.is_file() and loss.is_file()):
            continue
        r = pd.read_csv(rewards)[["step", "mean_reward"]].rename(columns={"mean_reward": "reward"})
        lo = pd.read_csv(loss)
        curves.setdefault(method, []).append(pd.concat([r.assign(loss=np.nan), lo.assign(reward=np.nan)],
                                                       ignore_index=True).sort_values("step"))
    return curves


def runtime_table(scored: ScoredResults, day_sha: str | None) -> pd.DataFrame:
    """Time per decision (per state, as the harness measured it around each solve) per method, and
    training time per model for the learned methods."""
    frame = scored.frame[scored.frame["status"].isin(SUCCESS)]
    rows = []
    for method, part in frame.groupby("method"):
        day = part[part["states_sha256"] == day_sha] if day_sha else part.iloc[0:0]
        single = part[part["states_sha256"] != day_sha] if day_sha else part
        models = [scored.models.get(d, {}) for d in part["model_dir"].dropna().unique()]
        train = [m["train_time_s"] for m in models if m.get("train_time_s") is not None]
        steps = sorted({int(m["steps"]) for m in models if m.get("steps") is not None})
        rows.append({
            "method": method,
            "seeds": ", ".join(str(s) for s in sorted(part["run_seed"].unique())),
            "s per decision, day median": day["time_s"].median() if len(day) else math.nan,
            "s per decision, day p95": day["time_s"].quantile(0.95) if len(day) else math.nan,
            "s per decision, Table IV": single["time_s"].median() if len(single) else math.nan,
            "training s per model": float(np.mean(train)) if train else math.nan,
            "steps": ", ".join(map(str, steps)),
        })
    return pd.DataFrame(rows)


def metadata_table(scored: ScoredResults) -> pd.DataFrame:
    """Every metadata column's distinct values (one value each when the run was on one machine)."""
    frame = scored.frame
    rows = [("problem", f"{scored.problem.name} ({frame['problem_file'].iloc[0]}, sha256 "
                        f"{frame['problem_sha256'].iloc[0][:12]})")]
    for path, sha, n in frame[["states_file", "states_sha256", "states_count"]].drop_duplicates().itertuples(
            index=False):
        rows.append(("states file", f"{path} ({n} states, sha256 {sha[:12]})"))
    for col in METADATA_COLUMNS:
        if col in frame:
            values = sorted({str(v) for v in frame[col].dropna().unique()})
            rows.append((col, ", ".join(values) or "-"))
    rows.append(("run ids", ", ".join(sorted(frame["run_id"].dropna().unique()))))
    stamps = frame["timestamp"].dropna()
    if len(stamps):
        rows.append(("rows written", f"{stamps.min()} to {stamps.max()}"))
    for method, part in frame.groupby("method"):
        params = parse_json_cell(part["params"].iloc[0]) or {}
        params.pop("model", None)
        rows.append((f"budget: {method}", ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(defaults)"))
    described: set[str] = set()
    for model_dir, meta in sorted(scored.models.items()):
        if not meta:
            continue
        solver = meta.get("solver", "?")
        if solver not in described:
            described.add(solver)
            hyper = meta.get("hyperparameters", {})
            rows.append((f"hyperparameters: {solver}", ", ".join(f"{k}={v}" for k, v in sorted(hyper.items()))))
        rows.append((f"model: {solver} seed {meta.get('seed', '?')}",
                     f"{meta.get('steps', '?')} steps, {meta.get('train_time_s', float('nan')):.1f} s training, "
                     f"{model_dir}"))
    return pd.DataFrame(rows, columns=["item", "value"])


def failures_table(scored: ScoredResults) -> pd.DataFrame:
    """Rows that did not succeed, and disagreements between stored and recomputed costs."""
    frame = scored.frame
    bad = frame[~frame["status"].isin(SUCCESS)]
    rows = [{"method": m, "states file": Path(f).name, "status": s, "rows": len(p), "first reason": p["reason"].iloc[0]}
            for (m, f, s), p in bad.groupby(["method", "states_file", "status"])]
    mismatch = frame[~frame["cost_check"].isin(["ok", "no dispatch"])]
    rows += [{"method": m, "states file": Path(f).name, "status": "evaluator disagrees", "rows": len(p),
              "first reason": p["cost_check"].iloc[0]} for (m, f), p in mismatch.groupby(["method", "states_file"])]
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


def _md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:,.{digits}g}" if abs(v) < 1e-3 and v else f"{v:,.{digits}f}"
        return str(v).replace("|", "\\|").replace("\n", " ")
    return frame.map(fmt).to_markdown(index=False, disable_numparse=True) if len(frame) else "(none)"


def _figure(lines: list[str], path: Path, caption: str) -> None:
    lines += [f"![{caption.split(':')[0]}]({path.name})", "", f"*{caption}*", ""]


def build_report(results_dir: str | Path, *, out_root: str | Path = "reports", name: str | None = None,
                 method: str | None = None, baseline: str = "pso", state: str = "tableIV") -> ReportFiles:
    """Write ``<out_root>/<name>/report.md``, ``report.html`` and the figures' PNG files."""
    from . import tables  # the tables command's own code makes Tables IV and V

    results_dir = Path(results_dir)
    scored = load_scored(results_dir)
    name = name or results_dir.resolve().name
    out = Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("fig*.png"):
        old.unlink()
    frame, problem, notes = scored.frame, scored.problem, []
    day_sha = day_states_sha(scored)
    reference = reference_method(frame)
    colors = figures.method_colors(sorted(frame["method"].unique()))
    pngs: list[Path] = []

    lines = [f"# dispatchbench report: {problem.name}", ""]
    checked = int((frame["cost_check"] != "no dispatch").sum())
    disagree = int((~frame["cost_check"].isin(["ok", "no dispatch"])).sum())
    lines += [f"Results: `{results_dir}` - {len(frame)} rows, {frame['method'].nunique()} methods "
              f"({', '.join(sorted(frame['method'].unique()))}).", "",
              f"Every cost and energy below was recomputed by the evaluator from the stored dispatches "
              f"({checked} dispatches re-scored; "
              + ("all stored costs agree with the evaluator)." if not disagree else
                 f"**{disagree} disagree with the stored result** - listed under Failures).") + "", ""]

    # Tables IV and V, by the tables module, from the recomputed costs
    table_rows = as_table_input(scored)
    try:
        base = tables.resolve_baseline(table_rows, baseline)
    except InputError:
        base = reference or table_rows["solver"].iloc[0]
        notes.append(f"baseline {baseline!r} is not in the results: improvements are over {base}")
    lines += ["## Tables IV and V", ""]
    if (table_rows["state"] == state).any():
        lines.append(tables.markdown(tables.table_iv(table_rows, state, base)))
    else:
        notes.append(f"no state {state!r} in the results: Table IV left out")
    day_file = table_rows.loc[table_rows["states_sha256"] == day_sha, "states_file"].iloc[0] if day_sha else None
    if day_file:
        lines.append(tables.markdown(tables.table_v(table_rows, day_file, base)))
    else:
        notes.append("no day (multi-state file) in the results: Table V and the day figures left out")

    # Fig. 5 training curves
    curves = training_curves(scored)
    lines += ["## Fig. 5 - training curves", ""]
    if curves:
        seeds = ", ".join(f"{m} {len(r)}" for m, r in sorted(curves.items()))
        p = figures.training_reward(curves, out / "fig5a_training_reward.png")
        _figure(lines, p, "Fig. 5a: team reward of each learned method at its 10 fixed probe states "
                          "(states drawn once from the training distribution, never evaluation states), "
                          f"median over seeds with the min-max band (seeds: {seeds}).")
        q = figures.training_loss(curves, out / "fig5b_training_loss.png")
        _figure(lines, q, "Fig. 5b: total training loss per step (sum of the agents' Q-network losses for "
                          "MADRL-TVC, of the critics' losses for MADDPG), median over seeds with the min-max band.")
        pngs += [p, q]
    else:
        lines += ["No learned method with a training log in these results.", ""]
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
            label = f"{chosen}, seed {seed}" if frame.loc[frame["method"] == chosen, "run_seed"].nunique() > 1 else chosen
            lines += ["## Dispatch over the day", "",
                      f"Figures 6-8 show the dispatches of **{chosen}** ({why}) on "
                      f"{Path(day_file).name}; {len(series.states)} intervals of 15 minutes, "
                      f"day cost recomputed: {series.cost.sum():,.2f} ({cost_per_hour(series.cost):,.2f} per hour).", ""]
            energy, ratio = v2g_tables(problem, series)
            if energy:
                p = figures.v2g_energy(energy, out / "fig6a_v2g_energy.png", label)
                _figure(lines, p, "Fig. 6a: per V2G group and interval, energy drawn from plugged-in batteries and "
                                  "fed back into the region (F = efficiency x), lost in conversion "
                                  "(L = (1 - efficiency) x) and available but unused (v - x), in kWh per 15 minutes.")
                q = figures.v2g_feedback_ratio(ratio, out / "fig6b_v2g_feedback_ratio.png", label)
                _figure(lines, q, "Fig. 6b: feedback ratio x / v (eq. 6) of each V2G group; gaps where no V2G power "
                                  "was available.")
                pngs += [p, q]
            p = figures.regional_service(region_tables(problem, series), out / "fig7_regional_service.png", label)
            _figure(lines, p, "Fig. 7: per region, power delivered by each charger type (V2G: fed-back power F) and "
                              "imported from the main grid, stacked, against the region's demand (black); exports "
                              "show below zero.")
            supply, demand = supply_table(problem, series)
            q = figures.regional_supply(supply, demand, out / "fig8_regional_supply.png", label)
            _figure(lines, q, "Fig. 8: local supply of each region, stacked, against the total demand (dashed): the "
                              "main grid only moves power between regions, so the stack meets the demand line.")
            pngs += [p, q]

        costs = day_costs(frame, day_sha)
        lines += ["## Fig. 9 - cost over the day", ""]
        p = figures.cost_per_interval(costs, out / "fig9a_cost_per_interval.png", colors)
        _figure(lines, p, "Fig. 9a: evaluator cost of every 15-minute interval of the day for each method "
                          "(median over seeds); a gap in a line is an interval without a feasible dispatch.")
        pngs.append(p)
        if reference and reference in costs:
            gaps = (costs.drop(columns=[reference]).sub(costs[reference], axis=0)
                    .div(costs[reference], axis=0) * 100.0)
            q = figures.gap_to_optimum(gaps, out / "fig9b_gap_to_optimum.png", colors, reference)
            _figure(lines, q, f"Fig. 9b: each method's gap to the certified optimum ({reference}) per interval, "
                              f"(C - C_opt) / C_opt in percent, median over seeds.")
            pngs.append(q)
        else:
            notes.append("no exact method with optimal results: Fig. 9b (gap to the optimum) left out")

    # Run time, failures, metadata
    lines += ["## Run time", "", _md_table(runtime_table(scored, day_sha)), "",
              "Time per decision: wall time the harness measured around each state's solve (all agents and the "
              "balancing search for learned methods). Training time: wall time of `fit` per trained model.", ""]
    repro = results_dir / REPRODUCE_FILE
    if repro.is_file():
        data = json.loads(repro.read_text())
        stages = pd.DataFrame([{"stage": k, "wall time (s)": v} for k, v in data.get("wall_s", {}).items()])
        lines += ["### Wall time of `dispatchbench reproduce`", "", _md_table(stages, 1), "",
                  f"Budget: `{json.dumps(data.get('budget', {}), sort_keys=True)}`", ""]
    failed = failures_table(scored)
    if repro.is_file():
        extra = pd.DataFrame([{"method": f["method"], "states file": "-", "status": f"failed at {f['stage']}",
                               "rows": 0, "first reason": f["reason"]}
                              for f in json.loads(repro.read_text()).get("failures", [])])
        failed = pd.concat([failed, extra], ignore_index=True) if len(extra) else failed
    lines += ["## Failures", "", _md_table(failed), ""]
    if notes:
        lines += ["Notes: " + "; ".join(notes) + ".", ""]
    lines += ["## Metadata", "", _md_table(metadata_table(scored)), ""]

    md_path = out / "report.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render_html("\n".join(lines), out, title=f"dispatchbench report: {problem.name}"),
                         encoding="utf-8")
    return ReportFiles(out, html_path, md_path, pngs, chosen, notes)


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0 0.2em; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def render_html(markdown_text: str, figure_dir: Path, *, title: str) -> str:
    """One self-contained page: the Markdown rendered, every figure inlined as a data URI."""
    import markdown as md

    body = md.markdown(markdown_text, extensions=["tables"], output_format="html")
    for png in sorted(Path(figure_dir).glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        body = body.replace(f'src="{png.name}"', f'src="data:image/png;base64,{data}"')
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
