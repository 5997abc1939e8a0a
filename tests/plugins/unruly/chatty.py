"""Test plugin (unruly): a working solver (SCIP) that prints onto stdout — at import, when it is
built and for every state, with Python's print and straight onto file descriptor 1. A command's
own stdout (``solve --json``, ``solvers --json``) must stay exactly the command's."""

from __future__ import annotations

import os

from dispatchbench.solvers.scip import Scip

print("chatty: imported")
os.write(1, b"chatty: raw bytes on fd 1 at import\n")


class Chatty(Scip):
    name = "chatty"
    description = "test only: SCIP that prints on stdout at import, construction and solve"

    def __init__(self, **params):
        super().__init__(**params)
        print("chatty: built")

    def solve(self, problem, states, *, seed=0, time_limit=None):
        print(f"chatty: solving {len(states)} state(s)")
        os.write(1, b'{"state": "forged"}\n')
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
