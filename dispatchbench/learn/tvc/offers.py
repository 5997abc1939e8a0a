"""The learned price response: every agent's offer curve, answered for all agents at once.

At a shared price ``λ`` an agent offers ``argmin_P C_i(P) − λ·delivered(P)``: its learned marginal
cost (``cost_network.ConvexCost``) inverted. :class:`LearnedPriceResponse` has the interface of
``balancing.PriceResponse`` (``power(s)``, ``bracket()``), so the hierarchical distributed
binary search meets every balance and CS limit exactly with learned offers instead of true costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OfferBook:
    """Every agent's learned offer curve (power <-> price per delivered kW) in one flat table.

    Each agent's table is shifted onto its own stretch of one increasing axis, so one
    ``np.interp`` answers all agents at once; the numbers in each stretch are that agent's own.
    """

    power_keys: np.ndarray  # agent g's power grid, shifted by g·power_span
    price_keys: np.ndarray  # agent g's prices, shifted by g·price_span
    power_lo: np.ndarray  # (G,) first grid power
    price_lo: np.ndarray  # (G,) lowest price
    price_hi: np.ndarray  # (G,) highest price
    power_span: float
    price_span: float

    @classmethod
    def build(cls, tables: Sequence[tuple[np.ndarray, np.ndarray]]) -> OfferBook:
        p_span = max(float(p[-1] - p[0]) for p, _ in tables) + 1.0
        m_span = max(float(m[-1] - m[0]) for _, m in tables) + 1.0
        return cls(
            power_keys=np.concatenate([p - p[0] + g * p_span for g, (p, _) in enumerate(tables)]),
            price_keys=np.concatenate([m - m[0] + g * m_span for g, (_, m) in enumerate(tables)]),
            power_lo=np.array([p[0] for p, _ in tables]),
            price_lo=np.array([m[0] for _, m in tables]),
            price_hi=np.array([m[-1] for _, m in tables]),
            power_span=p_span,
            price_span=m_span,
        )

    @property
    def offset(self) -> np.ndarray:
        return np.arange(len(self.price_lo), dtype=float)

    def power_at(self, price: np.ndarray) -> np.ndarray:
        """Each agent's offer (kW) at ``price`` ``(B, G)``: its learned marginal cost inverted."""
        key = np.clip(price, self.price_lo, self.price_hi) - self.price_lo + self.offset * self.price_span
        return np.interp(key, self.price_keys, self.power_keys) - self.offset * self.power_span + self.power_lo

    def price_at(self, power: np.ndarray) -> np.ndarray:
        """Each agent's learned marginal price at ``power`` ``(B, G)``."""
        top = self.power_lo + self.power_span - 1.0
        key = np.clip(power, self.power_lo, top) - self.power_lo + self.offset * self.power_span
        return np.interp(key, self.power_keys, self.price_keys) - self.offset * self.price_span + self.price_lo


@dataclass(frozen=True)
class LearnedPriceResponse:
    """Each running agent's offer at price ``s``, from its learned marginal-cost table.

    Same interface as ``balancing.PriceResponse`` (``power(s)``, ``bracket()``), so the
    hierarchical distributed search meets every balance and CS limit exactly. Offers never
    decrease in ``s`` and always lie in the agent's own range (``0`` when off).
    """

    book: OfferBook
    lb: np.ndarray  # (B, G)
    ub: np.ndarray  # (B, G)
    on: np.ndarray  # (B, G) bool

    def power(self, s: np.ndarray) -> np.ndarray:
        p = self.book.power_at(np.broadcast_to(s, self.lb.shape))
        return np.where(self.on, np.clip(p, self.lb, self.ub), 0.0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.where(self.on, self.book.price_at(self.lb), np.inf).min(axis=-1)
        hi = np.where(self.on, self.book.price_at(self.ub), -np.inf).max(axis=-1)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        return lo - 1.0, hi + 1.0
