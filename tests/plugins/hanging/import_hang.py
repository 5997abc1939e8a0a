"""Test plugin: its import never finishes (it sleeps at module level). Kept in its own folder so
that discovering the other test plugins never imports it. ``run`` must turn it into error rows
after the start-up limit and go on; the harness must never import it itself."""

from __future__ import annotations

import time

from dispatchbench.contract.solver import Solver

time.sleep(3600)


class ImportHang(Solver):
    name = "import_hang"
    description = "test only: its module import blocks for an hour"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise AssertionError("unreachable")
