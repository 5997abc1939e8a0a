"""Test plugin (breaks the contract): its ``label`` raises, so every spec of it is refused in one
line when the spec is parsed, before any work (never a traceback in a report)."""

from __future__ import annotations

from dispatchbench.solvers.scip import Scip


class BadLabel(Scip):
    name = "bad_label"
    description = "test only: label() raises"

    @classmethod
    def label(cls, params):
        raise KeyError("no display name\nsecond line")
