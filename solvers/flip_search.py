"""flip_search: the plan search MADRL-TVC's training imitates, run at decision time as a classical method.

Why it is a row of its own (issue 18): TVC's targets come from this search — price clearing plus
solo-flip and hand-over tests scored with the true team cost — so the question a reader asks of
the learned policy is what the network adds over running its teacher. This plugin runs the very
same search (``formulations/plan_search.py``, shared with TVC's training) with the true price
response instead of learned offers: every group answers a price with its cost-minimising output
(λ-iteration through the message-counted distributed search, ``DistributedSearch.price``), which
reads the cost coefficients, so it is a classical method (``learns=False``).

A decision, per state:

1. **starts**: everyone on (the trial clearing), and the margin rule on it — every group whose
   bill exceeds what its regional price pays for its output stops; when neither can meet the
   balances (a quiet night at 512 regions: everyone's minimum output exceeds the demand), the
   commitment made workable one group at a time in merit order (``merit_order.make_workable``,
   its tree sums counted), from all off as merit order does, then from everyone on. One flip at a
   time can stall where only a swap lowers the shortfall, so a feasible state can still get
   "no tried plan meets the balances" (the harness records it as a false infeasible);
2. **search**: up to ``search_rounds`` rounds around the best plan so far, each trying up to
   ``max_flips`` solo flips and ``max_swaps`` hand-overs (sampled, local partners first, when
   there are more: the seed matters on large instances) and one plan joining the improving moves
   of different regions; stops when a round improves nothing or the time budget is spent;
3. the best plan's clearing is the answer (the evaluator re-scores it like every other row).

**Messages** (``info["messages"]``, per decision, counted like TVC's): each plan cleared costs
one distributed price search (bids and setpoints plus the CS nodes' tree sums of the bisection,
``SearchResult.messages``) and its team cost one tree sum of the agents' own bills
(``DistributedSearch.sum_messages``). ``info["plans_scored"]`` is the number of plans cleared.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.contract.status import Status
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult
from dispatchbench.formulations.merit_order import Tally, make_workable, priority_order
from dispatchbench.formulations.plan_search import TriedPlans, compete
from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem, State


class _Budget:
    """One round per ``compete`` call, so the time budget is checked between rounds."""

    def __init__(self, max_flips: int, max_swaps: int) -> None:
        self.search_rounds, self.max_flips, self.max_swaps = 1, max_flips, max_swaps


class FlipSearch(Solver):
    name = "flip_search"
    description = "price clearing plus flip and hand-over tests scored with true costs (TVC's teacher)"
    # the search budget of TVC's training (learn/tvc/hyperparameters.py), more rounds: a decision
    # has one state to search, not a training batch
    parameters = {"search_rounds": 8, "max_flips": 48, "max_swaps": 32, "iterations": 40, "time_limit": 0.0}
    parameter_ranges = {
        "search_rounds": (0, 1000),
        "max_flips": (0, 100_000),
        "max_swaps": (0, 100_000),
        "iterations": (4, 200),
        "time_limit": (0.0, 1e9),
    }
    capabilities = Capabilities(exact=False, stochastic=True, learns=False, handles_commitment=True)
    test_settings = {"search_rounds": 2, "max_flips": 8, "max_swaps": 4}

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        return Label("Flip search (TVC's teacher)", "heuristic, distributed")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        search = DistributedSearch(problem, iterations=self.params["iterations"])
        rng = np.random.default_rng(seed)
        return [self._one(problem, state, search, rng, time_limit) for state in states]

    def _one(
        self,
        problem: Problem,
        state: State,
        search: DistributedSearch,
        rng: np.random.Generator,
        time_limit: float | None,
    ) -> Answer:
        start = time.perf_counter()
        deadline = start + time_limit if time_limit else np.inf
        messages = 0

        def clear(states: list[State], plans: np.ndarray) -> SearchResult:
            nonlocal messages
            result = search.price(states, plans)
            messages += len(plans) * (result.messages + search.sum_messages)  # per plan: clearing + bill sum
            return result

        tried = TriedPlans(problem, [state], clear)
        everyone = np.ones((1, len(problem.groups)), dtype=bool)
        trial = clear([state], everyone)  # the trial clearing: a start, and the margin rule's prices
        tried.record([0], everyone, trial)
        if problem.commitment:
            tried.score_fresh([0], self._margin_plan(problem, everyone, trial)[None])
            # neither start meets the balances: make a commitment workable in merit order, from all
            # off as merit order itself does, then from everyone on (one flip at a time, either
            # can stall where only a swap would lower the shortfall)
            order = priority_order(problem, state)
            for first in (np.zeros_like(everyone[0]), everyone[0]):
                if np.isfinite(tried.best(0)[1]):
                    break
                tally = Tally(problem, iterations=self.params["iterations"])
                bids = tally.messages  # the bids are already counted in the clearings above
                workable = make_workable(problem, state, first, order, tally)
                messages += tally.messages - bids
                tried.score_fresh([0], workable[None])
        budget = _Budget(self.params["max_flips"], self.params["max_swaps"])
        rounds = 0
        stopped_at_budget = False
        while problem.commitment and rounds < self.params["search_rounds"]:
            if time.perf_counter() > deadline:
                stopped_at_budget = True
                break
            before = tried.best(0)[1]
            compete(tried, [], rng, budget)
            rounds += 1
            if not tried.best(0)[1] < before - 1e-9 * abs(before):
                break
        plan, cost = tried.best(0)
        result = search.price(state, plan[None])  # the answer's clearing (already paid for above)
        info: dict[str, Any] = {
            "messages": messages,
            "plans_scored": tried.scored,
            "search_rounds_run": rounds,
            "time_budget_s": time_limit,
            "stopped_at_budget": stopped_at_budget,
        }
        elapsed = time.perf_counter() - start
        if not np.isfinite(cost):
            return Answer(None, Status.INFEASIBLE, "no tried plan meets the balances", elapsed, info)
        return Answer(result.dispatch(problem, plan), Status.FEASIBLE, "", elapsed, info)

    @staticmethod
    def _margin_plan(problem: Problem, on: np.ndarray, trial: SearchResult) -> np.ndarray:
        """The trial clearing's stops: every group whose bill exceeds what its regional price pays
        for its output (a start that needs no search)."""
        power = trial.balanced.power[0]
        price = trial.balanced.region_signal[0][problem.group_region]
        bill = group_costs(problem, on, trial.balanced.power)[0]
        return bill <= price * problem.delivery * power
