"""The one feasibility tolerance, and the margin generated states keep from their limits.

The evaluator, the pre-check and the backends that test feasibility themselves (NLopt, PSO)
must agree on what "feasible" means, or a state the pre-check calls feasible is one a solver
proves infeasible (issue 20: a generated state asked 3,173.59 kW where 3,173.585 kW could be
delivered; the pre-check loosened every region and the total by the tolerance, SCIP did not).
So the tolerance is defined here once and everything else calls these functions.
"""

from __future__ import annotations

TOLERANCE_FRACTION = 1e-6  # of the state's total demand (at least 1 kW): the evaluator's tolerance
MARGIN_FRACTION = 1e-4  # generated states: 100 x the tolerance inside each upper limit
MIN_MARGIN_KW = 0.01  # ... and never less than the precision a state file is written with
ROUNDING_KW = 1e-9  # float noise when the pre-check adds kW up; far below any tolerance


def feasibility_tolerance(total_demand: float) -> float:
    """Largest violation (kW) of any one constraint that still counts as feasible.

    Relative to the state's size, like a solver's own feasibility tolerance, so a 50-MW state
    is not held to a tighter standard than a 50-kW one.
    """
    return TOLERANCE_FRACTION * max(1.0, float(total_demand))


def service_margin(limit_kw: float) -> float:
    """How far (kW) a generated state stays inside an upper limit of size ``limit_kw``.

    100 x :func:`feasibility_tolerance` (0.01 %), and at least 0.01 kW: no solver's feasibility
    tolerance (SCIP's is 1e-6 relative; NLopt and PSO use the evaluator's) can then decide
    whether a generated state is served, and the demand moves by well under 0.1 %.
    """
    return max(MIN_MARGIN_KW, MARGIN_FRACTION * max(1.0, abs(float(limit_kw))))
