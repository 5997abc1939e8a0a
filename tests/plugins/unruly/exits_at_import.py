"""Test plugin (unruly): calls ``sys.exit(0)`` while it is imported. Listing and loading plugins
must report it as broken, with the reason, and go on."""

from __future__ import annotations

import sys

from dispatchbench import Solver

sys.exit(0)


class ExitsAtImport(Solver):
    name = "exits_at_import"
    description = "test only: its import calls sys.exit(0)"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise AssertionError("unreachable")
