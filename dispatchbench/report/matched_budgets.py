"""Classical methods at budgets matched to a learner's decision time (issue 18, item 2).

A speed ratio alone says nothing about what a classical method reaches in the learner's time. So
a study gives a classical method ``budgets = [1, 10, 100]`` and ``budget_of = "madrl_tvc"``: after
the learners have run (one state per call), the median online decision time of that learner's
policy on each instance is measured, and the method runs again as its own spec at each multiple,
``scip[time_limit=0.012]`` — labelled by its multiple, "SCIP @1× MADRL-TVC". SCIP then returns its
incumbent (or says it has none), PSO its best particle, NLopt its best feasible point.

The study records each budgeted spec (method, multiple, learner, seconds) in ``scaling.json``;
the analysis here turns the rows into, per instance size, a figure of gap to the best known
solution against decision time and a table of which method is best at each budget level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dispatchbench.bench.plugins import parse_spec
from dispatchbench.instances.provenance import Provenance
from dispatchbench.report import decision_cost
from dispatchbench.report.tables import method_name

TIME_PARAMETER = "time_limit"  # scip, pso and nlopt all take their per-state budget by this name
MIN_BUDGET_S = 1e-3  # the smallest time_limit the plugins accept
GAP_FLOOR_PCT = 1e-6  # a gap of 0 drawn on a log axis


def budget_spec(spec: str, seconds: float) -> str:
    """``spec`` with its per-state time limit set to ``seconds`` (4 significant digits)."""
    name, params = parse_spec(spec)
    params[TIME_PARAMETER] = f"{max(seconds, MIN_BUDGET_S):.4g}"
    return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(params.items()))}]"


def canonical(spec: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """A spec as a comparable value: ``scip[rel_gap=1e-4]`` and the stored ``scip[rel_gap=0.0001]``
    (the harness stores typed parameters) are the same spec."""
    try:
        name, params = parse_spec(str(spec))
    except Exception:  # noqa: BLE001  (a row's spec no plugin syntax reads: compared as text)
        return str(spec), ()

    def value(v: Any) -> Any:
        try:
            return float(v)
        except (TypeError, ValueError):
            return str(v)

    return name, tuple(sorted((k, value(v)) for k, v in params.items()))


def is_policy_of(spec: str, learner_spec: str) -> bool:
    """Whether ``spec`` runs the learner of ``learner_spec`` itself: the same parameters once its
    model path is set aside (a variant such as ``refine=3`` is another method)."""
    return canonical(method_name(spec)) == canonical(learner_spec)


def learner_online_s(rows: pd.DataFrame, learner_spec: str) -> float:
    """Median online decision time of a learner's policy (its rows without a variant: the spec
    without its model path equals ``learner_spec``), over every state it answered or timed out on."""
    if rows.empty:
        return math.nan
    mine = {s for s in rows["solver"].astype(str).unique() if is_policy_of(s, learner_spec)}
    own = rows[rows["solver"].astype(str).isin(mine)]
    return decision_cost.online_seconds(own)


def plan_budgets(methods: Sequence[Any], rows: pd.DataFrame, timeout_s: float = math.inf) -> list[dict[str, Any]]:
    """One entry per (budgeted method, multiple) on one instance: its spec, the learner's measured
    time and the seconds; a learner without rows gives no budget, and a budget at or above the
    study's per-state limit ``timeout_s`` is not run again (the method's unbudgeted row already
    ran under that limit: plugins take the harness's limit as their own); the entry says why."""
    out: list[dict[str, Any]] = []
    for m in methods:
        if not getattr(m, "budgets", ()):
            continue
        t = learner_online_s(rows, m.budget_of)
        for multiple in m.budgets:
            entry = {"method": m.spec, "multiple": multiple, "of": m.budget_of, "learner_s": t}
            if math.isfinite(t) and multiple * t >= timeout_s:
                entry["seconds"] = multiple * t
                entry["reason"] = (
                    f"{multiple * t:.3g} s is at or above the per-state limit of {timeout_s:g} s: "
                    f"the unbudgeted row ran under that limit"
                )
            elif math.isfinite(t):
                # the seconds the method is actually given: a budget below the plugins' smallest
                # time limit runs at that floor, and the row says so rather than claim the smaller one
                entry["seconds"] = max(multiple * t, MIN_BUDGET_S)
                spec = budget_spec(m.spec, multiple * t)
                if multiple * t < MIN_BUDGET_S:
                    entry["note"] = f"{multiple * t:.3g} s is below the {MIN_BUDGET_S:g} s floor: ran at the floor"
                if any(e.get("spec") == spec for e in out):
                    entry["reason"] = f"the same run as a smaller multiple after the {MIN_BUDGET_S:g} s floor"
                else:
                    entry["spec"] = spec
            else:
                entry["reason"] = f"no online decision time of {m.budget_of} on this instance"
            out.append(entry)
    return out


def run_budgets(
    methods: Sequence[Any],
    problem_path: Path,
    states_paths: Sequence[Path],
    results_dir: Path,
    *,
    timeout_s: float,
    progress: bool,
    jobs: int,
    provenance: Mapping[Path, Provenance] | None = None,
) -> list[dict[str, Any]]:
    """Run the budgeted methods of a study on one problem: the learners' online times are read
    from the rows already in ``results_dir``, then each budgeted spec runs into the same folder
    (one state per call, like every row; cells already there are kept). Returns the plan, which
    the study records (``scaling.json`` per instance, ``reproduce.json``)."""
    from dispatchbench.bench.harness import run_benchmark
    from dispatchbench.bench.rescore import load_results

    budgeted = [m for m in methods if getattr(m, "budgets", ())]
    if not budgeted:
        return []
    plan = plan_budgets(budgeted, load_results(results_dir), timeout_s)
    specs = [b["spec"] for b in plan if "spec" in b]
    if specs:
        seeds = {b["spec"]: list(m.seeds) for m in budgeted for b in plan if b["method"] == m.spec and "spec" in b}
        summary = run_benchmark(
            problem_path,
            list(states_paths),
            specs,
            [0],
            results_dir,
            timeout=timeout_s,
            resume=True,
            progress=progress,
            jobs=jobs,
            seeds_for=seeds,
            skip_bad_specs=True,
            provenance=provenance,
        )
        refused = dict(summary.refused)
        for b in plan:
            if b.get("spec") in refused:
                b["reason"] = f"refused: {refused[b['spec']]}"
    return plan


def relabelled(
    labels: Mapping[str, str], own: Mapping[str, str], budgets: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Report labels (method -> label) with each budgeted spec named by its plugin's own label
    (``own``) and its multiple of the learner: "SCIP (gap 1e-9) @10× MADRL-TVC"."""
    out = dict(labels)
    keys = {canonical(m): m for m in labels}
    for b in budgets:
        spec = keys.get(canonical(b["spec"])) if "spec" in b else None
        if spec in out:
            learner = labels.get(str(b["of"]), str(b["of"]))
            out[spec] = f"{own.get(spec, spec)} @{_multiple_text(float(b['multiple']))} {learner}"
    return out


def _multiple_text(multiple: float) -> str:
    return f"{multiple:g}×"


def relabel(frame: pd.DataFrame, budgets: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> pd.DataFrame:
    """Rows of budgeted specs get their own method label ("SCIP (gap 1e-9) @10× MADRL-TVC") and the
    columns ``budget_multiple``/``budget_s``/``budget_of`` (null on every other row)."""
    frame = frame.copy()
    frame["budget_multiple"] = math.nan
    frame["budget_s"] = math.nan
    frame["budget_of"] = None
    frame["budget_base"] = None  # the unbudgeted method's label: one curve per base over its budgets
    for b in budgets:
        if "spec" not in b:
            continue
        key = canonical(b["spec"])
        hit = frame["solver"].map(lambda spec: canonical(spec) == key).astype(bool)
        if not hit.any():
            continue
        base = str(frame.loc[hit, "method"].iloc[0])
        learner = labels.get(str(b["of"]), str(b["of"]))
        frame.loc[hit, "method"] = f"{base} @{_multiple_text(float(b['multiple']))} {learner}"
        frame.loc[hit, "budget_multiple"] = float(b["multiple"])
        frame.loc[hit, "budget_s"] = float(b["seconds"])
        frame.loc[hit, "budget_of"] = str(b["of"])
        frame.loc[hit, "budget_base"] = base
    return frame


def learner_labels(rows: pd.DataFrame) -> dict[str, str]:
    """Learner spec (without model) -> its label, from the rows of learned methods."""
    learned = rows[rows["learns"].fillna(False).astype(bool)]
    return {method_name(str(s)): str(m) for s, m in zip(learned["solver"], learned["method"])}


def size_points(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (instance, method): its online time, mean gap and, for budgeted lines, its budget."""
    keep = ["instance", "regions", "groups", "method", "answers", "mean gap %", decision_cost.ONLINE]
    extra = [c for c in ("budget_multiple", "budget_s", "budget_base", "learns") if c in summary]
    return summary[keep + extra]


def best_per_budget(summary: pd.DataFrame) -> pd.DataFrame:
    """Per instance size and budget level (each multiple of the learner's online time): the method
    with the lowest mean gap among those that ran within that budget — the budgeted classical
    lines at that multiple, and every other method (learned, or classical without a budget: a
    heuristic, a distributed method) whose own median online time is within it. Only methods
    that answered every state are ranked; the others are listed with their answers. Ties (equal
    mean gap to 1e-9 %) name every tied method."""
    if "budget_multiple" not in summary or summary["budget_multiple"].isna().all():
        return pd.DataFrame(columns=["instance", "regions", "budget", "seconds", "best", "mean gap %", "others"])
    out = []
    for (regions, instance), part in summary.groupby(["regions", "instance"], sort=True):  # by size
        budgeted = part[part["budget_multiple"].notna()]
        unbudgeted = part[part["budget_multiple"].isna()]
        for multiple, level in budgeted.groupby("budget_multiple", sort=True):
            seconds = float(level["budget_s"].median())
            online = pd.to_numeric(unbudgeted[decision_cost.ONLINE], errors="coerce")
            # the learner that set the budget is in it at 1x and above by definition, even where its
            # median over the rows shown (the test states) is a hair above its median over the run
            owner = _owner_mask(unbudgeted, str(level["budget_of"].iloc[0])) & (float(multiple) >= 1)
            within = unbudgeted[(online <= seconds * 1.000001) | owner]
            pool = pd.concat([level, within])
            complete = pool[[_all_answered(a) for a in pool["answers"]]]
            incomplete = pool[[not _all_answered(a) for a in pool["answers"]]]
            gaps = pd.to_numeric(complete["mean gap %"], errors="coerce")
            if gaps.notna().any():
                best_gap = float(gaps.min())
                best = complete.loc[(gaps - best_gap).abs() <= 1e-9, "method"].tolist()
                best_text = best[0] if len(best) == 1 else "tie: " + ", ".join(best)
            else:
                best_gap, best_text = math.nan, "none answered every state"
            out.append(
                {
                    "instance": instance,
                    "regions": regions,
                    "budget": f"{float(multiple):g}× {level['budget_of'].iloc[0]}",
                    "seconds": seconds,
                    "best": best_text,
                    "mean gap %": best_gap,
                    "others": "; ".join(
                        [
                            f"{m} {g:.4g} %"
                            for m, g in zip(complete["method"], gaps)
                            if m not in best_text and math.isfinite(g)
                        ]
                        + [f"{m}: {a} answered" for m, a in zip(incomplete["method"], incomplete["answers"])]
                    ),
                }
            )
    return pd.DataFrame(out)


def _owner_mask(lines: pd.DataFrame, budget_of: str) -> pd.Series:
    """Which lines are the budget's learner itself (its policy, not a variant): by the ``spec``
    column where the summary has one."""
    if "spec" not in lines:
        return pd.Series(False, index=lines.index)
    return lines["spec"].map(lambda s: is_policy_of(str(s), budget_of)).astype(bool)


def _all_answered(answers: Any) -> bool:
    done, _, total = str(answers).partition("/")
    return done.isdigit() and done == total


def figures_per_size(summary: pd.DataFrame, folder: Path, draw: Any) -> list[tuple[Path, str]]:
    """One gap-vs-time figure per instance size (``draw`` is :func:`figures.gap_against_time`)."""
    out: list[tuple[Path, str]] = []
    if "budget_multiple" not in summary or summary["budget_multiple"].isna().all():
        return out
    for (instance, regions, groups), part in summary.groupby(["instance", "regions", "groups"], sort=True):
        if part["budget_multiple"].isna().all():
            continue  # no learner ran at this size: nothing was budgeted
        path = draw(part, folder / f"fig_budget_{instance}.png", f"{instance}: {regions} regions, {groups} groups")
        out.append(
            (
                path,
                f"{instance} ({regions} regions): mean gap to the best known solution against the online decision "
                "time (median per state), both logarithmic (gaps of 0 drawn at "
                f"{GAP_FLOOR_PCT:g} %). A curve per classical method over its budgets (1×, 10×, 100× the learner's "
                "online time), a point per learner and per unbudgeted reference.",
            )
        )
    return out
