"""Test plugin (hostile): zeroes the demand of the states it is handed, then lets SCIP solve them.

If scoring used the plugin's states, the answer would look feasible at cost ~0. The harness (and
``solve``) must score it against their own copy: the dispatch then violates the balances."""

from __future__ import annotations

from dispatchbench.solvers.scip import Scip


class ZeroDemand(Scip):
    name = "zero_demand"
    description = "test only: sets every demand it is handed to 0 before solving"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        for state in states:
            for region in state.demand:
                state.demand[region] = 0.0
            for group in state.v2g_available:
                state.v2g_available[group] = 0.0
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
