"""MADRL-TVC reproduces its saved reference bit for bit: the same training gives the same networks
and training state, and the trained model decides the saved states exactly as before (on/off,
power, imports, messages and clearings), with and without the decision-time search.

The reference (``tests/data/tvc_reference.json``) is written by ``tests/tvc_reference.py`` (first
with the code before MADRL-TVC was split into ``dispatchbench/learn/tvc/``; regenerated when the
method became one policy per type for any size); any change to what the learner computes shows
here. A change that is *meant* to change the numbers regenerates it (and
says so in its commit)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tvc_reference import CASES, INFO_FIELDS, REFERENCE, REFINES, environment, run_case, state_from_json

SAVED = json.loads(REFERENCE.read_text())


def _same_libraries() -> str | None:
    here, there = environment(), SAVED["environment"]
    keys = ("torch", "numpy", "cpu_capability")
    differ = [f"{k} {there.get(k)} (saved) vs {here[k]}" for k in keys if here[k] != there.get(k)]
    return ", ".join(differ) or None


@pytest.mark.skipif(_same_libraries() is not None, reason=f"other libraries or CPU: {_same_libraries()}")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_training_and_decisions_match_the_saved_reference(case, tmp_path):
    saved = SAVED["cases"][case.name]
    assert (saved["spec"], saved["seed"], saved["steps"]) == (case.spec, case.seed, case.steps)
    torch.set_num_threads(1)
    now = run_case(case, tmp_path / case.name, [state_from_json(s) for s in saved["states"]])
    assert now["hashes"]["networks"] == saved["hashes"]["networks"], "the trained networks differ"
    assert now["hashes"]["training_state"] == saved["hashes"]["training_state"], "buffers/optimisers/RNG differ"
    for refine in map(str, REFINES):
        for got, want in zip(now["decisions"][refine], saved["decisions"][refine], strict=True):
            where = f"{case.name} refine={refine} state {want['state']}"
            assert got["status"] == want["status"], where
            assert got["on"] == want["on"], where
            assert np.array_equal(got["power"], want["power"]), where  # bit for bit, no tolerance
            assert np.array_equal(got["imports"], want["imports"]), where
            assert {k: got["info"][k] for k in INFO_FIELDS} == want["info"], where


def test_the_reference_covers_moves_repairs_and_the_decision_time_search():
    """The saved decisions exercise every part of a decision (so a test of them means something):
    move rounds, repairs by ratings, refined flips, and plans with groups switched off."""
    rows = [r for case in SAVED["cases"].values() for r in case["decisions"]["0"]]
    refined = [r for case in SAVED["cases"].values() for r in case["decisions"]["3"]]
    assert sum(r["info"]["moves"] > 0 for r in rows) >= 40
    assert sum(r["info"]["commitment_repaired"] > 0 for r in rows) >= 3
    assert sum(r["info"]["refined_flips"] > 0 for r in refined) >= 50
    assert sum(not on for r in rows for on in r["on"]) >= 100
    assert REFERENCE.stat().st_size < 200_000
