"""The report: every table and figure present, every number from the evaluator, the page renders.

One small real results directory is built once for the module: a MADDPG model trained for a
few dozen steps (through the model cache), then the run harness with SCIP, NLopt and that model
on the Table IV state and the first 8 intervals of the real-data day.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hand_results import copy_results, write_planned

from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.model_cache import ModelCache
from dispatchbench.contract.info import read_info
from dispatchbench.model.errors import InputError
from dispatchbench.report.html_report import (
    build_report,
    choose_dispatch_method,
    day_series,
    day_states_sha,
    load_scored,
    supply_table,
    v2g_tables,
)

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
DAY = ROOT / "problems" / "paper-4region-day.csv"
FIGURES = (
    "fig5a_training_reward",
    "fig5b_training_loss",
    "fig6a_v2g_energy",
    "fig6b_v2g_feedback_ratio",
    "fig7_regional_service",
    "fig8_regional_supply",
    "fig9a_cost_per_interval",
    "fig9b_gap_to_optimum",
)
TINY_MADDPG = "maddpg[batch_size=32,learning_starts=40,log_every=20]"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    day = tmp / "day8.csv"
    pd.read_csv(DAY).head(8).to_csv(day, index=False)
    model = ModelCache(tmp / "cache").train(PROBLEM, TINY_MADDPG, seed=0, steps=80)
    out = tmp / "results"
    summary = run_benchmark(
        PROBLEM, [TABLE_IV, day], ["scip", "nlopt", model.spec(TINY_MADDPG)], [0], out, timeout=60, progress=False
    )
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
    for (_name, frame), group in zip(energy.items(), scored.problem.v2g_names):
        avail = np.array([s.v2g_available[group] for s in series.states]) * 0.25
        np.testing.assert_allclose(frame.sum(axis=1), avail, atol=1e-6)
        assert ((ratio[group] >= -1e-9) & (ratio[group] <= 1 + 1e-9)).all()
    # Fig. 9: the day's costs are the evaluator's and equal SCIP's stored ones
    day = scored.frame[(scored.frame["states_sha256"] == day_sha) & (scored.frame["method"] == "scip")]
    np.testing.assert_allclose(series.cost, day.sort_values("state_index")["cost"].astype(float), rtol=1e-9)
    assert (scored.frame["cost_check"].isin(["ok", "no dispatch"])).all()


def test_tampered_stored_cost_is_caught_and_not_used(results, tmp_path):
    copy = copy_results(results, tmp_path / "results")
    rows = [json.loads(line) for line in (results / "rows.jsonl").read_text().splitlines()]
    target = next(r for r in rows if r["solver"] == "scip" and r["state"] == "tableIV")
    true_cost = target["cost"]
    target["cost"] = 1.0
    (copy / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = build_report(copy, out_root=tmp_path / "reports", name="tampered")
    md = files.markdown.read_text()
    assert "1 disagree with the stored result" in md and "evaluator disagrees" in md
    table_iv = md.split("### Table IV")[1].split("###")[0]
    scip_line = next(line for line in table_iv.splitlines() if line.startswith("| SCIP "))
    assert f"{true_cost:,.2f}" in scip_line and "| 1.00 " not in scip_line


def test_input_file_changed_since_the_run_is_refused(results, tmp_path):
    copy = copy_results(results, tmp_path / "results")
    edited = tmp_path / "edited-problem.toml"  # the run's problem file, edited after the run
    edited.write_text(PROBLEM.read_text().replace("cs_max = ", "cs_max = 1 + ", 1))
    rows = [json.loads(line) for line in (results / "rows.jsonl").read_text().splitlines()]
    for r in rows:
        r["problem_file"] = str(edited)
    (copy / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="changed since the run"):
        load_scored(copy)
    edited.unlink()
    with pytest.raises(InputError, match="named by the results but not found"):
        load_scored(copy)


def test_report_command(results, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatchbench",
            "report",
            str(results),
            "--reports",
            str(tmp_path),
            "--name",
            "cli",
            "--method",
            "nosuch",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "error: --method: nosuch" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatchbench",
            "report",
            str(results),
            "--reports",
            str(tmp_path),
            "--name",
            "cli",
            "--method",
            "scip",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli" / "report.html").is_file() and "dispatch figures from scip" in done.stdout


def _render_module():
    spec = importlib.util.spec_from_file_location("render_report", ROOT / "benchmarks" / "render_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_report"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(), reason="Debian chromium not installed (apt-get install -y chromium)"
)
def test_html_renders_in_headless_chromium(report, tmp_path):
    render = _render_module()
    check = render.render(report.html, tmp_path / "shot.png")
    assert check.errors == [] and check.console == []
    assert len(check.images) == len(FIGURES) and check.broken_images == []
    assert check.screenshot and Path(check.screenshot).stat().st_size > 50_000
    assert check.ok


# ---- hardening: escaping, labels, paths, the report folder, the page width ---------------------

PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
LONG_NLOPT = (
    "nlopt[algorithm=AUGLAG,commitment=greedy,inner_algorithm=GN_DIRECT_L,inner_maxeval=300,"
    "max_patterns=512,xtol_rel=1e-10]"
)


def _hostile_copy(results: Path, tmp_path: Path) -> Path:
    """The results with user-supplied strings an attacker controls: a plugin's error message, a
    solver spec (one no spec syntax reads), run metadata, a reproduce failure reason; NLopt
    renamed to a long spec. The manifest plans these rows, as a run of such plugins would."""
    copy = tmp_path / "hostile"
    rows = [json.loads(line) for line in (results / "rows.jsonl").read_text().splitlines()]
    for r in rows:
        r["hostname"] = PAYLOADS[0]
        r["install_source"] = "file:///home/alice/wheels/dispatchbench-0.1.0-py3-none-any.whl"
        if r["solver"] == "nlopt":
            r["solver"] = LONG_NLOPT
            r["label"] = "NLopt AUGLAG+DIRECT-L"  # what the plugin labels that spec (probed when a run starts)
            r["params"] = {
                **r["params"],
                "algorithm": "AUGLAG",
                "inner_algorithm": "GN_DIRECT_L",
                "inner_maxeval": 300,
                "commitment": "greedy",
            }
    failed = dict(next(r for r in rows if r["solver"] == "scip"))
    failed.update(
        solver=f"scip[rel_gap={PAYLOADS[1]}]",
        status="error",
        cost=None,
        dispatch=None,
        reason=f"plugin said {PAYLOADS[0]} and {PAYLOADS[1]} " + "x" * 300,
    )
    rows.append(failed)
    day_row = next(r for r in rows if r["solver"] == "scip" and r["state"] != "tableIV")
    unreadable = dict(day_row, solver=f"{PAYLOADS[0]} & co", solver_name="x", status="error", cost=None, dispatch=None)
    unreadable.update(exact=False, reason="& <b>why</b>")
    rows.append(unreadable)  # a spec parse_spec refuses: the report must show it, not fail on it
    write_planned(copy, rows)
    (copy / "reproduce.json").write_text(
        json.dumps(
            {
                "wall_s": {"train": 1.0},
                "budget": {"note": PAYLOADS[1]},
                "failures": [{"method": PAYLOADS[0], "stage": "train", "reason": PAYLOADS[1]}],
            }
        )
    )
    return copy


@pytest.fixture(scope="module")
def hostile_report(results, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    return build_report(_hostile_copy(results, tmp), out_root=tmp / "reports", name="hostile")


def test_user_strings_are_escaped_in_the_html(hostile_report):
    page = hostile_report.html.read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<img ") == len(FIGURES)  # only the figures are images
    assert "/home/alice" not in page and "dispatchbench-0.1.0-py3-none-any.whl" in page  # no machine paths
    md = hostile_report.markdown.read_text()
    assert "<script" not in md and "<img" not in md


def test_escaping_of_every_block_kind(tmp_path):
    from dispatchbench.report.document import Figure, Heading, Para, Table, to_html, to_markdown

    png = tmp_path / "fig.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    blocks = [
        Heading(1, PAYLOADS[0]),
        Para([("", PAYLOADS[1]), ("code", PAYLOADS[0]), ("strong", PAYLOADS[1])]),
        Table(pd.DataFrame({PAYLOADS[0]: [PAYLOADS[1]]})),
        Figure(png, f'{PAYLOADS[1]}: "quoted" caption'),
    ]
    page = to_html(blocks, title=PAYLOADS[0])
    assert "<script" not in page and "<img src=x" not in page and '"quoted"' not in page.split("<body>")[1]
    md = to_markdown(blocks)
    assert "<script" not in md and "<img src=x" not in md


def test_tables_use_short_labels_in_kind_order_with_the_full_spec_in_a_legend(hostile_report):
    md = hostile_report.markdown.read_text()
    table_iv = md.split("### Table IV")[1].split("###")[0]
    methods = [line.split("|")[1].strip() for line in table_iv.splitlines() if line.startswith("| ")][1:]
    # exact (SCIP, and the failed hostile SCIP spec), then classical, then learned
    # two specs with one label: told apart by the parameters each spec writes (issue 22), not "(2)"
    assert methods[0] == "SCIP (gap 1e-9) [defaults]", methods
    assert methods[2:] == ["NLopt AUGLAG+DIRECT-L", "MADDPG"], methods
    assert methods[1].startswith("SCIP (gap 1e-9) [rel_gap=") and "<img" not in methods[1], methods
    assert LONG_NLOPT in table_iv and "maddpg[batch_size=32" in table_iv  # the legend
    assert not any("[" in m for m in methods[2:])


def test_labels_come_from_the_rows_and_fall_back_to_the_spec():
    """The report names a method as its plugin labelled it; rows from before labels show the spec."""
    from dispatchbench.report.html_report import method_labels

    frame = pd.DataFrame(
        {
            "method": ["pso", "pso[particles=40]", "pso[particles=40]", "mine[k=1]", "old[x=2]"],
            "label": ["PSO", None, "PSO", "My method", None],
            "exact": [False] * 5,
            "learns": [False, False, False, True, False],
        }
    )
    assert method_labels(frame) == {
        "old[x=2]": "old[x=2]",  # no label: the spec
        # one row without a label does not hide the other's; two specs of one label show their parameters
        "pso": "PSO [defaults]",
        "pso[particles=40]": "PSO [particles=40]",
        "mine[k=1]": "My method",  # a third-party plugin by its own name, learned last
    }


def test_bundled_plugins_label_their_specs():
    from dispatchbench.bench.plugins import make_solver

    def label(spec: str) -> tuple[str, str]:
        solver = make_solver(spec)
        found = solver.label(solver.params)
        return found.name, found.family

    assert label("nlopt[algorithm=LD_SLSQP]") == label("nlopt") == ("NLopt SLSQP", "local, gradient")
    assert label("nlopt[algorithm=AUGLAG,inner_algorithm=GN_DIRECT_L]") == (
        "NLopt AUGLAG+DIRECT-L",
        "global, derivative-free",
    )
    assert label("scip") == ("SCIP (gap 1e-9)", "exact") and label("scip[rel_gap=1e-4]")[0] == "SCIP (gap 1e-4)"
    assert label("pso[particles=40]") == ("PSO", "swarm") and label("pso[decode=price]")[0] == "PSO (price decode)"
    assert label("madrl_tvc[refine=0]") == ("MADRL-TVC", "learned, distributed (one problem) or CTDE-like (any size)")
    assert label("madrl_tvc[share=type]") == ("MADRL-TVC", "learned, CTDE-like training")
    assert label("madrl_tvc[share=agent]") == ("MADRL-TVC", "learned, fully distributed")
    assert label("madrl_tvc[refine=3]") == ("MADRL-TVC + local search", "learned + search")
    assert label("maddpg") == ("MADDPG", "learned, CTDE (per agent on one problem, shared per type for any size)")
    assert label("maddpg[sharing=agent]") == ("MADDPG (per agent)", "learned, CTDE")


def test_report_records_no_absolute_paths(results, report):
    for path in (report.markdown, report.html):
        text = path.read_text()
        for absolute in (str(results.parent), str(ROOT), str(Path.home())):
            assert absolute not in text, (path.name, absolute)
    assert "problems/paper-4region.toml" in report.markdown.read_text()


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs-report", "a/b", "..", ".hidden", "", "a\nb"])
def test_report_name_must_be_a_plain_folder_name(results, tmp_path, name):
    reports = tmp_path / "reports"
    victim = tmp_path / "fig_victim.png"
    victim.write_bytes(b"keep me")
    with pytest.raises(InputError, match="--name"):
        build_report(results, out_root=reports, name=name)
    assert victim.read_bytes() == b"keep me"
    assert not Path("/tmp/abs-report").exists() and not (tmp_path.parent / "x").exists()
    assert not reports.exists() or not any(reports.iterdir())


@pytest.mark.parametrize("planted", ["report.html", "report.md", "fig5a_training_reward.png"])
def test_report_refuses_a_planted_link_instead_of_writing_through_it(results, tmp_path, planted):
    outside = tmp_path / "outside.html"
    outside.write_text("untouched")
    folder = tmp_path / "reports" / "linked"
    folder.mkdir(parents=True)
    (folder / planted).symlink_to(outside)
    with pytest.raises(InputError, match=f"{planted}: file: is a symbolic link"):
        build_report(results, out_root=tmp_path / "reports", name="linked")
    assert outside.read_text() == "untouched" and (folder / planted).is_symlink()


WIDTH_PROBE = """<script>
window.addEventListener('load', function () {
  var pre = document.createElement('pre');
  pre.id = 'width-check';
  pre.textContent = JSON.stringify({scroll: document.documentElement.scrollWidth, inner: window.innerWidth});
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(), reason="Debian chromium not installed (apt-get install -y chromium)"
)
def test_page_fits_a_laptop_screen_in_headless_chromium(hostile_report, tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(hostile_report.html.read_text().replace("</head>", WIDTH_PROBE + "</head>", 1))
    done = subprocess.run(
        [
            "/usr/bin/chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1366,900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    match = re.search(r'<pre id="width-check">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stderr[-500:]
    size = json.loads(match.group(1))
    assert size["inner"] == 1366 and size["scroll"] <= size["inner"], size


@pytest.fixture(scope="module")
def test_days(results, tmp_path_factory) -> Path:
    """The results plus a few of the protocol's test states, run by the same methods, and
    reproduce's record of them (its file name hostile, to check it is escaped)."""
    from dispatchbench.bench.results_store import file_sha256
    from dispatchbench.instances.protocol import test_states
    from dispatchbench.instances.state_families import write_states
    from dispatchbench.model.problem_file import load_problem

    copy = copy_results(results, tmp_path_factory.mktemp("testdays") / "results")
    problem = load_problem(PROBLEM)
    states = test_states(problem, stride=48, random_count=2)  # 5 families x 2 intervals + 2 random
    test_file = copy / "test-states-seed2000.csv"
    write_states(test_file, problem, states)
    specs = sorted({json.loads(line)["solver"] for line in (results / "rows.jsonl").read_text().splitlines()})
    summary = run_benchmark(PROBLEM, [test_file], specs, [0], copy, timeout=60, progress=False, resume=True)
    assert not summary.interrupted
    (copy / "reproduce.json").write_text(
        json.dumps(
            {
                "test_states": {
                    "file": f"test-states-seed2000.csv{PAYLOADS[0]}",
                    "sha256": file_sha256(test_file),
                    "split": "test",
                    "seed": 2000,
                    "days": 1,
                    "stride": 48,
                    "random_count": 2,
                    "states": len(states),
                    "families": ["base_load", "night_heavy", "skewed", "high_demand", "cs_binding", "random"],
                }
            }
        )
    )
    return copy


def test_unseen_test_days_section(test_days, tmp_path):
    from dispatchbench.report.html_report import as_table_input, reference_method
    from dispatchbench.report.tables import family_gaps

    made = build_report(test_days, out_root=tmp_path, name="testdays")
    md = made.markdown.read_text()
    section = md.split("## Unseen test days (protocol test seeds)")[1].split("\n## ")[0]
    assert "never trained or tuned on" in section and "test seed 2000" in section and "12 states" in section
    assert "one interval in 48 (2 states per family), plus 2 random states" in section
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "method",
        "seeds",
        "base_load",
        "night_heavy",
        "skewed",
        "high_demand",
        "cs_binding",
        "random",
        "all",
    ]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[1:]}
    assert list(rows) == ["NLopt SLSQP", "MADDPG", "states compared (no SCIP (gap 1e-9) cost: left out)"]
    assert rows["states compared (no SCIP (gap 1e-9) cost: left out)"][2:] == ["2", "2", "2", "2", "2", "2", "12"]

    # the cells are family_gaps of the evaluator's costs on the test file only
    scored = load_scored(test_days)
    frame = as_table_input(scored)
    test_sha = json.loads((test_days / "reproduce.json").read_text())["test_states"]["sha256"]
    gaps = family_gaps(frame[frame["states_sha256"] == test_sha], reference_method(scored.frame))
    maddpg = gaps[gaps["method"].str.startswith("maddpg") & (gaps["family"] == "all")].iloc[0]
    if math.isnan(maddpg["mean_gap"]):
        assert rows["MADDPG"][-1].startswith("n/a")
    else:
        assert rows["MADDPG"][-1].startswith(f"{100 * maddpg['mean_gap']:+.3f} % ({100 * maddpg['worst_gap']:+.3f} %)")
    failed = sum(int(maddpg[s]) for s in ("infeasible", "timeout", "error", "missing"))
    assert (f"{failed} of 12 answers without a cost") in section and "What the learned methods reach" in section

    # Table V and the day figures stay on the day, not on the (larger) set of test states
    assert "8 states of day8.csv" in md
    assert "s per decision, test states median" in md
    page = made.html.read_text()
    assert "Unseen test days" in page and "<script" not in page.lower()


def test_test_states_without_reproduce_record_are_no_day_and_no_test_section(test_days, tmp_path):
    """Only reproduce's record says which seed drew the states (a validation set has the same
    labels), so without it there is no "unseen" claim; and the set is still not taken for the day."""
    bare = copy_results(test_days, tmp_path / "bare")
    md = build_report(bare, out_root=tmp_path / "reports", name="bare").markdown.read_text()
    assert "Unseen test days" not in md and "8 states of day8.csv" in md


def test_run_time_table_is_online_with_the_ratio_to_scip_and_training_cost(results, report):
    """Issue 18 items 1 and 3: one state per call is the headline, with the ratio to SCIP in the
    same run; the learned row shows its recorded training cost and break-even."""
    from dispatchbench.report import decision_cost as dc
    from dispatchbench.report.html_report import runtime_table

    scored = load_scored(results)
    table = runtime_table(scored, day_states_sha(scored)).set_index("method")
    scip = table.loc["SCIP (gap 1e-9)"]
    assert scip[dc.RATIO] == pytest.approx(1.0)
    assert scip["seeds"] == "1"  # a count, as in Tables IV and V (issue 22: the seed id "0" read as no seeds)
    every = scored.frame
    assert scip[dc.ONLINE] == pytest.approx(every.loc[every["method"] == "scip", "time_s"].median())
    (learned,) = [m for m in table.index if m.startswith("MADDPG")]
    row = table.loc[learned]
    assert row[dc.RATIO] == pytest.approx(scip[dc.ONLINE] / row[dc.ONLINE])
    (meta,) = [m for m in scored.models.values() if m]
    assert row["training s"] == pytest.approx(meta["train_time_s"])
    assert row[dc.BREAK_EVEN] == dc.break_even_text(
        dc.break_even(meta["train_time_s"], row[dc.ONLINE], scip[dc.ONLINE])
    )
    assert table.loc["SCIP (gap 1e-9)", dc.BREAK_EVEN] == "—" and table.loc["SCIP (gap 1e-9)", "training s"] == "—"
    # messages per decision (issue 21): the learned row's own count, — for the central solver
    answered = every[every["method"].str.startswith("maddpg") & every["status"].isin(["optimal", "feasible"])]
    sent = [read_info(i).get("messages") for i in answered["info"]]
    assert row["messages per decision"] == pytest.approx(np.mean(sent)) and np.mean(sent) > 0
    assert table.loc["SCIP (gap 1e-9)", "messages per decision"] == "—"
    md = report.markdown.read_text()
    for column in (dc.ONLINE, dc.RATIO, dc.OFFLINE, dc.BREAK_EVEN, "true-cost evaluations", "messages per decision"):
        assert column in md
