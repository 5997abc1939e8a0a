"""Test plugin: a solver that kills its own process with SIGSEGV, as a crashing C extension would."""

from __future__ import annotations

import os
import signal

from dispatchbench.contract.solver import Solver


class Crasher(Solver):
    name = "crasher"
    description = "test only: the process dies with SIGSEGV in solve()"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable: the process is gone")
