"""Reading and validating state files (CSV: ``state, d_<region>..., v_<V2G group>...``)."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import MAX_POWER_KW

# Labels are times and dates as often as names ("08:00", "2024-06-01 08:15"), so they allow
# ".", ":", "+" and inner spaces on top of the names' set; never "/", "<", quotes, tabs or
# newlines, which would break a file name, a report or a one-line message (docs/model.md).
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.:+-]+(?: [A-Za-z0-9_.:+-]+)*")
MAX_LABEL = 64


def expected_columns(problem: Problem) -> list[str]:
    return ["state"] + [f"d_{r}" for r in problem.region_names] + [f"v_{g}" for g in problem.v2g_names]


def load_states(path: str | Path, problem: Problem) -> list[State]:
    """Load the states of a CSV file, checked against ``problem``'s regions and V2G groups.

    The file is split with the strict ``csv`` module rather than ``pandas.read_csv``: pandas
    silently turns a row with one field too many into an index, renames a repeated column to
    ``d_A.1`` and invents ``Unnamed: 7`` for a trailing comma; each of those must instead be
    one message naming the line or column.
    """
    path = Path(path)
    want = ",".join(expected_columns(problem))
    if not path.is_file():
        raise InputError(path, "file", "not found", "give the path of an existing .csv state file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not a column name
    except UnicodeDecodeError:
        raise InputError(path, "file", "is not UTF-8 text", "save the state file as UTF-8 CSV") from None
    except OSError as exc:
        raise InputError(
            path, "file", f"cannot be read ({exc.strerror})", "check the path and its permissions"
        ) from None
    try:
        reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
        lines = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise InputError(
            path, f"line {reader.line_num}", f"is not valid CSV ({exc})", "fix the quoting on that line"
        ) from None
    if not lines:
        raise InputError(path, "file", "is empty", f"write the header {want} and one row per state")
    header = [cell.strip() for cell in lines[0][1]]
    if len(header) == 1 and (sep := next((c for c in ";\t|" if c in header[0]), None)):
        raise InputError(
            path,
            "header",
            f"columns are separated by {sep!r}, not commas",
            f"save the file as comma-separated values with the header {want}",
        )
    for i, name in enumerate(header):
        if not name:
            raise InputError(
                path, f"header column {i + 1}", "has no name (a stray comma?)", f"the header must be {want}"
            )
        if name in header[:i]:
            raise InputError(path, f"column {name!r}", "appears twice in the header", f"the header must be {want}")
    for line_no, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(
                path,
                f"line {line_no}",
                f"has {len(row)} fields but the header has {len(header)}",
                "give every row exactly one value per header column",
            )
    frame = pd.DataFrame([row for _, row in lines[1:]], columns=header, dtype=str)
    return states_from_frame(frame, problem, source=str(path), line_numbers=[n for n, _ in lines[1:]])


def states_from_frame(
    frame: pd.DataFrame, problem: Problem, source: str = "<states>", line_numbers: Sequence[int] | None = None
) -> list[State]:
    """Validate a table of states (string or numeric cells) and build :class:`State` objects.

    ``line_numbers`` are the file lines of the rows, for messages (default: row i on line i + 2).
    """
    want = expected_columns(problem)
    header = [str(c).strip() for c in frame.columns]
    missing = [c for c in want if c not in header]
    extra = [c for c in header if c not in want]
    if extra:
        raise InputError(
            source,
            f"column {extra[0]!r}",
            f"does not match problem {problem.name!r}",
            f"the header must be {','.join(want)}",
        )
    if missing:
        raise InputError(source, f"column {missing[0]!r}", "missing", f"the header must be {','.join(want)}")
    if frame.empty:
        raise InputError(source, "rows", "no states in the file", "add at least one row")
    frame = frame.copy()
    frame.columns = header
    states: list[State] = []
    seen: set[str] = set()
    if line_numbers is None:
        line_numbers = range(2, len(frame) + 2)
    for row_no, row in zip(line_numbers, frame.itertuples(index=False)):
        row = dict(zip(header, row))
        label = str(row["state"]).strip()
        if not label:
            raise InputError(source, f"line {row_no}, column 'state'", "empty label", "give every state a label")
        if len(label) > MAX_LABEL or not LABEL_PATTERN.fullmatch(label):
            bad = next((ch for ch in label if not re.fullmatch(r"[A-Za-z0-9_.:+ -]", ch)), None)
            what = (
                f"contains {bad!r}"
                if bad is not None
                else f"is longer than {MAX_LABEL} characters"
                if len(label) > MAX_LABEL
                else "has repeated spaces"
            )
            raise InputError(
                source,
                f"line {row_no}, column 'state'",
                f"label {label[:40]!r} {what}",
                f"use up to {MAX_LABEL} letters, digits, single spaces and - _ . : + only",
            )
        if label in seen:
            raise InputError(
                source, f"line {row_no}, state {label!r}", "label used twice", "give every state a unique label"
            )
        seen.add(label)

        def value(col: str) -> float:
            raw = row[col]
            try:
                v = float(raw)
            except (TypeError, ValueError):
                v = math.nan
            if not math.isfinite(v) or v < 0:
                raise InputError(
                    source,
                    f"line {row_no}, state {label!r}, column {col!r}",
                    f"{str(raw)[:40]!r} is not a number >= 0",
                    "write a non-negative power in kW",
                )
            if v > MAX_POWER_KW:
                raise InputError(
                    source,
                    f"line {row_no}, state {label!r}, column {col!r}",
                    f"{v:g} kW is beyond what the solvers can represent",
                    f"use at most {MAX_POWER_KW:g} kW (docs/model.md, limits)",
                )
            return v

        states.append(
            State(
                label=label,
                demand={r: value(f"d_{r}") for r in problem.region_names},
                v2g_available={g: value(f"v_{g}") for g in problem.v2g_names},
            )
        )
    return states


def states_to_frame(states: list[State], problem: Problem) -> pd.DataFrame:
    """Inverse of :func:`states_from_frame`, for writing generated days."""
    rows = [
        {
            "state": s.label,
            **{f"d_{r}": s.demand[r] for r in problem.region_names},
            **{f"v_{g}": s.v2g_available[g] for g in problem.v2g_names},
        }
        for s in states
    ]
    return pd.DataFrame(rows, columns=expected_columns(problem))
