"""What a MADDPG training run cost, in the keys every learner reports (issue 18, item 3).

``FitReport.info`` and ``model.json`` carry, for TVC and MADDPG alike (``contract.learner.TrainingInfo``,
the keys ``report/decision_cost.py`` reads): ``train_time_s`` (wall time), ``train_steps`` (steps
done), ``env_steps`` (states visited: one per step), ``true_cost_evaluations`` (every team cost the
environment computed for learning: the played plan of each step and every counterfactual plan of
the difference reward), ``training_messages`` (what training would need on the stations' network,
counted like decision messages: one message is one report from one node to another),
``parameter_sharing`` ("none" per agent, "central copy" per type: TVC's words) and
``training_kind``.

How MADDPG's ``training_messages`` are counted (``training_messages_by_kind``, as TVC names its breakdown):

- ``played_plans``: each step's plan is cleared on the network by the distributed search, like a
  decision (``DistributedSearch`` messages: bids, setpoints, CS-to-CS sums);
- ``to_learner``: a centralised critic needs every agent's inputs, action and own (metered) cost at
  the learner each step: one message per agent per step (``training_scalars_to_learner`` counts the
  numbers those messages carry);
- ``parameters``: the learner sends each agent its actor once, at the end (one message per agent of
  every training instance).

Counterfactual plans are evaluated by the central learner (a central evaluator of joint plans), so
they cost true-cost evaluations but no messages. The Fig. 5 probe evaluations (the ten monitor
states every ``log_every`` steps) are reported apart as ``monitor_evaluations``: they only log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

NONE = "none"  # parameter_sharing: every agent its own networks
CENTRAL = "central copy"  # ... one copy of each type's networks, trained centrally
KIND = "CTDE: centralised critic"
KIND_TYPE = "CTDE: centralised critic per type"
KIND_DIFFERENCE = (
    "CTDE: centralised critic per type; difference rewards from a central evaluator of counterfactual plans"
)


@dataclass
class TrainingCost:
    env_steps: int = 0
    true_cost_evaluations: int = 0
    monitor_evaluations: int = 0
    played_plan_messages: int = 0
    to_learner_messages: int = 0
    scalars_to_learner: int = 0

    def add_step(self, *, agents: int, evaluations: int, search_messages: int, scalars_per_agent: int) -> None:
        self.env_steps += 1
        self.true_cost_evaluations += evaluations
        self.played_plan_messages += search_messages
        self.to_learner_messages += agents
        self.scalars_to_learner += agents * scalars_per_agent

    def state(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def restore(cls, saved: dict[str, Any] | None) -> TrainingCost:
        return cls(**{k: int(v) for k, v in (saved or {}).items() if k in cls.__dataclass_fields__})

    def info(self, *, deployed_agents: int, sharing: str, team_reward: str) -> dict[str, Any]:
        """The documented counts (module docstring); ``sharing`` is the resolved "agent" or "type"."""
        kind = KIND if sharing != "type" else (KIND_DIFFERENCE if team_reward == "difference" else KIND_TYPE)
        return {
            "env_steps": self.env_steps,
            "true_cost_evaluations": self.true_cost_evaluations,
            "monitor_evaluations": self.monitor_evaluations,
            "training_messages": self.played_plan_messages + self.to_learner_messages + deployed_agents,
            "training_messages_by_kind": {
                "played_plans": self.played_plan_messages,
                "to_learner": self.to_learner_messages,
                "parameters": deployed_agents,
            },
            "training_scalars_to_learner": self.scalars_to_learner,
            "parameter_sharing": CENTRAL if sharing == "type" else NONE,
            "training_kind": kind,
        }
