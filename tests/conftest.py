"""Fixtures shared by the test modules: the bundled paper problems, loaded once per session."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
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


def permuted_problem_toml(text: str, seed: int = 3) -> str:
    """The same problem file with its regions and groups listed in another (fixed random) order:
    a trained model must give every group the same dispatch whatever order the file lists them in."""
    head, *blocks = re.split(r"(?m)^(?=\[\[)", text)
    blocks = [b if b.endswith("\n") else b + "\n" for b in blocks]
    regions = [b for b in blocks if b.startswith("[[regions]]")]
    groups = [b for b in blocks if b.startswith("[[groups]]")]
    rng = np.random.default_rng(seed)
    return head + "".join(regions[i] for i in rng.permutation(len(regions))) + \
        "".join(groups[i] for i in rng.permutation(len(groups)))
