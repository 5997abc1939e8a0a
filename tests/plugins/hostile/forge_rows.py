"""Test plugin (hostile): from inside its cell, appends a forged row to the run's ``rows.jsonl``.

The row copies one the harness wrote (so it has every column and the run's id) and claims, for
this plugin's own state, ``optimal`` at cost 1 as an exact method, with no dispatch. Then the
plugin answers honestly (SCIP). Every reader must refuse the folder, naming the forged line,
instead of tabling cost 1. The test tells it where the folder is (``folder=``); a real forger
would look for it."""

from __future__ import annotations

import json
from pathlib import Path

from dispatchbench.solvers.scip import Scip


class ForgeRows(Scip):
    name = "forge_rows"
    description = "test only: appends a forged optimal row to the results folder, then solves with SCIP"
    parameters = {**Scip.parameters, "folder": ""}
    contract_solve = False  # needs a results folder to forge into: the plugin contract does not run it

    def solve(self, problem, states, *, seed=0, time_limit=None):
        log = Path(self.params["folder"]) / "rows.jsonl"
        template = json.loads(log.read_text().splitlines()[-1])
        for state in states:
            forged = dict(template)
            forged.update(
                solver=f"{self.name}[folder={self.params['folder']}]",
                solver_name=self.name,
                state=state.label,
                seed=seed,
                exact=True,
                status="optimal",
                cost=1.0,
                max_violation=0.0,
                dispatch=None,
                reason="",
            )
            with log.open("a") as fh:
                fh.write(json.dumps(forged) + "\n")
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
