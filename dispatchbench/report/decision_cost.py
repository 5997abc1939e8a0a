"""Decision time as a dispatcher pays it, and what training costs: the columns every table with a
decision time shows (issue 18, items 1 and 3).

* **Online** time is the harness's per-state wall time, one state per call — what a dispatcher
  deciding each 15-minute interval pays. It is the headline; the ratio to SCIP is taken against
  SCIP's median online time **in the same run** (same machine, same load), never a number from
  elsewhere.
* **Offline, batched** time is a learner's ``info["decision_s_batched"]`` (a whole batch of
  states decided at once, per state): real, but no dispatcher can use it, so it has its own
  column and label.
* **Training cost** is read from each trained model's ``model.json`` (the learners write it from
  ``FitReport.info``): whatever of :data:`TRAINING_KEYS` is there; an absent key shows ``—``,
  never a zero.
* **Break-even**: the number of decisions ``n*`` after which training plus deciding costs less
  wall time than SCIP deciding alone, ``train_s + n·t_learner < n·t_SCIP``, so
  ``n* = train_s / (t_SCIP − t_learner)``; "never" when the learner is not faster online.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from dispatchbench.contract.info import read_info
from dispatchbench.contract.status import Status

ONLINE = "s per decision (online)"
RATIO = "× vs SCIP (online)"
OFFLINE = "s per decision (offline, batched)"
BREAK_EVEN = "break-even (decisions)"
MISSING = "—"

# model.json key -> column title. Numbers are averaged over a method's models; text is listed.
TRAINING_KEYS: dict[str, str] = {
    "train_time_s": "training s",
    "train_steps": "training steps",
    "env_steps": "env steps",
    "true_cost_evaluations": "true-cost evaluations",
    "training_messages": "training messages",
    "parameter_sharing": "parameter sharing",
    "training_kind": "training kind",
}
TRAINING_COLUMNS = tuple(TRAINING_KEYS.values())
NUMERIC_COLUMNS = (ONLINE, RATIO, OFFLINE, *TRAINING_COLUMNS[:5])


def certified_reference(frame: pd.DataFrame, column: str) -> str | None:
    """The certified optimum's method in ``column`` (a spec or a report label): the exact method
    (the plugin's capability, never its name) with the most optimal rows, ties by name — an exact
    method run at a practical gap or under a budget certifies fewer, and its spec sorts after the
    unbudgeted one it extends. None without an exact, optimal row."""
    if frame.empty or not {"exact", "status", column} <= set(frame.columns):
        return None
    certified = frame[frame["exact"].fillna(False).astype(bool) & (frame["status"] == Status.OPTIMAL)]
    if certified.empty:
        return None
    counts = certified.groupby(column).size()
    return str(min(counts.index, key=lambda name: (-counts[name], str(name))))


def reference_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows of the reference the online ratio divides by (:func:`certified_reference` by spec), so a
    third-party exact solver is a reference the same way."""
    best = certified_reference(frame, "solver")
    if best is None:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame["solver"] == best


def _skipped(rows: pd.DataFrame) -> pd.Series:
    return rows["reason"].fillna("").astype(str).str.startswith("skipped")


def online_seconds(rows: pd.DataFrame) -> float:
    """Median per-state wall time, one state per call, over rows that ran (a timeout costs its time)."""
    if rows.empty:
        return math.nan
    times = pd.to_numeric(rows.loc[~_skipped(rows), "time_s"], errors="coerce").dropna()
    return float(times.median()) if len(times) else math.nan


def offline_seconds(rows: pd.DataFrame) -> float:
    """Median of the learner's own batched time per state (``decision_s_batched``), NaN if none."""
    if rows.empty:
        return math.nan
    read = [read_info(i).get("decision_s_batched") for i in rows["info"]]
    values = [float(v) for v in read if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def speed_ratio(t_reference: float, t_method: float) -> float:
    """How many times faster than the reference a method decides (NaN when either is unknown)."""
    if not (math.isfinite(t_reference) and math.isfinite(t_method)) or t_method <= 0:
        return math.nan
    return t_reference / t_method


def training_cost(models: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The documented training-cost fields over a method's models (``model.json`` dicts): the mean
    of a number, the distinct values of a text; ``None`` where no model records the key."""
    models = [m for m in models if isinstance(m, Mapping)]
    out: dict[str, Any] = {}
    for key, column in TRAINING_KEYS.items():
        values = [_field(m, key) for m in models if _field(m, key) is not None]
        numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        numbers = [v for v in numbers if math.isfinite(v)]
        if numbers and len(numbers) == len(values):
            out[column] = float(np.mean(numbers))
        elif values:
            out[column] = ", ".join(sorted({str(v) for v in values}))
        else:
            out[column] = None
    return out


_ALIASES = {"train_steps": "steps"}  # model.json's shared field, for models that predate train_steps


def _field(model: Mapping[str, Any], key: str) -> Any:
    value = model.get(key)
    return model.get(_ALIASES[key]) if value is None and key in _ALIASES else value


def break_even(train_s: float | None, t_learner: float, t_scip: float) -> float:
    """Decisions after which ``train_s + n·t_learner < n·t_scip``: ``math.inf`` when the learner is
    not faster online ("never"), NaN when a number is unknown."""
    values = (train_s, t_learner, t_scip)
    if train_s is None or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values
    ):
        return math.nan
    saving = t_scip - t_learner
    if saving <= 0:
        return math.inf
    return math.floor(train_s / saving) + 1  # the first whole decision at which the sum is below


def break_even_text(n: float) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return MISSING
    if math.isinf(n):
        return "never"
    return f"{int(n):,}"


def decision_columns(
    rows: pd.DataFrame, reference_online: float, models: Iterable[Mapping[str, Any]] = (), learned: bool = False
) -> dict[str, Any]:
    """The columns of one method's line: online, ratio to SCIP (same run), offline batched and,
    for a learned method, its training cost and break-even against SCIP (online times)."""
    online = online_seconds(rows)
    line: dict[str, Any] = {
        ONLINE: online,
        RATIO: speed_ratio(reference_online, online),
        OFFLINE: offline_seconds(rows),
    }
    if learned:
        cost = training_cost(models)
        line.update(cost)
        line[BREAK_EVEN] = break_even_text(break_even(cost[TRAINING_KEYS["train_time_s"]], online, reference_online))
    else:
        line.update({column: None for column in TRAINING_COLUMNS})
        line[BREAK_EVEN] = MISSING
    return line


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Absent training fields and batched times as ``—`` (a table's NaN would read as "failed")."""
    frame = frame.copy()
    for column in (OFFLINE, *TRAINING_COLUMNS):
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), MISSING)
    return frame


DEFINITIONS = (
    f"{ONLINE}: median wall time the harness measured per state, one state per call (what a dispatcher "
    f"deciding each interval pays). {RATIO}: the SCIP reference's median online time in the same run "
    f"divided by the method's. {OFFLINE}: a learner's own time per state when a whole batch of states is "
    "decided at once (no dispatcher deciding each interval can use it). Training: wall time of fit, "
    "training steps, environment steps, true-cost evaluations (counterfactual plans included) and the "
    "messages training would send on the stations' network, as the model records them (— : not recorded). "
    f"{BREAK_EVEN}: the n after which training + n online decisions take less wall time than n SCIP "
    "decisions, training s / (t_SCIP − t_method); never when the method is not faster online."
)
