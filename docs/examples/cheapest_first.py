"""cheapest_first: the worked example of docs/plugins.md, a small but real dispatch heuristic.

Groups are switched on in order of their average cost per delivered kW at full output: first
in each region until it can supply what its CS cannot import (demand minus ``cs_max``), then
anywhere until the capacity that is on covers the whole demand (plus a reserve). Each group
that is on starts at its minimum; a region's groups are raised, in proportion to their headroom,
until that region's own need is met, and then every group that is on is raised in proportion to
its headroom until the demand is met. It never looks at exports or at marginal costs, so it can
be far from the optimum or even break a CS limit: the evaluator then scores the answer
infeasible, which is what a shoot-out should show about such a heuristic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dispatchbench import Answer, Capabilities, Dispatch, Label, Problem, Solver, State, Status


class CheapestFirst(Solver):
    name = "cheapest_first"  # the spec name: cheapest_first[reserve=0.1]
    description = "groups on by average cost per kW until demand is covered, power shared by headroom"
    parameters = {"reserve": 0.0}  # the default's type is the cast: "0.1" from the CLI becomes 0.1
    parameter_ranges = {"reserve": (0.0, 1.0)}  # checked before any work: reserve=2 is refused in one line
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    test_settings: dict[str, Any] = {}  # a solve already takes milliseconds

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        reserve = float(params.get("reserve", 0.0))
        name = "Cheapest first" + (f" (reserve {reserve:.0%})" if reserve else "")
        return Label(name, "heuristic, greedy")

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        return [self._one(problem, state) for state in states]

    def _one(self, problem: Problem, state: State) -> Answer:
        low = problem.p_min  # kW while on, per group (V2G: 0), decision side
        high = problem.upper_bounds(state)  # p_max, or min(p_max, v_g) for a V2G group
        delivery = problem.delivery  # delivered kW per decision kW (a V2G group's efficiency)
        region = problem.group_region  # each group's region, as an index into problem.regions
        demand = problem.demand_vector(state)  # kW per region
        # what each region must supply itself: the CS imports at most cs_max
        local_need = np.maximum(demand - problem.cs_max, 0.0)
        full = problem.a * high**2 + problem.b * high + problem.c  # cost per interval at full output
        with np.errstate(divide="ignore", invalid="ignore"):
            per_kw = np.where(high > 0, full / (delivery * high), np.inf)
        order = np.argsort(per_kw, kind="stable")
        on = np.zeros(len(problem.groups), dtype=bool)
        if problem.commitment:
            for r in range(len(problem.regions)):  # first each region's own need, cheapest first
                for g in order[region[order] == r]:
                    if (delivery * high)[on & (region == r)].sum() >= local_need[r]:
                        break
                    on[g] = high[g] > 0
            for g in order:  # then the whole demand, plus the reserve
                if (delivery * high)[on].sum() >= demand.sum() * (1 + self.params["reserve"]):
                    break
                on[g] = high[g] > 0
        else:  # without commitment every group is on and runs inside its range
            on[:] = True
        power = np.where(on, low, 0.0)  # battery-side x for a V2G group
        for r in range(len(problem.regions)):  # raise a region's groups until its need is met
            mine = on & (region == r)
            power[mine] += _shared(
                local_need[r] - (delivery * power)[mine].sum(), delivery[mine], high[mine] - low[mine]
            )
        power[on] += _shared(demand.sum() - (delivery * power).sum(), delivery[on], high[on] - power[on])
        if abs((delivery * power).sum() - demand.sum()) > 1e-6 * max(demand.sum(), 1.0):
            return Answer(None, Status.INFEASIBLE, f"the groups cannot meet the demand of {demand.sum():.1f} kW")
        return Answer(
            Dispatch.from_power(problem, state, power, on=on), Status.FEASIBLE, info={"groups_on": int(on.sum())}
        )


def _shared(kw: float, delivery: np.ndarray, room: np.ndarray) -> np.ndarray:
    """``kw`` delivered kW spread over groups in proportion to their room (decision kW), none
    beyond it; nothing when ``kw`` is not positive."""
    capacity = float((delivery * room).sum())
    if kw <= 0 or capacity <= 0:
        return np.zeros_like(room)
    return room * min(kw / capacity, 1.0)
