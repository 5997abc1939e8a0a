"""The paper's Table IV (cost at one state) and Table V (average cost per hour over a day),
computed from the long results table of one or more runs.

Rules, so that no number flatters a method:

* Costs are the evaluator's (the ``cost`` column); only ``optimal``/``feasible`` rows have one.
* **Table V** value of one seed = ``mean_t(C_t) · 4`` over the day's states (four 15-minute
  intervals per hour): ``Σ C_t / 24`` for a 96-interval day, and still an hourly figure for a
  file of another length. A seed that did not solve *every* state of the file has no day value,
  and a method with a seed that has no value shows ``n/a`` and its failure counts — it is never
  averaged over fewer states or fewer seeds.
* Stochastic methods: mean over seeds ± the half-width of the 95 % confidence interval of the
  mean (Student t, ``n − 1`` degrees of freedom), plus the best and worst seed.
* Improvement over the baseline is the paper's column, ``(C_baseline − C) / C_baseline``;
  gap to exact is ``(C − C_exact) / C_exact`` with ``C_exact`` the lowest cost among exact methods.
* Time per state is the wall time the harness measured per state, one state per call, over every
  row that has one (failed states included: a timeout costs its time): the mean
  (``time_per_state_s``) and the median as the online decision time with its ratio to the SCIP
  reference in the same rows, and a learner's batched time labelled offline
  (:mod:`dispatchbench.report.decision_cost`).
* Stored costs are **checked, not trusted**: the rows are read through the one re-scoring policy
  (:mod:`dispatchbench.bench.rescore`, the same as ``report`` and ``load_results``): every stored
  dispatch is re-scored by the evaluator against the run's problem and state files (found by
  path, matched by SHA-256, refused when missing or changed); a row that claims a cost without
  a dispatch, that no run planned, or that repeats another is an error naming it; a stored cost
  or status the evaluator disagrees with is replaced by the evaluator's verdict and reported as
  a ``WARNING`` note.
* Output files are written by temporary file and rename, never through a link.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dispatchbench.bench import safe_files
from dispatchbench.bench.plugins import parse_spec, split_specs
from dispatchbench.bench.rescore import rescore_folders
from dispatchbench.bench.results_store import TABLES_DIR, parse_json_cell
from dispatchbench.contract.solver import Capabilities, default_family
from dispatchbench.contract.status import FAILURES, SUCCESS, Status
from dispatchbench.instances.state_families import FAMILIES, RANDOM
from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.errors import InputError, SolverNotFound
from dispatchbench.model.problem import Problem
from dispatchbench.model.problem_file import load_problem
from dispatchbench.report import decision_cost

INTERVALS_PER_HOUR = 4
PAPER_PROBLEM_FILE = "paper-4region.toml"  # the bundled problem of the paper's Tables I-III
DEFAULT_STATE = "tableIV"

# The paper's own numbers (Tables IV and V), quoted beside ours, never mixed into our columns.
# method -> (cost, improvement over PSO as printed in the paper)
PAPER_TABLE_IV = {
    "PSO": (12603.94, "0"),
    "NLOPT": (12622.88, "-0.15%"),
    "SCIP": (12201.77, "3.19%"),
    "MADDPG": (12394.07, "1.67%"),
    "MADRL": (12202.26, "3.19%"),
}
PAPER_TABLE_V = {
    "PSO": (52102.92, "0"),
    "NLOPT": (52977.84, "-1.84%"),
    "SCIP": (49129.07, "5.56%"),
    "MADDPG": (50968.13, "2.02%"),
    "MADRL": (49146.08, "5.53%"),
}
PAPER_CAVEAT = (
    "Absolute costs differ from the paper's: its published parameters (Tables I–III) do not reproduce "
    "its costs (at the Table IV state they give a global optimum of 4903.97, not 12201.77). What this "
    "table reproduces is the comparison — the ranking and the improvement over the baseline — not the numbers."
)

COLUMNS = (
    "method",
    "type",
    "seeds",
    "cost",
    "ci95",
    "best",
    "worst",
    "improvement",
    "gap_to_exact",
    "time_per_state_s",
    "online_s",
    "online_ratio_to_scip",
    "offline_batched_s",
    "states",
    *(status.value for status in FAILURES),
    "missing",
)


def solver_type(row: pd.Series) -> str:
    """The method's family as its plugin labelled it (the row's ``family``), else one from the
    capability flags (rows written before labels existed)."""
    family = row.get("family")
    if isinstance(family, str) and family:
        return family
    flags = Capabilities(exact=bool(row["exact"]), stochastic=bool(row["stochastic"]), learns=bool(row["learns"]))
    return default_family(flags)


# ---- choosing rows ----------------------------------------------------------------------------


def filter_solvers(results: pd.DataFrame, solvers: str | None) -> pd.DataFrame:
    """Keep rows whose spec equals an entry of ``solvers``, or whose solver name does (``pso``
    keeps every ``pso[...]`` spec, ``pso[particles=40]`` only that one)."""
    if not solvers:
        return results
    wanted = split_specs(solvers)
    names = {w for w in wanted if "[" not in w}
    keep = results["solver"].isin(wanted) | results["solver_name"].isin(names)
    if not keep.any():
        raise InputError(
            "--solvers",
            repr(solvers),
            "matches no solver in the results",
            f"use some of: {', '.join(dict.fromkeys(results['solver']))}",
        )
    return results[keep]


def one_problem(results: pd.DataFrame, problem: str | None) -> pd.DataFrame:
    """Tables compare methods on one problem: pick it, or refuse to mix several."""
    if problem:
        results = results[results["problem"] == problem]
        if results.empty:
            raise InputError("--problem", repr(problem), "not in the results", "give a problem name that was run")
    versions = results[["problem", "problem_sha256"]].drop_duplicates()
    if len(versions) > 1:
        listed = ", ".join(f"{p} ({s[:8]})" for p, s in versions.itertuples(index=False))
        raise InputError(
            "results",
            "problem",
            f"several problems or problem-file versions: {listed}",
            "pass --problem NAME, or table runs of one problem file only",
        )
    return results


def resolve_baseline(results: pd.DataFrame, baseline: str) -> str:
    """The spec the improvement column is relative to: an exact spec, or a solver name with one spec."""
    specs = list(dict.fromkeys(results["solver"]))
    if baseline in specs:
        return baseline
    name, _ = parse_spec(baseline)
    matching = [s for s in specs if results.loc[results["solver"] == s, "solver_name"].iloc[0] == name]
    if len(matching) == 1 and "[" not in baseline:
        return matching[0]
    if len(matching) > 1:
        raise InputError(
            "--baseline",
            repr(baseline),
            f"matches several specs: {', '.join(matching)}",
            "give the full spec, e.g. --baseline " + repr(matching[0]),
        )
    raise InputError("--baseline", repr(baseline), "is not a solver in the results", f"use one of: {', '.join(specs)}")


# ---- per-seed values and the per-method table ---------------------------------------------------


def cost_per_hour(costs: Sequence[float] | np.ndarray) -> float:
    """Average cost per hour of a day of 15-minute intervals: ``mean(C_t) × 4`` (``Σ C_t / 24`` for
    96 intervals, and still an hourly figure for a day of another length)."""
    return float(np.mean(costs)) * INTERVALS_PER_HOUR


def seed_values(rows: pd.DataFrame, per_hour: bool) -> pd.DataFrame:
    """One value per (spec, seed): the cost at the state (Table IV) or the hourly average over the
    file's states (Table V); NaN unless every expected state of that seed was solved."""
    out = []
    for (spec, seed), group in rows.groupby(["solver", "seed"], sort=False):
        expected = int(group["states_count"].max()) if per_hour else 1
        ok = group[group["status"].isin(SUCCESS)]
        complete = len(ok) == expected and len(group) == expected
        value = np.nan
        if complete:
            value = cost_per_hour(ok["cost"]) if per_hour else float(ok["cost"].iloc[0])
        out.append({"solver": spec, "seed": int(seed), "value": value, "missing": expected - len(group)})
    return pd.DataFrame(out, columns=["solver", "seed", "value", "missing"])


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95 % Student-t confidence interval (NaN for fewer than 2 values)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, math.nan
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, half


def method_table(rows: pd.DataFrame, baseline: str, per_hour: bool) -> pd.DataFrame:
    """One line per method (spec) with cost, CI, improvement, gap, time and failure counts."""
    values = seed_values(rows, per_hour)
    scip_online = decision_cost.online_seconds(rows[decision_cost.reference_mask(rows)])
    lines = []
    for spec, group in rows.groupby("solver", sort=False):
        first = group.iloc[0]
        seeds = values[values["solver"] == spec]
        line = {
            "method": spec,
            "type": solver_type(first),
            "exact": bool(first["exact"]),
            "seeds": len(seeds),
            "states": int(group["state"].nunique()),
            "time_per_state_s": float(group["time_s"].mean()) if group["time_s"].notna().any() else math.nan,
            "online_s": decision_cost.online_seconds(group),
            "online_ratio_to_scip": decision_cost.speed_ratio(scip_online, decision_cost.online_seconds(group)),
            "offline_batched_s": decision_cost.offline_seconds(group),
            **{status.value: int((group["status"] == status).sum()) for status in FAILURES},
            "missing": int(seeds["missing"].sum()),
            "cost": math.nan,
            "ci95": math.nan,
            "best": math.nan,
            "worst": math.nan,
        }
        v = seeds["value"].to_numpy(dtype=float)
        if len(v) and not np.isnan(v).any():
            line["cost"], line["ci95"] = mean_ci95(v)
            line["best"], line["worst"] = float(v.min()), float(v.max())
        lines.append(line)
    table = pd.DataFrame(lines)
    base = table.loc[table["method"] == baseline, "cost"]
    c_base = float(base.iloc[0]) if len(base) else math.nan
    table["improvement"] = (c_base - table["cost"]) / c_base
    exact_costs = table.loc[table["exact"], "cost"].dropna()
    c_exact = float(exact_costs.min()) if len(exact_costs) else math.nan
    table["gap_to_exact"] = (table["cost"] - c_exact) / c_exact
    return table[list(COLUMNS)]


# ---- the two tables -----------------------------------------------------------------------------


@dataclass
class PaperTable:
    """One of the two tables, with what it was computed over (for the title and notes)."""

    number: str  # "IV" or "V"
    table: pd.DataFrame
    scope: str  # which state / which state file
    baseline: str
    paper_problem: bool = True  # the paper's own numbers are quoted only beside the paper's problem


def is_paper_problem(problem: Problem) -> bool:
    """Whether ``problem`` is the paper's (the bundled ``paper-4region.toml``'s regions and groups,
    by content, commitment on or off): only then do the paper's own Tables IV/V mean anything
    beside ours. A generated or third-party problem gets our tables without them."""
    try:
        paper = load_problem(problems_dir() / PAPER_PROBLEM_FILE)
    except InputError:
        return False
    return (problem.regions, problem.groups) == (paper.regions, paper.groups)


def table_iv(results: pd.DataFrame, state: str, baseline: str) -> PaperTable:
    rows = results[results["state"] == state]
    files = rows.groupby("states_file")["states_count"].max().sort_values()
    if len(files) > 1:  # the state is in several files: use the smallest (the file made for it)
        rows = rows[rows["states_file"] == files.index[0]]
    return PaperTable(
        "IV", method_table(rows, baseline, per_hour=False), f"state {state!r} of {Path(files.index[0]).name}", baseline
    )


def day_files(results: pd.DataFrame) -> list[str]:
    return sorted(results.loc[results["states_count"] > 1, "states_file"].unique())


def pick_day(results: pd.DataFrame, day: str | None) -> str | None:
    """The state file Table V averages over: the one named by ``--day`` (path, file name or stem),
    else the only multi-state file in the results; ``None`` if there is none."""
    files = day_files(results)
    if day:
        match = [f for f in files if day in (f, Path(f).name, Path(f).stem)]
        if len(match) != 1:
            raise InputError(
                "--day",
                repr(day),
                "names no multi-state file of the results",
                f"use one of: {', '.join(Path(f).name for f in files) or '(none)'}",
            )
        return match[0]
    if len(files) > 1:  # a set of generated states of several families (reproduce's test states) is no day
        days = [f for f in files if not several_families(results.loc[results["states_file"] == f, "state"])]
        if len(days) == 1:
            return days[0]
        raise InputError(
            "results",
            "day",
            f"several multi-state files: {', '.join(Path(f).name for f in files)}",
            "pass --day NAME to choose the one Table V averages over",
        )
    return files[0] if files else None


def several_families(labels: Iterable[Any]) -> bool:
    """Whether ``labels`` are generated states of more than one family (a validation or test set),
    which no table may take for a day."""
    families = {state_family(str(label)) for label in set(labels)}
    return None not in families and len(families) > 1


def table_v(results: pd.DataFrame, states_file: str, baseline: str) -> PaperTable:
    rows = results[results["states_file"] == states_file]
    n = int(rows["states_count"].max())
    return PaperTable(
        "V", method_table(rows, baseline, per_hour=True), f"{n} states of {Path(states_file).name}", baseline
    )


# ---- output -------------------------------------------------------------------------------------


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.3f} %"


def _failures(line: pd.Series) -> str:
    parts = [f"{int(line[s])} {s}" for s in (*FAILURES, "missing") if line[s]]
    return ", ".join(parts)


def markdown(pt: PaperTable) -> str:
    """The table as Markdown, with the definitions and the paper's own numbers as notes beside it."""
    lines = [line for _, line in pt.table.iterrows()]
    shown = pd.DataFrame(
        {
            "method": [r["method"] for r in lines],
            "type": [r["type"] for r in lines],
            "seeds": [str(r["seeds"]) for r in lines],
            "cost": [
                f"n/a ({_failures(r)})"
                if math.isnan(r["cost"])
                else _num(r["cost"]) + ("" if math.isnan(r["ci95"]) else f" ± {_num(r['ci95'])}")
                for r in lines
            ],
            "best / worst seed": [
                "" if r["seeds"] < 2 or math.isnan(r["best"]) else f"{_num(r['best'])} / {_num(r['worst'])}"
                for r in lines
            ],
            f"improvement over {pt.baseline}": [_pct(r["improvement"]) for r in lines],
            "gap to best exact": [_pct(r["gap_to_exact"]) for r in lines],
            decision_cost.ONLINE: [_num(r["online_s"], 4) for r in lines],
            decision_cost.RATIO: [_num(r["online_ratio_to_scip"], 1) for r in lines],
            decision_cost.OFFLINE: [
                decision_cost.MISSING if math.isnan(r["offline_batched_s"]) else _num(r["offline_batched_s"], 5)
                for r in lines
            ],
            "failed states": [_failures(r) or "0" for r in lines],
        }
    )
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
    return "\n".join(
        [
            f"### {title}",
            "",
            shown.to_markdown(index=False, disable_numparse=True),
            "",
            f"{definition} Stochastic methods: mean over seeds ± half-width of the 95 % confidence interval "
            "(Student t). Improvement: (C_baseline − C) / C_baseline, the paper's column. "
            "Gap: (C − C_exact) / C_exact against the lowest cost of an exact method. " + decision_cost.DEFINITIONS,
            "",
            *([paper_numbers(pt.number), ""] if pt.paper_problem else []),
        ]
    )


def paper_numbers(number: str) -> str:
    """The note quoting the paper's own Table IV or V beside ours (the paper's problem only)."""
    paper = PAPER_TABLE_IV if number == "IV" else PAPER_TABLE_V
    quoted = ", ".join(f"{name} {cost:,.2f} ({printed})" for name, (cost, printed) in paper.items())
    pso = paper["PSO"][0]
    recomputed = ", ".join(f"{name} {_pct((pso - cost) / pso)}" for name, (cost, _) in paper.items() if name != "PSO")
    return (
        f"The paper's own Table {number} (cost, and in brackets its printed improvement over its PSO): "
        f"{quoted}. Recomputed from its costs, the improvements are {recomputed}. {PAPER_CAVEAT}"
    )


@dataclass
class TablesWritten:
    tables: list[PaperTable]
    files: list[Path]
    notes: list[str]
    text: str


def method_name(spec: str) -> str:
    """A solver spec without its ``model=`` path: the algorithm and settings a reader compares."""
    try:
        name, params = parse_spec(spec)
    except SolverNotFound:  # a spec no plugin syntax reads (an older or hand-made row): shown as it is
        return spec
    params.pop("model", None)
    return name if not params else f"{name}[{','.join(f'{k}={v}' for k, v in sorted(params.items()))}]"


def read_model_meta(model_dir: str) -> dict:
    """A trained model's ``model.json`` (training seed, steps, time) through the same checked
    reader that loading a model uses (a results row names the folder: it is input, not trusted),
    or ``{}`` where that reader refuses it: the tables then show the training cost as n/a."""
    from dispatchbench.learn.checkpoints import ModelFileError, read_meta  # torch: only when a model is named

    try:
        return read_meta(model_dir)
    except ModelFileError:
        return {}


def fold_learned_models(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One method per learning algorithm, its trained models as seeds.

    ``madrl_tvc[model=A]`` and ``madrl_tvc[model=B]`` are the same method trained with two seeds,
    so the tables must show one row with a spread over seeds, not one row per model folder. Adds
    ``method`` (spec without ``model=``), ``model_dir`` and ``run_seed`` (the model's training
    seed; training seed × 1000 + run seed where a model was also run under several seeds).
    """
    frame = frame.copy()
    params = [parse_json_cell(p) or {} for p in frame["params"]]
    models = {p["model"]: read_model_meta(p["model"]) for p in params if p.get("model")}
    frame["method"] = [method_name(s) for s in frame["solver"]]
    frame["model_dir"] = [p.get("model") or None for p in params]
    harness_seeds = frame.groupby(frame["model_dir"].fillna(""))["seed"].nunique()

    def run_seed(p: dict, seed: int) -> int:
        meta = models.get(p.get("model") or "")
        if not meta:
            return int(seed)
        train_seed = int(meta.get("seed", seed))
        return train_seed * 1000 + int(seed) if harness_seeds[p["model"]] > 1 else train_seed

    frame["run_seed"] = [run_seed(p, s) for p, s in zip(params, frame["seed"])]
    return frame, models


def make_tables(
    dirs: Sequence[str | Path],
    baseline: str,
    *,
    state: str | None = None,
    day: str | None = None,
    solvers: str | None = None,
    problem: str | None = None,
    out_dir: str | Path | None = None,
) -> TablesWritten:
    """Build Table IV and/or V from run directories and write ``tables/table{4,5}.{md,csv}``.

    Table IV needs the named state (default ``tableIV``) in the results; Table V a multi-state
    file. A table whose data is absent is left out with a note; if neither can be built, that
    is an input error.
    """
    scored = rescore_folders(dirs)
    results, notes = one_problem(filter_solvers(scored.frame, solvers), problem), list(scored.notes)
    results, _ = fold_learned_models(results)
    results = results.assign(solver=results["method"], seed=results["run_seed"])
    built: list[PaperTable] = []
    label = state or DEFAULT_STATE
    if (results["state"] == label).any():
        rows = results[results["state"] == label]
        built.append(table_iv(results, label, resolve_baseline(rows, baseline)))
    elif state:
        raise InputError(
            "--state", repr(state), "is not a state in the results", "give the label of a state that was run"
        )
    else:
        notes.append(f"no state named {DEFAULT_STATE!r} in the results: Table IV left out (pass --state LABEL)")
    day_file = pick_day(results, day)
    if day_file:
        rows = results[results["states_file"] == day_file]
        built.append(table_v(results, day_file, resolve_baseline(rows, baseline)))
    else:
        notes.append("no multi-state (day) run in the results: Table V left out")
    if not built:
        raise InputError(
            str(dirs[0]),
            "results",
            "hold neither the Table IV state nor a day",
            "pass --state LABEL, or run a state file with several states",
        )
    paper_problem = all(is_paper_problem(scored.problems[sha]) for sha in set(results["problem_sha256"]))
    built = [replace(pt, paper_problem=paper_problem) for pt in built]
    root, sub = (Path(out_dir), "") if out_dir else (Path(dirs[0]), TABLES_DIR)
    root.mkdir(parents=True, exist_ok=True)
    files, texts = [], []
    for pt in built:
        stem = "table4" if pt.number == "IV" else "table5"
        text = markdown(pt)
        files.append(safe_files.write_text(root, Path(sub, f"{stem}.md"), text))
        files.append(safe_files.write_text(root, Path(sub, f"{stem}.csv"), pt.table.to_csv(index=False)))
        texts.append(text)
    return TablesWritten(built, files, notes, "\n".join(texts))


# ---- unseen test states: the gap to the reference per family --------------------------------------

ALL_FAMILIES = "all"  # the pseudo-family of every generated state together
FAMILY_GAP_COLUMNS = (
    "method",
    "family",
    "seeds",
    "states",
    "excluded",
    "mean_gap",
    "worst_gap",
    "solved",
    *(status.value for status in FAILURES),
    "missing",
)
_DAY_LABEL = re.compile(r"^(?P<family>[a-z][a-z0-9_]*?)_d\d+_t\d+$")


def state_family(label: str) -> str | None:
    """The generator family a generated state's label names (``skewed_d0_t32`` → ``skewed``,
    ``random_7`` → ``random``), or None for any other label (a reported case such as ``tableIV``):
    the labels are the only place a results row says which family its state was drawn from."""
    if re.fullmatch(rf"{RANDOM}_\d+", label):
        return RANDOM
    match = _DAY_LABEL.fullmatch(label)
    return match["family"] if match and match["family"] in FAMILIES else None


def family_gaps(results: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Every method's gap ``(C − C_ref) / C_ref`` to ``reference`` on generated states, per family.

    ``results`` are rows of **one** set of generated states (labels alone name a state, and a
    validation and a test set share them) with the columns ``solver``, ``seed``, ``state``,
    ``status`` and ``cost`` (the evaluator's; a successful status without a cost counts as
    infeasible); rows of other labels are ignored. A state where
    the reference has no cost cannot give a gap: it is left out for every method and counted in
    ``excluded``. Per method and family: ``mean_gap`` is the mean over seeds of each seed's mean
    gap over the states it solved, ``worst_gap`` the largest gap of any seed at any state, and
    ``infeasible``/``timeout``/``error``/``missing`` count the (seed, state) answers without a cost
    among the compared states, so a method is never made to look better by the states it failed.
    The reference itself gets no line. Family ``"all"`` is every generated state together.
    Families come in the generator's order, methods in the order they first appear.
    """
    rows = results.assign(family=[state_family(str(s)) for s in results["state"]])
    rows = rows[rows["family"].notna()]
    ok = rows["status"].isin(SUCCESS) & rows["cost"].notna()
    # a "solved" answer the evaluator found no cost for (its dispatch violates a constraint) is infeasible
    rows = rows.assign(status=rows["status"].where(ok | ~rows["status"].isin(SUCCESS), Status.INFEASIBLE.value))
    ref = rows[(rows["solver"] == reference) & ok].groupby("state")["cost"].min()
    present = [f for f in (*FAMILIES, RANDOM) if (rows["family"] == f).any()]
    lines = []
    for method, part in rows[rows["solver"] != reference].groupby("solver", sort=False):
        seeds = sorted(part["seed"].unique())
        for family in [*present, ALL_FAMILIES] if present else []:
            states = rows.loc[rows["family"] == family, "state"] if family != ALL_FAMILIES else rows["state"]
            compared = sorted(set(states) & set(ref.index))
            mine = part[part["state"].isin(compared)]
            solved = mine[mine["status"].isin(SUCCESS) & mine["cost"].notna()]
            gaps = (solved["cost"].to_numpy(float) - ref[solved["state"]].to_numpy(float)) / ref[
                solved["state"]
            ].to_numpy(float)
            per_seed = pd.Series(gaps).groupby(solved["seed"].to_numpy()).mean()
            answered = mine.drop_duplicates(["seed", "state"])
            lines.append(
                {
                    "method": method,
                    "family": family,
                    "seeds": len(seeds),
                    "states": len(compared),
                    "excluded": len(set(states)) - len(compared),
                    "mean_gap": float(per_seed.mean()) if len(per_seed) else math.nan,
                    "worst_gap": float(gaps.max()) if len(gaps) else math.nan,
                    "solved": len(solved),
                    **{status.value: int((mine["status"] == status).sum()) for status in FAILURES},
                    "missing": len(seeds) * len(compared) - len(answered),
                }
            )
    return pd.DataFrame(lines, columns=list(FAMILY_GAP_COLUMNS))
