"""What a learner is asked to train: for how long (:class:`TrainingBudget`) and on what
(:class:`TrainingSet`: one problem file, or generated instances of several sizes).

Why here: the command line, the model cache and every learner read the same two objects, so a
budget of "15 minutes" or "1,500 steps" means the same for every method, and a learner that
trains one policy for any size is asked for it the same way. Both are plain data; the learners'
loops ask :meth:`TrainingBudget.exhausted` between steps (``dispatchbench.learn.lifecycle``
re-exports them for learner code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|min)?\s*$")
UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``"15m"``, ``"900s"``, ``"1h"``, ``"90"`` (seconds) -> seconds; ``ValueError`` (one line)
    for anything else or a duration that is not positive."""
    match = DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration — fix: give e.g. 15m, 900s or 1h")
    seconds = float(match.group(1)) * UNIT_S[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a budget must be longer than 0 s — fix: give e.g. 15m")
    return seconds


@dataclass(frozen=True)
class TrainingBudget:
    """How long a training may run: at most ``steps`` steps and at most ``seconds`` of wall time
    (either may be ``None``: no limit of that kind; not both).

    A loop checks :meth:`exhausted` between steps and never starts a step it expects to end
    after ``seconds`` (its estimate: the last step's duration), so a budget of 15 minutes ends
    within 15 minutes of the loop's start. The steps actually done are what a model records: a
    rerun with ``steps`` = that number and no time limit reproduces the model (the loop's
    arithmetic never looks at the clock)."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ValueError("a training budget needs steps, seconds or both")
        if self.steps is not None and (isinstance(self.steps, bool) or self.steps < 1):
            raise ValueError(f"--steps {self.steps}: must be at least 1 — fix: give the number of training steps")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"budget {self.seconds} s: must be positive — fix: give e.g. --budget 15m")

    @classmethod
    def of(cls, steps: int | None, budget: TrainingBudget | None) -> TrainingBudget:
        """The budget of a ``fit(..., steps=..., budget=...)`` call: ``budget`` when given (a
        ``steps`` that contradicts it is an error), else ``steps`` alone."""
        if budget is None:
            if steps is None:
                raise ValueError("fit() needs steps or a budget")
            return cls(steps=steps)
        if steps is not None and budget.steps is not None and steps != budget.steps:
            raise ValueError(f"fit(steps={steps}) contradicts its budget of {budget.steps} steps")
        return cls(steps=budget.steps if budget.steps is not None else steps, seconds=budget.seconds)

    def exhausted(self, done: int, elapsed_s: float, next_step_s: float = 0.0) -> bool:
        """After ``done`` steps and ``elapsed_s`` seconds: stop now? (``next_step_s``: how long
        the next step is expected to take.)"""
        if self.steps is not None and done >= self.steps:
            return True
        return self.seconds is not None and elapsed_s + next_step_s > self.seconds

    def describe(self) -> str:
        parts = ([f"{self.steps} steps"] if self.steps is not None else []) + (
            [f"{self.seconds:g} s"] if self.seconds is not None else []
        )
        return " or ".join(parts) + (", whichever comes first" if len(parts) == 2 else "")


@dataclass(frozen=True)
class TrainingSet:
    """Generated instances to train one model for any size on: ``sizes`` (regions per instance),
    drawn by the learner with *training* generator seeds (``docs/protocol.md``: 0–999), so the
    model decides instances it never saw. ``dispatchbench train --generated 4,8,16,32``."""

    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("--generated: give at least one size, e.g. 4,8,16,32")
        for size in self.sizes:
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 512:
                raise ValueError(f"--generated {size}: regions must be 1 to 512 — fix: e.g. --generated 4,8,16,32")

    @classmethod
    def parse(cls, text: str) -> TrainingSet:
        """``"4,8,16,32"`` -> the sizes (one line naming the fix for anything else)."""
        try:
            sizes = tuple(int(part) for part in str(text).split(",") if part.strip())
        except ValueError:
            raise ValueError(f"--generated {text!r}: not a list of sizes — fix: e.g. --generated 4,8,16,32") from None
        return cls(sizes)

    def describe(self) -> str:
        return "generated instances of " + ", ".join(map(str, self.sizes)) + " regions (training seeds)"
