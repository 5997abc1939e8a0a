"""The solver plugin interface every backend implements.

A plugin is one class: a ``name``, default ``parameters``, ``capabilities`` the harness checks
before running it, ``skip`` for formulations it cannot handle, ``solve`` from states to answers,
and ``label`` for how a report names it. Learners subclass :class:`~dispatchbench.contract.learner.Learner`,
which adds ``fit``. Backends only ever hand back dispatches; scoring them is the evaluator's job
(``bench/scoring.py``), so no backend's own objective can leak into a table.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dispatchbench.contract.status import Status
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem, State


@dataclass(frozen=True)
class Capabilities:
    """What the harness may expect of a solver (BenchMARL-style flags)."""

    exact: bool = False  # can certify optimality (a claimed "optimal" is trusted after evaluation)
    stochastic: bool = False  # result depends on the seed: run over several seeds
    learns: bool = False  # needs ``fit`` before ``solve``: the class is a ``Learner``
    handles_commitment: bool = True  # models on/off decisions itself
    # reads the cost coefficients (a, b, c) of the problem: every classical method does; a learned
    # method that acts only on what it measures and hears (its own bills, prices) does not
    reads_costs: bool = True


@dataclass(frozen=True)
class Label:
    """How a report names a configured solver: a short display name that fits a table column
    (``SCIP (gap 1e-4)``, ``MADRL-TVC + local search``) and the family of method it belongs to
    (``exact``, ``local, gradient``, ``swarm``, ``learned, CTDE``). The full spec stays in every
    row and legend; the label is what a reader compares by."""

    name: str
    family: str


def default_family(capabilities: Capabilities) -> str:
    """A family from the capability flags alone, for a plugin that declares none."""
    if capabilities.learns:
        return "learned"
    if capabilities.exact:
        return "exact"
    return "stochastic" if capabilities.stochastic else "deterministic"


def short_number(value: float) -> str:
    """``1e-4`` rather than ``0.0001`` or ``1e-04``: numbers in labels are read, not parsed."""
    if value != 0 and abs(value) < 1e-3:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.4g}"


@dataclass
class Answer:
    """A backend's raw answer for one state, before the evaluator has seen it.

    ``status`` is the backend's own claim: ``optimal`` / ``feasible`` with a dispatch,
    ``infeasible`` (the state, in the backend's view), ``timeout`` or ``error``. A plain string
    is accepted and becomes a :class:`Status`; anything else is refused here, where the plugin's
    own traceback points at it. ``info`` holds the backend's details; the keys the package
    reads are documented in :class:`~dispatchbench.contract.info.AnswerInfo`.
    """

    dispatch: Dispatch | None
    status: Status
    message: str = ""
    time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.status = Status(self.status)
        except ValueError:
            raise ValueError(
                f"answer status {self.status!r} is not one of {', '.join(s.value for s in Status)}"
            ) from None


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
    # Spec parameters that make a solve (for a learner: a fit) take seconds, for the contract
    # test (tests/test_plugin_contract.py) and anyone smoke-testing a plugin; not a benchmark budget.
    test_settings: ClassVar[dict[str, Any]] = {}
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

    @classmethod
    def spec_of(cls, params: Mapping[str, Any], *, leave_out: tuple[str, ...] = ()) -> str:
        """Parametrized name, e.g. ``nlopt[algorithm=LD_SLSQP]``: only non-default values show."""
        changed = {k: v for k, v in params.items() if v != cls.parameters.get(k) and k not in leave_out}
        if not changed:
            return cls.name
        return f"{cls.name}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"

    @property
    def spec(self) -> str:
        return self.spec_of(self.params)

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """How a report names this solver run with ``params`` (typed, as ``self.params``).

        The default is the spec and a family from the capabilities; a plugin overrides it to be
        named as a reader knows it. Called once per spec when a run is planned (in the probe's
        child process), and stored with every row, so a report never needs the plugin."""
        return Label(cls.spec_of(params), default_family(cls.capabilities))

    def skip(self, problem: Problem) -> str | None:
        """Reason this solver cannot handle ``problem``, or ``None``."""
        return None

    def state_time_limit(self, time_limit: float | None) -> float | None:
        """The time budget of one state: the harness's ``time_limit``, or the plugin's own
        ``time_limit`` parameter when it has one set above 0 and it is tighter (an anytime plugin
        run at a matched budget: ``pso[time_limit=0.05]``)."""
        own = float(self.params.get("time_limit", 0.0) or 0.0)
        if own > 0:
            return min(time_limit, own) if time_limit else own
        return time_limit

    def prepare(self, problem: Problem) -> None:
        """One-off set-up before the first state (e.g. loading a trained model).

        The harness calls it once per cell, outside the per-state clock, so that a decision's
        time is the decision's and not the model's loading. Solvers must still work when it was
        not called (``solve`` may do the same set-up lazily).
        """

    @abstractmethod
    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        """One :class:`Answer` per state, in order."""


def label_of(solver: Solver) -> Label:
    """``solver``'s label for its own parameters, checked: ``label`` is plugin code, and a report
    needs two non-empty strings, so anything else is a ``ValueError`` naming the plugin."""
    try:
        label = solver.label(solver.params)
    except Exception as exc:
        raise ValueError(f"solver {solver.name!r}: label() raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(label, Label) and all(isinstance(v, str) and v.strip() for v in (label.name, label.family))):
        raise ValueError(f"solver {solver.name!r}: label() gave {label!r}, not a Label of two non-empty strings")
    return label


SPEC_NAME = re.compile(r"[A-Za-z0-9_\-]+")  # what a spec string's name may be (bench/plugins.py parses it)


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
