"""The scaling study's code path on a tiny budget: generated instances, a trained learner, the
harness, the analysis and the report (the full study lives behind ``reproduce scaling``)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

import dispatchbench.report.scaling as scaling


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scaling")
    tiny = dataclasses.replace(
        scaling.QUICK,
        sizes=(2, 3),
        intervals=(40,),
        classical=(scaling.SCIP_CERTIFIED, scaling.SCIP_PRACTICAL, "pso[iterations=5,particles=5]"),
        learned={"maddpg": {2: 30}},
        skip_reason={"maddpg": "tiny test budget: smallest size only"},
        timeout_s=60.0,
    )
    original = scaling.QUICK
    scaling.QUICK = tiny
    try:
        scaling.reproduce_scaling(
            root / "run",
            quick=True,
            cache_root=root / "cache",
            report_root=root / "reports",
            report_name="tiny",
            progress=False,
            workers=1,
            say=lambda _: None,
        )
    finally:
        scaling.QUICK = original
    return root / "run", root / "reports" / "tiny"


def test_every_size_and_method_is_summarised(study: tuple[Path, Path]) -> None:
    _, report = study
    summary = pd.read_csv(report / scaling.SUMMARY_FILE)
    assert set(summary["regions"]) == {2, 3}
    at_2 = set(summary.loc[summary["regions"] == 2, "method"])
    assert {"SCIP (gap 1e-9)", "SCIP (gap 1e-4)", "PSO", "MADDPG"} <= at_2
    assert "MADDPG" not in set(summary.loc[summary["regions"] == 3, "method"])  # skipped there, with the reason
    certified = summary[summary["method"] == "SCIP (gap 1e-9)"]
    assert (certified["mean gap %"].abs() < 1e-9).all()
    learned = summary[summary["method"] == "MADDPG"].iloc[0]
    assert learned["training s"] > 0 and learned["messages per decision"] > 0
    assert all(g >= -1e-6 for g in summary["mean gap %"] if not math.isnan(g))  # nobody beats SCIP's best


def test_the_report_states_skips_and_budget(study: tuple[Path, Path]) -> None:
    _, report = study
    text = (report / "report.md").read_text()
    assert "tiny test budget: smallest size only" in text
    assert (report / "fig_scaling_gap.png").stat().st_size > 0 and (report / "fig_scaling_time.png").exists()
    assert "<script" not in (report / "report.html").read_text().lower()


def test_generated_inputs_are_the_protocols_test_states(study: tuple[Path, Path]) -> None:
    run, _ = study
    states = (run / "instances" / "generated-2r-test.csv").read_text().splitlines()
    labels = [line.split(",")[0] for line in states[1:]]
    assert labels and all(label.endswith("_t40") for label in labels)
    assert len({label.split("_d")[0] for label in labels}) == len(labels)  # one per family
