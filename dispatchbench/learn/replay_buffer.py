"""A fixed-size experience replay buffer of named NumPy fields (paper IV.B.3).

Learners store whatever each transition holds (observations, actions, rewards...) under names
they choose; the buffer only keeps the newest ``capacity`` rows and draws uniform mini-batches
from its own seeded generator, and can be saved in a checkpoint so training resumes exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ReplayBuffer:
    """Ring buffer: ``fields`` maps a name to the shape of one row of that field."""

    def __init__(
        self, capacity: int, fields: dict[str, tuple[int, ...]], seed: int, dtypes: dict[str, Any] | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError("replay buffer capacity must be at least 1")
        dtypes = dtypes or {}
        self.capacity = capacity
        self.data = {
            name: np.zeros((capacity, *shape), dtype=dtypes.get(name, np.float32)) for name, shape in fields.items()
        }
        self.size = 0
        self.cursor = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, **batch: np.ndarray) -> None:
        """Append rows: each field shaped ``(n, *shape)``, or ``shape`` for a single row."""
        if set(batch) != set(self.data):
            raise KeyError(f"replay buffer fields are {sorted(self.data)}, got {sorted(batch)}")
        rows = {k: np.asarray(v) for k, v in batch.items()}
        rows = {k: v[None] if v.shape == self.data[k].shape[1:] else v for k, v in rows.items()}
        n = {len(v) for v in rows.values()}
        if len(n) != 1:
            raise ValueError(f"fields have different numbers of rows: { {k: len(v) for k, v in rows.items()} }")
        count = n.pop()
        index = (self.cursor + np.arange(count)) % self.capacity
        for k, v in rows.items():
            self.data[k][index] = v
        self.cursor = int((self.cursor + count) % self.capacity)
        self.size = int(min(self.size + count, self.capacity))

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """A uniform mini-batch (with replacement) of stored rows."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self.rng.integers(0, self.size, size=batch_size)
        return {k: v[index] for k, v in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "size": self.size,
            "cursor": self.cursor,
            "data": {k: v[: self.size].copy() for k, v in self.data.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpoint buffer capacity {state['capacity']} != {self.capacity}")
        for k, v in state["data"].items():
            self.data[k][: len(v)] = v
        self.size, self.cursor = int(state["size"]), int(state["cursor"])
        self.rng.bit_generator.state = state["rng"]
