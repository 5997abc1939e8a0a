"""The contract every solver plugin keeps, checked on everything plugin discovery finds.

Parametrized over ``discover()`` with the test plugins' folders on ``$DISPATCHBENCH_SOLVER_PATH``,
so a new plugin file gets these checks without anyone writing a test for it: it can be built
with its defaults, its spec round-trips (with non-default values too), bad parameters are refused
when the spec is parsed, ``skip`` returns a reason or ``None``, ``solve`` gives one answer per
state whose status agrees with its dispatch (by the evaluator, on our own copy of the state), the
same seed gives the same answer, and a learner trained for a few steps can solve. Each plugin says
itself what makes a solve or a fit tiny (``test_settings``, and a learner's ``test_steps``), and
how a report names it (``label``), so this file knows no plugin by name.

Test plugins whose whole point is to crash, hang, block, raise or cheat are built and parsed like
the others but never asked to solve here (``SOLVE_EXEMPT``, or ``contract_solve = False`` on the
class); the harness tests run them in child processes, where that is safe.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from dispatchbench import load_problem, load_states
from dispatchbench.bench.plugins import SOLVER_PATH_ENV, discover, make_solver
from dispatchbench.contract.class_checks import contract_problems
from dispatchbench.contract.learner import FitReport, Learner
from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.contract.status import SUCCESS, Status
from dispatchbench.model.errors import SolverNotFound
from dispatchbench.model.evaluate import evaluate

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIRS = [ROOT / "tests" / "plugins", ROOT / "tests" / "plugins" / "hostile"]  # never plugins/hanging
PAPER = ROOT / "problems" / "paper-4region.toml"
CONVEX = ROOT / "problems" / "paper-4region-convex.toml"
SOLVE_EXEMPT = {
    "crasher": "kills its process",
    "sleeper": "sleeps for an hour",
    "raiser": "raises in solve",
    "blocker": "waits for a release file",
    "zero_demand": "edits the states it is handed",
    "patch_evaluator": "patches the evaluator",
}


@contextmanager
def plugin_path_set() -> Iterator[None]:
    old = os.environ.get(SOLVER_PATH_ENV)
    os.environ[SOLVER_PATH_ENV] = os.pathsep.join(map(str, PLUGIN_DIRS))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SOLVER_PATH_ENV, None)
        else:
            os.environ[SOLVER_PATH_ENV] = old


with plugin_path_set():
    PLUGINS: dict[str, type[Solver]] = discover()
NAMES = sorted(PLUGINS)
SOLVING = [n for n in NAMES if n not in SOLVE_EXEMPT and getattr(PLUGINS[n], "contract_solve", True)]


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    """``make_solver`` finds the test plugins too (the environment is restored after each test)."""
    monkeypatch.setenv(SOLVER_PATH_ENV, os.pathsep.join(map(str, PLUGIN_DIRS)))


@pytest.fixture(scope="module")
def paper():
    return load_problem(PAPER)


@pytest.fixture(scope="module")
def states(paper):
    """Table IV and two states of the paper's day (night and evening)."""
    day = load_states(ROOT / "problems" / "paper-4region-day.csv", paper)
    return load_states(ROOT / "problems" / "paper-4region-tableIV.csv", paper) + [day[8], day[76]]


def tiny_spec(cls: type[Solver]) -> str:
    """The plugin's own ``test_settings`` as a spec (only what differs from its defaults shows)."""
    return cls(**cls.test_settings).spec


@pytest.fixture(scope="module")
def solvers(paper, tmp_path_factory) -> dict[str, str]:
    """The spec each solving plugin is checked with: its ``test_settings``, or for a learner its
    model after a fit of ``test_steps`` steps with them (trained once per module, on first use)."""
    cache: dict[str, str] = {}

    class Specs(dict):
        def __missing__(self, name: str) -> str:
            cls = PLUGINS[name]
            if not issubclass(cls, Learner):
                return tiny_spec(cls)
            out = tmp_path_factory.mktemp(f"model-{name}")
            learner = make_solver(tiny_spec(cls))
            assert isinstance(learner, Learner)
            report = learner.fit(paper, seed=0, steps=cls.test_steps, out_dir=out)
            assert isinstance(report, FitReport) and report.steps == cls.test_steps
            cache[name] = f"{name}[model={report.model_path}]"
            self[name] = cache[name]
            return cache[name]

    return Specs()


def test_discovery_finds_bundled_and_test_plugins():
    assert {"scip", "nlopt", "pso", "merit_order", "lagrangian", "admm", "flip_search", "madrl_tvc", "maddpg"} <= set(
        NAMES
    )
    assert {"raiser", "slow_scip"} <= set(NAMES)
    print(
        f"\nplugin contract: {len(NAMES)} plugins, {len(SOLVING)} of them solve; "
        f"checks per plugin: {CHECKS_ALL} (+{CHECKS_SOLVE} for solving plugins, +1 more for learners)"
    )


# ---- construction and specs (every plugin) --------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_the_class_keeps_the_contract(name):
    """What discovery checks (a learner is a ``Learner`` with a budget, test settings name real
    parameters), the tiny settings build, and ``label`` names the defaults and any settings."""
    cls = PLUGINS[name]
    assert contract_problems(cls) == []
    assert cls.capabilities.learns == issubclass(cls, Learner) == hasattr(cls, "fit")
    tiny = cls(**cls.test_settings)  # a tiny configuration the plugin accepts
    for params in (dict(cls.parameters), tiny.params):
        label = cls.label(params)
        assert isinstance(label, Label) and label.name.strip() and label.family.strip()
        assert "\n" not in label.name + label.family and len(label.name) <= 60, label
    if issubclass(cls, Learner):
        assert isinstance(cls.default_train_steps, int) and cls.default_train_steps >= cls.test_steps >= 1
        assert "somewhere" not in cls.label({**cls.parameters, "model": "somewhere"}).name  # models: one row


@pytest.mark.parametrize("name", NAMES)
def test_default_construction(name):
    cls = PLUGINS[name]
    solver = cls()
    assert solver.name == name and isinstance(cls.description, str) and cls.description
    assert isinstance(cls.capabilities, Capabilities)
    assert solver.spec == name  # defaults never show in a spec
    assert solver.params == cls.parameters
    for key, (low, high) in cls.parameter_ranges.items():  # declared ranges name real parameters,
        assert key in cls.parameters, key  # and the defaults lie inside them
        value = cls.parameters[key]
        assert (low is None or value >= low) and (high is None or value <= high), (key, value)
    for key, choices in cls.parameter_choices.items():
        assert key in cls.parameters and cls.parameters[key] in choices, key


@pytest.mark.parametrize("name", NAMES)
def test_spec_round_trip_with_defaults(name):
    solver = make_solver(name)
    assert type(solver) is PLUGINS[name]
    assert make_solver(solver.spec).spec == solver.spec


def _other_value(cls: type[Solver], key: str, default):
    """A value of ``key`` other than its default that the plugin accepts, or None."""
    if key in cls.parameter_choices:
        return next((c for c in cls.parameter_choices[key] if c != default), None)
    if isinstance(default, bool):
        return not default
    if not isinstance(default, (int, float)):
        return None
    low, high = cls.parameter_ranges.get(key, (None, None))
    candidates = [default * 2, default / 2, default + 1, default - 1] if default else [1, 0.5]
    candidates = [type(default)(c) for c in candidates]  # a value of the parameter's own type
    for c in candidates:
        if c != default and (low is None or c >= low) and (high is None or c <= high):
            return c
    return None


@pytest.mark.parametrize("name", NAMES)
def test_spec_round_trip_with_non_default_values(name):
    cls = PLUGINS[name]
    changed = {k: v for k, d in cls.parameters.items() if (v := _other_value(cls, k, d)) is not None}
    if not changed:
        pytest.skip(f"{name} has no parameter with a second value to try")
    solver = cls(**changed)
    assert solver.spec.startswith(f"{name}[")
    again = make_solver(solver.spec)
    assert again.spec == solver.spec
    assert again.params == solver.params


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_are_refused_when_the_spec_is_parsed(name):
    cls = PLUGINS[name]
    with pytest.raises(SolverNotFound, match="no parameter"):
        make_solver(f"{name}[no_such_parameter=1]")
    for key, (low, high) in cls.parameter_ranges.items():
        for outside in ([low - 1] if low is not None else []) + ([high * 2 + 1] if high is not None else []):
            if isinstance(cls.parameters[key], int):
                outside = math.floor(outside) if low is not None and outside < low else math.ceil(outside)
            with pytest.raises(SolverNotFound, match="outside"):
                make_solver(f"{name}[{key}={outside}]")
        if isinstance(cls.parameters[key], float):
            with pytest.raises(SolverNotFound, match="finite"):
                make_solver(f"{name}[{key}=nan]")


@pytest.mark.parametrize("name", NAMES)
def test_skip_returns_a_reason_or_none(name):
    for problem in (load_problem(PAPER), load_problem(CONVEX)):
        why = PLUGINS[name]().skip(problem)
        assert why is None or (isinstance(why, str) and why and "\n" not in why)


@pytest.mark.parametrize("name", NAMES)
def test_only_learners_fit(name, paper):
    if issubclass(PLUGINS[name], Learner):
        assert "needs a trained model" in PLUGINS[name]().skip(paper)  # an untrained learner says why
    else:
        assert not hasattr(PLUGINS[name](), "fit")  # fit is the Learner's, not every solver's


# ---- solving (every plugin that may safely solve in this process) ----------------------------
def _solve(spec: str, paper, states, seed: int) -> tuple[list[Answer], list]:
    """Answers to deep copies of ``states`` (a plugin may not change what it is handed), and the
    pristine states to score them against."""
    solver = make_solver(spec)
    assert solver.skip(paper) is None
    return solver.solve(paper, copy.deepcopy(states), seed=seed, time_limit=30.0), states


@pytest.mark.parametrize("name", SOLVING)
def test_one_answer_per_state_with_statuses_that_match_the_dispatches(name, paper, states, solvers):
    answers, truth = _solve(solvers[name], paper, states, seed=0)
    assert isinstance(answers, list) and len(answers) == len(states)
    for answer, state in zip(answers, truth):
        assert isinstance(answer, Answer) and isinstance(answer.status, Status)
        assert isinstance(answer.message, str) and "\n" not in answer.message
        assert answer.time_s >= 0 and isinstance(answer.info, dict)
        if answer.status in SUCCESS:
            assert answer.dispatch is not None, answer
            ev = evaluate(paper, state, answer.dispatch)
            assert ev.feasible, f"{name} claims {answer.status} at {state.label}: violates {ev.worst}"
        if answer.status == Status.OPTIMAL:
            assert PLUGINS[name].capabilities.exact, f"{name} is not exact but claims optimal"


@pytest.mark.parametrize("name", SOLVING)
def test_same_seed_same_answer(name, paper, states, solvers):
    first, _ = _solve(solvers[name], paper, states, seed=1)
    second, _ = _solve(solvers[name], paper, states, seed=1)
    for a, b in zip(first, second):
        assert a.status == b.status
        assert (a.dispatch is None) == (b.dispatch is None)
        if a.dispatch is not None:
            assert np.array_equal(a.dispatch.on, b.dispatch.on)
            assert np.array_equal(a.dispatch.power, b.dispatch.power)


@pytest.mark.parametrize("name", [n for n in SOLVING if issubclass(PLUGINS[n], Learner)])
def test_a_tiny_fit_then_solve(name, paper, states, solvers):
    model = solvers[name]  # trains on first use
    answers = make_solver(model).solve(paper, states[:1], seed=0)
    assert len(answers) == 1 and answers[0].dispatch is not None


CHECKS_ALL = 7  # the class, construction, two round trips, bad parameters, skip, fit-or-not
CHECKS_SOLVE = 2  # answers/statuses, same seed (+1 tiny fit → solve for learners)
