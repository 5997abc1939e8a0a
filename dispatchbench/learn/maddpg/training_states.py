"""Training states for shared MADDPG, and the instances and budget a training run is given.

``PooledSampler`` is the environment's ``StateSampler`` (the uniform box of every servable demand,
mixed with generated days of training seeds) with one change: the generated days come from a fixed
pool of ``pool_days`` days per family, drawn once from the sampler's seed, and each day is built
once and reused. Building one generated day takes about 0.5 s at 32 regions (every interval is
made feasible) against a few milliseconds per training step at the paper's size; drawing a new day
for every state, as ``StateSampler`` does, would make the state draws the bulk of training time.
The distribution is still defined by its seeds alone: training seeds 0–999, never a state file.

``TrainingBudget`` and ``generated_instances`` have the shape of the shared wall-time budget and
the "several instances" input that ``dispatchbench train --generated 4,8,16,32 --budget 15m`` is
to hand every learner (issue 19); MADDPG consumes them through ``Maddpg.fit_instances``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dispatchbench.instances.generate_problem import generate_problem
from dispatchbench.instances.protocol import TRAINING, require_split
from dispatchbench.instances.state_families import FAMILIES, INTERVALS, MAX_DAYS, generate_days
from dispatchbench.learn.marl_env import StateSampler
from dispatchbench.model.problem import Problem, State


class PooledSampler(StateSampler):
    """A ``StateSampler`` whose generated days come from a fixed, cached pool (module docstring)."""

    def __init__(self, problem: Problem, *, seed: int, generated_share: float, pool_days: int) -> None:
        super().__init__(problem, seed=seed, generated_share=generated_share)
        families = sorted(FAMILIES)
        self.pool = [
            (family, int(self.rng.integers(TRAINING.first, TRAINING.last + 1)), int(self.rng.integers(MAX_DAYS)))
            for family in families
            for _ in range(max(pool_days, 0))
        ]
        self._days: dict[tuple[str, int, int], list[State]] = {}

    def _generated(self) -> State:
        if not self.pool:
            return super()._generated()
        key = self.pool[int(self.rng.integers(len(self.pool)))]
        t = int(self.rng.integers(INTERVALS))
        if key not in self._days:
            family, seed, day = key
            self._days[key] = generate_days(self.problem, family, 1, seed, first_day=day).states
        state = self._days[key][t]
        self._count += 1
        self.last_source = (*key, t)
        return State(f"sampled{self._count}", dict(state.demand), dict(state.v2g_available))


@dataclass(frozen=True)
class TrainingBudget:
    """Stop after ``steps`` steps or ``seconds`` of wall time, whichever comes first (``None``: no
    limit of that kind). The schedule of a run never depends on the clock, so a run stopped by
    ``seconds`` at step N is reproduced by the same run with ``steps=N``."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ValueError("a training budget needs steps, seconds or both")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"budget steps={self.steps}: must be at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"budget seconds={self.seconds}: must be positive")

    def exhausted(self, step: int, elapsed_s: float) -> bool:
        return (self.steps is not None and step >= self.steps) or (
            self.seconds is not None and elapsed_s >= self.seconds
        )


def generated_instances(sizes: Sequence[int], seed: int, per_size: int = 1) -> list[Problem]:
    """Generated problems of each size, with *training* generator seeds (``seed, seed + 1, ...``
    wrapped into 0–999): the instances a model trained once for any size learns on."""
    require_split(seed, "training")
    out = []
    for regions in sizes:
        for k in range(per_size):
            out.append(generate_problem(int(regions), TRAINING.first + (seed + k) % (TRAINING.last + 1)))
    return out
