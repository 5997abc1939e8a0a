"""The results of a run on disk: an append-only JSON-lines log, the run plans, and Parquet views.

``rows.jsonl`` is the source of truth: every finished row is appended, flushed and fsynced
before the next state starts, so Ctrl-C or even SIGKILL loses nothing already computed.
Parquet copies are views, never edited in place:

* ``parts/<run>-<cell>.parquet``: the rows of one finished cell, written once when the cell
  finishes — so a long run costs one small file per cell instead of rebuilding one table from
  the whole log after every cell (0.2 s at 1k rows, 5 s at 50k: quadratic over a run).
  ``pd.read_parquet(DIR / "parts")`` reads a run's results while it is still going.
* ``results.parquet``: the whole log as one table, written once at the end of a run (and on
  Ctrl-C).

**What was planned is written before anything runs**: ``manifest.jsonl`` gets one record per
run — its id, the problem, the labels of every state file, and every cell (solver spec, seed,
state file, the state indices it will answer, the plugin's capability flags). A row is only
accepted when the manifest planned it, so a row added by anyone but the harness (a plugin that
found the folder, a hand edit) is an error naming its line, as is a second row for the same
(problem, state file, state, spec, seed), an ``exact`` flag the plan does not have, a torn or
unreadable line, or a broken Parquet part: nothing is dropped without a word.

Only one process writes a folder at a time: :meth:`ResultsStore.locked` holds an exclusive
``flock`` on ``.lock`` for the whole run. Every file here is opened without following links
and written by temporary file and rename (:mod:`safe_files`). Every row carries
``schema_version`` (:data:`SCHEMA_VERSION`); the columns are documented in ``docs/running.md``.
Costs are re-scored by the evaluator when rows are loaded (:mod:`dispatchbench.bench.rescore`).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench import safe_files
from dispatchbench.bench.json_values import json_default
from dispatchbench.bench.plugins import PROVENANCE_COLUMNS
from dispatchbench.bench.run_metadata import METADATA_COLUMNS
from dispatchbench.contract.limits import SEED_MAX
from dispatchbench.contract.status import SUCCESS, Status
from dispatchbench.model.errors import InputError

ROWS_FILE = "rows.jsonl"
MANIFEST_FILE = "manifest.jsonl"  # the plan of every run that wrote into the folder
SUPERSEDED_FILE = "superseded.jsonl"  # rows --resume replaced because their plugin changed since
REPRODUCE_FILE = "reproduce.json"  # what a reproduction ran and how long it took, beside its rows
PARQUET_FILE = "results.parquet"
PARTS_DIR = "parts"
TABLES_DIR = "tables"
LOCK_FILE = ".lock"
# 1: rows before the column existed (read as 1); 2: the harness scores answers itself, parts/;
# 3: every row is planned in manifest.jsonl (rows of 1 and 2 are read without a plan to check).
SCHEMA_VERSION = 3

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
    "split",  # where the states come from: training/validation/test/reported/none; null: not stated
    "replicate",  # the split's replicate (seed offset: test 2000 = 0); null for reported/none/unstated
    "solver",
    "solver_name",
    "label",  # the plugin's display name for this spec (Solver.label); null in rows written before it
    "family",  # and its family of method; reports fall back to the spec where these are null
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
    # which plugin code answered (file and SHA-256, or package and version): --resume recomputes a
    # cell whose plugin changed since; null in rows written before it was recorded
    *PROVENANCE_COLUMNS,
    *METADATA_COLUMNS,
)
JSON_COLUMNS = ("params", "info", "dispatch")
FLOAT_COLUMNS = ("cost", "max_violation", "time_s", "timeout_s", "ram_gb")
INT_COLUMNS = ("schema_version", "states_count", "state_index", "replicate", "seed", "cpu_cores")
BOOL_COLUMNS = ("exact", "stochastic", "learns", "git_dirty")

# What a row must hold to be scored and tabled, and the type each must have.
REQUIRED_TEXT = (
    "run_id",
    "problem_file",
    "problem_sha256",
    "states_file",
    "states_sha256",
    "state",
    "solver",
    "solver_name",
    "status",
)
REQUIRED_INT = ("states_count", "state_index", "seed")
REQUIRED_BOOL = ("exact", "stochastic", "learns")
NUMBER_OR_NULL = ("cost", "max_violation", "time_s", "timeout_s")
OBJECT_OR_NULL = JSON_COLUMNS

# A (problem, states file, state, solver spec, seed) with a row is done: --resume skips it.
RowKey = tuple[str, str, str, str, int]


def row_key(row: Mapping[str, Any]) -> RowKey:
    return (row["problem_sha256"], row["states_sha256"], row["state"], row["solver"], int(row["seed"]))


def to_json(value: Any) -> str:
    """JSON text for a params/info/dispatch cell; NumPy scalars and arrays become plain numbers."""
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(default=json_default, sort_keys=True)  # made once: 150k cells for 50k rows


# ---- the plan of a run --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCell:
    """One cell as the harness planned it: which rows it may write, and with which flags."""

    solver: str
    seed: int
    states_sha256: str
    todo: tuple[int, ...]  # state indices of the file this cell answers
    exact: bool
    stochastic: bool
    learns: bool

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.solver, self.seed, self.states_sha256)


@dataclass
class RunPlan:
    run_id: str
    problem_sha256: str
    labels: dict[str, tuple[str, ...]]  # states_sha256 -> the file's labels in order
    cells: dict[tuple[str, int, str], PlannedCell]
    line: int  # where in manifest.jsonl, for messages


@dataclass
class Manifest:
    """``manifest.jsonl`` read back: the runs' plans, and the rows adopted from before manifests."""

    runs: dict[str, RunPlan] = field(default_factory=dict)
    legacy_lines: int = 0  # the first lines of rows.jsonl, written before the folder had a manifest
    legacy_sha256: str | None = None  # of those lines' bytes
    legacy_run_ids: frozenset[str] = frozenset()


# ---- rows as read, with where each came from ------------------------------------------------------


@dataclass
class StoredRows:
    """Rows of one results folder as read, each with the file and line (or Parquet row) it came
    from, so every message can name it. Values are plain Python (JSON columns as objects)."""

    folder: Path
    rows: list[dict[str, Any]]
    files: list[str]  # per row: the file inside the folder (rows.jsonl, results.parquet, parts/x.parquet)
    entries: list[str]  # per row: "line 12" or "row 3"
    notes: list[str] = field(default_factory=list)

    def where(self, i: int) -> tuple[str, str]:
        """(file, entry) of row ``i`` for an :class:`InputError`."""
        return str(self.folder / self.files[i]), self.entries[i]

    def source(self, i: int) -> str:
        return f"{self.folder}/{self.files[i]} {self.entries[i]}"

    def error(self, i: int, problem: str, fix: str) -> InputError:
        file, entry = self.where(i)
        return InputError(file, entry, problem, fix)


FIX_FORGED = "delete that row (the harness did not write it), then run again with --resume"
FIX_BROKEN = "restore the file from a copy, or delete that row and run again with --resume"


class ResultsStore:
    """The files of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.rows_path = self.out_dir / ROWS_FILE
        self.manifest_path = self.out_dir / MANIFEST_FILE
        self.parquet_path = self.out_dir / PARQUET_FILE
        self.parts_dir = self.out_dir / PARTS_DIR

    # ---- the lock and the folder ------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's write lock (creating the folder); a second writer gets an InputError.

        ``flock`` is released by the kernel when the process ends, however it ends, so a run
        killed with SIGKILL never leaves a stale lock behind. A link anywhere among the folder's
        files is refused first: the run would otherwise write through it.
        """
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                self.out_dir, "--out", f"cannot create the folder ({exc.strerror})", "give a folder you can write to"
            ) from None
        self.refuse_links()
        fd = safe_files.open_file(self.out_dir, LOCK_FILE, os.O_RDWR | os.O_CREAT)
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

    def refuse_links(self) -> None:
        safe_files.refuse_links(self.out_dir, (PARTS_DIR, TABLES_DIR))

    def has_rows(self) -> bool:
        try:
            return self.rows_path.lstat().st_size > 0
        except OSError:
            return False

    def row_count(self) -> int:
        """Lines in the log (a cut-off last line counts too): for messages, before any check."""
        data = self._log_bytes()
        return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))

    def clear(self) -> None:
        """Forget earlier results (``run --force``): rows, plans, Parquet views and tables."""
        self.refuse_links()  # never empty the folder a link points to
        for path in (self.rows_path, self.manifest_path, self.parquet_path, self.out_dir / SUPERSEDED_FILE):
            path.unlink(missing_ok=True)
        for folder, pattern in ((self.parts_dir, "*.parquet"), (self.out_dir / TABLES_DIR, "*")):
            if folder.is_dir():
                for path in folder.glob(pattern):
                    if path.is_file() or path.is_symlink():
                        path.unlink()

    # ---- the log --------------------------------------------------------------------------------

    def _log_bytes(self) -> bytes:
        try:
            return safe_files.read_bytes(self.out_dir, ROWS_FILE)
        except FileNotFoundError:
            return b""

    def repair_tail(self) -> None:
        """Drop a half-written last line (a run killed while writing), so appends stay line-aligned."""
        data = self._log_bytes()
        if data and not data.endswith(b"\n"):
            fd = safe_files.open_file(self.out_dir, ROWS_FILE, os.O_RDWR)
            try:
                os.ftruncate(fd, data.rfind(b"\n") + 1)
            finally:
                os.close(fd)

    def read_log(self, *, in_flight_tail: bool = False) -> StoredRows:
        """Every row of ``rows.jsonl`` with its line number; a line that is cut off (a kill while
        writing it: ``run --resume`` repairs that), not JSON, or not an object is an InputError
        naming it — never skipped. ``in_flight_tail`` leaves a cut-off last line out instead: the
        writer's own view, where that line is being written or is dropped by :meth:`repair_tail`."""
        data = self._log_bytes()
        if in_flight_tail:
            data = data[: data.rfind(b"\n") + 1]
        rows, entries = [], []
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if number == len(lines):  # what follows the last line end: nothing, or a torn line
                if raw:
                    raise InputError(
                        self.rows_path,
                        f"line {number}",
                        "is cut off (no line end): a run was killed while writing it",
                        "run the same `dispatchbench run` command with --resume (it drops that line and "
                        "runs its state again), or delete the line",
                    )
                break
            try:
                row = json.loads(raw.decode("utf-8"))
            except ValueError as exc:  # not UTF-8, not JSON, or an integer past Python's digit limit
                raise InputError(self.rows_path, f"line {number}", f"is not a JSON row ({exc})", FIX_BROKEN) from None
            if not isinstance(row, dict):
                raise InputError(self.rows_path, f"line {number}", "is not a JSON object", FIX_BROKEN)
            rows.append(row)
            entries.append(f"line {number}")
        return StoredRows(self.out_dir, rows, [ROWS_FILE] * len(rows), entries)

    def read_rows(self) -> list[dict[str, Any]]:
        """The log's complete rows, for the writer and for watching a run: a last line still being
        written is left out, anything else unreadable raises (see :meth:`read_log`). Readers that
        show results use :func:`read_results`, which refuses a cut-off line too."""
        return self.read_log(in_flight_tail=True).rows

    def read_checked(self) -> StoredRows:
        """The log's rows, checked against the manifest and for duplicates (see :func:`read_results`)."""
        stored = self.read_log()
        check_rows(stored, self.read_manifest())
        return stored

    def done_keys(self) -> set[RowKey]:
        return {row_key(row) for row in self.read_checked().rows}

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
        _append_line(self.out_dir, ROWS_FILE, line)

    def supersede(self, keys: set[RowKey]) -> int:
        """Take the rows with these keys out of the results (``run --resume`` recomputes them: their
        plugin changed since). They are moved, line for line, to ``superseded.jsonl``, not lost;
        ``rows.jsonl`` and every Parquet part holding one are rewritten whole (temp file and rename)
        without them. Returns how many rows moved."""
        if not keys:
            return 0
        data = self._log_bytes()
        kept: list[bytes] = []
        moved: list[bytes] = []
        for line in data.splitlines(keepends=True):
            row = json.loads(line.decode("utf-8"))
            (moved if row_key(row) in keys else kept).append(line)
        if not moved:
            return 0
        # the copy first, the log last: a run killed in between leaves the rows in the log, where
        # the next --resume finds them stale again (and repair_parts restores a part they lost)
        _append_line(self.out_dir, SUPERSEDED_FILE, b"".join(moved).decode("utf-8"))
        for rel in self.part_files():
            stored = StoredRows(self.out_dir, [], [], [])
            _read_parquet_into(stored, rel)
            left = [r for r in stored.rows if row_key(r) not in keys]
            if len(left) == len(stored.rows):
                continue
            if left:
                _write_frame(rows_to_frame(left), self.out_dir, rel)
            else:
                os.unlink(self.out_dir / rel)
        safe_files.write_atomic(self.out_dir, ROWS_FILE, b"".join(kept))
        return len(moved)

    # ---- the manifest -------------------------------------------------------------------------

    def record_run(
        self,
        run_id: str,
        problem_sha256: str,
        labels: Mapping[str, Sequence[str]],
        cells: Sequence[PlannedCell],
    ) -> None:
        """Write a run's plan before any of its rows. Rows already in a folder that has no
        manifest (written by a dispatchbench from before manifests) are adopted first, by count
        and hash, so a row added to them later is still caught."""
        if not safe_files.exists(self.out_dir, MANIFEST_FILE) and self.has_rows():
            self._adopt_legacy()
        record = {
            "kind": "run",
            "run_id": run_id,
            "problem_sha256": problem_sha256,
            "states": {sha: list(names) for sha, names in labels.items()},
            "cells": [
                {
                    "solver": c.solver,
                    "seed": c.seed,
                    "states_sha256": c.states_sha256,
                    "todo": list(c.todo),
                    "exact": c.exact,
                    "stochastic": c.stochastic,
                    "learns": c.learns,
                }
                for c in cells
            ],
        }
        _append_line(self.out_dir, MANIFEST_FILE, json.dumps(record, sort_keys=True) + "\n")

    def _adopt_legacy(self) -> None:
        data = self._log_bytes()
        stored = self.read_log()
        refuse_unplanned(stored, "start over with --force")
        record = {
            "kind": "legacy",
            "lines": len(stored.rows),
            "sha256": hashlib.sha256(data).hexdigest(),
            "run_ids": sorted({str(r.get("run_id")) for r in stored.rows}),
        }
        _append_line(self.out_dir, MANIFEST_FILE, json.dumps(record, sort_keys=True) + "\n")

    def read_manifest(self) -> Manifest | None:
        """The plans in ``manifest.jsonl``; ``None`` for a folder written before manifests."""
        try:
            data = safe_files.read_bytes(self.out_dir, MANIFEST_FILE)
        except FileNotFoundError:
            return None
        manifest = Manifest()
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if number == len(lines) and not raw:
                break
            try:
                record = json.loads(raw.decode("utf-8"))
                _add_record(manifest, record, number)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    self.manifest_path,
                    f"line {number}",
                    f"is not a run plan ({type(exc).__name__}: {exc})"
                    if number < len(lines)
                    else "is cut off (no line end)",
                    "restore the file from a copy of the folder, or start over with `dispatchbench run --force`",
                ) from None
        return manifest

    # ---- Parquet views ------------------------------------------------------------------------

    def write_parquet(self) -> Path:
        """(Re)build ``results.parquet`` from the log; written to a temporary file, then renamed."""
        _write_frame(rows_to_frame(self.read_rows()), self.out_dir, PARQUET_FILE)
        return self.parquet_path

    def write_part(self, rows: list[dict[str, Any]], key: str) -> Path | None:
        """Write one cell's rows as ``parts/<key>.parquet`` (nothing for no rows)."""
        if not rows:
            return None
        rel = f"{PARTS_DIR}/{key}.parquet"
        _write_frame(rows_to_frame({**r, "schema_version": SCHEMA_VERSION} for r in rows), self.out_dir, rel)
        return self.out_dir / rel

    def part_files(self) -> list[str]:
        if self.parts_dir.is_symlink():
            raise safe_files.link_error(self.parts_dir)
        if not self.parts_dir.is_dir():
            return []
        return [f"{PARTS_DIR}/{p.name}" for p in sorted(self.parts_dir.glob("*.parquet"))]

    def read_parts(self) -> StoredRows | None:
        files = self.part_files()
        if not files:
            return None
        stored = StoredRows(self.out_dir, [], [], [])
        for rel in files:
            _read_parquet_into(stored, rel)
        return stored

    def repair_parts(self, run_id: str) -> Path | None:
        """Rows in the log that no part holds (a run killed between a row and its cell's part)
        go into ``parts/<run_id>-recovered.parquet``, so the parts again cover the log exactly."""
        rows = self.read_rows()
        if not rows:
            return None
        parts = self.read_parts()
        have = set() if parts is None else {row_key(r) for r in parts.rows}
        missing = [r for r in rows if row_key(r) not in have]
        return self.write_part(missing, f"{run_id}-recovered")


def _append_line(folder: Path, name: str, line: str) -> None:
    fd = safe_files.open_file(folder, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        data = line.encode("utf-8")
        while data:  # one write for a row in practice; a short write must not tear the line
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _schema(row: Mapping[str, Any]) -> int:
    version = row.get("schema_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _add_record(manifest: Manifest, record: Any, line: int) -> None:
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    kind = record["kind"]
    if kind == "legacy":
        if manifest.legacy_sha256 is not None or manifest.runs:
            raise ValueError("rows from before manifests can only be adopted once, first")
        manifest.legacy_lines = int(record["lines"])
        manifest.legacy_sha256 = str(record["sha256"])
        manifest.legacy_run_ids = frozenset(str(r) for r in record["run_ids"])
        return
    if kind != "run":
        raise ValueError(f"unknown kind {kind!r}")
    run_id = str(record["run_id"])
    if run_id in manifest.runs:
        raise ValueError(f"run {run_id} is planned twice (line {manifest.runs[run_id].line} too)")
    labels = {str(sha): tuple(str(x) for x in names) for sha, names in record["states"].items()}
    cells = {}
    for c in record["cells"]:
        cell = PlannedCell(
            str(c["solver"]),
            int(c["seed"]),
            str(c["states_sha256"]),
            tuple(int(i) for i in c["todo"]),
            bool(c["exact"]),
            bool(c["stochastic"]),
            bool(c["learns"]),
        )
        cells[cell.key] = cell
    manifest.runs[run_id] = RunPlan(run_id, str(record["problem_sha256"]), labels, cells, line)


# ---- reading a folder, strictly --------------------------------------------------------------------


def read_results(out_dir: str | Path) -> StoredRows:
    """The rows of a results folder as written by the harness, or an :class:`InputError` naming
    the first row or file that is not: from ``rows.jsonl`` if present (it is never behind the
    Parquet files), else ``results.parquet``, else the per-cell parts (a folder copied without
    its log). Every row must have the columns and types the harness writes, be planned by the
    folder's manifest, and be the only row of its (problem, state file, state, spec, seed).
    Costs are not looked at here: :func:`dispatchbench.bench.rescore.load_results` re-scores them."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "results", "is a file, not a results folder", "give the --out folder of a run")
    store = ResultsStore(out)
    store.refuse_links()
    if safe_files.exists(out, ROWS_FILE):
        stored = store.read_log()
    elif safe_files.exists(out, PARQUET_FILE):
        stored = StoredRows(out, [], [], [])
        _read_parquet_into(stored, PARQUET_FILE)
    else:
        parts = store.read_parts()
        if parts is None:
            raise InputError(
                out_dir,
                "results",
                f"neither {ROWS_FILE}, {PARQUET_FILE} nor {PARTS_DIR}/ found",
                "give the --out directory of a `dispatchbench run`",
            )
        stored = parts
    check_rows(stored, store.read_manifest())
    return stored


def check_rows(stored: StoredRows, manifest: Manifest | None) -> None:
    """Every row well-formed, planned, and alone for its key; raises on the first that is not."""
    for i, row in enumerate(stored.rows):
        check_row_shape(stored, i, row)
    check_planned(stored, manifest)
    check_unique([stored])


_REQUIRED = (*REQUIRED_TEXT, *REQUIRED_INT, *REQUIRED_BOOL)
_REQUIRED_TYPES = (str,) * len(REQUIRED_TEXT) + (int,) * len(REQUIRED_INT) + (bool,) * len(REQUIRED_BOOL)
_required = operator.itemgetter(*_REQUIRED)
_numbers = operator.itemgetter(*NUMBER_OR_NULL)
_objects = operator.itemgetter(*OBJECT_OR_NULL)
_NUMBER_TYPES, _OBJECT_TYPES, _CONTAINERS = {type(None), int, float}, {type(None), dict}, {dict, list}
_PLAIN = ("reason", "timestamp", "problem")


def check_row_shape(stored: StoredRows, i: int, row: Mapping[str, Any]) -> None:
    """The columns and types the harness writes, and no cost claimed without a dispatch to score
    (what the dispatch is worth is the re-scorer's business). One pass of C-level checks per row
    (50,000 rows in well under a second); the slow path only says what is wrong."""
    try:
        values, numbers, objects = _required(row), _numbers(row), _objects(row)
    except KeyError:  # a column is missing: an error if it is one every row needs, else null
        if any(c not in row for c in (*_REQUIRED, "cost", "dispatch")):
            _explain_shape(stored, i, row)
        values = _required(row)
        numbers = tuple(row.get(c) for c in NUMBER_OR_NULL)
        objects = tuple(row.get(c) for c in OBJECT_OR_NULL)
    if (
        tuple(map(type, values)) != _REQUIRED_TYPES
        or "" in values[: len(REQUIRED_TEXT)]
        or min(values[len(REQUIRED_TEXT) : len(REQUIRED_TEXT) + len(REQUIRED_INT)]) < 0
        or not set(map(type, numbers)) <= _NUMBER_TYPES
        or not all(map(_finite, [v for v in numbers if v is not None]))
        or not set(map(type, objects)) <= _OBJECT_TYPES
        or not _CONTAINERS.isdisjoint(map(type, map(row.get, _PLAIN)))
    ):
        _explain_shape(stored, i, row)
    status, seed, index, count = row["status"], row["seed"], row["state_index"], row["states_count"]
    if status not in tuple(Status):
        raise stored.error(i, f"column status holds {status[:60]!r}, not one of {', '.join(Status)}", FIX_BROKEN)
    if row["dispatch"] is None and (status in SUCCESS or row["cost"] is not None):
        raise stored.error(
            i,
            f"claims {status} at cost {row['cost']} without a dispatch: nothing to score",
            "delete that row (the harness never writes one), then run again with --resume",
        )
    if row["dispatch"] is not None and status not in (*SUCCESS, "infeasible"):
        raise stored.error(i, f"has status {status} and a dispatch (the harness never writes both)", FIX_BROKEN)
    if seed > SEED_MAX:
        raise stored.error(i, f"column seed holds {str(seed)!r}, not a seed in 0..{SEED_MAX}", FIX_BROKEN)
    if not index < count:
        raise stored.error(
            i, f"column state_index holds {str(index)!r}, not an index below states_count {count}", FIX_BROKEN
        )


def _finite(value: float) -> bool:
    """``math.isfinite`` that says no, rather than raising, for a JSON integer past any float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _explain_shape(stored: StoredRows, i: int, row: Mapping[str, Any]) -> None:
    """Raise the error that says which column of row ``i`` is missing or of the wrong type."""
    missing = [c for c in (*_REQUIRED, "cost", "dispatch") if c not in row]
    if missing:
        raise stored.error(i, f"misses the column(s) {', '.join(missing)}", FIX_BROKEN)

    def bad(column: str, want: str) -> InputError:
        return stored.error(i, f"column {column} holds {str(row[column])[:60]!r}, not {want}", FIX_BROKEN)

    for c in REQUIRED_TEXT:
        if not isinstance(row[c], str) or not row[c]:
            raise bad(c, "a non-empty text")
    for c in REQUIRED_INT:
        if isinstance(row[c], bool) or not isinstance(row[c], int) or row[c] < 0:
            raise bad(c, "a non-negative integer")
    for c in REQUIRED_BOOL:
        if not isinstance(row[c], bool):
            raise bad(c, "true or false")
    for c in NUMBER_OR_NULL:
        v = row.get(c)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v)):
            raise bad(c, "a finite number or null")
    for c in OBJECT_OR_NULL:
        if row.get(c) is not None and not isinstance(row[c], dict):
            raise bad(c, "an object or null")
    for c in _PLAIN:
        if isinstance(row.get(c), (dict, list)):
            raise bad(c, "a plain value")
    raise AssertionError("a row failed the fast check but no column is wrong")  # keeps the two checks honest


def refuse_unplanned(stored: StoredRows, otherwise: str) -> None:
    """Rows of schema 3 or later without a manifest: a manifest was deleted (or rows forged), so
    nothing can say which run planned them."""
    newer = [i for i, r in enumerate(stored.rows) if _schema(r) >= 3]
    if newer:
        raise stored.error(
            newer[0],
            f"has schema_version {stored.rows[newer[0]].get('schema_version')} but the folder has no "
            f"{MANIFEST_FILE}, the plan such a row must be in",
            f"restore {MANIFEST_FILE} from a copy of the folder, or {otherwise}",
        )


def check_planned(stored: StoredRows, manifest: Manifest | None) -> None:
    """Each row is in the plan of the run that claims it (see the module docstring)."""
    if manifest is None:
        refuse_unplanned(stored, "run again")
        if stored.rows:
            stored.notes.append(
                f"{stored.folder}: {len(stored.rows)} rows written before run manifests (schema_version ≤ 2): "
                "not checked against a plan"
            )
        return
    legacy_ok = _legacy_lines_intact(stored, manifest)
    adopted = 0
    for i, row in enumerate(stored.rows):
        if _is_adopted(stored, i, row, manifest, legacy_ok):
            adopted += 1
            continue
        run = manifest.runs.get(row["run_id"])
        if run is None:
            raise stored.error(i, f"belongs to run {row['run_id']!r}, which {MANIFEST_FILE} does not list", FIX_FORGED)
        cell = run.cells.get((row["solver"], row["seed"], row["states_sha256"]))
        if cell is None:
            raise stored.error(
                i,
                f"run {run.run_id} planned no cell {row['solver']!r} seed {row['seed']} on {row['states_file']}",
                FIX_FORGED,
            )
        labels = run.labels.get(row["states_sha256"], ())
        index = row["state_index"]
        if row["problem_sha256"] != run.problem_sha256:
            raise stored.error(i, f"names another problem file than run {run.run_id} planned", FIX_FORGED)
        if index not in cell.todo or row["states_count"] != len(labels) or labels[index] != row["state"]:
            raise stored.error(
                i,
                f"state {row['state']!r} (index {index}) is not one run {run.run_id} planned for "
                f"{row['solver']!r} seed {row['seed']}",
                FIX_FORGED,
            )
        for flag in REQUIRED_BOOL:
            if row[flag] != getattr(cell, flag):
                raise stored.error(
                    i, f"says {flag}={row[flag]}, but the plugin's plan says {getattr(cell, flag)}", FIX_FORGED
                )
    if adopted:
        stored.notes.append(
            f"{stored.folder}: {adopted} rows written before run manifests (schema_version ≤ 2): "
            "not checked against a plan"
        )


def _legacy_lines_intact(stored: StoredRows, manifest: Manifest) -> bool:
    """Whether the log's first lines are still, byte for byte, the rows adopted from before manifests."""
    if not manifest.legacy_lines or not stored.files or stored.files[0] != ROWS_FILE:
        return False
    data = safe_files.read_bytes(stored.folder, ROWS_FILE)
    end = -1
    for _ in range(manifest.legacy_lines):
        end = data.find(b"\n", end + 1)
        if end < 0:
            return False
    return hashlib.sha256(data[: end + 1]).hexdigest() == manifest.legacy_sha256


def _is_adopted(stored: StoredRows, i: int, row: Mapping[str, Any], manifest: Manifest, intact: bool) -> bool:
    if _schema(row) >= 3 or row["run_id"] not in manifest.legacy_run_ids:
        return False
    if stored.files[i] == ROWS_FILE:  # in the log: only the adopted lines, unchanged
        if int(stored.entries[i].split()[-1]) <= manifest.legacy_lines:
            if not intact:
                raise stored.error(
                    i,
                    f"the {manifest.legacy_lines} rows adopted from before manifests changed since",
                    "restore the folder from a copy",
                )
            return True
        return False
    return True  # a Parquet view of those rows (the lines cannot be compared there)


def check_unique(folders: Sequence[StoredRows]) -> None:
    """No (problem, state file, state, spec, seed) twice, within or across folders; the error
    names both rows."""
    seen: dict[RowKey, tuple[int, int]] = {}
    for f, stored in enumerate(folders):
        for i, row in enumerate(stored.rows):
            key = row_key(row)
            if key in seen:
                g, j = seen[key]
                raise stored.error(
                    i,
                    f"is a second row for {row['solver']!r} seed {row['seed']} at state {row['state']!r} "
                    f"(the first: {folders[g].source(j)})",
                    "keep one of the two rows (a run never writes a cell's state twice), or table the folders "
                    "separately",
                )
            seen[key] = (f, i)


def _read_parquet_into(stored: StoredRows, rel: str) -> None:
    path = stored.folder / rel
    try:
        data = safe_files.read_bytes(stored.folder, rel)
        frame = pd.read_parquet(io.BytesIO(data))
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises its own types for a truncated or foreign file
        text = " ".join(str(exc).split())[:160]
        raise InputError(
            path,
            "file",
            f"is not a readable Parquet table ({type(exc).__name__}: {text})",
            "delete it and run again with --resume (Parquet files are rebuilt from rows.jsonl)",
        ) from None
    for n, record in enumerate(frame.to_dict("records")):
        row = {k: _plain(v) for k, v in record.items()}
        stored.rows.append(row)
        stored.files.append(rel)
        stored.entries.append(f"row {n}")
        for col in JSON_COLUMNS:
            if isinstance(row.get(col), str):
                try:
                    row[col] = json.loads(row[col])
                except json.JSONDecodeError as exc:
                    raise stored.error(len(stored.rows) - 1, f"column {col} is not JSON ({exc})", FIX_BROKEN) from None


def _plain(value: Any) -> Any:
    """A Parquet cell as the JSON log would hold it: nulls as None, NumPy scalars as Python ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def _write_frame(frame: pd.DataFrame, folder: Path, rel: str) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    safe_files.write_atomic(folder, rel, buffer.getvalue())


def rows_to_frame(rows: Iterable[dict[str, Any]], json_text: bool = True) -> pd.DataFrame:
    """Rows to a DataFrame with the fixed column order and types (nulls where a value is missing).

    ``params``, ``info`` and ``dispatch`` become JSON text, as Parquet stores them; with
    ``json_text=False`` they keep the objects (encoding 50,000 rows' dispatches costs seconds,
    and the report and tables only parse them back; :func:`parse_json_cell` reads both)."""
    frame = pd.DataFrame(list(rows), columns=list(ROW_COLUMNS))  # a missing column is null, extra keys dropped
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
        if json_text:
            frame[col] = [None if _is_null(v) else v if isinstance(v, str) else to_json(v) for v in frame[col]]
        else:
            frame[col] = [None if _is_null(v) else json.loads(v) if isinstance(v, str) else v for v in frame[col]]
    for col in ROW_COLUMNS:
        if col not in FLOAT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS + (() if json_text else JSON_COLUMNS):
            frame[col] = frame[col].astype("string")
    return frame


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The rows of a results folder, checked and re-scored: see :func:`dispatchbench.bench.rescore.load_results`
    (here for the modules that import it from the store)."""
    from dispatchbench.bench.rescore import load_results as load_rescored  # rescore reads through this module

    return load_rescored(out_dir)


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def parse_json_cell(text: Any) -> Any:
    """The Python value of a params/info/dispatch cell: JSON text parsed, an object as it is
    (``rows_to_frame(..., json_text=False)``), ``None`` for a null cell."""
    if _is_null(text):
        return None
    return json.loads(text) if isinstance(text, str) else text


def file_sha256(path: str | Path) -> str:
    """The content hash that ties a stored row to the exact input file it was computed on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
