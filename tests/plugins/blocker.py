"""Test plugin: SCIP that, before each state, announces itself and waits until a file exists.

The interrupt and kill tests use it to act only once a run is provably mid-way (the marker file
``<release>.waiting`` is there, so every earlier cell's rows are on disk and this cell is
blocked), whatever the machine's speed: no sleep decides the outcome."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dispatchbench.solvers.scip import Scip


class Blocker(Scip):
    name = "blocker"
    description = "test only: waits for the file `release` before each SCIP solve"
    parameters = {**Scip.parameters, "release": ""}

    def solve(self, problem, states, *, seed=0, time_limit=None):
        release = Path(self.params["release"])
        Path(f"{release}.waiting").write_text(str(os.getpid()))
        while not release.exists():
            time.sleep(0.02)
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
