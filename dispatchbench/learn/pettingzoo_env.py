"""The dispatch problem as a PettingZoo ``ParallelEnv``, for any MARL library to train on.

One static decision per episode: ``reset`` draws a state from the training sampler, one
``step`` of all agents maps their raw actions into their own feasible sets, closes the balances
with the distributed search and scores the dispatch with the evaluator
(``marl_env.outcome``). Everything it wraps lives in ``marl_env.py``, which the project's own
learners use directly: only this module imports PettingZoo and gymnasium.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.learn.marl_env import (
    OBS_DIM,
    RewardConfig,
    StateSampler,
    agent_ids,
    observations,
    outcome,
)
from dispatchbench.model.problem import Problem, State

DEFAULT_REWARD = RewardConfig()  # frozen: one instance serves every environment


class DispatchEnv(ParallelEnv):
    """One static decision per episode: reset draws a state, one step of all agents ends it."""

    metadata = {"name": "dispatchbench_v0", "render_modes": []}

    def __init__(
        self,
        problem: Problem,
        *,
        sampler: StateSampler | None = None,
        seed: int | None = None,
        reward: RewardConfig = DEFAULT_REWARD,
        search: DistributedSearch | None = None,
    ) -> None:
        self.problem = problem
        self.sampler = sampler or StateSampler(problem, seed=0 if seed is None else seed)
        if seed is not None and sampler is not None:
            self.sampler.reseed(seed)
        self.reward = reward
        self.search = search or DistributedSearch(problem)
        self.possible_agents = agent_ids(problem)
        self.agents: list[str] = []
        self.state_now: State | None = None
        self._obs_space = spaces.Box(0.0, np.inf, (OBS_DIM,), np.float32)
        self._act_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.sampler.reseed(seed)
            for i in range(len(self.possible_agents)):
                self._act_space.seed(seed + i)
        forced = (options or {}).get("state")
        self.state_now = forced if isinstance(forced, State) else self.sampler.sample()
        self.agents = list(self.possible_agents)
        obs = observations(self.problem, self.state_now)
        return obs, {a: {"state": self.state_now.label} for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]):
        if self.state_now is None or not self.agents:
            raise RuntimeError("call reset() before step(): every episode is one step")
        raw = np.array([float(np.asarray(actions.get(a, [-1.0])).reshape(-1)[0]) for a in self.possible_agents])
        out = outcome(self.problem, self.state_now, raw, reward=self.reward, search=self.search)
        obs = observations(self.problem, self.state_now)
        rewards = {a: float(out.rewards[i]) for i, a in enumerate(self.possible_agents)}
        infos = {
            a: {
                "cost": float(out.evaluation.group_costs[i]),
                "team_cost": out.evaluation.cost,
                "team_reward": out.team_reward,
                "violation_kw": out.violation_kw,
                "mapped_power": float(out.mapped.power[0, i]),
                "balanced_power": float(out.dispatch.power[i]),
                "moved_kw": float(out.moved_kw[i]),
                "on": bool(out.dispatch.on[i]),
                "feasible": out.feasible_commitment,
                "messages": out.messages,
                "state": self.state_now.label,
            }
            for i, a in enumerate(self.possible_agents)
        }
        done = {a: True for a in self.possible_agents}
        self.agents = []
        return obs, rewards, done, {a: False for a in self.possible_agents}, infos
