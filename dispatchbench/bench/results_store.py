"""The results of a run on disk: an append-only JSON-lines log and the Parquet table built from it.

``rows.jsonl`` is the source of truth: every finished row is appended, flushed and fsynced
before the next state starts, so Ctrl-C or even SIGKILL loses nothing already computed.
``results.parquet`` (the one long table users and ``dispatchbench table`` read) is rebuilt
from it after every cell and at the end of a run; it is a view, never edited in place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.model.errors import InputError
from dispatchbench.bench.run_metadata import METADATA_COLUMNS

ROWS_FILE = "rows.jsonl"
REPRODUCE_FILE = "reproduce.json"  # what a reproduction ran and how long it took, beside its rows
PARQUET_FILE = "results.parquet"

# One row per solver spec x state x seed, in this column order.
ROW_COLUMNS: tuple[str, ...] = (
    "run_id", "timestamp",
    "problem", "problem_file", "problem_sha256",
    "states_file", "states_sha256", "states_count", "state_index", "state",
    "solver", "solver_name", "params", "exact", "stochastic", "learns", "seed",
    "status", "cost", "max_violation", "time_s", "timeout_s", "reason", "info", "dispatch",
    *METADATA_COLUMNS,
)
JSON_COLUMNS = ("params", "info", "dispatch")
FLOAT_COLUMNS = ("cost", "max_violation", "time_s", "timeout_s", "ram_gb")
INT_COLUMNS = ("states_count", "state_index", "seed", "cpu_cores")
BOOL_COLUMNS = ("exact", "stochastic", "learns", "git_dirty")

# A (problem, states file, state, solver spec, seed) with a row is done: --resume skips it.
RowKey = tuple[str, str, str, str, int]


def row_key(row: dict[str, Any]) -> RowKey:
    return (row["problem_sha256"], row["states_sha256"], row["state"], row["solver"], int(row["seed"]))


def to_json(value: Any) -> str:
    """JSON text for a params/info/dispatch cell; NumPy scalars and arrays become plain numbers."""
    return json.dumps(value, default=_plain, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class ResultsStore:
    """The files of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.rows_path = self.out_dir / ROWS_FILE
        self.parquet_path = self.out_dir / PARQUET_FILE

    def has_rows(self) -> bool:
        return self.rows_path.is_file() and self.rows_path.stat().st_size > 0

    def clear(self) -> None:
        """Forget earlier results (``run --force``); tables built from them go too."""
        for path in (self.rows_path, self.parquet_path):
            path.unlink(missing_ok=True)
        tables = self.out_dir / "tables"
        if tables.is_dir():
            for path in tables.iterdir():
                path.unlink()

    def repair_tail(self) -> None:
        """Drop a half-written last line (a run killed while writing), so appends stay line-aligned."""
        if not self.has_rows():
            return
        data = self.rows_path.read_bytes()
        if not data.endswith(b"\n"):
            with self.rows_path.open("r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def read_rows(self) -> list[dict[str, Any]]:
        """Every complete row; a torn last line (SIGKILL mid-write) is ignored."""
        if not self.rows_path.is_file():
            return []
        rows = []
        with self.rows_path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def done_keys(self) -> set[RowKey]:
        return {row_key(row) for row in self.read_rows()}

    def append(self, row: dict[str, Any]) -> None:
        """Append one row durably: written, flushed and fsynced before returning."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({c: row.get(c) for c in ROW_COLUMNS}, default=_plain) + "\n"
        with self.rows_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def write_parquet(self) -> Path:
        """(Re)build ``results.parquet`` from the log; written to a temporary file, then renamed."""
        frame = rows_to_frame(self.read_rows())
        tmp = self.parquet_path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.parquet_path)
        return self.parquet_path


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with the fixed column order and types (nulls where a value is missing)."""
    frame = pd.DataFrame([{c: r.get(c) for c in ROW_COLUMNS} for r in rows], columns=list(ROW_COLUMNS))
    for col in FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in INT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in BOOL_COLUMNS:
        frame[col] = frame[col].astype("boolean")
    for col in JSON_COLUMNS:  # nested in the log, JSON text in the table (Parquet has no "any" type)
        frame[col] = [None if _is_null(v) else v if isinstance(v, str) else to_json(v) for v in frame[col]]
    for col in ROW_COLUMNS:
        if col not in FLOAT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS:
            frame[col] = frame[col].astype("string")
    return frame


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The results of one output directory: from ``rows.jsonl`` if present (it is never behind the
    Parquet file), else from ``results.parquet`` (a table copied without its log)."""
    store = ResultsStore(out_dir)
    if store.rows_path.is_file():
        return rows_to_frame(store.read_rows())
    if store.parquet_path.is_file():
        return rows_to_frame(pd.read_parquet(store.parquet_path).to_dict("records"))
    raise InputError(out_dir, "results", f"neither {ROWS_FILE} nor {PARQUET_FILE} found",
                     "give the --out directory of a `dispatchbench run`")


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def parse_json_cell(text: Any) -> Any:
    """The Python value of a params/info/dispatch cell (``None`` for a null cell)."""
    return None if _is_null(text) else json.loads(text)


def file_sha256(path: str | Path) -> str:
    """The content hash that ties a stored row to the exact input file it was computed on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
