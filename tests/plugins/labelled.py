"""Test plugin: SCIP under a display name and family of its own, as a third-party plugin declares
them. A report must show it by that label, never by its spec or as one of the bundled methods."""

from __future__ import annotations

from dispatchbench.contract.solver import Label
from dispatchbench.solvers.scip import Scip


class Labelled(Scip):
    name = "labelled"
    description = "test only: SCIP with its own label"
    parameters = {**Scip.parameters, "flavour": "plain"}

    @classmethod
    def label(cls, params):
        return Label(f"Third party ({params.get('flavour', 'plain')})", "exact, third party")
