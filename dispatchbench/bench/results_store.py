"""The results of a run on disk: an append-only JSON-lines log and Parquet views of it.

``rows.jsonl`` is the source of truth: every finished row is appended, flushed and fsynced
before the next state starts, so Ctrl-C or even SIGKILL loses nothing already computed.
Parquet copies are views, never edited in place:

* ``parts/<run>-<cell>.parquet``: the rows of one finished cell, written once when the cell
  finishes — so a long run costs one small file per cell instead of rebuilding one table from
  the whole log after every cell (0.2 s at 1k rows, 5 s at 50k: quadratic over a run).
  ``pd.read_parquet(DIR / "parts")`` reads a run's results while it is still going.
* ``results.parquet``: the whole log as one table, written once at the end of a run (and on
  Ctrl-C).

Only one process writes a folder at a time: :meth:`ResultsStore.locked` holds an exclusive
``flock`` on ``.lock`` for the whole run. Every row carries ``schema_version``
(:data:`SCHEMA_VERSION`); the columns are documented in ``docs/running.md``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from dispatchbench.bench.json_values import json_default
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.model.errors import InputError

ROWS_FILE = "rows.jsonl"
REPRODUCE_FILE = "reproduce.json"  # what a reproduction ran and how long it took, beside its rows
PARQUET_FILE = "results.parquet"
PARTS_DIR = "parts"
LOCK_FILE = ".lock"
# 1: rows before the column existed (read as 1); 2: the harness scores answers itself, parts/.
SCHEMA_VERSION = 2
SEED_MAX = 2**32 - 1  # numpy's seeds; the harness refuses others before any work

# One row per solver spec x state x seed, in this column order.
ROW_COLUMNS: tuple[str, ...] = (
    "schema_version",
    "run_id",
    "timestamp",
    "problem",
    "problem_file",
    "problem_sha256",
    "states_file",
    "states_sha256",
    "states_count",
    "state_index",
    "state",
    "solver",
    "solver_name",
    "params",
    "exact",
    "stochastic",
    "learns",
    "seed",
    "status",
    "cost",
    "max_violation",
    "time_s",
    "timeout_s",
    "reason",
    "info",
    "dispatch",
    *METADATA_COLUMNS,
)
JSON_COLUMNS = ("params", "info", "dispatch")
FLOAT_COLUMNS = ("cost", "max_violation", "time_s", "timeout_s", "ram_gb")
INT_COLUMNS = ("schema_version", "states_count", "state_index", "seed", "cpu_cores")
BOOL_COLUMNS = ("exact", "stochastic", "learns", "git_dirty")

# A (problem, states file, state, solver spec, seed) with a row is done: --resume skips it.
RowKey = tuple[str, str, str, str, int]


def row_key(row: dict[str, Any]) -> RowKey:
    return (row["problem_sha256"], row["states_sha256"], row["state"], row["solver"], int(row["seed"]))


def to_json(value: Any) -> str:
    """JSON text for a params/info/dispatch cell; NumPy scalars and arrays become plain numbers."""
    return json.dumps(value, default=json_default, sort_keys=True)


class ResultsStore:
    """The files of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.rows_path = self.out_dir / ROWS_FILE
        self.parquet_path = self.out_dir / PARQUET_FILE
        self.parts_dir = self.out_dir / PARTS_DIR

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's write lock (creating the folder); a second writer gets an InputError.

        ``flock`` is released by the kernel when the process ends, however it ends, so a run
        killed with SIGKILL never leaves a stale lock behind.
        """
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                self.out_dir, "--out", f"cannot create the folder ({exc.strerror})", "give a folder you can write to"
            ) from None
        fd = os.open(self.out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise InputError(
                    self.out_dir,
                    "--out",
                    f"another run (pid {holder}) is writing there",
                    "wait for it to finish, or choose another --out",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def has_rows(self) -> bool:
        return self.rows_path.is_file() and self.rows_path.stat().st_size > 0

    def clear(self) -> None:
        """Forget earlier results (``run --force``); tables built from them go too."""
        for path in (self.rows_path, self.parquet_path):
            path.unlink(missing_ok=True)
        if self.parts_dir.is_dir():
            for path in self.parts_dir.glob("*.parquet"):
                path.unlink()
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
        seed = row.get("seed")
        if seed is not None and not (isinstance(seed, int) and 0 <= seed <= SEED_MAX):
            raise ValueError(f"row seed {seed!r} is outside 0..{SEED_MAX}; refusing to store it")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        line = (
            json.dumps({**{c: row.get(c) for c in ROW_COLUMNS}, "schema_version": SCHEMA_VERSION}, default=json_default)
            + "\n"
        )
        with self.rows_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def write_parquet(self) -> Path:
        """(Re)build ``results.parquet`` from the log; written to a temporary file, then renamed."""
        _write_frame(rows_to_frame(self.read_rows()), self.parquet_path)
        return self.parquet_path

    def write_part(self, rows: list[dict[str, Any]], key: str) -> Path | None:
        """Write one cell's rows as ``parts/<key>.parquet`` (nothing for no rows)."""
        if not rows:
            return None
        path = self.parts_dir / f"{key}.parquet"
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        _write_frame(rows_to_frame({**r, "schema_version": SCHEMA_VERSION} for r in rows), path)
        return path

    def read_parts(self) -> pd.DataFrame | None:
        files = sorted(self.parts_dir.glob("*.parquet")) if self.parts_dir.is_dir() else []
        if not files:
            return None
        return rows_to_frame(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).to_dict("records"))

    def repair_parts(self, run_id: str) -> Path | None:
        """Rows in the log that no part holds (a run killed between a row and its cell's part)
        go into ``parts/<run_id>-recovered.parquet``, so the parts again cover the log exactly."""
        rows = self.read_rows()
        if not rows:
            return None
        parts = self.read_parts()
        have = set() if parts is None else {row_key(r) for r in parts.to_dict("records")}
        missing = [r for r in rows if row_key(r) not in have]
        return self.write_part(missing, f"{run_id}-recovered")


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with the fixed column order and types (nulls where a value is missing)."""
    frame = pd.DataFrame([{c: r.get(c) for c in ROW_COLUMNS} for r in rows], columns=list(ROW_COLUMNS))
    for col in FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in INT_COLUMNS:
        numbers = pd.to_numeric(frame[col], errors="coerce")
        huge = numbers.abs() > 2**53  # not an exact integer in a float64: never written by this version
        if huge.any():
            raise InputError(
                ROWS_FILE,
                f"column {col}",
                f"holds {frame[col][huge].iloc[0]}, outside any valid range",
                "delete those rows (an older dispatchbench accepted the value) and run with --resume",
            )
        frame[col] = numbers.astype("Int64")
    for col in BOOL_COLUMNS:
        frame[col] = frame[col].astype("boolean")
    frame["schema_version"] = frame["schema_version"].fillna(1)  # rows from before the column
    for col in JSON_COLUMNS:  # nested in the log, JSON text in the table (Parquet has no "any" type)
        frame[col] = [None if _is_null(v) else v if isinstance(v, str) else to_json(v) for v in frame[col]]
    for col in ROW_COLUMNS:
        if col not in FLOAT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS:
            frame[col] = frame[col].astype("string")
    return frame


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The results of one output directory: from ``rows.jsonl`` if present (it is never behind the
    Parquet files), else from ``results.parquet`` or the per-cell parts (copied without the log)."""
    store = ResultsStore(out_dir)
    if store.rows_path.is_file():
        return rows_to_frame(store.read_rows())
    if store.parquet_path.is_file():
        return rows_to_frame(pd.read_parquet(store.parquet_path).to_dict("records"))
    parts = store.read_parts()
    if parts is not None:
        return parts
    raise InputError(
        out_dir,
        "results",
        f"neither {ROWS_FILE}, {PARQUET_FILE} nor {PARTS_DIR}/ found",
        "give the --out directory of a `dispatchbench run`",
    )


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def parse_json_cell(text: Any) -> Any:
    """The Python value of a params/info/dispatch cell (``None`` for a null cell)."""
    return None if _is_null(text) else json.loads(text)


def file_sha256(path: str | Path) -> str:
    """The content hash that ties a stored row to the exact input file it was computed on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
