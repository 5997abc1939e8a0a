"""``reproduce paper --quick`` end to end, the model cache, and failure isolation in the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dispatchbench.bench.harness import spec_label
from dispatchbench.bench.model_cache import ModelCache, model_key
from dispatchbench.bench.plugins import discover, make_solver
from dispatchbench.bench.results_store import load_results
from dispatchbench.report.reproduce import QUICK, Outcome, reproduce, run_shootout

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"


def test_quick_reproduction_end_to_end_then_cached(tmp_path):
    out, cache, reports = tmp_path / "run", tmp_path / "cache", tmp_path / "reports"
    first = reproduce("paper", out, quick=True, cache_root=cache, report_root=reports, progress=False)

    saved = json.loads((out / "reproduce.json").read_text())
    assert set(saved["wall_s"]) >= {"train", "run", "report", "total"} and saved["quick"] is True
    rows = load_results(out)
    available = discover()
    label = lambda s: spec_label(s, make_solver(s).params)  # noqa: E731  (as the harness writes specs)
    expected = {label(s) for s in QUICK.classical} | ({label(QUICK.pso)} if "pso" in available else set())
    ran = set(rows["solver"])
    assert expected <= ran
    failed = {f["method"] for f in first.failures}
    for spec in QUICK.learned:  # a learner is either run, or recorded with the reason it could not be
        assert any(s.startswith(f"{spec}[") for s in ran) or spec in failed
    if "pso" not in available:
        assert any(f["method"] == QUICK.pso and "not installed" in f["reason"] for f in first.failures)
    tableiv = rows[(rows["state"] == "tableIV") & (rows["solver"] == "scip")]
    assert tableiv["cost"].astype(float).iloc[0] == pytest.approx(4903.9687, rel=1e-6)
    assert rows["states_count"].max() == 96
    assert first.report and first.report.is_file() and (first.report.parent / "report.md").is_file()

    # the protocol's unseen test states: written into the folder, run by every method, reported
    test_file = out / "test-states-seed2000.csv"
    labels = list(pd.read_csv(test_file)["state"])
    assert len(labels) == 5 * 96 // QUICK.test_stride + QUICK.test_random_count == saved["test_states"]["states"]
    assert labels[0] == "base_load_d0_t00" and labels[-1] == f"random_{QUICK.test_random_count - 1}"
    assert saved["test_states"]["seed"] == 2000 and saved["test_states"]["split"] == "test"
    on_test = rows[rows["states_file"].str.endswith(test_file.name)]
    assert set(on_test["solver"]) == ran and len(on_test) == len(rows[rows["state"] == "tableIV"]) * len(labels)
    md = (first.report.parent / "report.md").read_text()
    assert "## Unseen test days (protocol test seeds)" in md and "test seed 2000" in md
    assert "Table V — average cost per hour over a day (96 states of paper-4region-day.csv)" in md

    # second run: every model from the cache, nothing trained; shoot-out rows kept with --resume
    second = reproduce("paper", out, quick=True, cache_root=cache, report_root=reports, resume=True, progress=False)
    assert second.models and all(m["cached"] for m in second.models)
    assert len(second.models) == len([m for m in first.models])
    assert second.rows == first.rows


def test_model_cache_key_and_hit(tmp_path):
    spec = "maddpg[batch_size=32,learning_starts=20,log_every=10]"
    key = model_key(PROBLEM, spec, seed=0, steps=30)
    assert key != model_key(PROBLEM, spec, seed=1, steps=30)
    assert key.digest != model_key(PROBLEM, spec, seed=0, steps=31).digest
    assert key.digest != model_key(PROBLEM, "maddpg[batch_size=64,learning_starts=20,log_every=10]", 0, 30).digest
    changed = tmp_path / "p.toml"
    changed.write_text(PROBLEM.read_text() + "\n# same problem, other bytes\n")
    assert key.digest != model_key(changed, spec, seed=0, steps=30).digest

    cache = ModelCache(tmp_path / "cache")
    assert cache.lookup(key) is None
    trained = cache.train(PROBLEM, spec, seed=0, steps=30)
    assert not trained.hit and (trained.path / "model.json").is_file() and (trained.path / "loss.csv").is_file()
    stamp = (trained.path / "checkpoint.pt").stat().st_mtime_ns
    again = cache.train(PROBLEM, spec, seed=0, steps=30)
    assert again.hit and again.path == trained.path
    assert (trained.path / "checkpoint.pt").stat().st_mtime_ns == stamp  # not retrained
    assert again.spec(spec) == f"maddpg[batch_size=32,learning_starts=20,log_every=10,model={trained.path}]"


def test_a_failing_method_is_recorded_and_the_rest_runs(tmp_path):
    out = tmp_path / "run"
    outcome = Outcome(out, True, QUICK)
    run_shootout(
        PROBLEM,
        [TABLE_IV],
        ["nosuch", "scip[bogus=1]", "scip"],
        {},
        out,
        QUICK,
        outcome,
        resume=False,
        progress=False,
        jobs=2,
        executor="local",
        scheduler=None,
    )
    assert [f["method"] for f in outcome.failures] == ["nosuch", "scip[bogus=1]"]
    assert "no solver named" in outcome.failures[0]["reason"] and "no parameter" in outcome.failures[1]["reason"]
    rows = pd.read_parquet(out / "results.parquet")
    assert list(rows["solver"]) == ["scip"] and list(rows["status"]) == ["optimal"]
