"""Results that cannot be forged or silently lost, and one re-scoring policy for every reader.

Every cost ``table``, ``report``, ``load_results`` and the scaling study show is the evaluator's
score of a stored dispatch; a row no run planned, a second row for a cell's state, a claim of a
cost without a dispatch, a torn or unreadable line or Parquet part is an error naming the file
and the line — never dropped, never a traceback — and no file of a results or report folder is
opened through a symbolic link.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hand_results import HandResults, write_run

import dispatchbench
from dispatchbench.bench import safe_files
from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.rescore import load_results, rescore_folders
from dispatchbench.bench.results_store import MANIFEST_FILE, read_results
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import evaluate, evaluate_many
from dispatchbench.report.html_report import build_report
from dispatchbench.report.scaling import size_rows
from dispatchbench.report.tables import make_tables

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
HOSTILE = Path(__file__).resolve().parent / "plugins" / "hostile"
TWO = "state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6\ns0,100,120,50,530,70,150\ns1,90,110,45,480,60,120\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real run: SCIP (exact) and NLopt (not exact) on the Table IV state and a two-state file."""
    tmp = tmp_path_factory.mktemp("integrity")
    two = tmp / "two.csv"
    two.write_text(TWO)
    out = tmp / "run"
    run_benchmark(PROBLEM, [TABLE_IV, two], "scip,nlopt", [0], out, timeout=120, progress=False)
    return out


@pytest.fixture
def run(run_dir, tmp_path) -> Path:
    """A copy of the real run to damage."""
    return Path(shutil.copytree(run_dir, tmp_path / "run", symlinks=True))


@pytest.fixture
def hand(tmp_path) -> HandResults:
    return HandResults(tmp_path / "inputs")


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]


def rewrite(out: Path, rows: list[dict]) -> None:
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The ``dispatchbench`` command in this process: (exit code, stdout, stderr)."""
    from dispatchbench.cli import main

    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line_error(code: int, err: str, *says: str) -> None:
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and " — fix: " in err
    for text in says:
        assert text in err, (text, err)


# ---- forged rows ------------------------------------------------------------------------------------


def test_a_plugin_that_appends_a_forged_row_is_refused_by_every_reader(tmp_path, monkeypatch, capsys):
    """The reviewer's attack: from inside its cell a plugin appends a row claiming `optimal` at
    cost 1 with no dispatch. Every reader — and a resume — refuses the folder, naming that line."""
    monkeypatch.setenv("DISPATCHBENCH_SOLVER_PATH", str(HOSTILE))
    out = tmp_path / "forged"
    run_benchmark(PROBLEM, [TABLE_IV], f"scip,forge_rows[folder={out}]", [0], out, progress=False)
    rows = lines(out)
    forged = next(n for n, r in enumerate(rows, 1) if r["cost"] == 1.0)
    assert rows[forged - 1]["dispatch"] is None and rows[forged - 1]["status"] == "optimal"
    where = f"{out / 'rows.jsonl'}: line {forged}: "
    readers = {
        "table": lambda: make_tables([out], "scip"),
        "report": lambda: build_report(out, out_root=tmp_path / "reports", name="forged"),
        "load_results": lambda: dispatchbench.load_results(out),
        "scaling": lambda: size_rows(out, 4, 9),
        "resume": lambda: run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], out, resume=True, progress=False),
    }
    for name, read in readers.items():
        with pytest.raises(InputError) as info:
            read()
        assert str(info.value).startswith(where) and "claims optimal at cost 1.0 without a dispatch" in str(
            info.value
        ), name
    assert not (tmp_path / "reports").exists()
    code, _, err = cli(monkeypatch, capsys, "table", str(out), "--baseline", "scip")
    one_line_error(code, err, f"rows.jsonl: line {forged}:", "--resume")


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda r: r.update(seed=5), "planned no cell 'scip' seed 5"),
        (lambda r: r.update(run_id="20991231T000000-deadbeef"), "which manifest.jsonl does not list"),
        (lambda r: r.update(problem_sha256="0" * 64), "names another problem file"),
        (lambda r: r.update(solver="scip[rel_gap=0.5]"), "planned no cell 'scip[rel_gap=0.5]'"),
    ],
    ids=["unplanned-seed", "unknown-run", "other-problem", "unplanned-spec"],
)
def test_an_appended_row_the_plan_does_not_hold_is_refused(run, edit, says):
    rows = lines(run)
    extra = dict(rows[0])
    edit(extra)
    rewrite(run, rows + [extra])
    with pytest.raises(InputError) as info:
        load_results(run)
    assert f"rows.jsonl: line {len(rows) + 1}: " in str(info.value) and says in str(info.value)


def test_a_forged_exact_flag_cannot_make_a_heuristic_optimal(run):
    rows = lines(run)
    k = next(i for i, r in enumerate(rows) if r["solver"] == "nlopt")
    rows[k].update(exact=True, status="optimal")
    rewrite(run, rows)
    with pytest.raises(InputError, match=f"line {k + 1}: says exact=True, but the plugin's plan says False"):
        load_results(run)


def test_a_state_the_cell_did_not_plan_is_refused(tmp_path, hand):
    rows = [hand.row("pso", f"t{i}", 0, 1.0, file="day.csv", stochastic=True) for i in range(2)]
    out = write_run(tmp_path / "run", rows)
    extra = {**lines(out)[0], "state": "t2", "state_index": 2}  # the same cell, a state it never had
    rewrite(out, lines(out) + [extra])
    with pytest.raises(InputError, match="line 3: state 't2' \\(index 2\\) is not one run .* planned"):
        load_results(out)


def test_a_cost_without_a_dispatch_is_an_error_naming_the_row(run):
    rows = lines(run)
    rows[0]["dispatch"] = None  # SCIP's optimal row keeps its cost, loses what it was the cost of
    rewrite(run, rows)
    with pytest.raises(InputError, match="line 1: claims optimal at cost 4903.9.* without a dispatch"):
        load_results(run)
    rows[0].update(status="infeasible")  # a cost on a row that claims no success is no better
    rewrite(run, rows)
    with pytest.raises(InputError, match="line 1: claims infeasible at cost 4903.9.* without a dispatch"):
        load_results(run)


def test_a_second_row_for_a_cell_state_names_both_lines(run, tmp_path):
    rows = lines(run)
    rewrite(run, rows + [rows[2]])
    with pytest.raises(InputError) as info:
        load_results(run)
    message = str(info.value)
    assert f"line {len(rows) + 1}: is a second row for" in message and "rows.jsonl line 3)" in message

    rewrite(run, rows)  # the same rows in two folders: named in both
    twin = Path(shutil.copytree(run, tmp_path / "twin"))
    with pytest.raises(InputError) as info:
        make_tables([run, twin], "scip")
    assert f"{twin}/rows.jsonl: line 1: " in str(info.value) and f"(the first: {run}/rows.jsonl line 1)" in str(
        info.value
    )
    assert len(rescore_folders([run, run]).frame) == len(rows)  # one folder given twice counts once


# ---- torn and unreadable lines and parts ------------------------------------------------------------


def _cut_line_one(data: bytes) -> bytes:
    first, rest = data.split(b"\n", 1)
    return first[:-30] + b"\n" + rest


def _second_line(text: bytes):
    return lambda data: data.replace(b"\n", b"\n" + text + b"\n", 1)


def _first(old: bytes, new: bytes):
    return lambda data: re.sub(old, new, data, count=1)


@pytest.mark.parametrize(
    "damage, says",
    [
        (_cut_line_one, "line 1: is not a JSON row"),
        (_second_line(b"{}"), "line 2: misses the column(s) run_id"),
        (_second_line(b"[1, 2]"), "line 2: is not a JSON object"),
        (_second_line(b""), "line 2: is not a JSON row"),
        (_first(rb'"cost": [0-9.]+', b'"cost": "cheap"'), "line 1: column cost holds 'cheap'"),
        (_first(rb'"status": "optimal"', b'"status": "great"'), "line 1: column status holds 'great'"),
        (_first(rb'"seed": 0', b'"seed": -1'), "line 1: column seed holds '-1'"),
        (_first(rb'"state_index": 0', b'"state_index": 7'), "line 1: column state_index holds '7'"),
        (lambda data: data[:-40], "line 6: is cut off (no line end)"),
        (lambda data: data + b"\xff\n", "line 7: is not a JSON row"),
    ],
    ids=[
        "torn-middle",
        "empty-object",
        "not-object",
        "empty-line",
        "cost-text",
        "status",
        "seed",
        "index",
        "torn",
        "bytes",
    ],
)
def test_an_unreadable_line_is_named_with_its_fix_never_dropped(run, monkeypatch, capsys, damage, says):
    path = run / "rows.jsonl"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InputError) as info:
        load_results(run)
    assert f"rows.jsonl: {says}" in str(info.value)
    code, _, err = cli(monkeypatch, capsys, "table", str(run), "--baseline", "scip")
    one_line_error(code, err, str(path), says)


def _two_states(rows: list[dict]) -> Path:
    return Path(next(r["states_file"] for r in rows if r["states_count"] == 2))


def test_a_torn_last_line_is_reported_then_repaired_by_resume(run):
    rows = lines(run)
    text = (run / "rows.jsonl").read_text().splitlines(keepends=True)
    (run / "rows.jsonl").write_text("".join(text[:-1]) + text[-1][:50])  # a SIGKILL mid-write
    with pytest.raises(InputError, match=f"line {len(rows)}: is cut off .* --resume"):
        load_results(run)
    summary = run_benchmark(PROBLEM, [TABLE_IV, _two_states(rows)], "scip,nlopt", [0], run, resume=True, progress=False)
    assert summary.rows_written == 1 and len(load_results(run)) == len(rows)


def _parts_only(run: Path) -> Path:
    (run / "rows.jsonl").unlink()
    (run / "results.parquet").unlink()
    return run


def test_parts_are_read_when_the_log_is_gone_and_a_broken_part_is_named(run, monkeypatch, capsys):
    parts = sorted((run / "parts").glob("*.parquet"))
    frame = load_results(_parts_only(run))
    assert len(frame) == 6 and frame["source"].str.contains("parts/").all()

    parts[0].write_bytes(parts[0].read_bytes()[:300])  # truncated
    with pytest.raises(InputError, match=f"{parts[0].name}: file: is not a readable Parquet table"):
        load_results(run)
    code, _, err = cli(monkeypatch, capsys, "table", str(run), "--baseline", "scip")
    one_line_error(code, err, parts[0].name, "not a readable Parquet table")

    pd.DataFrame({"a": [1, 2]}).to_parquet(parts[0])  # a foreign table
    with pytest.raises(InputError, match=f"{parts[0].name}: row 0: misses the column"):
        load_results(run)


def test_a_truncated_results_parquet_is_named(run):
    (run / "rows.jsonl").unlink()
    shutil.rmtree(run / "parts")
    data = (run / "results.parquet").read_bytes()
    (run / "results.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="results.parquet: file: is not a readable Parquet table"):
        load_results(run)


def test_a_damaged_or_missing_manifest_is_named(run):
    manifest = run / MANIFEST_FILE
    text = manifest.read_text()
    manifest.write_text(text[:-20])
    with pytest.raises(InputError, match="manifest.jsonl: line 1: is cut off"):
        load_results(run)
    manifest.write_text(text + text)  # the same run planned twice
    with pytest.raises(InputError, match="manifest.jsonl: line 2: .*planned twice"):
        load_results(run)
    manifest.unlink()  # rows of this version need their plan
    with pytest.raises(InputError, match="rows.jsonl: line 1: has schema_version 3 but the folder has no manifest"):
        load_results(run)


# ---- links ------------------------------------------------------------------------------------------


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("keep me\n")
    return path


def _plant(path: Path, target: Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def test_a_linked_lock_is_refused_and_its_target_untouched(run, victim):
    _plant(run / ".lock", victim)
    with pytest.raises(InputError, match=r"\.lock: file: is a symbolic link"):
        run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], run, resume=True, progress=False)
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("name", ["rows.jsonl", MANIFEST_FILE, "results.parquet", "parts"])
def test_a_linked_results_file_is_refused_by_readers_and_by_the_run(run, victim, name):
    if name == "parts":
        shutil.rmtree(run / "parts")
    _plant(run / name, victim)
    for act in (
        lambda: load_results(run),
        lambda: run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], run, resume=True, progress=False),
    ):
        with pytest.raises(InputError, match=f"{name}: file: is a symbolic link"):
            act()
    assert victim.read_text() == "keep me\n"


def test_tables_are_never_written_through_a_link(run, victim, tmp_path):
    make_tables([run], "scip")
    _plant(run / "tables" / "table4.md", victim)
    with pytest.raises(InputError, match="table4.md: file: is a symbolic link"):
        make_tables([run], "scip")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _plant(elsewhere / "table5.csv", victim)
    (run / "tables" / "table4.md").unlink()
    with pytest.raises(InputError, match="table5.csv: file: is a symbolic link"):
        make_tables([run], "scip", out_dir=elsewhere)
    assert victim.read_text() == "keep me\n"


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path, monkeypatch):
    safe_files.write_text(tmp_path, "sub/out.md", "first")
    safe_files.write_text(tmp_path, "sub/out.md", "second")
    assert (tmp_path / "sub" / "out.md").read_text() == "second"

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        safe_files.write_text(tmp_path, "sub/out.md", "third")
    assert (tmp_path / "sub" / "out.md").read_text() == "second"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.md"]  # no temporary file left


# ---- the one re-scoring policy -------------------------------------------------------------------


def test_the_evaluator_decides_and_a_disagreeing_verdict_is_relabelled_with_the_reason(tmp_path, hand):
    rows = [
        hand.row("exactA", "tableIV", 0, 0.0, "optimal", exact=True),  # agrees: 100
        hand.row("heur", "tableIV", 0, 10.0, "optimal"),  # a heuristic cannot know it is optimal
        hand.row("liar", "tableIV", 0, -10.0),  # 'dear' at -10 kW: below its running range
        hand.row("shy", "tableIV", 0, 20.0, "infeasible"),  # a dispatch the evaluator finds feasible
        hand.row("greedy", "tableIV", 0, 30.0),
    ]
    rows[4]["cost"] = 1.0  # stored cost edited
    out = write_run(tmp_path / "run", rows)
    scored = rescore_folders([out])
    by = scored.frame.set_index("solver")
    assert (by.loc["exactA", "status"], by.loc["exactA", "cost"], by.loc["exactA", "cost_check"]) == (
        "optimal",
        100.0,
        "ok",
    )
    assert by.loc["heur", "status"] == "feasible" and by.loc["heur", "cost"] == 110.0
    assert "the plugin is not exact" in by.loc["heur", "cost_check"]
    assert by.loc["liar", "status"] == "infeasible" and pd.isna(by.loc["liar", "cost"])
    assert "violates running range at dear" in by.loc["liar", "reason"]
    assert by.loc["liar", "max_violation"] == pytest.approx(10.0)
    assert by.loc["shy", "status"] == "feasible" and by.loc["shy", "cost"] == 120.0
    assert by.loc["greedy", "cost"] == 130.0 and "stored cost 1.0, evaluator 130.0" in by.loc["greedy", "cost_check"]
    warning = [n for n in scored.notes if n.startswith("WARNING: 4 stored result(s) disagree")]
    assert warning and "rows.jsonl line 2" in warning[0]
    table = make_tables([out], "exactA").tables[0].table.set_index("method")
    assert table.loc["greedy", "cost"] == 130.0 and table.loc["liar", "infeasible"] == 1


def test_inputs_missing_or_changed_since_the_run_are_refused_by_table_too(tmp_path, hand):
    out = write_run(tmp_path / "run", [hand.row("exactA", "tableIV", 0, 0.0, "optimal", exact=True)])
    iv = hand.states["iv.csv"][0]
    iv.write_text(iv.read_text().replace("100.0", "101.0"))
    with pytest.raises(InputError, match="states file .*iv.csv: changed since the run"):
        make_tables([out], "exactA")
    iv.unlink()
    with pytest.raises(InputError, match="states file .*iv.csv: named by the results but not found"):
        make_tables([out], "exactA")


def test_a_dispatch_that_does_not_fit_the_problem_is_refused(run):
    rows = lines(run)
    del rows[0]["dispatch"]["dispatch"]["FDC1"]
    rewrite(run, rows)
    with pytest.raises(InputError, match="line 1: its dispatch does not fit problem 'paper-4region'"):
        load_results(run)
    rows[0]["dispatch"] = {"dispatch": {g: {"on": "yes", "power": 1.0} for g in lines(run)[1]["dispatch"]["dispatch"]}}
    rows[0]["dispatch"]["imports"] = lines(run)[1]["dispatch"]["imports"]
    rewrite(run, rows)
    with pytest.raises(InputError, match="line 1: its dispatch does not fit .*'on' value is not true or false"):
        load_results(run)


def _legacy(out: Path) -> list[dict]:
    """The folder as a dispatchbench from before manifests left it: schema 2, no manifest."""
    (out / MANIFEST_FILE).unlink()
    rows = [dict(r, schema_version=2) for r in lines(out)]
    rewrite(out, rows)
    return rows


def test_a_folder_from_before_manifests_is_read_with_a_note_then_adopted(run):
    rows = _legacy(run)
    scored = rescore_folders([run])
    assert len(scored.frame) == 6 and (scored.frame["cost_check"] == "ok").all()
    assert any("6 rows written before run manifests" in n for n in scored.notes)

    bad = dict(rows[0], state="<script>alert(1)</script>&x")  # no plan to check: the state file decides
    rewrite(run, rows + [bad])
    with pytest.raises(InputError, match="line 7: names state '<script>alert\\(1\\)</script>&x' at index 0"):
        load_results(run)

    rewrite(run, rows[:-1])  # a resume of the old folder (one state left to run) adopts its rows
    run_benchmark(PROBLEM, [TABLE_IV, _two_states(rows)], "scip,nlopt", [0], run, resume=True, progress=False)
    records = [json.loads(line) for line in (run / MANIFEST_FILE).read_text().splitlines()]
    assert [r["kind"] for r in records] == ["legacy", "run"] and records[0]["lines"] == 5
    now = lines(run)
    assert len(load_results(run)) == 6 and now[-1]["schema_version"] == 3
    rewrite(run, now + [dict(rows[0], seed=3)])  # an old-looking row appended after adoption: refused
    with pytest.raises(InputError, match="line 7: belongs to run"):
        load_results(run)
    rewrite(run, [dict(now[0], time_s=0.001), *now[1:]])  # an adopted line edited: refused
    with pytest.raises(InputError, match="line 1: the 5 rows adopted from before manifests changed since"):
        load_results(run)


def test_read_results_gives_plain_values_from_parquet_as_from_the_log(run):
    from_log = read_results(run).rows
    (run / "rows.jsonl").unlink()
    from_parquet = read_results(run).rows
    assert [r["dispatch"] for r in from_log] == [r["dispatch"] for r in from_parquet]
    assert [r["seed"] for r in from_parquet] == [0] * 6 and all(type(r["exact"]) is bool for r in from_parquet)


def test_evaluate_many_is_evaluate_row_by_row(paper):
    """The batch and the single call are one code path; their verdicts agree on random
    dispatches at repeated states, and a non-finite row has no verdict."""
    from dispatchbench.model.state_file import load_states

    states = load_states(ROOT / "problems" / "paper-4region-day.csv", paper)
    rng = np.random.default_rng(7)
    n = 300
    power = rng.uniform(0, 1.2, (n, len(paper.groups))) * paper.p_max
    on = rng.random((n, len(paper.groups))) > 0.3
    imports = rng.normal(0, 40, (n, len(paper.regions)))
    picked = [states[i] for i in rng.integers(0, len(states), n)]
    power[5, 2] = np.nan
    batch = evaluate_many(paper, picked, on, power, imports)
    assert not batch.finite[5] and not batch.feasible[5]
    with pytest.raises(ValueError, match="NaN"):
        batch.one(5)
    for i in [i for i in range(n) if i != 5]:
        one = evaluate(paper, picked[i], Dispatch(on[i], power[i], imports[i]))
        assert one.cost == pytest.approx(batch.cost[i], rel=1e-12)
        assert one.violations == pytest.approx({k: v[i] for k, v in batch.violations.items()}, rel=1e-12, abs=1e-12)
        assert one.worst == batch.worst(i) and one.feasible == batch.feasible[i]


# ---- the report's options and strings -----------------------------------------------------------------


def test_report_with_an_unknown_baseline_lists_the_methods_and_writes_nothing(run, tmp_path, monkeypatch, capsys):
    with pytest.raises(InputError, match="--baseline: 'pso': is not a solver in the results .*use one of: scip, nlopt"):
        build_report(run, out_root=tmp_path / "reports", name="x", baseline="pso")
    assert not (tmp_path / "reports").exists()
    code, _, err = cli(monkeypatch, capsys, "report", str(run), "--reports", str(tmp_path / "r2"), "--baseline", "x")
    one_line_error(code, err, "--baseline", "scip, nlopt")
    assert not (tmp_path / "r2").exists()
    made = build_report(run, out_root=tmp_path / "reports", name="x", baseline="NLopt SLSQP")  # a label works too
    assert "vs NLopt SLSQP" in made.markdown.read_text()


def test_report_shows_html_in_specs_and_reasons_escaped(tmp_path, hand):
    payload = "<script>alert(1)</script> & co"
    rows = [
        hand.row("exactA", "tableIV", 0, 0.0, "optimal", exact=True),
        *[hand.row("exactA", f"t{i}", 0, 0.0, "optimal", exact=True, file="day.csv") for i in range(4)],
        hand.row(payload, "tableIV", 0, None, "error"),  # a spec no spec syntax reads
        hand.row("heur[note=<b>&amp;</b>]", "tableIV", 0, 5.0),
        *[hand.row("heur[note=<b>&amp;</b>]", f"t{i}", 0, 1.0, file="day.csv") for i in range(4)],
    ]
    rows[5]["reason"] = f"plugin said {payload}"
    out = write_run(tmp_path / "run", rows)
    made = build_report(out, out_root=tmp_path / "reports", name="html")
    page = made.html.read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<b>" not in page and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page
    md = made.markdown.read_text()
    assert "<script" not in md and "<b>" not in md
