"""Tables IV and V on a small hand-built results set: every number checked by hand.

The rows are real dispatches of a tiny problem (``hand_results``): the tables read only the
evaluator's verdict on each stored dispatch, so a row's cost is set through its dispatch.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hand_results import HandResults, write_run
from typer.testing import CliRunner

from dispatchbench.bench.results_store import ResultsStore
from dispatchbench.cli import app
from dispatchbench.model.errors import InputError
from dispatchbench.report.tables import make_tables, mean_ci95

T_975_2DF = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (printed tables)


@pytest.fixture
def hand(tmp_path) -> HandResults:
    return HandResults(tmp_path / "inputs")


def table_iv_rows(hand: HandResults) -> list[dict]:
    """At demand 100: exact 100, pso 110 / 120 / 130 over three seeds, local infeasible."""
    return [
        hand.row("exactA", "tableIV", 0, 0.0, "optimal", exact=True, time_s=0.2),
        hand.row("pso[particles=40]", "tableIV", 0, 10.0, stochastic=True, time_s=1.0),
        hand.row("pso[particles=40]", "tableIV", 1, 20.0, stochastic=True, time_s=2.0),
        hand.row("pso[particles=40]", "tableIV", 2, 30.0, stochastic=True, time_s=3.0),
        hand.row("local", "tableIV", 0, None, "infeasible"),
    ]


def day_rows(hand: HandResults) -> list[dict]:
    """Demands 10..40: exact 10, 20, 30, 40; pso seed s 12+s, 22+s, ...; local 15, 25, 35, then a timeout."""
    day = dict(file="day.csv")
    rows = [hand.row("exactA", f"t{i}", 0, 0.0, "optimal", exact=True, **day) for i in range(4)]
    rows += [
        hand.row("pso[particles=40]", f"t{i}", s, 2.0 + s, stochastic=True, **day) for s in (0, 1, 2) for i in range(4)
    ]
    rows += [hand.row("local", f"t{i}", 0, 5.0, **day) for i in range(3)]
    rows += [hand.row("local", "t3", 0, None, "timeout", **day)]
    return rows


@pytest.fixture
def results_dir(tmp_path, hand):
    return write_run(tmp_path / "run", table_iv_rows(hand) + day_rows(hand))


def by_method(table: pd.DataFrame) -> dict[str, pd.Series]:
    return {r["method"]: r for _, r in table.iterrows()}


def test_mean_and_ci_by_hand():
    mean, half = mean_ci95([110.0, 120.0, 130.0])
    assert mean == pytest.approx(120.0)
    assert half == pytest.approx(T_975_2DF * 10.0 / math.sqrt(3))  # sd 10, n 3
    assert math.isnan(mean_ci95([5.0])[1])


def test_table_iv_improvement_gap_ci(results_dir):
    written = make_tables([results_dir], "pso")
    iv = by_method(written.tables[0].table)
    assert written.tables[0].number == "IV"
    pso, exact, local = iv["pso[particles=40]"], iv["exactA"], iv["local"]
    assert pso["cost"] == pytest.approx(120.0)
    assert pso["ci95"] == pytest.approx(24.8414, rel=1e-4)
    assert (pso["best"], pso["worst"], pso["seeds"]) == (110.0, 130.0, 3)
    assert exact["improvement"] == pytest.approx((120.0 - 100.0) / 120.0)
    assert pso["improvement"] == 0.0
    assert pso["gap_to_exact"] == pytest.approx(0.2)
    assert exact["gap_to_exact"] == 0.0
    assert pso["time_per_state_s"] == pytest.approx(2.0)
    assert math.isnan(local["cost"]) and local["infeasible"] == 1
    assert exact["type"] == "exact" and pso["type"] == "stochastic" and local["type"] == "deterministic"


def test_table_v_average_per_hour_and_failed_day(results_dir):
    v = by_method(make_tables([results_dir], "pso").tables[1].table)
    # exact: mean(10, 20, 30, 40) * 4 = 100 (= sum / 24 scaled to a 4-state file: sum * 4 / 4)
    assert v["exactA"]["cost"] == pytest.approx(100.0)
    # pso seed s: mean(12..42) + s = 27 + s -> 108, 112, 116 per hour; mean 112
    assert v["pso[particles=40]"]["cost"] == pytest.approx(112.0)
    assert v["pso[particles=40]"]["ci95"] == pytest.approx(T_975_2DF * 4.0 / math.sqrt(3))
    assert v["exactA"]["improvement"] == pytest.approx((112.0 - 100.0) / 112.0)
    # a method that timed out on one state has no day value, whatever its other states cost
    assert math.isnan(v["local"]["cost"]) and v["local"]["timeout"] == 1
    assert math.isnan(v["local"]["improvement"])


def test_missing_seed_of_the_day_is_not_averaged_over(tmp_path, hand):
    rows = [hand.row("exactA", f"t{i}", 0, 0.0, "optimal", exact=True, file="day3.csv") for i in range(3)]
    rows += [hand.row("pso", f"t{i}", 0, 2.0, stochastic=True, file="day3.csv") for i in range(3)]
    rows += [hand.row("pso", f"t{i}", 1, 2.0, stochastic=True, file="day3.csv") for i in range(2)]
    write_run(tmp_path / "run", rows)  # seed 1 of pso lacks state t2 (an interrupted run that was not resumed)
    v = by_method(make_tables([tmp_path / "run"], "exactA").tables[0].table)
    assert math.isnan(v["pso"]["cost"]) and v["pso"]["missing"] == 1
    assert "n/a (1 missing)" in (tmp_path / "run" / "tables" / "table5.md").read_text()


def test_files_markdown_and_paper_note(results_dir):
    written = make_tables([results_dir], "pso")
    names = sorted(p.name for p in written.files)
    assert names == ["table4.csv", "table4.md", "table5.csv", "table5.md"]
    md4 = (results_dir / "tables" / "table4.md").read_text()
    assert "120.00 ± 24.84" in md4 and "+16.667 %" in md4 and "n/a (1 infeasible)" in md4
    # a hand-made problem, not the paper's: the paper's own numbers are not quoted beside it (issue 22)
    assert "12,201.77" not in md4 and "paper's own" not in md4
    md5 = (results_dir / "tables" / "table5.md").read_text()
    assert "52,102.92" not in md5 and "n/a (1 timeout)" in md5
    assert all(not pt.paper_problem for pt in written.tables)
    csv = pd.read_csv(results_dir / "tables" / "table4.csv")
    assert list(csv["method"]) == ["exactA", "pso[particles=40]", "local"]


def test_solver_filter_and_baseline_errors(results_dir):
    written = make_tables([results_dir], "exactA", solvers="exactA,pso")
    assert set(written.tables[0].table["method"]) == {"exactA", "pso[particles=40]"}
    with pytest.raises(InputError, match="--baseline"):
        make_tables([results_dir], "nosuch")
    with pytest.raises(InputError, match="--state"):
        make_tables([results_dir], "pso", state="nosuch")
    with pytest.raises(InputError, match="--solvers"):
        make_tables([results_dir], "pso", solvers="nosuch")


def test_two_directories_combine(tmp_path, hand):
    write_run(tmp_path / "iv", table_iv_rows(hand))
    write_run(tmp_path / "day", day_rows(hand))
    written = make_tables([tmp_path / "iv", tmp_path / "day"], "pso", out_dir=tmp_path / "both")
    assert [t.number for t in written.tables] == ["IV", "V"]
    assert (tmp_path / "both" / "table5.csv").is_file()


def test_table_cli_prints_and_writes(results_dir):
    result = CliRunner().invoke(app, ["table", str(results_dir), "--baseline", "pso"])
    assert result.exit_code == 0, result.output
    assert "Table IV" in result.output and "Table V" in result.output
    assert (results_dir / "tables" / "table5.md").is_file()


def test_table_rescores_stored_costs_and_warns_on_a_mismatch(tmp_path):
    """A results folder whose stored cost was edited (or written by a plugin that lied) is tabled
    with the evaluator's cost, and the mismatch is reported loudly."""
    import json
    from pathlib import Path

    from dispatchbench.bench.harness import run_benchmark

    root = Path(__file__).resolve().parent.parent / "problems"
    out = tmp_path / "run"
    run_benchmark(root / "paper-4region.toml", [root / "paper-4region-tableIV.csv"], "scip", [0], out, progress=False)
    honest = make_tables([out], "scip")
    assert not [n for n in honest.notes if "WARNING" in n or "could not" in n]

    store = ResultsStore(out)
    rows = store.read_rows()
    rows[0]["cost"] = 1.0  # as if the plugin had scored itself
    store.rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tampered = make_tables([out], "scip")
    assert any(n.startswith("WARNING") and "stored cost 1.0" in n for n in tampered.notes)
    cost = by_method(tampered.tables[0].table)["scip"]["cost"]
    assert cost == pytest.approx(4903.9687, rel=1e-6)

    runner = CliRunner()
    result = runner.invoke(app, ["table", str(out), "--baseline", "scip"])
    assert result.exit_code == 0 and "WARNING" in result.output


def test_rows_carry_the_schema_version(results_dir):
    from dispatchbench.bench.results_store import SCHEMA_VERSION, load_results

    assert set(load_results(results_dir)["schema_version"]) == {SCHEMA_VERSION}


def test_state_family_reads_generated_labels_only():
    from dispatchbench.report.tables import state_family

    assert state_family("skewed_d0_t32") == "skewed" and state_family("cs_binding_d3_t95") == "cs_binding"
    assert state_family("random_17") == "random"
    assert state_family("tableIV") is None and state_family("nosuch_d0_t01") is None
    assert state_family("random_x") is None and state_family("t3") is None


def test_family_gaps_by_hand():
    """Gap to SCIP per family: mean over seeds of each seed's mean gap, worst over every seed,
    a state SCIP did not solve left out for all and counted, failures counted, not hidden."""
    from dispatchbench.report.tables import family_gaps

    def r(solver: str, state: str, seed: int, cost: float | None, status: str = "feasible") -> dict:
        return {"solver": solver, "seed": seed, "state": state, "status": status, "cost": cost}

    t00, t04 = "base_load_d0_t00", "base_load_d0_t04"
    frame = pd.DataFrame(
        [
            r("scip", t00, 0, 100.0, "optimal"),
            r("scip", t04, 0, 200.0, "optimal"),
            r("scip", "random_0", 0, 50.0, "optimal"),
            r("scip", "random_1", 0, None, "timeout"),
            r("scip", "tableIV", 0, 10.0, "optimal"),  # a reported case: not a generated state
            r("pso", t00, 0, 110.0),
            r("pso", t04, 0, 220.0),
            r("pso", t00, 1, 100.0),
            r("pso", t04, 1, None, "timeout"),
            r("pso", "random_0", 0, 55.0),
            r("pso", "random_0", 1, 60.0),
            r("pso", "random_1", 0, 1.0),
            r("pso", "tableIV", 0, 999.0),
            # tvc: evaluator found no cost for a "feasible" answer at t00, and no row at all for t04
            r("tvc", t00, 0, None),
            r("tvc", "random_0", 0, 50.0),
        ]
    )
    got = family_gaps(frame, "scip")
    assert set(got["method"]) == {"pso", "tvc"}
    assert list(got.loc[got["method"] == "pso", "family"]) == ["base_load", "random", "all"]
    line = {(m, f): row for m, f, row in zip(got["method"], got["family"], got.to_dict("records"))}

    pso = line[("pso", "base_load")]  # seed 0: (0.1 + 0.1) / 2; seed 1: 0 (t04 timed out)
    assert pso["mean_gap"] == pytest.approx(0.05) and pso["worst_gap"] == pytest.approx(0.1)
    assert (pso["seeds"], pso["states"], pso["excluded"], pso["solved"], pso["timeout"], pso["missing"]) == (
        2,
        2,
        0,
        3,
        1,
        0,
    )
    pso = line[("pso", "random")]  # random_1 has no SCIP cost: out for everyone, and counted
    assert pso["mean_gap"] == pytest.approx(0.15) and pso["worst_gap"] == pytest.approx(0.2)
    assert (pso["states"], pso["excluded"], pso["solved"]) == (1, 1, 2)
    pso = line[("pso", "all")]  # seed 0: 0.1, 0.1, 0.1; seed 1: 0, 0.2
    assert pso["mean_gap"] == pytest.approx(0.1) and pso["worst_gap"] == pytest.approx(0.2)
    assert (pso["states"], pso["excluded"], pso["timeout"]) == (3, 1, 1)

    tvc = line[("tvc", "base_load")]
    assert math.isnan(tvc["mean_gap"]) and math.isnan(tvc["worst_gap"])
    assert (tvc["infeasible"], tvc["missing"], tvc["solved"]) == (1, 1, 0)
    tvc = line[("tvc", "random")]
    assert tvc["mean_gap"] == 0.0 and tvc["worst_gap"] == 0.0


def test_a_set_of_generated_test_states_is_not_taken_for_the_day(tmp_path, hand):
    """reproduce's test states (several families in one file) sit beside the day: Table V
    still averages over the day, without --day."""
    labels = ("base_load_d0_t00", "skewed_d0_t00", "random_0", "random_1", "random_2")
    tests = [hand.row("exactA", s, 0, 0.0, "optimal", exact=True, file="test-states.csv") for s in labels]
    write_run(tmp_path / "run", day_rows(hand) + tests)
    v = make_tables([tmp_path / "run"], "exactA").tables[-1]
    assert v.number == "V" and "day.csv" in v.scope
