"""The scaling study's code path on a tiny study file: generated instances, a trained learner, the
harness, the analysis and the report (the full study lives behind ``reproduce scaling``); and a
study on a user's own problem and state files."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import dispatchbench.report.scaling as scaling
from dispatchbench.report import decision_cost as dc
from dispatchbench.report import matched_budgets as mb

ROOT = Path(__file__).resolve().parent.parent
TINY = """schema = 1
[study]
name = "tiny"
kind = "scaling"
baseline = "merit_order"
[generate]
regions = [2, 3]
[test_states]
intervals = [40]
[run]
timeout = 60
[[methods]]
spec = "scip"
budgets = [1, 100]
budget_of = "maddpg"
[[methods]]
spec = "scip[rel_gap=0.0001]"
[[methods]]
spec = "pso[iterations=5,particles=5]"
budgets = [1, 100]
budget_of = "maddpg"
[[methods]]
spec = "merit_order"
[[methods]]
spec = "maddpg"
train_steps = { 2 = 30 }
skip_reason = "tiny test budget: smallest size only"
[[methods]]
spec = "madrl_tvc[batch_size=4,log_every=2,max_flips=8,max_swaps=4,search_rounds=1,share=type,\
states_per_step=1,table_points=65,updates_per_step=1]"
train = { generated = [2], steps = 3, budget = "10m" }
"""
ANY_SIZE = "MADRL-TVC (any size)"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scaling")
    (root / "tiny.toml").write_text(TINY)
    scaling.reproduce_scaling(
        root / "run",
        root / "tiny.toml",
        cache_root=root / "cache",
        report_root=root / "reports",
        progress=False,
        workers=1,
        say=lambda _: None,
    )
    return root / "run", root / "reports" / "tiny"


def test_every_size_and_method_is_summarised(study: tuple[Path, Path]) -> None:
    _, report = study
    summary = pd.read_csv(report / scaling.SUMMARY_FILE)
    assert set(summary["regions"]) == {2, 3} and set(summary["instance"]) == {"generated-2r", "generated-3r"}
    at_2 = set(summary.loc[summary["regions"] == 2, "method"])
    assert {"SCIP (gap 1e-9)", "SCIP (gap 1e-4)", "PSO", "MADDPG"} <= at_2
    assert "MADDPG" not in set(summary.loc[summary["regions"] == 3, "method"])  # skipped there, with the reason
    certified = summary[summary["method"] == "SCIP (gap 1e-9)"]
    assert (certified["mean gap %"].abs() < 1e-9).all()
    learned = summary[summary["method"] == "MADDPG"].iloc[0]
    assert learned["training s"] > 0 and learned["messages per decision"] > 0
    # online time with its ratio to the certified SCIP at the same size, in the same run
    scip_2 = certified[certified["regions"] == 2].iloc[0]
    assert scip_2[dc.RATIO] == pytest.approx(1.0)
    assert learned[dc.RATIO] == pytest.approx(scip_2[dc.ONLINE] / learned[dc.ONLINE])
    n = dc.break_even(learned["training s"], learned[dc.ONLINE], scip_2[dc.ONLINE])
    assert str(learned[dc.BREAK_EVEN]) == dc.break_even_text(n)
    assert (
        pd.isna(summary.loc[summary["method"] == "PSO", dc.BREAK_EVEN]).all()
        or (summary.loc[summary["method"] == "PSO", dc.BREAK_EVEN] == "—").all()
    )
    assert all(g >= -1e-6 for g in summary["mean gap %"] if not math.isnan(g))  # nobody beats SCIP's best
    # issue 21: every row is compared with the priority-list heuristic on the same states
    heuristic = summary[summary["method"] == "Merit order"]
    assert len(heuristic) == 2 and (heuristic[scaling.BASELINE_COLUMN].abs() < 1e-9).all()
    assert (heuristic["messages per decision"] > 0).all()
    assert (certified[scaling.BASELINE_COLUMN] <= 1e-9).all()  # the optimum is never dearer than the heuristic


def test_one_model_for_any_size_decides_every_instance(study: tuple[Path, Path]) -> None:
    """``train = { generated = [...] }``: one model per seed, trained once on generated sizes,
    decides both instances (sizes it never trained on included) as its own row, with its
    training cost and break-even at each size."""
    run, report = study
    summary = pd.read_csv(report / scaling.SUMMARY_FILE)
    anywhere = summary[summary["method"] == ANY_SIZE]
    assert set(anywhere["regions"]) == {2, 3}
    assert (anywhere["answers"] == "5/5").all() and (anywhere["training s"] > 0).all()
    record = json.loads((run / scaling.SCALING_FILE).read_text())
    models = [m for m in record["models"] if m.get("any_size")]
    assert {m["regions"] for m in models} == {2, 3} and len({m["path"] for m in models}) == 1  # trained once
    assert models[0]["any_size"] == [2] and models[0]["steps"] == 3
    assert "trained once per seed on generated instances of [2] regions" in (report / "report.md").read_text()


def test_the_report_states_skips_and_budget(study: tuple[Path, Path]) -> None:
    _, report = study
    text = (report / "report.md").read_text()
    assert "tiny test budget: smallest size only" in text
    assert dc.ONLINE in text and dc.RATIO in text and dc.BREAK_EVEN in text and dc.OFFLINE in text
    assert (report / "fig_scaling_gap.png").stat().st_size > 0 and (report / "fig_scaling_time.png").exists()
    assert "<script" not in (report / "report.html").read_text().lower()


def test_generated_inputs_are_the_protocols_test_states(study: tuple[Path, Path]) -> None:
    run, _ = study
    states = (run / "instances" / "generated-2r-test.csv").read_text().splitlines()
    labels = [line.split(",")[0] for line in states[1:]]
    assert labels and all(label.endswith("_t40") for label in labels)
    assert len({label.split("_d")[0] for label in labels}) == len(labels)  # one per family


def test_the_record_names_the_study_file(study: tuple[Path, Path]) -> None:
    run, report = study
    record = json.loads((run / scaling.SCALING_FILE).read_text())
    assert (
        record["study"] == "tiny" and record["study_file"].endswith("tiny.toml") and len(record["study_sha256"]) == 64
    )
    assert record["instances"]["2"] == {**record["instances"]["2"], "results": "n2", "seed": 2000, "regions": 2}
    assert [m["spec"] for m in record["budget"]["methods"]][-2] == "maddpg"
    assert "tiny.toml" in (report / "report.md").read_text()


def test_a_study_on_the_users_own_files(tmp_path: Path) -> None:
    """[[instances]]: the user's problem and state files (relative to the study file), plus the
    protocol's states drawn for that problem; the gap reference is whichever method is exact."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "grid.toml").write_text((ROOT / "problems" / "paper-4region.toml").read_text())
    (site / "today.csv").write_text((ROOT / "problems" / "paper-4region-tableIV.csv").read_text())
    (site / "study.toml").write_text(
        """schema = 1
[study]
name = "site"
kind = "scaling"
[[instances]]
problem = "grid.toml"
states = "today.csv"
[test_states]
intervals = [40]
random = 2
[[methods]]
spec = "scip"
[[methods]]
spec = "nlopt[algorithm=LD_SLSQP]"
"""
    )
    out = scaling.reproduce_scaling(
        tmp_path / "run",
        site / "study.toml",
        cache_root=tmp_path / "cache",
        report_root=tmp_path / "reports",
        progress=False,
        workers=1,
        say=lambda _: None,
    )
    assert out.instances["grid"]["states_files"] == ["today.csv", "grid-test.csv"] and not out.failures
    summary = pd.read_csv(tmp_path / "reports" / "site" / scaling.SUMMARY_FILE)
    assert list(summary["instance"].unique()) == ["grid"] and set(summary["regions"]) == {4}
    assert (summary["answers"] == "8/8").all()  # the user's state, one interval of 5 families, 2 random
    assert (summary.loc[summary["method"].str.startswith("SCIP"), "mean gap %"].abs() < 1e-9).all()


# ---- the README's example study, from an empty folder ---------------------------------------------


def readme_study() -> str:
    """The example study file of the README's "Studies" section, as a user would copy it."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"```toml\n(# my-study\.toml\n.*?)```", text, re.S)
    assert found, "README: the example study (a toml block starting '# my-study.toml') is missing"
    return found.group(1)


def run_readme_study(folder: Path, *args: str) -> subprocess.CompletedProcess:
    folder.mkdir()
    (folder / "my-study.toml").write_text(readme_study())
    exe = Path(sys.executable).with_name("dispatchbench")  # this interpreter's console script, not PATH's
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "dispatchbench"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISPATCHBENCH_SOLVER_PATH")}
    return subprocess.run(
        [*cmd, "reproduce", "my-study.toml", "--cache", str(folder / "cache"), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=folder,
        env=env,
    )


@pytest.mark.slow  # .ci/run runs the same from the installed wheel (.ci/check_wheel.sh, STUDY_QUICK=1)
def test_the_readme_study_runs_quick_from_an_empty_folder(tmp_path: Path) -> None:
    """The README's example with --quick (its [quick] table), through the console script."""
    proc = run_readme_study(tmp_path / "empty", "--quick")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "empty" / "reports" / "my-study-quick" / scaling.SUMMARY_FILE)
    assert set(summary["regions"]) == {2, 3} and (tmp_path / "empty" / "runs" / "my-study-quick" / "n3").is_dir()
    assert set(summary.loc[summary["regions"] == 2, "method"]) == {"SCIP (gap 1e-9)", "MADRL-TVC"}
    assert (summary.loc[summary["method"] == "SCIP (gap 1e-9)", "mean gap %"].abs() < 1e-9).all()
    assert "failed" not in proc.stderr and "report: reports/my-study-quick/report.html" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_readme_study_runs_from_an_empty_folder(tmp_path: Path) -> None:
    """The README's example as written (about two minutes on two cores)."""
    proc = run_readme_study(tmp_path / "empty")
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "empty" / "reports" / "my-study"
    summary = pd.read_csv(report / scaling.SUMMARY_FILE)
    assert set(summary["regions"]) == {4, 8} and "MADRL-TVC" in set(summary.loc[summary["regions"] == 4, "method"])
    assert "trained on the smallest instance only" in (report / "report.md").read_text()
    assert (summary["answers"] == "7/7").sum() == 5  # SCIP, NLopt, TVC at 4; SCIP, NLopt at 8 (PSO: 2 seeds)
    assert (summary.loc[summary["method"] == "PSO", "answers"] == "14/14").all()


def test_matched_budgets_run_as_their_own_rows_with_the_learners_time(study: tuple[Path, Path]) -> None:
    """Issue 18 item 2: SCIP and PSO again at 1x and 100x MADDPG's online time at 2 regions, each
    answer within its budget, a figure and a best-per-budget table; at 3 regions no learner ran,
    so no budget, with the reason."""
    run, report = study
    record = json.loads((run / scaling.SCALING_FILE).read_text())
    plan = record["instances"]["2"]["budgets"]
    assert [(b["method"], b["multiple"]) for b in plan] == [
        ("scip", 1.0), ("scip", 100.0), ("pso[iterations=5,particles=5]", 1.0), ("pso[iterations=5,particles=5]", 100.0)
    ]  # fmt: skip
    summary = pd.read_csv(report / scaling.SUMMARY_FILE)
    maddpg_s = summary.loc[(summary["regions"] == 2) & (summary["method"] == "MADDPG"), dc.ONLINE].iloc[0]
    for b in plan:
        assert b["learner_s"] == pytest.approx(maddpg_s)
        assert b["seconds"] == pytest.approx(max(b["multiple"] * maddpg_s, mb.MIN_BUDGET_S))
    line = summary[summary["method"] == "SCIP (gap 1e-9) @100× MADDPG"].iloc[0]
    assert line["budget_s"] == pytest.approx(max(100 * maddpg_s, mb.MIN_BUDGET_S))
    rows = scaling.load_study(run)[1]
    budgeted = rows[rows["budget_multiple"].notna()]
    assert set(budgeted["regions"]) == {2} and len(budgeted) == 4 * 5  # 4 specs x 5 states, seed 0
    for _, r in budgeted.iterrows():
        info = json.loads(r["info"])
        assert info["time_budget_s"] == pytest.approx(r["budget_s"], rel=1e-3)  # the plugin had that budget
        assert r["status"] in {"optimal", "feasible", "timeout"}, r["reason"]
    assert any(s["reason"].startswith("no online decision time of maddpg") for s in record["skipped"])
    text = (report / "report.md").read_text()
    assert "## Matched budgets" in text and [p.name for p in report.glob("fig_budget_*.png")] == [
        "fig_budget_generated-2r.png"
    ]
    section = text.split("## Matched budgets")[1].split("\n## ")[0]
    levels = [ln for ln in section.splitlines() if ln.startswith("| generated-2r |")]
    assert len(levels) == 2 and "1× maddpg" in levels[0] and "100× maddpg" in levels[1]
