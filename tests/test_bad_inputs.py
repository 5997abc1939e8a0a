"""The bad-input campaign as tests: every case of :mod:`campaign.cases` through the real console
script (or the Python API in a fresh interpreter), each under its own time limit.

A case passes when the user meets one ``error: ... fix ...`` line and exit status 2 (or a valid
edge case simply works), with no traceback, no hang, no silent success and nothing written
outside the case's own folder or through a link. The default run (CI) takes the cases marked
``fast``, a few per class; ``pytest -m slow tests/test_bad_inputs.py`` runs all of them, and
``python tests/campaign/table.py`` prints the table by class.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from campaign.cases import CLASSES, all_cases, build_workspace
from campaign.runner import run_case

CASES = all_cases()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("campaign")
    build_workspace(ws)
    (ws / "cases").mkdir()
    return ws


def test_the_campaign_covers_every_class_with_450_cases_and_a_fast_subset():
    assert len(CASES) >= 450
    per_class = Counter(c.cls for c in CASES)
    assert set(per_class) == set(CLASSES), per_class
    fast = Counter(c.cls for c in CASES if c.fast)
    assert set(fast) == set(CLASSES), fast  # every class keeps a case in CI
    assert 50 <= sum(fast.values()) <= 100


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=f"{c.cls}: {c.name}"[:120], marks=() if c.fast else pytest.mark.slow) for c in CASES],
)
@pytest.mark.timeout(400)  # the case's own limit kills a hang first; this bounds a slow setup too
def test_bad_input_is_one_clear_line(workspace, case):
    outcome = run_case(case, workspace)
    assert outcome.verdict == "clean", (
        f"{outcome.verdict}: {outcome.why} (exit {outcome.exit_code}): {outcome.first_line}"
    )
