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
    return (
        head
        + "".join(regions[i] for i in rng.permutation(len(regions)))
        + "".join(groups[i] for i in rng.permutation(len(groups)))
    )


def assert_batched_equals_one_by_one(solver, problem: Problem, states: list) -> list:
    """A learner's answers for a batch of states equal its answers one state at a time (the same
    commitment, powers and imports to 1e-9 kW, messages and status); returns the batch's answers."""
    batch = solver.solve(problem, states)
    for state, a in zip(states, batch):
        (one,) = solver.solve(problem, [state])
        assert np.array_equal(a.dispatch.on, one.dispatch.on), state.label
        assert np.allclose(a.dispatch.power, one.dispatch.power, atol=1e-9, rtol=0), state.label
        assert np.allclose(a.dispatch.imports, one.dispatch.imports, atol=1e-9, rtol=0), state.label
        assert a.info["messages"] == one.info["messages"] and a.status == one.status, state.label
    return batch
