"""Reading and validating state files (CSV: ``state, d_<region>..., v_<V2G group>...``)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .errors import InputError
from .problem import Problem, State


def expected_columns(problem: Problem) -> list[str]:
    return ["state"] + [f"d_{r}" for r in problem.region_names] + [f"v_{g}" for g in problem.v2g_names]


def load_states(path: str | Path, problem: Problem) -> list[State]:
    """Load the states of a CSV file, checked against ``problem``'s regions and V2G groups."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file", "not found", "give the path of an existing .csv state file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, "CSV", f"cannot be read ({str(exc).splitlines()[0]})",
                         f"write a CSV with header {','.join(expected_columns(problem))}") from None
    return states_from_frame(frame, problem, source=str(path))


def states_from_frame(frame: pd.DataFrame, problem: Problem, source: str = "<states>") -> list[State]:
    """Validate a table of states (string or numeric cells) and build :class:`State` objects."""
    want = expected_columns(problem)
    header = [str(c).strip() for c in frame.columns]
    missing = [c for c in want if c not in header]
    extra = [c for c in header if c not in want]
    if extra:
        raise InputError(source, f"column {extra[0]!r}", f"does not match problem {problem.name!r}",
                         f"the header must be {','.join(want)}")
    if missing:
        raise InputError(source, f"column {missing[0]!r}", "missing", f"the header must be {','.join(want)}")
    if frame.empty:
        raise InputError(source, "rows", "no states in the file", "add at least one row")
    frame = frame.copy()
    frame.columns = header
    states: list[State] = []
    seen: set[str] = set()
    for row_no, row in enumerate(frame.itertuples(index=False), start=2):
        row = dict(zip(header, row))
        label = str(row["state"]).strip()
        if not label:
            raise InputError(source, f"line {row_no}, column 'state'", "empty label", "give every state a label")
        if label in seen:
            raise InputError(source, f"line {row_no}, state {label!r}", "label used twice", "give every state a unique label")
        seen.add(label)

        def value(col: str) -> float:
            raw = row[col]
            try:
                v = float(raw)
            except (TypeError, ValueError):
                v = math.nan
            if not math.isfinite(v) or v < 0:
                raise InputError(source, f"line {row_no}, state {label!r}, column {col!r}",
                                 f"{raw!r} is not a number >= 0", "write a non-negative power in kW")
            return v

        states.append(State(
            label=label,
            demand={r: value(f"d_{r}") for r in problem.region_names},
            v2g_available={g: value(f"v_{g}") for g in problem.v2g_names},
        ))
    return states


def states_to_frame(states: list[State], problem: Problem) -> pd.DataFrame:
    """Inverse of :func:`states_from_frame`, for writing generated days."""
    rows = [{"state": s.label, **{f"d_{r}": s.demand[r] for r in problem.region_names},
             **{f"v_{g}": s.v2g_available[g] for g in problem.v2g_names}} for s in states]
    return pd.DataFrame(rows, columns=expected_columns(problem))
