"""Every agent's own cost curve: measured from its own bills, convex by construction, vectorised.

An agent offers power at a price from its own marginal-cost curve (``offers.py``). It never reads
a cost coefficient: it *meters* its own bill at a few outputs across its own range — a one-off
calibration, the station's own measurement (:func:`calibrate`) — and fits a curve that is convex
in its own power, so its marginal cost never decreases and its offers are monotone in the price,
which the binary price search needs.

The curve, in the agent's normalised power ``x = P / p_max`` and in units of its own bill at full
output (``scale``)::

    C(x) = h + c₁·x + q·x² + Σ_k w_k·softplus(β(x − t_k))/β,   q, w_k ≥ 0

(one hidden layer of an input-convex network with fixed knots ``t_k``, plus a non-negative
quadratic unit). It is *linear in its coefficients*, so fitting it to the bills is a
non-negative least-squares problem (``h`` and ``c₁`` free): exact, in one shot, for all agents
of any instance — what an any-size model needs on an instance it has never seen (the policy is
zero-shot; the curve is each station's own measurement, counted in ``calibration_bills``).
All agents' curves are one ``(G, K)`` array, so every price, cost and offer is one product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from dispatchbench.model.evaluate import group_costs
from dispatchbench.model.problem import Problem

FREE = 2  # the first two coefficients (h, c₁) may have either sign; the rest are ≥ 0


def knots_of(count: int) -> tuple[np.ndarray, float]:
    """``count`` knots evenly inside (0, 1) and the ramps' sharpness ``β``."""
    return np.linspace(0.0, 1.0, count + 2)[1:-1], 4.0 * (count + 1)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def basis(x: np.ndarray, knots: np.ndarray, beta: float) -> np.ndarray:
    """``(..., K)`` the curve's basis at normalised powers ``x``: 1, x, x², the ramps."""
    ramps = _softplus(beta * (x[..., None] - knots)) / beta
    return np.concatenate([np.ones_like(x)[..., None], x[..., None], (x**2)[..., None], ramps], -1)


def basis_slope(x: np.ndarray, knots: np.ndarray, beta: float) -> np.ndarray:
    """``(..., K)`` the basis' derivative in ``x``."""
    steps = _sigmoid(beta * (x[..., None] - knots))
    return np.concatenate([np.zeros_like(x)[..., None], np.ones_like(x)[..., None], 2 * x[..., None], steps], -1)


@dataclass(frozen=True)
class CostCurves:
    """Every agent's fitted curve: ``coef (G, K)`` over :func:`basis`, ``scale (G,)`` its own bill
    at full output (the unit its curve, its margin and its training targets are read in), and
    its ratings (``p_low``, ``p_max``, ``delivery``), which define where the curve is used."""

    coef: np.ndarray  # (G, K)
    scale: np.ndarray  # (G,)
    p_low: np.ndarray  # (G,) least output when running
    p_max: np.ndarray  # (G,)
    delivery: np.ndarray  # (G,) delivered kW per kW of output
    knot_count: int

    @property
    def knots(self) -> tuple[np.ndarray, float]:
        return knots_of(self.knot_count)

    def cost(self, power: np.ndarray) -> np.ndarray:
        """``(B, G)`` each agent's own estimate of its bill (cost units) at ``power`` ``(B, G)``."""
        knots, beta = self.knots
        x = np.asarray(power, dtype=float) / self.p_max
        return np.einsum("bgk,gk->bg", basis(x, knots, beta), self.coef) * self.scale

    def marginal(self, x: np.ndarray) -> np.ndarray:
        """``(G, T)`` ``∂C/∂x`` (scale units) at normalised powers ``x`` ``(G, T)``: non-decreasing."""
        knots, beta = self.knots
        return np.einsum("gtk,gk->gt", basis_slope(x, knots, beta), self.coef)

    def price_table(self, points: int) -> tuple[np.ndarray, np.ndarray]:
        """``(power grid, price per delivered kW)``, each ``(G, points)``: every agent's learned
        marginal cost over its running range, strictly increasing (for the inversion)."""
        grid = np.linspace(self.p_low, self.p_max, points, axis=-1)  # (G, points)
        price = (
            self.marginal(grid / self.p_max[:, None])
            * (self.scale / self.p_max / np.maximum(self.delivery, 1e-12))[:, None]
        )
        return grid, price + 1e-9 * np.arange(points)

    def rows(self, index: np.ndarray) -> CostCurves:
        """The curves of agents ``index`` (in that order)."""
        return CostCurves(
            self.coef[index],
            self.scale[index],
            self.p_low[index],
            self.p_max[index],
            self.delivery[index],
            self.knot_count,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "coef": self.coef.tolist(),
            "scale": self.scale.tolist(),
            "p_low": self.p_low.tolist(),
            "p_max": self.p_max.tolist(),
            "delivery": self.delivery.tolist(),
            "knot_count": self.knot_count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostCurves:
        return cls(
            np.asarray(data["coef"], dtype=float),
            np.asarray(data["scale"], dtype=float),
            np.asarray(data["p_low"], dtype=float),
            np.asarray(data["p_max"], dtype=float),
            np.asarray(data["delivery"], dtype=float),
            int(data["knot_count"]),
        )


def calibration_powers(problem: Problem, points: int) -> np.ndarray:
    """``(G, points)`` the outputs each agent runs at to meter its own bill: evenly over its own
    running range ``[p_min, p_max]`` (ratings only)."""
    return np.linspace(problem.lower_bounds(), problem.p_max, points, axis=-1)


def meter(problem: Problem, power: np.ndarray) -> np.ndarray:
    """``(G, n)`` each agent's own bill while running at ``power`` ``(G, n)``: the station's meter
    (the own-cost term of its reward). The only place a calibration touches the costs; what
    comes out is numbers on the agent's own bills, never a coefficient."""
    on = np.ones(power.T.shape, dtype=bool)
    return group_costs(problem, on, power.T).T


def fit_curves(problem: Problem, power: np.ndarray, bills: np.ndarray, knot_count: int) -> CostCurves:
    """Each agent's curve fitted to its own bills ``(G, n)`` at ``power`` ``(G, n)`` by
    non-negative least squares (``h``, ``c₁`` free: each split into two non-negative parts).
    The unit ``scale`` is the agent's bill at its highest metered output (at least 1)."""
    knots, beta = knots_of(knot_count)
    p_max = problem.p_max.astype(float)
    scale = np.maximum(bills[np.arange(len(bills)), power.argmax(-1)], 1.0)
    coef = np.zeros((len(power), 3 + knot_count))
    for i in range(len(power)):
        design = basis(power[i] / p_max[i], knots, beta)
        split = np.concatenate([design[:, :FREE], -design[:, :FREE], design[:, FREE:]], 1)
        solution, _ = nnls(split, bills[i] / scale[i], maxiter=50 * split.shape[1])
        coef[i, :FREE] = solution[:FREE] - solution[FREE : 2 * FREE]
        coef[i, FREE:] = solution[2 * FREE :]
    return CostCurves(
        coef, scale, problem.lower_bounds().astype(float), p_max, problem.delivery.astype(float), knot_count
    )


def calibrate(problem: Problem, points: int, knot_count: int) -> CostCurves:
    """Every agent meters its own bill at ``points`` outputs across its range and fits its curve."""
    power = calibration_powers(problem, points)
    return fit_curves(problem, power, meter(problem, power), knot_count)
