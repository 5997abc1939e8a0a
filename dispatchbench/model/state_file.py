"""Reading and validating state files (CSV: ``state, d_<region>..., v_<V2G group>...``)."""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dispatchbench.model.errors import InputError
from dispatchbench.model.paths import check_path, exists, regular_input
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import MAX_POWER_KW

# Labels are times and dates as often as names ("08:00", "2024-06-01 08:15"), so they allow
# ".", ":", "+" and inner spaces on top of the names' set; never "/", "<", quotes, tabs or
# newlines, which would break a file name, a report or a one-line message (docs/model.md).
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.:+-]+(?: [A-Za-z0-9_.:+-]+)*")
MAX_LABEL = 64


def expected_columns(problem: Problem) -> list[str]:
    return ["state"] + [f"d_{r}" for r in problem.region_names] + [f"v_{g}" for g in problem.v2g_names]


# Limits (docs/model.md, "Limits"): a year of 15-minute intervals is 35,040 rows and the generator
# writes at most 100,000 random states; past them a file is a mistake or an attack, and reading
# it would take minutes. The file is streamed, so an oversized one is refused as soon as a limit
# is crossed, not after it has been read.
MAX_STATES = 100_000
MAX_CELLS = 20_000_000  # rows x columns (100,000 states of a 128-region problem are ~33 million)
MAX_STATE_BYTES = 512 * 2**20
# The one number format of a state cell: ASCII digits, an optional sign, point and exponent.
# Python's float() also takes "1_0", "１２" (full-width digits), "nan" and "inf"; none of those is
# what a spreadsheet writes, so each is refused with the cell named.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def load_states(path: str | Path, problem: Problem) -> list[State]:
    """Load the states of a CSV file, checked against ``problem``'s regions and V2G groups.

    The file is streamed through the strict ``csv`` module rather than ``pandas.read_csv``:
    pandas silently turns a row with one field too many into an index, renames a repeated column
    to ``d_A.1`` and invents ``Unnamed: 7`` for a trailing comma; each of those must instead be
    one message naming the line or column. Streaming also refuses a file past the limits
    (:data:`MAX_STATES`, :data:`MAX_CELLS`, :data:`MAX_STATE_BYTES`) at the row that crosses them.
    """
    if not isinstance(problem, Problem):  # the Python API: the states are read against a Problem
        raise InputError("problem", repr(problem)[:80], "is not a Problem", "give the Problem load_problem returned")
    path = check_path(path)
    if not exists(path):
        raise InputError(path, "file", "not found", "give the path of an existing .csv state file")
    regular_input(path, "file", MAX_STATE_BYTES)
    reader = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a spreadsheet's byte-order mark
            reader = csv.reader(handle, skipinitialspace=True, strict=True)
            return _read_rows(reader, problem, str(path))
    except UnicodeDecodeError:
        raise InputError(path, "file", "is not UTF-8 text", "save the state file as UTF-8 CSV") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise InputError(path, f"line {line}", f"is not valid CSV ({exc})", "fix the quoting on that line") from None
    except OSError as exc:
        raise InputError(
            path, "file", f"cannot be read ({exc.strerror})", "check the path and its permissions"
        ) from None


def _read_rows(reader: Any, problem: Problem, source: str) -> list[State]:
    want = expected_columns(problem)
    header: list[str] | None = None
    states: list[State] = []
    seen: set[str] = set()
    index: dict[str, int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = _check_header([cell.strip() for cell in row], problem, source)
            index = {name: i for i, name in enumerate(header)}
            fast = _FastRows(index, problem)
            continue
        line_no = reader.line_num
        if len(row) != len(header):
            raise InputError(
                source,
                f"line {line_no}",
                f"has {len(row)} fields but the header has {len(header)}",
                "give every row exactly one value per header column",
            )
        if len(states) >= MAX_STATES or (len(states) + 1) * len(header) > MAX_CELLS:
            raise InputError(
                source,
                f"line {line_no}",
                f"the file holds more than {min(MAX_STATES, MAX_CELLS // len(header)):,} states "
                f"(limits: {MAX_STATES:,} states, {MAX_CELLS:,} cells)",
                "split it into several state files (docs/model.md, limits)",
            )
        state = fast.state(row, seen)
        if state is None:  # something is wrong: the checked path names the cell, or raises
            state = _state(lambda col: row[index[col]], problem, source, line_no, seen)  # noqa: B023
        states.append(state)
    if header is None:
        raise InputError(source, "file", "is empty", f"write the header {','.join(want)} and one row per state")
    if not states:
        raise InputError(source, "rows", "no states in the file", "add at least one row")
    return states


_ROW_OF_NUMBERS = re.compile(rf"\s*{NUMBER.pattern}\s*(?:,\s*{NUMBER.pattern}\s*)*", re.ASCII)


class _FastRows:
    """Rows checked a row at a time (one regular expression over the row's numbers, one
    ``min``/``max``), so 100,000 states load in about a second: :meth:`state` gives the row's
    :class:`State` when every check passes and ``None`` when one fails, and :func:`_state` then
    finds the cell and says why."""

    def __init__(self, index: dict[str, int], problem: Problem) -> None:
        self.label = index["state"]
        self.regions, self.v2g = problem.region_names, problem.v2g_names
        columns = [index[f"d_{r}"] for r in self.regions] + [index[f"v_{g}"] for g in self.v2g]
        self.cells = (lambda row: [row[columns[0]]]) if len(columns) == 1 else operator.itemgetter(*columns)
        self.split = len(self.regions)

    def state(self, row: list[str], seen: set[str]) -> State | None:
        label = row[self.label].strip()
        if len(label) > MAX_LABEL or label in seen or not LABEL_PATTERN.fullmatch(label):
            return None
        cells = self.cells(row)
        if not _ROW_OF_NUMBERS.fullmatch(",".join(cells)):
            return None
        try:  # a quoted "1,000" passes the row's expression (its comma reads as a separator)
            values = [float(c) for c in cells]
        except ValueError:
            return None
        if not (min(values) >= 0.0 and max(values) <= MAX_POWER_KW):  # 1e999 is inf: caught here
            return None
        seen.add(label)
        return State(label, dict(zip(self.regions, values)), dict(zip(self.v2g, values[self.split :])))


def _check_header(header: list[str], problem: Problem, source: str) -> list[str]:
    want = expected_columns(problem)
    if len(header) == 1 and (sep := next((c for c in ";\t|" if c in header[0]), None)):
        raise InputError(
            source,
            "header",
            f"columns are separated by {sep!r}, not commas",
            f"save the file as comma-separated values with the header {','.join(want)}",
        )
    for i, name in enumerate(header):
        if not name:
            raise InputError(
                source, f"header column {i + 1}", "has no name (a stray comma?)", f"the header must be {','.join(want)}"
            )
        if name in header[:i]:
            raise InputError(
                source, f"column {name!r}", "appears twice in the header", f"the header must be {','.join(want)}"
            )
    _check_columns(header, want, problem, source)
    return header


def _check_columns(header: list[str], want: list[str], problem: Problem, source: str) -> None:
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


def states_from_frame(
    frame: pd.DataFrame, problem: Problem, source: str = "<states>", line_numbers: Sequence[int] | None = None
) -> list[State]:
    """Validate a table of states (string or numeric cells) and build :class:`State` objects.

    ``line_numbers`` are the file lines of the rows, for messages (default: row i on line i + 2).
    """
    want = expected_columns(problem)
    header = [str(c).strip() for c in frame.columns]
    _check_columns(header, want, problem, source)
    if frame.empty:
        raise InputError(source, "rows", "no states in the file", "add at least one row")
    if len(frame) > MAX_STATES or len(frame) * len(header) > MAX_CELLS:
        raise InputError(
            source, "rows", f"{len(frame):,} states are over the limits", "give at most 100,000 states at a time"
        )
    if line_numbers is None:
        line_numbers = range(2, len(frame) + 2)
    seen: set[str] = set()
    states: list[State] = []
    for row_no, values in zip(line_numbers, frame.itertuples(index=False)):
        row = dict(zip(header, values))
        states.append(_state(row.__getitem__, problem, source, row_no, seen))
    return states


def _state(cell: Callable[[str], Any], problem: Problem, source: str, row_no: int, seen: set[str]) -> State:
    """One row's :class:`State`, every cell checked; ``cell(column)`` gives the raw value."""
    label = str(cell("state")).strip()
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
        raw = cell(col)
        where = f"line {row_no}, state {label!r}, column {col!r}"
        if isinstance(raw, str):
            text = raw.strip()
            if not NUMBER.fullmatch(text):
                raise InputError(
                    source,
                    where,
                    f"{text[:40]!r} is not a number >= 0 in the file's number format",
                    "write a plain decimal number in kW: ASCII digits 0-9, an optional point and exponent "
                    "(e.g. 12.5 or 1.2e3); no '_', thousands separators or other digits (docs/model.md)",
                )
            v = float(text)
        elif isinstance(raw, bool) or not isinstance(raw, (int, float)):
            v = math.nan
        else:
            v = float(raw)
        if not math.isfinite(v) or v < 0:
            raise InputError(
                source, where, f"{str(raw)[:40]!r} is not a number >= 0", "write a non-negative power in kW"
            )
        if v > MAX_POWER_KW:
            raise InputError(
                source,
                where,
                f"{v:g} kW is beyond what the solvers can represent",
                f"use at most {MAX_POWER_KW:g} kW (docs/model.md, limits)",
            )
        return v

    return State(
        label=label,
        demand={r: value(f"d_{r}") for r in problem.region_names},
        v2g_available={g: value(f"v_{g}") for g in problem.v2g_names},
    )


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
