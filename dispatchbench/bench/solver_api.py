"""The solver plugin interface every backend implements.

A plugin is one class: a ``name``, default ``parameters``, ``capabilities`` the harness checks
before running it, ``skip`` for formulations it cannot handle, ``solve`` from states to
answers, and — for learners — ``fit``. Backends only ever hand back dispatches; scoring them
is the evaluator's job (``scoring.py``), so no backend's own objective can leak into a table.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State

STATUSES = ("optimal", "feasible", "infeasible", "timeout", "error")


@dataclass(frozen=True)
class Capabilities:
    """What the harness may expect of a solver (BenchMARL-style flags)."""

    exact: bool = False  # can certify optimality (a claimed "optimal" is trusted after evaluation)
    stochastic: bool = False  # result depends on the seed: run over several seeds
    learns: bool = False  # needs ``fit`` before ``solve``
    handles_commitment: bool = True  # models on/off decisions itself


@dataclass
class Answer:
    """A backend's raw answer for one state, before the evaluator has seen it.

    ``status`` is the backend's own claim: ``optimal`` / ``feasible`` with a dispatch,
    ``infeasible`` (the state, in the backend's view), ``timeout`` or ``error``.
    """

    dispatch: Dispatch | None
    status: str
    message: str = ""
    time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitReport:
    """What ``fit`` returns: where the trained model is and what training cost."""

    model_path: Path
    steps: int
    time_s: float
    info: dict[str, Any] = field(default_factory=dict)


class Solver(ABC):
    """Base class of every solver plugin. Subclasses set the class attributes and ``solve``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    # Checked when the spec is parsed, so a bad value stops ``solve``/``run``/``train`` before
    # any work: inclusive (low, high) bounds for numbers (None: open), allowed strings.
    parameter_ranges: ClassVar[dict[str, tuple[float | None, float | None]]] = {}
    parameter_choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Parameters whose values name a file or folder the solver reads (a learner's ``model``).
    # On a cluster such a path means nothing on the worker, so the harness sends the file's or
    # folder's content with the cell and points the parameter at the worker's local copy; the
    # results keep the path as written. Other parameters are passed through as text.
    path_parameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"solver {self.name!r} has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(sorted(self.parameters)) or '(none)'}"
            )
        self.params: dict[str, Any] = {k: _cast(self.name, k, v, self.parameters[k]) for k, v in params.items()}
        for key, value in self.params.items():
            _check(self.name, key, value, self.parameter_ranges.get(key), self.parameter_choices.get(key))
        self.params = {**self.parameters, **self.params}

    @property
    def spec(self) -> str:
        """Parametrized name, e.g. ``nlopt[algorithm=LD_SLSQP]``: only non-default values show."""
        changed = {k: v for k, v in self.params.items() if v != self.parameters.get(k)}
        if not changed:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"

    def skip(self, problem: Problem) -> str | None:
        """Reason this solver cannot handle ``problem``, or ``None``."""
        return None

    def prepare(self, problem: Problem) -> None:
        """One-off set-up before the first state (e.g. loading a trained model).

        The harness calls it once per cell, outside the per-state clock, so that a decision's
        time is the decision's and not the model's loading. Solvers must still work when it was
        not called (``solve`` may do the same set-up lazily).
        """

    def fit(self, problem: Problem, *, seed: int, steps: int, out_dir: Path, **options: Any) -> FitReport:
        """Train on ``problem`` (learners only)."""
        raise NotImplementedError(f"solver {self.name!r} does not learn")

    @abstractmethod
    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        """One :class:`Answer` per state, in order."""


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """Call ``fn`` and return its result and wall time in seconds."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _cast(solver: str, key: str, value: Any, default: Any) -> Any:
    """Parameters arrive as strings from the CLI; give them the type of their default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in {"true", "1", "yes", "on"}:
                return True
            if value.lower() in {"false", "0", "no", "off"}:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ValueError(f"solver {solver!r}: parameter {key}={value!r} is not a {type(default).__name__}") from None
    return value


def _check(
    solver: str, key: str, value: Any, bounds: tuple[float | None, float | None] | None, choices: tuple[str, ...] | None
) -> None:
    """Reject a value no run could use: not finite, out of the declared range, not a choice."""
    where = f"solver {solver!r}: parameter {key}={value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is not a finite number")
    if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ValueError(f"{where} is outside {span}")
    if choices is not None and value not in choices:
        raise ValueError(f"{where} is not one of {', '.join(choices)}")
