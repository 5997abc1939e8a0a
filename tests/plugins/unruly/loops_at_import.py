"""Test plugin (unruly): its import never finishes (a busy loop, not a sleep)."""

from __future__ import annotations

from dispatchbench import Solver

while True:
    pass


class LoopsAtImport(Solver):
    name = "loops_at_import"
    description = "test only: its import loops forever"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise AssertionError("unreachable")
