"""Training states for shared MADDPG.

``PooledSampler`` is the environment's ``StateSampler`` (the uniform box of every servable demand,
mixed with generated days of training seeds) with one change: the generated days come from a fixed
pool of ``pool_days`` days per family, drawn once from the sampler's seed, and each day is built
once and reused. Building one generated day takes about 0.5 s at 32 regions (every interval is
made feasible) against a few milliseconds per training step at the paper's size; drawing a new day
for every state, as ``StateSampler`` does, would make the state draws the bulk of training time.
The distribution is still defined by its seeds alone: training seeds 0–999, never a state file.

The budget and the generated training instances are every learner's: ``contract.training``
(``TrainingBudget``, ``TrainingSet``) and ``lifecycle.generated_instances``.
"""

from __future__ import annotations

from dispatchbench.instances.protocol import TRAINING
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
