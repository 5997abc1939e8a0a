"""Families of generated days (96 intervals of 15 minutes) and random states for any problem.

One real-data day cannot tell a method that learned the problem from one that learned that
day. Each family here is a distribution of days with its own shape (which hours are busy,
which regions, how much V2G is plugged in, whether CS links bind); a day is drawn from it by
``(seed, family, day index)`` alone, so day 3 of seed 1000 is the same whatever else is asked
for, and the protocol (``protocol.py``) can hand training, validation and test disjoint seeds.

Demand is shaped per region *kind* (:func:`~dispatchbench.instances.generate_problem.kind_of`)
and sized by the region's capacity (its FDC/ASC ``p_max`` plus V2G ``efficiency · p_max``), so
the same family works on the paper's instance and on a generated 128-region one. Every state is
made feasible by :func:`~dispatchbench.instances.state_repair.repair` before it is returned.
The families and their ranges are documented in ``docs/generator.md``; keep the two in step.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dispatchbench.contract.limits import SEED_MAX
from dispatchbench.instances.generate_problem import DRAW_STREAM, kind_of
from dispatchbench.instances.state_repair import DECIMALS, repair
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem, State
from dispatchbench.model.state_file import MAX_CELLS, expected_columns, load_states

INTERVALS = 96
HOURS = np.arange(INTERVALS) / 4.0  # interval start, hours after midnight
NOISE = 0.02  # multiplicative, per region and interval
MAX_DAYS = 366
MAX_RANDOM = 100_000


def _bump(center: float, width: float) -> np.ndarray:
    """A daily (wrapping) Gaussian bump over the 96 intervals, peak 1."""
    dist = np.abs(HOURS - center)
    dist = np.minimum(dist, 24.0 - dist)
    return np.exp(-0.5 * (dist / width) ** 2)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / x.max()


# When each kind of region charges (peak 1): workplace mornings, residential evenings, public
# noon and evening, the fast hub commuter peaks (cf. problems/ATTRIBUTION.md for the real day).
DEMAND_SHAPE = {
    "mixed": _unit(_bump(9.0, 2.0) + 0.6 * _bump(14.0, 2.0)),
    "residential": _unit(_bump(19.5, 2.5) + 0.5 * _bump(23.0, 2.0)),
    "public": _unit(0.7 * _bump(12.0, 2.5) + _bump(18.5, 2.0)),
    "hub": _unit(0.6 * _bump(8.0, 1.5) + _bump(18.0, 2.5)),
}
# Share of a V2G group's p_max plugged in: cars parked at work by day, at home by night.
PLUGGED_SHAPE = {
    "mixed": 0.05 + 0.95 * _bump(11.0, 3.0),
    "residential": 1.0 - 0.75 * _bump(13.0, 4.0),
}
NIGHT_SHAPE = _bump(2.0, 3.0)  # peak 02:00, most of it 22:00-06:00
NIGHT_PLUGGED = 0.2 + 0.8 * _bump(1.0, 4.0)


@dataclass(frozen=True)
class DayDraw:
    """What a family draws for one day, before rounding and repair: (96, R) and (96, V) kW."""

    demand: np.ndarray
    v2g: np.ndarray


@dataclass(frozen=True)
class Family:
    name: str
    summary: str  # the one line `generate states --list` prints
    draw: Callable[[Problem, np.random.Generator], DayDraw]


# ---- per-problem arrays ------------------------------------------------------------------------
def _capacity(problem: Problem) -> np.ndarray:
    """Each region's largest local supply with every V2G fully plugged in, kW."""
    return problem.incidence @ problem.p_max


def _kinds(problem: Problem) -> list[str]:
    return [kind_of(problem, r).name for r in problem.region_names]


def _demand_shapes(problem: Problem) -> np.ndarray:
    """(96, R) demand shape of every region, by kind."""
    return np.stack([DEMAND_SHAPE[k] for k in _kinds(problem)], axis=1)


def _v2g_pmax(problem: Problem) -> np.ndarray:
    return np.array([g.p_max for g in problem.groups if g.is_v2g])


def _plugged(problem: Problem) -> np.ndarray:
    """(96, V) share of each V2G group's p_max plugged in, by its region's kind."""
    shapes = [
        PLUGGED_SHAPE.get(kind_of(problem, g.region).name, PLUGGED_SHAPE["mixed"]) for g in problem.groups if g.is_v2g
    ]
    return np.stack(shapes, axis=1) if shapes else np.zeros((INTERVALS, 0))


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.maximum(1.0 + NOISE * rng.standard_normal(shape), 0.0)


def _v2g_day(problem: Problem, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Plugged-in V2G power: the kind's plug-in shape × a per-group participation U(low, high)."""
    part = rng.uniform(low, high, len(problem.v2g_names))
    return _plugged(problem) * part * _v2g_pmax(problem) * _noise(rng, (INTERVALS, len(part)))


def _local_max(problem: Problem, v2g: np.ndarray) -> np.ndarray:
    """(96, R) largest local supply with the day's V2G availability."""
    ub = np.broadcast_to(problem.p_max, (INTERVALS, len(problem.groups))).copy()
    ub[:, problem.is_v2g] = np.minimum(ub[:, problem.is_v2g], v2g)
    return ub @ problem.incidence.T


# ---- the families ---------------------------------------------------------------------------
def _shaped_day(
    problem: Problem,
    rng: np.random.Generator,
    base: tuple[float, float],
    swing: tuple[float, float],
    v2g: tuple[float, float],
) -> DayDraw:
    """Each region's share of capacity: a flat base plus a swing along its kind's daily shape."""
    n = len(problem.regions)
    level, amplitude = rng.uniform(*base, n), rng.uniform(*swing, n)
    demand = _capacity(problem) * (level + amplitude * _demand_shapes(problem)) * _noise(rng, (INTERVALS, n))
    return DayDraw(demand, _v2g_day(problem, rng, *v2g))


def _base_load(problem: Problem, rng: np.random.Generator) -> DayDraw:
    return _shaped_day(problem, rng, base=(0.18, 0.28), swing=(0.05, 0.15), v2g=(0.5, 1.0))


def _night_heavy(problem: Problem, rng: np.random.Generator) -> DayDraw:
    n = len(problem.regions)
    homely = np.array([k in ("residential", "mixed") for k in _kinds(problem)])
    base = rng.uniform(0.08, 0.15, n)
    amp = np.where(homely, rng.uniform(0.30, 0.45, n), rng.uniform(0.10, 0.20, n))
    demand = _capacity(problem) * (base + amp * NIGHT_SHAPE[:, None]) * _noise(rng, (INTERVALS, n))
    part = rng.uniform(0.9, 1.3, len(problem.v2g_names))
    v2g = NIGHT_PLUGGED[:, None] * part * _v2g_pmax(problem) * _noise(rng, (INTERVALS, len(part)))
    return DayDraw(demand, v2g)


def hot_regions(n_regions: int, rng: np.random.Generator) -> np.ndarray:
    """The regions a skewed day piles onto: max(1, N // 8) consecutive ones from a random start."""
    count = max(1, n_regions // 8)
    return (int(rng.integers(n_regions)) + np.arange(count)) % n_regions


def _skewed(problem: Problem, rng: np.random.Generator) -> DayDraw:
    n = len(problem.regions)
    hot = np.zeros(n, dtype=bool)
    hot[hot_regions(n, rng)] = True
    v2g = _v2g_day(problem, rng, 0.5, 1.0)
    shape = _demand_shapes(problem)
    cold = _capacity(problem) * (rng.uniform(0.08, 0.20, n) + 0.05 * shape)
    local = _local_max(problem, v2g)
    heavy = (local * rng.uniform(0.6, 0.9, n) + problem.cs_max * rng.uniform(0.3, 0.8, n)) * (0.8 + 0.2 * shape)
    demand = np.where(hot, heavy, cold) * _noise(rng, (INTERVALS, n))
    return DayDraw(demand, v2g)


def _high_demand(problem: Problem, rng: np.random.Generator) -> DayDraw:
    return _shaped_day(problem, rng, base=(0.45, 0.60), swing=(0.10, 0.25), v2g=(0.7, 1.0))


def _cs_binding(problem: Problem, rng: np.random.Generator) -> DayDraw:
    n = len(problem.regions)
    importer = (rng.random(n) < 1 / 3) & (n > 1)  # a lone region has no one to import from
    if n > 1 and not importer.any():
        importer[int(rng.integers(n))] = True
    if importer.all() and n > 1:
        importer[int(rng.integers(n))] = False
    v2g = _v2g_day(problem, rng, 0.5, 1.0)
    shape = _demand_shapes(problem)
    low = rng.uniform(0.80, 0.90, n)
    need = low + (0.99 - low) * shape  # share of cs_max the region must import
    needy = _local_max(problem, v2g) + problem.cs_max * need
    spare = _capacity(problem) * (rng.uniform(0.05, 0.15, n) + 0.05 * shape) * _noise(rng, (INTERVALS, n))
    return DayDraw(np.where(importer, needy, spare), v2g)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "base_load",
            "base-load-heavy day like the real-data day: 18-28 % of capacity all day, "
            "+5-15 % at each region kind's own peak hours",
            _base_load,
        ),
        Family(
            "night_heavy",
            "quiet day, busy night (peak 02:00) in residential/mixed regions; V2G plugged in "
            "at 90-130 % of p_max at night",
            _night_heavy,
        ),
        Family(
            "skewed",
            "one region (N//8 adjacent ones for large N) near its local capacity plus 30-80 % of "
            "its CS limit; the rest at 8-25 %",
            _skewed,
        ),
        Family("high_demand", "45-60 % of capacity all day, +10-25 % at peak hours", _high_demand),
        Family(
            "cs_binding",
            "about a third of the regions must import 80-99 % of their CS limit beyond "
            "their own capacity; the rest have spare capacity",
            _cs_binding,
        ),
    )
}
RANDOM = "random"
RANDOM_SUMMARY = (
    "independent random states (--count K): each region 5-85 % of its capacity, each V2G group 0-120 % of p_max"
)


def family_lines() -> list[str]:
    """One line per family, as ``generate states --list`` prints them."""
    return [f"{f.name}: {f.summary}" for f in FAMILIES.values()] + [f"{RANDOM}: {RANDOM_SUMMARY}"]


def _rng(seed: int, family: str, index: int) -> np.random.Generator:
    """One stream per (seed, family, day or state index): prefixes of longer runs are identical."""
    return np.random.default_rng([DRAW_STREAM, seed, zlib.crc32(family.encode()), index])


@dataclass
class Generated:
    """States and how many needed each repair step (``docs/generator.md``)."""

    states: list[State]
    clipped: int = 0
    scaled: int = 0


def _collect(out: Generated, state: State, step: str) -> None:
    out.states.append(state)
    out.clipped += step == "clip"
    out.scaled += step == "scale"


def _check_file_size(problem: Problem, rows: int, option: str) -> None:
    """Refuse a request whose file the state loader would refuse (docs/model.md, limits)."""
    columns = len(expected_columns(problem))
    if rows * columns > MAX_CELLS:
        raise ValueError(
            f"{option}: {rows:,} states of {columns} columns exceed the state-file limit of {MAX_CELLS:,} cells "
            f"— fix: ask for at most {MAX_CELLS // columns:,} states per file"
        )


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"--seed {seed}: not a seed in 0..{SEED_MAX} — fix: give e.g. --seed 1000")


def generate_days(problem: Problem, family: str, days: int, seed: int, first_day: int = 0) -> Generated:
    """Days ``first_day .. first_day + days - 1`` of a family, 96 states each, all feasible."""
    if family not in FAMILIES:
        raise ValueError(f"--family {family}: unknown — fix: use one of {', '.join([*FAMILIES, RANDOM])}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days {days}: out of range — fix: give 1 to {MAX_DAYS} days")
    _check_seed(seed)
    _check_file_size(problem, days * INTERVALS, "--days")
    out = Generated([])
    for k in range(first_day, first_day + days):
        draw = FAMILIES[family].draw(problem, _rng(seed, family, k))
        for t in range(INTERVALS):
            _collect(out, *repair(problem, f"{family}_d{k}_t{t:02d}", draw.demand[t], draw.v2g[t]))
    return out


def generate_interval(problem: Problem, family: str, seed: int, day: int, interval: int) -> State:
    """Interval ``interval`` of day ``day`` of a family: the very state ``generate_days`` makes there
    (same draw, same repair), without repairing the other 95 — what a sampler drawing one
    interval at a time needs (the repair's feasibility check is most of a day's cost)."""
    if family not in FAMILIES:
        raise ValueError(f"--family {family}: unknown — fix: use one of {', '.join([*FAMILIES, RANDOM])}")
    if not 0 <= interval < INTERVALS:
        raise ValueError(f"interval {interval}: out of range — fix: give 0 to {INTERVALS - 1}")
    draw = FAMILIES[family].draw(problem, _rng(seed, family, day))
    return repair(problem, f"{family}_d{day}_t{interval:02d}", draw.demand[interval], draw.v2g[interval])[0]


def generate_random(problem: Problem, count: int, seed: int, first: int = 0) -> Generated:
    """``count`` independent random states ``random_<k>``, all feasible."""
    if not 1 <= count <= MAX_RANDOM:
        raise ValueError(f"--count {count}: out of range — fix: give 1 to {MAX_RANDOM} states")
    _check_seed(seed)
    _check_file_size(problem, count, "--count")
    cap, pmax = _capacity(problem), _v2g_pmax(problem)
    out = Generated([])
    for k in range(first, first + count):
        rng = _rng(seed, RANDOM, k)
        demand = cap * rng.uniform(0.05, 0.85, len(cap))
        v2g = pmax * rng.uniform(0.0, 1.2, len(pmax))
        _collect(out, *repair(problem, f"{RANDOM}_{k}", demand, v2g))
    return out


def states_csv(problem: Problem, states: list[State]) -> str:
    """The state file's text, fixed decimals (0.01 kW) so the same states give the same bytes."""
    lines = [",".join(expected_columns(problem))]
    for s in states:
        values = [s.demand[r] for r in problem.region_names] + [s.v2g_available[g] for g in problem.v2g_names]
        lines.append(",".join([s.label, *(f"{v:.{DECIMALS}f}" for v in values)]))
    return "\n".join(lines) + "\n"


def write_states(path: Path, problem: Problem, states: list[State]) -> list[State]:
    """Write the file and load it back with the project's loader (a file it rejects is removed)."""
    try:
        path.write_text(states_csv(problem, states), encoding="utf-8")
    except OSError as exc:  # a full disk, a read-only folder: one line, never a half-written file left
        path.unlink(missing_ok=True)
        raise InputError(
            path, "--out", f"cannot be written ({exc.strerror or exc})", "check the folder's permissions and free space"
        ) from None
    try:
        return load_states(path, problem)
    except Exception:
        path.unlink(missing_ok=True)
        raise
