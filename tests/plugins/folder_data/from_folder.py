"""Test plugin: answers from a folder of data named by its ``data`` parameter, a path parameter
like a learner's ``model``. The folder holds ``answers.json``: per state label, on/off, power and
imports. Runs on a Dask worker show that the folder travels with the cell by content (the
worker need not see the driver's path) and that the spec keeps the path as written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dispatchbench import Answer, Capabilities, Dispatch, Solver


class FromFolder(Solver):
    name = "from_folder"
    description = "test only: replays the dispatches stored in the folder `data`"
    parameters = {"data": ""}
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    path_parameters = ("data",)

    def solve(self, problem, states, *, seed=0, time_limit=None):
        folder = Path(self.params["data"])
        stored = json.loads((folder / "answers.json").read_text())
        answers = []
        for state in states:
            got = stored[state.label]
            dispatch = Dispatch(np.array(got["on"], bool), np.array(got["power"]), np.array(got["imports"]))
            answers.append(Answer(dispatch, "feasible", info={"folder": folder.name}))
        return answers
