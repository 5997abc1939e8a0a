"""The report: every table and figure present, every number from the evaluator, the page renders.

One small real results directory is built once for the module: a MADDPG model trained for a
few dozen steps (through the model cache), then the run harness with SCIP, NLopt and that model
on the Table IV state and the first 8 intervals of the real-data day.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatchbench.model.errors import InputError
from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.model_cache import ModelCache
from dispatchbench.report.html_report import (build_report, choose_dispatch_method, day_series, day_states_sha, load_scored,
                                  supply_table, v2g_tables)

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
DAY = ROOT / "problems" / "paper-4region-day.csv"
FIGURES = ("fig5a_training_reward", "fig5b_training_loss", "fig6a_v2g_energy", "fig6b_v2g_feedback_ratio",
           "fig7_regional_service", "fig8_regional_supply", "fig9a_cost_per_interval", "fig9b_gap_to_optimum")
TINY_MADDPG = "maddpg[batch_size=32,learning_starts=40,log_every=20]"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    day = tmp / "day8.csv"
    pd.read_csv(DAY).head(8).to_csv(day, index=False)
    model = ModelCache(tmp / "cache").train(PROBLEM, TINY_MADDPG, seed=0, steps=80)
    out = tmp / "results"
    summary = run_benchmark(PROBLEM, [TABLE_IV, day], ["scip", "nlopt", model.spec(TINY_MADDPG)], [0], out,
                            timeout=60, progress=False)
    assert not summary.interrupted
    return out


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    return build_report(results, out_root=tmp_path_factory.mktemp("reports"), name="small")


def test_report_has_every_figure_and_table(report):
    names = sorted(p.stem for p in report.figures)
    assert names == sorted(FIGURES)
    md = report.markdown.read_text()
    for stem in FIGURES:
        assert (report.out_dir / f"{stem}.png").stat().st_size > 5_000
        assert f"]({stem}.png)" in md
    for heading in ("### Table IV", "### Table V", "## Run time", "## Failures", "## Metadata"):
        assert heading in md
    # the paper's own numbers beside ours, and why absolute costs differ
    assert "12,201.77" in md and "49,129.07" in md and "do not reproduce" in md
    # the certified optimum at the Table IV state, as the evaluator computes it
    assert "4,903.97" in md
    html = report.html.read_text()
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert not re.search(r'src="(?!data:)', html), "every figure must be inlined"
    assert "<table>" in html and "Table IV" in html


def test_dispatch_figures_default_to_the_learned_method(results, report):
    scored = load_scored(results)
    method, seed, why = choose_dispatch_method(scored, day_states_sha(scored), None)
    assert method.startswith("maddpg") and "learned" in why
    assert report.dispatch_method == method
    method, _, why = choose_dispatch_method(scored, day_states_sha(scored), "scip")
    assert method == "scip" and why == "chosen with --method"
    with pytest.raises(InputError, match="not a method"):
        choose_dispatch_method(scored, day_states_sha(scored), "nosuch")


def test_figure_data_is_the_evaluators(results):
    scored = load_scored(results)
    day_sha = day_states_sha(scored)
    series = day_series(scored, day_sha, "scip", 0)
    # Fig. 8: the regions' local supply meets the total demand (the grid only moves power)
    supply, demand = supply_table(scored.problem, series)
    np.testing.assert_allclose(supply.sum(axis=1), demand, atol=1e-5)
    # Fig. 6: fed back + lost + unused = what the V2G group had available, per interval
    energy, ratio = v2g_tables(scored.problem, series)
    for (name, frame), group in zip(energy.items(), scored.problem.v2g_names):
        avail = np.array([s.v2g_available[group] for s in series.states]) * 0.25
        np.testing.assert_allclose(frame.sum(axis=1), avail, atol=1e-6)
        assert ((ratio[group] >= -1e-9) & (ratio[group] <= 1 + 1e-9)).all()
    # Fig. 9: the day's costs are the evaluator's and equal SCIP's stored ones
    day = scored.frame[(scored.frame["states_sha256"] == day_sha) & (scored.frame["method"] == "scip")]
    np.testing.assert_allclose(series.cost, day.sort_values("state_index")["cost"].astype(float), rtol=1e-9)
    assert (scored.frame["cost_check"].isin(["ok", "no dispatch"])).all()


def test_tampered_stored_cost_is_caught_and_not_used(results, tmp_path):
    copy = tmp_path / "results"
    copy.mkdir()
    rows = [json.loads(line) for line in (results / "rows.jsonl").read_text().splitlines()]
    target = next(r for r in rows if r["solver"] == "scip" and r["state"] == "tableIV")
    true_cost = target["cost"]
    target["cost"] = 1.0
    (copy / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = build_report(copy, out_root=tmp_path / "reports", name="tampered")
    md = files.markdown.read_text()
    assert "1 disagree with the stored result" in md and "evaluator disagrees" in md
    table_iv = md.split("### Table IV")[1].split("###")[0]
    scip_line = next(line for line in table_iv.splitlines() if line.startswith("| scip "))
    assert f"{true_cost:,.2f}" in scip_line and "| 1.00 " not in scip_line


def test_input_file_changed_since_the_run_is_refused(results, tmp_path):
    copy = tmp_path / "results"
    copy.mkdir()
    rows = [json.loads(line) for line in (results / "rows.jsonl").read_text().splitlines()]
    for r in rows:
        r["problem_sha256"] = "0" * 64
    (copy / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="changed since the run"):
        load_scored(copy)


def test_report_command(results, tmp_path):
    done = subprocess.run([sys.executable, "-m", "dispatchbench", "report", str(results), "--reports",
                           str(tmp_path), "--name", "cli", "--method", "nosuch"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "error: --method: nosuch" in done.stderr
    done = subprocess.run([sys.executable, "-m", "dispatchbench", "report", str(results), "--reports",
                           str(tmp_path), "--name", "cli", "--method", "scip"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli" / "report.html").is_file() and "dispatch figures from scip" in done.stdout


def _render_module():
    spec = importlib.util.spec_from_file_location("render_report", ROOT / "benchmarks" / "render_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_report"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                    reason="Debian chromium not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(report, tmp_path):
    render = _render_module()
    check = render.render(report.html, tmp_path / "shot.png")
    assert check.errors == [] and check.console == []
    assert len(check.images) == len(FIGURES) and check.broken_images == []
    assert check.screenshot and Path(check.screenshot).stat().st_size > 50_000
    assert check.ok
