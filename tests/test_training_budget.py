"""Training budgets and training sets (``dispatchbench.contract.training``): one meaning of "15
minutes" or "1,500 steps" for every learner, and the command line's --budget / --generated."""

from __future__ import annotations

import subprocess

import pytest

from dispatchbench.contract.training import TrainingBudget, TrainingSet, parse_duration
from dispatchbench.learn import lifecycle


@pytest.mark.parametrize(
    "text, seconds", [("15m", 900.0), ("900s", 900.0), ("1h", 3600.0), ("90", 90.0), ("1.5m", 90.0), (" 2min ", 120.0)]
)
def test_durations_read_minutes_seconds_and_hours(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "m", "-5m", "0s", "1d", "fast"])
def test_a_duration_that_is_not_one_says_how_to_write_one(text):
    with pytest.raises(ValueError, match="e.g. 15m"):
        parse_duration(text)


def test_a_budget_stops_at_its_steps_or_before_a_step_that_would_overrun_its_time():
    steps = TrainingBudget(steps=10)
    assert not steps.exhausted(9, 1e9) and steps.exhausted(10, 0.0)
    timed = TrainingBudget(seconds=60.0)
    assert not timed.exhausted(1000, 50.0) and timed.exhausted(3, 61.0)
    assert timed.exhausted(3, 50.0, next_step_s=11.0) and not timed.exhausted(3, 50.0, next_step_s=9.0)
    both = TrainingBudget(steps=5, seconds=60.0)
    assert both.exhausted(5, 1.0) and both.exhausted(2, 60.5)
    assert both.describe() == "5 steps or 60 s, whichever comes first"
    assert lifecycle.TrainingBudget is TrainingBudget  # learners read it where their lifecycle lives


def test_a_budget_needs_a_limit_and_a_fit_call_may_not_contradict_it():
    with pytest.raises(ValueError, match="needs steps, seconds or both"):
        TrainingBudget()
    with pytest.raises(ValueError, match="at least 1"):
        TrainingBudget(steps=0)
    assert TrainingBudget.of(7, None) == TrainingBudget(steps=7)
    assert TrainingBudget.of(None, TrainingBudget(seconds=5.0)) == TrainingBudget(seconds=5.0)
    assert TrainingBudget.of(7, TrainingBudget(seconds=5.0)) == TrainingBudget(steps=7, seconds=5.0)
    with pytest.raises(ValueError, match="contradicts"):
        TrainingBudget.of(7, TrainingBudget(steps=8))


def test_a_training_set_is_sizes_of_generated_instances():
    assert TrainingSet.parse("4,8,16,32").sizes == (4, 8, 16, 32)
    for bad in ("", "4,x", "0", "600", "4,,1000"):
        with pytest.raises(ValueError, match="--generated"):
            TrainingSet.parse(bad)


def _train(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["dispatchbench", "train", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solver", "madrl_tvc", "--out", "m"], "either --problem FILE"),
        (["-p", "paper-4region.toml", "--generated", "4", "--solver", "madrl_tvc", "--out", "m"], "either --problem"),
        (["-p", "paper-4region.toml", "--solver", "madrl_tvc", "--out", "m", "--budget", "soon"], "not a duration"),
        (["--generated", "4,x", "--solver", "madrl_tvc", "--out", "m"], "not a list of sizes"),
        (["--generated", "4", "--solver", "scip", "--out", "m"], "does not learn"),
        # a model for any size needs networks shared per type: per-agent networks are refused, both learners
        (["--generated", "4", "--solver", "madrl_tvc[share=agent]", "--steps", "1", "--out", "m"], "share=type"),
        (["--generated", "4", "--solver", "maddpg[sharing=agent]", "--steps", "1", "--out", "m"], "sharing=type"),
    ],
)
def test_train_refuses_bad_budgets_and_sources_in_one_line(args, message, tmp_path):
    done = _train(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:")
    assert message in done.stderr, done.stderr
    assert not (tmp_path / "m" / "checkpoint.pt").exists()
