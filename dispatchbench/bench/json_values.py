"""JSON for the values plugins put in answers (NumPy scalars and arrays).

Its own small module so that the per-cell child can turn answers into JSON without importing
the results store (and pandas with it: a second or more of start-up per cell)."""

from __future__ import annotations

from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
    """JSON for NumPy scalars and arrays (plugins put them in ``info``); anything else as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
