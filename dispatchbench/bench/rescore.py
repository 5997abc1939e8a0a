"""The one re-scoring policy: every cost shown is the evaluator's score of a stored dispatch.

``table``, ``report``, the Python API's ``load_results`` and the scaling study all read results
through :func:`rescore_folders` (or :func:`load_results`); none of them trusts a stored cost or
status. The policy, in order:

1. **Rows as the harness wrote them** (:func:`results_store.read_results`): well-formed, planned
   by the folder's manifest, one row per (problem, state file, state, spec, seed). Anything else
   is an :class:`InputError` naming the file and line.
2. **The run's own inputs**: the problem and state files each row names are loaded again and
   must still have the SHA-256 the row records; a file that is missing or changed is refused in
   one line (a re-score against other data would be another benchmark). The row's state must
   be the state at its index in that file.
3. **No cost without a dispatch**: a row claiming ``optimal``/``feasible`` or a cost without a
   stored dispatch is an error naming the row — there is nothing to score. So is a dispatch on
   a ``timeout``/``error`` row, or one that does not fit the problem.
4. **The evaluator decides**: every stored dispatch is rebuilt and scored
   (:func:`dispatchbench.model.evaluate.evaluate_many`, batched per problem: 50,000 rows take
   about a second), and ``status``, ``cost`` and ``max_violation`` are set from that with the
   harness's rule (:func:`scoring.success_status`): a feasible dispatch is ``optimal`` only if
   the row claimed it and the plugin is exact, else ``feasible``; an infeasible one has no cost.
5. **A stored verdict the evaluator disagrees with is re-labelled, not refused**: the row gets
   the evaluator's verdict and ``cost_check`` says what was stored. The one honest cause is an
   evaluator that changed between dispatchbench versions (a tolerance); whatever a forger could
   do is refused by 1-3, and what is shown is the evaluator's either way. ``table`` prints these
   as ``WARNING:`` lines, ``report`` lists them under Failures.

The frame that comes out has the columns of :data:`ROW_COLUMNS` plus ``source`` (file and line
of the row) and ``cost_check`` (``ok``, ``no dispatch``, or what disagreed).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.bench.results_store import StoredRows, check_unique, read_results, rows_to_frame
from dispatchbench.bench.scoring import success_status, violation_reason
from dispatchbench.contract.status import SUCCESS
from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.errors import InputError
from dispatchbench.model.evaluate import evaluate_many
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

COST_MATCH_RTOL = 1e-9  # stored vs recomputed: the same formula, so only rounding may differ
CHECK_OK, CHECK_NO_DISPATCH = "ok", "no dispatch"
_BOOL, _NUMBER = {bool}, {int, float}  # JSON's types: a bool is no number here, a text no bool
_on, _power = operator.itemgetter("on"), operator.itemgetter("power")
FIX_ROW = "delete that row and run its state again with --resume"


@dataclass
class Rescored:
    """Rows of one or more results folders with the evaluator's verdicts (see the module docstring)."""

    frame: pd.DataFrame
    problems: dict[str, Problem]  # problem_sha256 -> the problem, loaded from the run's file
    states: dict[tuple[str, str], list[State]]  # (problem_sha256, states_sha256) -> states in file order
    notes: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.frame[~self.frame["cost_check"].isin([CHECK_OK, CHECK_NO_DISPATCH])]


def load_results(folder: str | Path) -> pd.DataFrame:
    """The rows of a ``run`` (or ``reproduce``) folder, one per solver x seed x state, re-scored;
    ``params``, ``info`` and ``dispatch`` as JSON text, as in ``results.parquet``."""
    return rescore_folders([folder], json_text=True).frame


def rescore_folders(folders: Sequence[str | Path], *, json_text: bool = False) -> Rescored:
    """Read every folder strictly and re-score every row; a folder given twice counts once, and
    the same (problem, state file, state, spec, seed) in two folders is an error naming both.
    ``params``, ``info`` and ``dispatch`` keep their objects unless ``json_text``."""
    unique = list({Path(f).resolve(): Path(f) for f in folders}.values())
    stored = [read_results(f) for f in unique]
    check_unique(stored)
    inputs = InputFiles()
    frames, notes = [], []
    for s in stored:
        frames.append(rescore(s, inputs, json_text))
        notes += s.notes
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else rescore(StoredRows(Path("."), [], [], []), inputs, json_text)
    )
    result = Rescored(frame, inputs.problems, inputs.states_by_key, notes)
    bad = result.disagreements
    if len(bad):
        listed = "; ".join(f"{s}: {c}" for s, c in zip(bad["source"].head(5), bad["cost_check"].head(5)))
        result.notes.append(
            f"WARNING: {len(bad)} stored result(s) disagree with the evaluator; the evaluator's verdict is "
            f"used: {listed}" + (" ..." if len(bad) > 5 else "")
        )
    return result


# ---- the run's input files -----------------------------------------------------------------------


class InputFiles:
    """The problem and state files the rows name, found, hash-checked and loaded once each."""

    def __init__(self) -> None:
        self.problems: dict[str, Problem] = {}
        self.states_by_key: dict[tuple[str, str], list[State]] = {}
        self._hashes: dict[Path, str] = {}

    def problem(self, stored: StoredRows, i: int) -> Problem:
        row = stored.rows[i]
        sha = row["problem_sha256"]
        if sha not in self.problems:
            self.problems[sha] = load_problem(self._find(row["problem_file"], sha, stored.folder, "problem file"))
        return self.problems[sha]

    def states(self, stored: StoredRows, i: int) -> list[State]:
        row = stored.rows[i]
        key = (row["problem_sha256"], row["states_sha256"])
        if key not in self.states_by_key:
            path = self._find(row["states_file"], row["states_sha256"], stored.folder, "states file")
            self.states_by_key[key] = load_states(path, self.problem(stored, i))
        return self.states_by_key[key]

    def _sha(self, path: Path) -> str:
        path = path.resolve()
        if path not in self._hashes:
            self._hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._hashes[path]

    def _find(self, text: str, sha: str, folder: Path, what: str) -> Path:
        """The file the run used: where the row says, else beside or above the results folder, else
        a bundled problem of that name — whichever still has the recorded SHA-256."""
        path = Path(text)
        candidates = [path, folder / path, folder.parent / path, folder / path.name]
        try:
            candidates.append(problems_dir() / path.name)
        except InputError:
            pass
        found = []
        for candidate in candidates:
            try:
                if candidate.is_file():
                    found.append(candidate)
                    if self._sha(candidate) == sha:
                        return candidate
            except OSError:
                continue
        if found:
            raise InputError(
                folder,
                f"{what} {found[0]}",
                "changed since the run (SHA-256 differs)",
                "restore the file the run used, or re-run the benchmark",
            )
        raise InputError(
            folder,
            f"{what} {text}",
            "named by the results but not found",
            "run the command where the run's input files are, or restore the file",
        )


# ---- re-scoring one folder -----------------------------------------------------------------------


def rescore(stored: StoredRows, inputs: InputFiles, json_text: bool = True) -> pd.DataFrame:
    """One folder's rows with the evaluator's verdicts (steps 2-5 of the module docstring)."""
    rows = stored.rows  # read only: the verdicts go into the columns below
    status = [r["status"] for r in rows]
    cost: list[float | None] = [None] * len(rows)
    violation: list[float | None] = [None] * len(rows)
    reason = [r.get("reason") for r in rows]
    checks = [CHECK_NO_DISPATCH] * len(rows)
    batches: dict[str, list[tuple[int, State, tuple[list[Any], list[Any], list[Any]]]]] = {}
    for i, row in enumerate(rows):
        problem = inputs.problem(stored, i)
        states = inputs.states(stored, i)
        index = row["state_index"]
        if row["states_count"] != len(states) or states[index].label != row["state"]:
            raise stored.error(
                i,
                f"names state {row['state']!r} at index {index} of {row['states_count']}, but the states file "
                f"has {len(states)} states" + (f" and {states[index].label!r} there" if index < len(states) else ""),
                FIX_ROW,
            )
        data = row.get("dispatch")
        if data is None:  # no success and no cost (read_results refuses a claim without a dispatch)
            continue
        try:
            arrays = dispatch_arrays(problem, data)
        except ValueError as exc:
            raise stored.error(i, f"its dispatch does not fit problem {problem.name!r}: {exc}", FIX_ROW) from None
        batches.setdefault(row["problem_sha256"], []).append((i, states[index], arrays))

    for sha, batch in batches.items():
        problem = inputs.problems[sha]
        ev = evaluate_many(
            problem,
            [state for _, state, _ in batch],
            np.array([a[0] for _, _, a in batch], dtype=bool).reshape(len(batch), len(problem.groups)),
            np.array([a[1] for _, _, a in batch], dtype=float).reshape(len(batch), len(problem.groups)),
            np.array([a[2] for _, _, a in batch], dtype=float).reshape(len(batch), len(problem.regions)),
        )
        feasible, worst_kw, costs = ev.feasible.tolist(), ev.max_violation.tolist(), ev.cost.tolist()
        for k, (i, _, _) in enumerate(batch):
            if not ev.finite[k]:
                raise stored.error(i, "its dispatch holds NaN or infinite values", FIX_ROW)
            row = rows[i]
            claimed = row["status"]
            if feasible[k]:
                status[i], cost[i] = success_status(claimed, row["exact"]), costs[k]
            else:
                status[i] = "infeasible"
            violation[i] = worst_kw[k]
            checks[i] = _verdict_check(claimed, row.get("cost"), status[i], cost[i], "" if feasible[k] else ev.worst(k))
            if status[i] != claimed:
                reason[i] = (
                    violation_reason(ev.worst(k), worst_kw[k], float(ev.tolerance[k]))
                    if status[i] == "infeasible"
                    else f"re-scored {status[i]} (stored {claimed}{': ' + row['reason'] if row.get('reason') else ''})"
                )

    frame = rows_to_frame(rows, json_text)
    frame["status"] = pd.array(status, dtype="string")
    frame["cost"] = pd.array(cost, dtype="float64")
    frame["max_violation"] = pd.array(violation, dtype="float64")
    frame["reason"] = pd.array(reason, dtype="string")
    frame["source"] = pd.array([stored.source(i) for i in range(len(rows))], dtype="string")
    frame["cost_check"] = pd.array(checks, dtype="string")
    return frame


def _verdict_check(claimed: str, stored_cost: Any, status: str, cost: float | None, worst: str) -> str:
    """``ok``, or what the stored verdict said that the evaluator does not."""
    if status == "infeasible" and claimed in SUCCESS:
        return f"stored {claimed} at cost {stored_cost}, evaluator: violates {worst}"
    if status != claimed:
        why = ": the plugin is not exact" if claimed == "optimal" and status == "feasible" else ""
        return f"stored {claimed}, evaluator: {status}{why}" + (f" at cost {cost:.6f}" if cost is not None else "")
    if cost is not None and (stored_cost is None or abs(stored_cost - cost) > COST_MATCH_RTOL * max(1.0, abs(cost))):
        return f"stored cost {stored_cost}, evaluator {cost:.6f}"
    if cost is None and stored_cost is not None:
        return f"stored cost {stored_cost} for an infeasible answer"
    return CHECK_OK


def dispatch_arrays(problem: Problem, data: Any) -> tuple[list[bool], list[float], list[float]]:
    """on/off, power and imports of a stored dispatch in the problem's order, every value checked
    (``ValueError`` says what does not fit)."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("dispatch"), dict)
        or not isinstance(data.get("imports"), dict)
    ):
        raise ValueError('not {"dispatch": {group: {"on", "power"}}, "imports": {region: kW}}')
    groups, imports = data["dispatch"], data["imports"]
    if len(groups) != len(problem.groups) or len(imports) != len(problem.regions):
        raise ValueError(
            f"{len(groups)} groups and {len(imports)} regions, the problem has "
            f"{len(problem.groups)} and {len(problem.regions)}"
        )
    try:
        # the harness writes groups and regions in the problem's order: then no lookup by name
        entries = (
            list(groups.values())
            if list(groups) == list(problem.group_names)
            else [groups[g] for g in problem.group_names]
        )
        flows = (
            list(imports.values())
            if list(imports) == list(problem.region_names)
            else [imports[r] for r in problem.region_names]
        )
        on, power = list(map(_on, entries)), list(map(_power, entries))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"no entry {exc}") from None
    if not set(map(type, on)) <= _BOOL:
        raise ValueError("an 'on' value is not true or false")
    if not set(map(type, power)) <= _NUMBER or not set(map(type, flows)) <= _NUMBER:
        raise ValueError("a power or import is not a number")
    return on, power, flows
