"""Fixtures shared by the test modules: the bundled paper problems, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchbench import load_problem
from dispatchbench.model.problem import Problem

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


@pytest.fixture(scope="session")
def paper() -> Problem:
    """The paper's instance with on/off commitment (a small MIQP)."""
    return load_problem(PROBLEMS / "paper-4region.toml")


@pytest.fixture(scope="session")
def convex() -> Problem:
    """The same instance with commitment off (a convex QP)."""
    return load_problem(PROBLEMS / "paper-4region-convex.toml")
