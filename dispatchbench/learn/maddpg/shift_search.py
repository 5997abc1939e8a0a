"""The distributed search with the shift width MADDPG was trained with (``shift`` hyper-parameter)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dispatchbench.formulations.balancing import ShiftResponse, state_bounds
from dispatchbench.formulations.distributed_search import DistributedSearch, SearchResult
from dispatchbench.model.problem import Problem, State


class ShiftSearch(DistributedSearch):
    """``shift="kw"`` is ``DistributedSearch.project`` (every running group moves by the same kW);
    ``shift="range"`` moves each group by the same *fraction of its own range* ``ub − lb`` — the
    space the actors propose in (``lb + u·(ub − lb)``), so a small group (a V2G group with little
    availability) is not pushed off its proposal by as many kW as a large one. Each agent knows
    its own range, so the messages are those of the plain search.
    """

    def __init__(self, problem: Problem, shift: str = "kw") -> None:
        super().__init__(problem)
        self.shift = shift

    def project(self, state: State | Sequence[State], on: np.ndarray, center: np.ndarray) -> SearchResult:
        if self.shift == "kw":
            return super().project(state, on, center)
        on, center = self._rows(on, center)
        lb, ub = state_bounds(self.problem, state, len(center))
        if not self.problem.commitment:
            on = np.ones_like(on)
        response = ShiftResponse(center=np.clip(center, lb, ub), lb=lb, ub=ub, on=on, width=np.maximum(ub - lb, 1.0))
        return self.run(state, response)
