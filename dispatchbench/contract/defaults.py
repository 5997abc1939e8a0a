"""The defaults a user gets without naming a solver: the one place the package names a bundled
plugin (``tests/test_contract_names.py`` allows this file and no other).

They are choices for the command line and the Python API, never branches: nothing reads them to
treat a plugin differently, and a report whose results lack the default baseline falls back to
the exact reference and says so."""

from __future__ import annotations

DEFAULT_SOLVER = "scip"  # `dispatchbench solve` and `dispatchbench.solve` without a solver: the exact reference
DEFAULT_BASELINE = "pso"  # the paper's baseline: the improvement column of its Tables IV and V
