"""What an installed dispatchbench finds, and what it never runs.

* The wheel carries every subpackage, the bundled plugins and the problem files (a fast check
  of pyproject.toml against the tree here; the slow test builds and installs the real wheel,
  as `.ci/check_wheel.sh` does in CI).
* Plugins come from the package, ``$DISPATCHBENCH_SOLVER_PATH`` and entry points — never from a
  ``./solvers`` folder that happens to lie where a command is run (issue 11: it was imported).
* Bundled problem files are named by file name from any folder; a path that exists wins.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dispatchbench import __version__
from dispatchbench.bench import plugins
from dispatchbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOLVERS = {"scip", "nlopt", "pso", "merit_order", "lagrangian", "admm", "flip_search", "madrl_tvc", "maddpg"}
MARKER = "EVIL_PLUGIN_RAN"

# A plugin that announces itself by writing a file when imported: if the file appears, the
# folder was imported.
EVIL = f'''
from pathlib import Path
Path.cwd().joinpath("{MARKER}").write_text(__file__)
from dispatchbench import Solver

class Evil(Solver):
    name = "{{name}}"
    description = "test only: must never be imported from the working directory"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        raise RuntimeError("evil solve ran")
'''

# A small honest plugin for the solver-path test: every unit on, load shared by capacity.
PROPORTIONAL = """
import numpy as np
from dispatchbench import Answer, Capabilities, Dispatch, Solver

class Proportional(Solver):
    name = "path_probe"
    description = "test only: demand shared in proportion to p_max"
    capabilities = Capabilities(handles_commitment=False)

    def solve(self, problem, states, *, seed=0, time_limit=None):
        p_max = np.array([g.p_max for g in problem.groups])
        return [Answer(Dispatch.from_power(problem, s, p_max * problem.demand_vector(s).sum() / p_max.sum()),
                       "feasible") for s in states]
"""


def dispatchbench_cmd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed console script (not ``python -m``, which would put ``cwd`` on sys.path)."""
    exe = shutil.which("dispatchbench")
    cmd = [exe] if exe else [sys.executable, "-m", "dispatchbench"]
    base = {k: v for k, v in os.environ.items() if k != plugins.SOLVER_PATH_ENV}
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**base, "COLUMNS": "200", **(env or {})},
    )


def run_main(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else info.value.code), out, err


# ---- what the wheel holds ------------------------------------------------------------------------


def test_pyproject_packages_every_subpackage_and_data_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, dirs, data = set(config["packages"]), config["package-dir"], config["package-data"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "dispatchbench").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= packages, f"subpackages missing from [tool.setuptools] packages: {sorted(on_disk - packages)}"
    for package in ("dispatchbench.solvers", "dispatchbench.problems", "dispatchbench.studies"):
        folder = ROOT / dirs[package]
        assert (folder / "__init__.py").is_file()
        unpackaged = [
            f.name
            for f in folder.iterdir()
            if f.is_file()
            and f.suffix not in (".py", ".pyc")
            and not any(fnmatch.fnmatch(f.name, pattern) for pattern in data.get(package, []))
        ]
        assert not unpackaged, f"{folder}: files the wheel would leave out: {unpackaged}"


def test_version_flag():
    proc = dispatchbench_cmd("--version", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"dispatchbench {__version__} (Python ")


# ---- where plugins come from ----------------------------------------------------------------------


def test_solvers_json_lists_the_bundled_plugins_with_ranges_and_origin(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(plugins.SOLVER_PATH_ENV, raising=False)
    code, out, err = run_main(capsys, monkeypatch, "solvers", "--json")
    assert code == 0, err
    doc = json.loads(out)
    by_name = {s["name"]: s for s in doc["solvers"]}
    assert SOLVERS <= set(by_name) and doc["broken"] == []
    assert doc["dispatchbench_version"] == __version__
    for name in SOLVERS:
        assert by_name[name]["source"] == "bundled" and Path(by_name[name]["origin"]).is_file()
    assert by_name["pso"]["parameter_ranges"]["particles"][0] >= 1
    assert by_name["scip"]["capabilities"] == {
        "exact": True,
        "stochastic": False,
        "learns": False,
        "handles_commitment": True,
        "reads_costs": True,
    }


def test_a_solvers_folder_in_the_working_directory_is_never_imported(tmp_path):
    (tmp_path / "solvers").mkdir()
    (tmp_path / "solvers" / "__init__.py").write_text("")
    (tmp_path / "solvers" / "evil.py").write_text(EVIL.replace("{name}", "evil"))
    (tmp_path / "solvers" / "scip.py").write_text(EVIL.replace("{name}", "scip"))  # would shadow the real one
    listed = dispatchbench_cmd("solvers", cwd=tmp_path)
    assert listed.returncode == 0 and "evil" not in listed.stdout + listed.stderr
    solve = ["solve", "-p", "paper-4region.toml", "-s", "paper-4region-tableIV.csv", "--json", "--solver"]
    typo = dispatchbench_cmd(*solve, "scipp", cwd=tmp_path)  # an unknown name sends discovery everywhere
    assert typo.returncode == 2 and "no solver named 'scipp'" in typo.stderr
    assert "evil" not in typo.stderr.split("available:")[1]  # not even listed as available
    real = dispatchbench_cmd(*solve, "scip", cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    assert f"{json.loads(real.stdout)['cost']:.4f}" == "4903.9687"
    assert not (tmp_path / MARKER).exists(), "a plugin in ./solvers was imported"


def test_a_folder_on_the_solver_path_is_loaded(capsys, monkeypatch, tmp_path):
    folder = tmp_path / "my plugins"
    folder.mkdir()
    (folder / "proportional.py").write_text(PROPORTIONAL)
    env = {plugins.SOLVER_PATH_ENV: str(folder)}
    doc = json.loads(dispatchbench_cmd("solvers", "--json", cwd=tmp_path, env=env).stdout)
    probe = next(s for s in doc["solvers"] if s["name"] == "path_probe")
    assert probe["source"] == "solver path" and Path(probe["origin"]) == (folder / "proportional.py").resolve()
    proc = dispatchbench_cmd(
        "solve",
        "-p",
        "wood-wollenberg-3a.toml",
        "-s",
        "wood-wollenberg-3a.csv",
        "--solver",
        "path_probe",
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["status"] == "feasible" and row["cost"] > 0  # the evaluator's cost of its answer
    monkeypatch.delenv(plugins.SOLVER_PATH_ENV, raising=False)  # and only from there
    code, _, err = run_main(
        capsys,
        monkeypatch,
        "solve",
        "-p",
        "wood-wollenberg-3a.toml",
        "-s",
        "wood-wollenberg-3a.csv",
        "--solver",
        "path_probe",
    )
    assert code == 2 and "no solver named 'path_probe'" in err


@pytest.fixture
def no_plugins(monkeypatch):
    """Discovery as in a package installed without its bundled plugins: no folder, no entry point."""
    monkeypatch.delenv(plugins.SOLVER_PATH_ENV, raising=False)
    monkeypatch.setattr(plugins, "bundled_dir", lambda: None)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    plugins._discover.cache_clear()
    yield
    plugins._discover.cache_clear()


@pytest.mark.parametrize("args", [("solvers",), ("solvers", "--json")])
def test_no_solver_at_all_is_an_error_that_says_where_it_looked(capsys, monkeypatch, no_plugins, args):
    code, out, err = run_main(capsys, monkeypatch, *args)
    assert code == 1
    [line] = err.strip().splitlines()
    for text in (
        "no solver plugins found",
        "bundled plugins (dispatchbench.solvers) are not installed",
        "$DISPATCHBENCH_SOLVER_PATH is not set",
        "entry-point group 'dispatchbench.solvers'",
        "fix:",
    ):
        assert text in line, text
    if "--json" in args:
        assert json.loads(out) == {
            "dispatchbench_version": __version__,
            "solvers": [],
            "broken": [],
            "shadowed": [],
            "solver_path_problems": [],
        }


# ---- naming bundled problem files ------------------------------------------------------------------


def test_bundled_files_by_name_from_any_folder(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, monkeypatch, "validate", "paper-4region.toml")
    assert code == 0, err
    assert out.startswith("paper-4region.toml: problem 'paper-4region' is valid")
    code, out, err = run_main(
        capsys,
        monkeypatch,
        "validate",
        "problems/paper-4region-tableIV.csv",
        "--problem",
        "problems/paper-4region.toml",
    )
    assert code == 0 and "1 states for problem 'paper-4region', 1 feasible" in out, err


def test_an_existing_path_wins_over_the_bundled_file_of_that_name(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "problems" / "wood-wollenberg-3a.toml", tmp_path / "paper-4region.toml")
    code, out, _ = run_main(capsys, monkeypatch, "validate", "paper-4region.toml")
    assert code == 0 and "problem 'wood-wollenberg-3a' is valid" in out


def test_an_unknown_file_name_says_where_bundled_files_are(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, monkeypatch, "validate", "paper-5region.toml")
    assert code == 2
    assert "paper-5region.toml: file: not found" in err and "bundled" in err and len(err.strip().splitlines()) == 1


# ---- the real wheel ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)  # builds and installs a wheel with torch into a fresh venv
def test_the_wheel_installed_in_a_fresh_venv_lists_and_solves_from_outside_the_checkout():
    """Builds the wheel, installs it with [all] into a new venv and uses it from an empty folder
    (about a minute, most of it pip); the same script runs in .ci/run."""
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "check_wheel.sh")], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "solvers: admm, flip_search, lagrangian, maddpg, madrl_tvc, merit_order, nlopt, pso, scip" in proc.stdout
    assert "solve (CLI): tableIV optimal cost 4903.9687" in proc.stdout
    assert "solve (Python API): cost 4903.9687" in proc.stdout
