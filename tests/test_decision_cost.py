"""The decision-time and training-cost columns (issue 18, items 1 and 3): online time and its
ratio to SCIP in the same rows, batched time labelled offline, training cost as the model
records it (— when it does not), and break-even by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from dispatchbench.report import decision_cost as dc


def rows(
    spec: str, name: str, params: dict, times: list[float], info: dict | None = None, status: str | None = None
) -> pd.DataFrame:
    exact = name == "scip"  # the plugin's capability, as results rows carry it
    return pd.DataFrame(
        {
            "solver": spec,
            "solver_name": name,
            "params": json.dumps(params),
            "time_s": times,
            "reason": "",
            "info": json.dumps(info or {}),
            "exact": exact,
            "status": status or ("optimal" if exact else "feasible"),
        }
    )


def test_break_even_by_hand():
    # 100 s of training, 0.01 s per decision against SCIP's 0.06 s: 0.05 s saved per decision,
    # so after 2,000 decisions the sum is equal and the 2,001st is the first where it is below
    assert dc.break_even(100.0, 0.01, 0.06) == 2001
    n = dc.break_even(100.0, 0.01, 0.06)
    assert 100.0 + n * 0.01 < n * 0.06 and not 100.0 + (n - 1) * 0.01 < (n - 1) * 0.06
    assert dc.break_even(100.0, 0.07, 0.06) == math.inf and dc.break_even_text(math.inf) == "never"
    assert dc.break_even(100.0, 0.06, 0.06) == math.inf  # not faster: never pays back
    assert math.isnan(dc.break_even(None, 0.01, 0.06)) and dc.break_even_text(math.nan) == "—"
    assert math.isnan(dc.break_even(100.0, 0.01, math.nan))  # no SCIP in the run: unknown, not never
    assert dc.break_even_text(dc.break_even(0.0, 0.01, 0.06)) == "1"
    assert dc.break_even_text(123456.0) == "123,456"


def test_the_reference_is_the_exact_spec_that_certified_most_by_capability_not_name():
    """Budgeted or practical-gap runs of the exact plugin certify fewer states (or tie, and then
    the unbudgeted spec, the shorter one, wins); an exact third-party plugin is found the same way."""
    full = rows("scip", "scip", {}, [0.05, 0.06, 0.07])
    budget = rows("scip[time_limit=0.01]", "scip", {"time_limit": 0.01}, [0.01] * 3)
    budget.loc[1:, "status"] = "feasible"
    tied = rows("scip[rel_gap=0.0001]", "scip", {"rel_gap": 1e-4}, [0.04] * 3)
    frame = pd.concat([budget, tied, full], ignore_index=True)
    assert dc.reference_mask(frame).tolist() == [False] * 6 + [True] * 3
    other = rows("my_milp", "my_milp", {}, [0.2] * 3).assign(exact=True, status="optimal")
    assert dc.reference_mask(other).all()
    heuristic = rows("pso", "pso", {}, [0.1] * 3)
    assert not dc.reference_mask(heuristic).any() and not dc.reference_mask(heuristic.iloc[:0]).any()


def test_online_ratio_and_offline_columns_from_rows():
    scip = rows("scip", "scip", {"rel_gap": 1e-9, "time_limit": 60.0}, [0.05, 0.06, 0.07])
    budget = rows("scip[time_limit=0.01]", "scip", {"rel_gap": 1e-9, "time_limit": 0.01}, [0.02, 0.02, 0.02])
    tvc = rows("madrl_tvc", "madrl_tvc", {}, [0.01, 0.012, 0.02], {"decision_s_batched": 0.0003})
    frame = pd.concat([scip, budget, tvc], ignore_index=True)
    mask = dc.reference_mask(frame)
    assert mask.tolist() == [True] * 3 + [False] * 6
    reference = dc.online_seconds(frame[mask])
    assert reference == pytest.approx(0.06)  # the median, one state per call
    line = dc.decision_columns(tvc, reference, [{"train_time_s": 120.0, "env_steps": 12000}], learned=True)
    assert line[dc.ONLINE] == pytest.approx(0.012) and line[dc.RATIO] == pytest.approx(5.0)
    assert line[dc.OFFLINE] == pytest.approx(0.0003)
    assert line["training s"] == 120.0 and line["env steps"] == 12000.0
    assert line["true-cost evaluations"] is None and line["training kind"] is None  # not recorded: absent
    assert line[dc.BREAK_EVEN] == f"{dc.break_even(120.0, 0.012, 0.06):,}"
    classical = dc.decision_columns(budget, reference)
    assert classical[dc.RATIO] == pytest.approx(3.0) and math.isnan(classical[dc.OFFLINE])
    assert classical[dc.BREAK_EVEN] == "—" and classical["training s"] is None
    shown = dc.shown(pd.DataFrame([line, classical]))
    assert shown.loc[1, dc.OFFLINE] == "—" and shown.loc[0, "true-cost evaluations"] == "—"


def test_training_cost_reads_whatever_the_models_record():
    models = [
        {
            "train_time_s": 100.0,
            "true_cost_evaluations": 5000,
            "parameter_sharing": "none",
            "training_kind": "distributed",
        },
        {
            "train_time_s": 140,
            "true_cost_evaluations": 7000,
            "parameter_sharing": "none",
            "training_kind": "distributed",
        },
        {"hyperparameters": {}},  # an older model without the counts
    ]
    cost = dc.training_cost(models)
    assert cost["training s"] == 120.0 and cost["true-cost evaluations"] == 6000.0
    assert cost["parameter sharing"] == "none" and cost["training kind"] == "distributed"
    assert cost["training messages"] is None and cost["env steps"] is None
    assert dc.training_cost([{"train_time_s": "slow"}])["training s"] == "slow"  # shown as written, never summed
    assert math.isnan(dc.break_even("slow", 0.01, 0.06))
    assert dc.training_cost([{"steps": 300}, {"steps": 100, "train_steps": 200}])["training steps"] == 250.0
