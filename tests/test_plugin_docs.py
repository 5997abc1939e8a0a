"""The plugin author's path (docs/plugins.md): the worked example ``cheapest_first`` loaded from a
solver-path folder and from an installed entry point, shot out against SCIP, tabled and
reported; plugin provenance on every row; ``run --resume`` recomputing the cells of a plugin
that was edited since; and the report around a third-party plugin."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatchbench.bench.harness import run_benchmark
from dispatchbench.bench.results_store import SUPERSEDED_FILE, load_results
from dispatchbench.report import figures, tables
from dispatchbench.report.html_report import build_report, method_labels
from dispatchbench.report.tables import make_tables

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
EXAMPLE = EXAMPLES / "cheapest_first.py"
PACKAGE = EXAMPLES / "cheapest-first-plugin"
PROBLEM = ROOT / "problems" / "paper-4region.toml"
# the paper's Table IV state and a quieter one: Table IV and a two-state "day" for Table V
STATES = """state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6
tableIV,100,120,50,530,70,150
s1,90,110,45,480,60,120
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def states(tmp_path) -> Path:
    path = tmp_path / "two.csv"
    path.write_text(STATES)
    return path


def test_the_page_shows_the_example_file_whole():
    """docs/plugins.md carries the example verbatim, and the package ships the same file."""
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
    assert (PACKAGE / "src" / "cheapest_first_plugin" / "cheapest_first.py").read_bytes() == EXAMPLE.read_bytes()
    assert "docs/plugins.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_solver_path_plugin_shootout_table_report_and_resume(tmp_path, states, monkeypatch, capsys):
    """From a DISPATCHBENCH_SOLVER_PATH folder: a run against SCIP records each plugin's file and
    hash on every row, tables and a report show it by its label and provenance, and after an
    edit ``--resume`` recomputes exactly its cells, saying so."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugin = folder / "cheapest_first.py"
    shutil.copy(EXAMPLE, plugin)
    monkeypatch.setenv("DISPATCHBENCH_SOLVER_PATH", str(folder))
    out = tmp_path / "run"
    summary = run_benchmark(PROBLEM, [states], "scip,cheapest_first", [0, 1], out, progress=False)
    assert summary.rows_written == 4 and summary.statuses == {"optimal": 2, "feasible": 2}  # deterministic: seed 0

    rows = load_results(out).set_index(["solver", "state"])
    mine = rows.loc["cheapest_first"]
    assert set(mine["plugin_source"]) == {"solver path"} and set(mine["plugin_origin"]) == {str(plugin.resolve())}
    assert set(mine["plugin_sha256"]) == {sha256(plugin)} and mine["plugin_package"].isna().all()
    assert set(mine["label"]) == {"Cheapest first"} and set(mine["family"]) == {"heuristic, greedy"}
    scip = rows.loc["scip"]
    assert set(scip["plugin_source"]) == {"bundled"} and set(scip["plugin_sha256"]) == {
        sha256(ROOT / "solvers" / "scip.py")
    }
    # a real heuristic: feasible, and above the certified optimum
    assert (mine["cost"] > scip["cost"] * (1 + 1e-4)).all()

    written = make_tables([out], "scip")
    assert [pt.number for pt in written.tables] == ["IV", "V"]
    table_iv = written.tables[0].table.set_index("method")
    assert table_iv.loc["cheapest_first", "gap_to_exact"] > 0 and table_iv.loc["scip", "gap_to_exact"] == 0
    assert table_iv.loc["cheapest_first", "seeds"] == 1
    assert "The paper's own Table IV" in written.text  # the paper's problem: its numbers are quoted beside ours

    report = build_report(out, out_root=tmp_path / "reports", name="example")
    text = report.markdown.read_text(encoding="utf-8")
    assert "Cheapest first" in text and "cheapest_first (2)" not in text
    assert re.search(
        r"plugin: Cheapest first +\| solver path: \S*cheapest_first\.py, sha256 " + sha256(plugin)[:12], text
    )

    old = sha256(plugin)
    plugin.write_text(plugin.read_text(encoding="utf-8") + "\n# edited: a new revision of the heuristic\n")
    capsys.readouterr()
    again = run_benchmark(PROBLEM, [states], "scip,cheapest_first", [0, 1], out, resume=True, progress=False)
    said = capsys.readouterr().err
    line = (
        f"plugin cheapest_first changed since these rows (file hash {old[:8]} → file hash {sha256(plugin)[:8]}): "
        "recomputing its 1 cell (2 rows)"
    )
    assert line in said and line in again.notes and "scip" not in said
    assert (again.rows_written, again.rows_skipped, again.rows_recomputed) == (2, 2, 2)
    rows = load_results(out)  # strict reading: no key twice, every row planned
    assert len(rows) == 4
    assert set(rows[rows["solver"] == "cheapest_first"]["plugin_sha256"]) == {sha256(plugin)}
    assert len(pd.read_parquet(out / "results.parquet")) == 4
    moved = [json.loads(x) for x in (out / SUPERSEDED_FILE).read_text().splitlines()]
    assert {r["plugin_sha256"] for r in moved} == {old} and len(moved) == 2

    quiet = run_benchmark(PROBLEM, [states], "scip,cheapest_first", [0], out, resume=True, progress=False)
    assert (quiet.rows_written, quiet.rows_skipped, quiet.notes) == (0, 4, [])


def _pip_installed(tmp_path: Path) -> dict[str, str]:
    """The example package installed by pip into a folder of its own (from a copy in tmp), and an
    environment that sees it: PYTHONPATH puts the folder on sys.path, so importlib.metadata finds
    its ``dispatchbench.solvers`` entry point exactly as in a site-packages. Without build
    isolation when the running setuptools can build a wheel itself (70.1 or later, or with
    ``wheel``): seconds instead of half a minute."""
    source = tmp_path / "cheapest-first-plugin"
    shutil.copytree(PACKAGE, source)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(source)]
    flags = ["--no-build-isolation"] if _can_build_wheels() else []
    done = subprocess.run([*pip, *flags], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return _seeing(site)


def _can_build_wheels() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    try:
        import wheel  # noqa: F401
    except ImportError:
        return (major, minor) >= (70, 1)
    return True


def _unpacked(tmp_path: Path) -> dict[str, str]:
    """The package laid out as installing its wheel would: the module, and a ``.dist-info`` whose
    ``entry_points.txt`` and version come from the package's own pyproject.toml. Discovery goes
    through importlib.metadata's entry points as for a pip install, without pip's half minute."""
    meta = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = tmp_path / "site"
    shutil.copytree(PACKAGE / "src" / "cheapest_first_plugin", site / "cheapest_first_plugin")
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    points = meta["entry-points"]["dispatchbench.solvers"]
    (info / "entry_points.txt").write_text(
        "[dispatchbench.solvers]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.py"))
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return _seeing(site)


def _seeing(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPATCHBENCH_SOLVER_PATH", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    return env


@pytest.mark.slow
def test_entry_point_plugin_run_table_report(tmp_path, states):
    """The same example as an installed package: found through its entry point, run against SCIP
    by the command line, recorded with its distribution and version, tabled and reported."""
    env = _pip_installed(tmp_path)

    def cli(*args: str) -> str:
        done = subprocess.run(
            ["dispatchbench", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli(
        "run",
        "-p",
        str(PROBLEM),
        "-s",
        str(states),
        "--solvers",
        "scip,cheapest_first",
        "--out",
        "run",
        "--no-progress",
    )
    rows = load_results(tmp_path / "run")
    mine = rows[rows["solver"] == "cheapest_first"]
    assert len(mine) == 2 and set(mine["status"]) == {"feasible"}
    assert set(mine["plugin_source"]) == {"entry point"}
    assert set(mine["plugin_origin"]) == {"cheapest_first_plugin.cheapest_first:CheapestFirst"}
    assert set(mine["plugin_package"]) == {"cheapest-first-plugin"} and set(mine["plugin_version"]) == {"0.1.0"}
    assert set(mine["plugin_sha256"]) == {sha256(EXAMPLE)}  # the installed module file, from the RECORD
    assert "cheapest_first" in cli("table", "run", "--baseline", "scip")
    cli("report", "run", "--name", "ep")
    text = (tmp_path / "reports" / "ep" / "report.md").read_text(encoding="utf-8")
    assert re.search(
        r"plugin: Cheapest first +\| entry point: cheapest_first_plugin\.cheapest_first:CheapestFirst, "
        r"cheapest-first-plugin 0\.1\.0, sha256 " + sha256(EXAMPLE)[:12],
        text,
    )


def test_entry_point_plugin_in_process(tmp_path, states, monkeypatch):
    """The fast sibling of the slow test: the package as installed, found through its entry
    point, run by the harness (its cell's child sees the same sys.path), every row recording the
    distribution, its version and the module file's hash."""
    env = _unpacked(tmp_path)
    monkeypatch.delenv("DISPATCHBENCH_SOLVER_PATH", raising=False)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    monkeypatch.syspath_prepend(env["PYTHONPATH"])
    from dispatchbench.bench import plugins

    origin = plugins.plugin_origins()["cheapest_first"]
    assert origin == "cheapest_first_plugin.cheapest_first:CheapestFirst"
    prov = plugins.plugin_provenance(origin)
    assert (prov.source, prov.package, prov.version, prov.sha256) == (
        "entry point",
        "cheapest-first-plugin",
        "0.1.0",
        sha256(EXAMPLE),
    )
    assert prov.describe() == f"cheapest-first-plugin 0.1.0, file hash {sha256(EXAMPLE)[:8]}"
    out = tmp_path / "run"
    summary = run_benchmark(PROBLEM, [states], "cheapest_first[reserve=0.2]", [0], out, progress=False)
    assert summary.statuses == {"feasible": 2}
    rows = load_results(out)
    assert set(rows["plugin_source"]) == {"entry point"} and set(rows["plugin_package"]) == {"cheapest-first-plugin"}
    assert set(rows["label"]) == {"Cheapest first (reserve 20%)"}


# ---- the report around a plugin --------------------------------------------------------------------


def test_two_specs_with_one_label_are_told_apart_by_their_parameters():
    frame = pd.DataFrame(
        {
            "method": ["scip", "cheapest_first", "cheapest_first[reserve=0.1]"],
            "label": ["SCIP", "Cheapest first", "Cheapest first"],
            "exact": [True, False, False],
            "learns": [False, False, False],
        }
    )
    labels = method_labels(frame)
    assert labels == {
        "scip": "SCIP",
        "cheapest_first": "Cheapest first [defaults]",
        "cheapest_first[reserve=0.1]": "Cheapest first [reserve=0.1]",
    }


def test_gap_figure_ticks_are_plain_numbers():
    gaps = pd.DataFrame({"SCIP": np.zeros(8), "Cheapest first": np.linspace(0, 5, 8)})
    fig, ax = figures.gap_axes(gaps, figures.method_colors(list(gaps.columns)), "SCIP")
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_yticklabels()]
    figures.plt.close(fig)
    assert shown and not any("mathdefault" in t or "$" in t for t in shown)
    assert "1" in shown and "0.01" in shown


def test_coinciding_lines_stay_visible():
    """A line drawn over another is narrower and dashed otherwise: the one below shows."""
    styles = [figures.line_style(rank, 3) for rank in range(3)]
    widths = [s["lw"] for s in styles]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert len({str(s["ls"]) for s in styles}) == 3


def test_paper_numbers_only_beside_the_paper_problem(tmp_path):
    from dispatchbench.instances.generate_problem import generate_problem
    from dispatchbench.model.problem_file import load_problem

    assert tables.is_paper_problem(load_problem(PROBLEM))
    assert tables.is_paper_problem(load_problem(ROOT / "problems" / "paper-4region-convex.toml"))
    assert not tables.is_paper_problem(generate_problem(regions=4, seed=7))
    table = pd.DataFrame(columns=[*tables.COLUMNS])
    own = tables.markdown(tables.PaperTable("V", table, "a day", "scip", paper_problem=False))
    assert "paper's own" not in own
    assert "paper's own" in tables.markdown(tables.PaperTable("V", table, "a day", "scip"))
