"""Test plugin (unruly): ends its process with ``os._exit(0)`` while it is imported (no exception
to catch: the process is simply gone, with a success status)."""

from __future__ import annotations

import os

from dispatchbench import Solver

os._exit(0)


class EndsAtImport(Solver):
    name = "ends_at_import"
    description = "test only: its import ends the process with status 0"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise AssertionError("unreachable")
