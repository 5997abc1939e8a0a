"""What one batch of decisions cost in communication, per state: messages, clearings, hearings, returns.

A batch decides many states at once, but each state runs the protocol on its own, so every count
is kept per state: a state charged for a clearing is charged only when *its* plan was cleared
(move rounds and repairs clear some states of the batch and not others). Counts are exact
integers; the message counts of the search itself come from ``distributed_search``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Rows = int | np.ndarray | slice  # one state, a boolean mask over the batch, an index array, or all (slice(None))
EVERY = slice(None)


@dataclass
class MessageLedger:
    """Per state of a batch (each ``(B,)``, integers): scalars sent, clearings run, hearings
    (decision points of the move rounds, where every agent heard its features and a gain maximum)
    and returns (the move rounds went back to a plan they had been at, ``rounds.go_back``)."""

    messages: np.ndarray
    clearings: np.ndarray
    hearings: np.ndarray
    returns: np.ndarray

    @classmethod
    def open(cls, batch: int) -> MessageLedger:
        return cls(*(np.zeros(batch, dtype=np.int64) for _ in range(4)))

    def send(self, rows: Rows, messages: int) -> None:
        """``rows`` each sent ``messages`` scalars (beyond any clearing)."""
        self.messages[rows] += messages

    def cleared(self, rows: Rows, messages: int, clearings: int = 1) -> None:
        """``rows`` each ran ``clearings`` clearings costing ``messages`` scalars in all."""
        self.messages[rows] += messages
        self.clearings[rows] += clearings

    def heard(self, rows: Rows, messages: int) -> None:
        """``rows`` each reached one move decision point costing ``messages`` scalars."""
        self.messages[rows] += messages
        self.hearings[rows] += 1

    def returned(self, rows: Rows, messages: int) -> None:
        """``rows`` each went back to an earlier plan of the move rounds, the choice costing
        ``messages`` scalars."""
        self.messages[rows] += messages
        self.returns[rows] += 1

    def add(self, rows: np.ndarray, other: MessageLedger) -> None:
        """Charge ``rows`` (an index array) what ``other``, a ledger of those states alone, counted."""
        for mine, theirs in (
            (self.messages, other.messages),
            (self.clearings, other.clearings),
            (self.hearings, other.hearings),
            (self.returns, other.returns),
        ):
            mine[rows] += theirs
