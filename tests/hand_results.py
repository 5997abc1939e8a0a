"""Results folders written by hand, the way the harness writes them: plan first, then rows.

The tables and the re-scoring policy read only what the evaluator makes of a stored dispatch, so
a hand-made row needs a real dispatch of a real problem. This problem makes every cost easy to
set: one region whose grid link is closed, two FDC groups with linear costs (``cheap`` 1 per kW,
``dear`` 2 per kW) and no commitment, so at demand ``d`` the dispatch ``(d - x, x)`` costs
exactly ``d + x``: a row's cost is chosen through ``x``, the kW given to ``dear``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np

from dispatchbench.bench.results_store import PlannedCell, ResultsStore, file_sha256
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import evaluate
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

PROBLEM_TOML = """[problem]
name = "hand"
commitment = false

[[regions]]
name = "A"
cs_max = 0.0

[[groups]]
name = "cheap"
type = "FDC"
region = "A"
a = 0.0
b = 1.0
c = 0.0
p_min = 0.0
p_max = 1000.0

[[groups]]
name = "dear"
type = "FDC"
region = "A"
a = 0.0
b = 2.0
c = 0.0
p_min = 0.0
p_max = 1000.0
"""

# state file name -> (label, demand) in file order
STATE_FILES = {
    "iv.csv": [("tableIV", 100.0)],
    "day.csv": [("t0", 10.0), ("t1", 20.0), ("t2", 30.0), ("t3", 40.0)],
    "day3.csv": [("t0", 10.0), ("t1", 10.0), ("t2", 10.0)],
    "test-states.csv": [
        ("base_load_d0_t00", 1.0),
        ("skewed_d0_t00", 1.0),
        ("random_0", 1.0),
        ("random_1", 1.0),
        ("random_2", 1.0),
    ],
}


class HandResults:
    """The hand problem and its state files in ``folder``, and rows of real dispatches for them."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.problem_path = folder / "hand.toml"
        self.problem_path.write_text(PROBLEM_TOML)
        self.problem = load_problem(self.problem_path)
        self.states = {}
        for name, states in STATE_FILES.items():
            path = folder / name
            path.write_text("state,d_A\n" + "".join(f"{label},{d}\n" for label, d in states))
            self.states[name] = (path, load_states(path, self.problem))

    def row(
        self,
        solver: str,
        state: str,
        seed: int,
        dear_kw: float | None,
        status: str = "feasible",
        *,
        file: str = "iv.csv",
        exact: bool = False,
        stochastic: bool = False,
        learns: bool = False,
        time_s: float = 0.5,
    ) -> dict:
        """One row; ``dear_kw=None`` gives no dispatch (an infeasible, timeout or error row), else the
        dispatch ``(d - dear_kw, dear_kw)`` with the evaluator's cost and violation."""
        path, states = self.states[file]
        index = [s.label for s in states].index(state)
        row = {
            "run_id": "",
            "problem": self.problem.name,
            "problem_file": str(self.problem_path),
            "problem_sha256": file_sha256(self.problem_path),
            "states_file": str(path),
            "states_sha256": file_sha256(path),
            "states_count": len(states),
            "state_index": index,
            "state": state,
            "solver": solver,
            "solver_name": solver.split("[")[0],
            "params": {},
            "exact": exact,
            "stochastic": stochastic,
            "learns": learns,
            "seed": seed,
            "status": status,
            "cost": None,
            "max_violation": None,
            "time_s": time_s,
            "reason": "",
            "info": {},
            "dispatch": None,
        }
        if dear_kw is not None:
            demand = states[index].demand["A"]
            dispatch = Dispatch.from_power(self.problem, states[index], np.array([demand - dear_kw, dear_kw]))
            ev = evaluate(self.problem, states[index], dispatch)
            row.update(
                dispatch=dispatch.to_json(self.problem),
                max_violation=ev.max_violation,
                cost=ev.cost if status in ("optimal", "feasible") else None,
            )
        return row


def write_run(out: Path, rows: list[dict], run_id: str | None = None) -> Path:
    """Write ``rows`` into ``out`` as one run of the harness does: the plan (every cell the rows
    belong to) into the manifest, then the rows, then ``results.parquet``."""
    run_id = run_id or f"hand-{uuid.uuid4().hex[:8]}"
    return write_planned(out, [{**r, "run_id": run_id} for r in rows])


def write_planned(out: Path, rows: list[dict]) -> Path:
    """Write ``rows`` into a new folder ``out`` with a manifest that plans exactly them, one run
    per ``run_id`` — what a run of plugins that wrote these strings would have left."""
    store = ResultsStore(out)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        runs[r["run_id"]].append(r)
    for run_id, mine in runs.items():
        cells: dict[tuple, list[int]] = defaultdict(list)
        labels: dict[str, list[str]] = {}
        flags = {}
        for r in mine:
            key = (r["solver"], r["seed"], r["states_sha256"])
            cells[key].append(r["state_index"])
            flags[key] = (r["exact"], r["stochastic"], r["learns"])
            if r["states_sha256"] not in labels:
                problem = load_problem(r["problem_file"])
                labels[r["states_sha256"]] = [s.label for s in load_states(r["states_file"], problem)]
        store.record_run(
            run_id,
            mine[0]["problem_sha256"],
            labels,
            [PlannedCell(s, seed, sha, tuple(todo), *flags[(s, seed, sha)]) for (s, seed, sha), todo in cells.items()],
        )
    for r in rows:
        store.append(r)
    store.write_parquet()
    return out


def copy_results(src: Path, dst: Path) -> Path:
    """A results folder's log and plan, copied (what the readers need; no Parquet views)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("rows.jsonl", "manifest.jsonl"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst
