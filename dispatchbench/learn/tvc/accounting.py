"""What training cost, counted the way decisions are: states visited, true-cost evaluations,
messages on the stations' network, bills metered.

Why: a learned method's table row must say what its training took (issue 18), and "trained in
minutes" hides that every counterfactual plan is information about the other agents. Here each
one is realised the way a decision would realise it: the plan is cleared by the distributed
search (bids, setpoints and the CS nodes' tree sums of the bisection) and its team cost is one
tree sum of the agents' own bills. The counts are exact integers, kept per kind
(:data:`KINDS`), saved with the checkpoint (a resumed run goes on counting) and written into
``model.json`` under the documented keys (``contract.learner.TrainingInfo``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dispatchbench.formulations.distributed_search import DistributedSearch
from dispatchbench.model.problem import Problem

KINDS = (
    "policy_clearings",  # clearings of the policy's own rounds and moves (what a decision sends)
    "hearings",  # the features and move decision points heard around them
    "counterfactual_clearings",  # each tried plan cleared by the distributed search
    "team_cost_sums",  # each tried plan's team cost: every agent's bill to its CS node, one tree sum
    "sample_uploads",  # central copy: every stored experience row sent to the learner
    "parameter_downloads",  # central copy: each agent receives its type's new networks once per step
)
CENTRAL = "central copy"
NONE = "none"
KIND_CENTRAL = "CTDE-like: central copy of each type's networks; counterfactuals by counted messages"
KIND_DISTRIBUTED = "distributed: counterfactuals by counted messages"


@dataclass
class InstanceCosts:
    """Message prices on one instance's network (per state)."""

    clearing: int  # one clearing with the training's bisection steps
    team_sum: int  # one tree sum of one number per agent
    agents: int

    @classmethod
    def of(cls, problem: Problem, iterations: int) -> InstanceCosts:
        search = DistributedSearch(problem, iterations=iterations)
        return cls(search.messages_per_decision(), search.sum_messages, len(problem.groups))


@dataclass
class TrainingCounts:
    """Everything training has cost so far (exact integers)."""

    env_steps: int = 0  # states visited
    true_cost_evaluations: int = 0  # team costs of cleared plans (the policy's own and counterfactual)
    calibration_bills: int = 0  # own bills metered for the cost curves
    offer_publication_messages: int = 0  # each agent's curve to its CS node, once per instance
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind: str, count: int) -> None:
        self.messages[kind] += int(count)

    @property
    def training_messages(self) -> int:
        return sum(self.messages.values()) + self.offer_publication_messages

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingCounts:
        return cls(**{**data, "messages": {**dict.fromkeys(KINDS, 0), **data.get("messages", {})}})

    def info(self, *, shared: bool) -> dict[str, Any]:
        """The documented ``TrainingInfo`` keys (``contract/learner.py``) and the breakdown."""
        return {
            "env_steps": self.env_steps,
            "true_cost_evaluations": self.true_cost_evaluations,
            "training_messages": self.training_messages,
            "training_messages_by_kind": dict(self.messages),
            "offer_publication_messages": self.offer_publication_messages,
            "calibration_bills": self.calibration_bills,
            "parameter_sharing": CENTRAL if shared else NONE,
            "training_kind": KIND_CENTRAL if shared else KIND_DISTRIBUTED,
        }
