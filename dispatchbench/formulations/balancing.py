"""Meeting the balances: hierarchical bisection over monotone responses.

Every group answers a scalar signal ``s`` with a power ``P_i(s)`` that never decreases in ``s``
and always lies in its own feasible set (``0`` when off, ``[lb_i, ub_i]`` when on) — the
paper's *action-space mapping*. Two such responses are provided:

- :class:`ShiftResponse` — ``P_i = clip(a_i + s·w_i, lb_i, ub_i)``: the Euclidean projection of
  proposed actions ``a_i`` onto the balance (used by learners and PSO particles);
- :class:`PriceResponse` — ``P_i = argmin cost_i(P) − s·delivered_i(P)``: classic λ-iteration
  (used where the cost coefficients are known).

The balances are then met in two levels, as in the paper (eqs. 13–15): a system signal ``s``
is found by bisection so that the regions' imports, each clipped to its CS limit, sum to zero;
then each region bisects its own signal ``s_I`` so that its local supply equals its demand minus
that import. A region whose CS link is not binding keeps ``s_I = s``; one whose link binds gets
its own ``s_I``, which is exactly the KKT structure of the convex dispatch with CS limits — so
with the price response the result is the economic optimum for the given commitment.

Bisection ends on a bracket ``[lo, hi]``; the answer is the convex combination of the two
bracket responses that meets the target exactly. That keeps every group inside its own
range (a convex combination of two in-range powers is in range) and handles step responses
(linear V2G costs) whose total jumps across the target.

All arrays carry a leading batch axis, so a swarm or a training batch is balanced at once. The
state may be one :class:`State` (every row shares its demand) or one state per row (a day's
states decided in one batch); each row's arithmetic is the same either way, so a batched
answer equals the one-by-one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dispatchbench.model.problem import Problem, State


class Response(Protocol):
    """What the balancing search asks of the groups: their total answer to a signal, and a
    signal bracket that holds the solution. Shift and price responses, and a learner's offers
    (MADRL-TVC's ``LearnedPriceResponse``), all answer it."""

    def power(self, s: np.ndarray) -> np.ndarray: ...

    def bracket(self) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class ShiftResponse:
    """``P_i(s) = clip(center_i + s·width_i, lb_i, ub_i)`` for running groups, 0 for others."""

    center: np.ndarray  # (B, G) proposed powers
    lb: np.ndarray  # (B, G) least power when on
    ub: np.ndarray  # (B, G) largest power when on
    on: np.ndarray  # (B, G) bool
    width: np.ndarray  # (G,) or (B, G): how far one unit of signal moves each group (its range)

    def power(self, s: np.ndarray) -> np.ndarray:
        return np.where(self.on, np.clip(self.center + s * self.width, self.lb, self.ub), 0.0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        w = np.maximum(self.width, 1e-12)
        lo = np.where(self.on, (self.lb - self.center) / w, np.inf).min(axis=-1)
        hi = np.where(self.on, (self.ub - self.center) / w, -np.inf).max(axis=-1)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        return lo - 1.0, hi + 1.0


@dataclass(frozen=True)
class PriceResponse:
    """Each running group's cost-minimising output at price ``s`` (per delivered kW)."""

    a: np.ndarray  # (G,)
    b: np.ndarray  # (G,)
    delivery: np.ndarray  # (G,)
    lb: np.ndarray  # (B, G)
    ub: np.ndarray  # (B, G)
    on: np.ndarray  # (B, G) bool

    def power(self, s: np.ndarray) -> np.ndarray:
        value = s * self.delivery - self.b  # marginal benefit minus marginal linear cost
        quad = np.divide(
            value, 2 * self.a, out=np.zeros(np.broadcast_shapes(value.shape, self.a.shape)), where=self.a > 0
        )
        linear = np.where(value > 0, self.ub, self.lb)
        p = np.where(self.a > 0, quad, linear)
        return np.where(self.on, np.clip(p, self.lb, self.ub), 0.0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        d = np.maximum(self.delivery, 1e-12)
        at_lb = (self.b + 2 * self.a * self.lb) / d
        at_ub = (self.b + 2 * self.a * self.ub) / d
        lo = np.where(self.on, at_lb, np.inf).min(axis=-1)
        hi = np.where(self.on, at_ub, -np.inf).max(axis=-1)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        return lo - 1.0, hi + 1.0


@dataclass(frozen=True)
class Balanced:
    """Balanced powers and imports for a batch, with what the search did."""

    power: np.ndarray  # (B, G)
    imports: np.ndarray  # (B, R)
    system_signal: np.ndarray  # (B,) the shared s (price λ or shift ν)
    region_signal: np.ndarray  # (B, R) each region's s_I
    feasible: np.ndarray  # (B,) bool: False when the commitment cannot meet the balances
    outer_iterations: int
    inner_iterations: int


class Reducer(Protocol):
    """The two sums the search needs, made pluggable so a distributed execution can replace
    them by message passing (``distributed_search.py``) while the search itself stays here."""

    def regional(self, power: np.ndarray) -> np.ndarray:
        """``(B, G)`` powers -> ``(B, R)`` delivered local supply per region."""

    def system(self, per_region: np.ndarray) -> np.ndarray:
        """``(B, R)`` per-region values -> ``(B,)`` their sum over regions."""


@dataclass(frozen=True)
class ExactSums:
    """Centralised reducer: plain matrix sums (the default)."""

    to_region: np.ndarray  # (G, R) delivered kW per region per unit decision

    def regional(self, power: np.ndarray) -> np.ndarray:
        return power @ self.to_region

    def system(self, per_region: np.ndarray) -> np.ndarray:
        return per_region.sum(-1)


States = State | Sequence[State]  # one state for every row, or one state per row


def demand_rows(problem: Problem, state: States) -> np.ndarray:
    """``(R,)`` demand of one state, or ``(B, R)`` for one state per row."""
    if isinstance(state, State):
        return problem.demand_vector(state)
    return np.array([problem.demand_vector(s) for s in state], dtype=float).reshape(len(state), -1)


def state_bounds(problem: Problem, state: States, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(lb, ub)`` of each group while on, ``(batch, G)`` (one state) or ``(len(states), G)``."""
    if not isinstance(state, State):
        batch = len(state)
        ub = np.array([problem.upper_bounds(s) for s in state], dtype=float).reshape(batch, -1)
    else:
        ub = np.broadcast_to(problem.upper_bounds(state), (batch, len(problem.groups)))
    lb = np.broadcast_to(problem.lower_bounds(), (batch, len(problem.groups)))
    return lb.copy(), ub.copy()


def balance(
    problem: Problem,
    state: States,
    response: Response,
    *,
    iterations: int = 60,
    reducer: Reducer | None = None,
) -> Balanced:
    """Find powers and imports meeting every regional balance, ``Σ T = 0`` and the CS limits.

    Infeasible rows (this commitment cannot serve some region within its CS limit) come back
    with ``feasible=False`` and the closest powers the search reached. ``reducer`` supplies the
    regional and system sums (default: exact matrix sums); every sum the search takes goes
    through it, so a message-passing reducer sees the whole communication of the search.
    """
    demand = demand_rows(problem, state)  # (R,) or (B, R)
    cs = problem.cs_max  # (R,)
    sums = reducer if reducer is not None else ExactSums(problem.incidence.T)
    lo, hi = response.bracket()  # (B,)

    def supply(s_groups: np.ndarray) -> np.ndarray:
        return sums.regional(response.power(s_groups))  # (B, R)

    def net_import(s: np.ndarray) -> np.ndarray:
        return np.clip(demand - supply(s[:, None]), -cs, cs)  # (B, R)

    # --- outer level: one system signal so clipped imports sum to zero -------------------
    s_lo, s_hi = lo.copy(), hi.copy()
    t_lo, t_hi = net_import(s_lo), net_import(s_hi)
    feasible = (sums.system(t_lo) >= -1e-9) & (sums.system(t_hi) <= 1e-9)
    for _ in range(iterations):
        mid = 0.5 * (s_lo + s_hi)
        t_mid = net_import(mid)
        up = sums.system(t_mid) > 0  # still importing on balance: raise the signal
        s_lo, t_lo = np.where(up, mid, s_lo), np.where(up[:, None], t_mid, t_lo)
        s_hi, t_hi = np.where(up, s_hi, mid), np.where(up[:, None], t_hi, t_mid)
    excess_lo, excess_hi = sums.system(t_lo), sums.system(t_hi)
    theta = _fraction(excess_lo, excess_hi)
    imports = t_lo + theta[:, None] * (t_hi - t_lo)
    system = s_lo + theta * (s_hi - s_lo)

    # --- inner level: each region's own signal so local supply = demand − import ----------
    target = demand - imports  # (B, R)
    region_of = problem.group_region
    r_lo = np.repeat(lo[:, None], len(cs), axis=1)
    r_hi = np.repeat(hi[:, None], len(cs), axis=1)
    p_lo, p_hi = response.power(r_lo[:, region_of]), response.power(r_hi[:, region_of])
    short = sums.regional(p_hi) < target - 1e-9
    surplus = sums.regional(p_lo) > target + 1e-9
    feasible &= ~(short | surplus).any(-1)
    for _ in range(iterations):
        mid = 0.5 * (r_lo + r_hi)
        p_mid = response.power(mid[:, region_of])
        up = sums.regional(p_mid) < target
        r_lo, r_hi = np.where(up, mid, r_lo), np.where(up, r_hi, mid)
        p_lo = np.where(up[:, region_of], p_mid, p_lo)
        p_hi = np.where(up[:, region_of], p_hi, p_mid)
    got_lo, got_hi = sums.regional(p_lo), sums.regional(p_hi)
    frac = _fraction(target - got_lo, target - got_hi)  # (B, R)
    power = p_lo + frac[:, region_of] * (p_hi - p_lo)
    return Balanced(
        power=power,
        imports=demand - sums.regional(power),
        system_signal=system,
        region_signal=r_lo + frac * (r_hi - r_lo),
        feasible=feasible,
        outer_iterations=iterations,
        inner_iterations=iterations,
    )


def _fraction(at_lo: np.ndarray, at_hi: np.ndarray) -> np.ndarray:
    """θ in [0, 1] with ``at_lo + θ (at_hi − at_lo) = 0`` (for a bracket with a sign change)."""
    span = at_lo - at_hi
    theta = np.divide(at_lo, span, out=np.zeros_like(at_lo), where=np.abs(span) > 1e-15)
    return np.clip(theta, 0.0, 1.0)
