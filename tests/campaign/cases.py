"""The bad-input campaign's cases, by the classes of issue 20's adversarial round.

Every case names its class, its command (or API call) and what is due; ``fast`` marks the
representative subset the default test run (CI) takes, a few per class. The workspace they read
is written once by :func:`build_workspace`; paths inside it are written ``{ws}/...`` and the
case's own folder ``{case}`` (see :mod:`campaign.runner`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.files import GOOD_STATE_FILES, HEADER, PAPER, PROBLEMS, ROW, TABLE_IV, edit, paper_text
from campaign.files import problem_files as problem_file_bytes
from campaign.files import state_files as state_file_bytes
from campaign.runner import Case, both, no_path, nothing_in, stderr_has, stdout_has, stdout_lacks

CLASSES = (
    "problem files",
    "state files",
    "command options",
    "solver specs",
    "model folders",
    "tampered result folders",
    "run / resume / lock",
    "generate",
    "plugins",
    "Dask addresses",
    "report options",
    "Python API",
)

TESTS = Path(__file__).resolve().parents[1]
PLUGINS = TESTS / "plugins"
WS = Path("{ws}")
RUN = "{ws}/runs/good"  # a hand-written, valid results folder (campaign.cases.build_workspace)
HAND_TOML = "{ws}/runs/inputs/hand.toml"
HAND_IV = "{ws}/runs/inputs/iv.csv"
OPTIMAL = '"status": "optimal"'


# ---- the workspace ------------------------------------------------------------------------------------


def build_workspace(ws: Path) -> None:
    """Write every shared file the cases read: bad problem and state files, model folders, a
    valid results folder (by hand: no solver runs) and copies of the test plugins."""
    (ws / "problems").mkdir(parents=True, exist_ok=True)
    (ws / "states").mkdir(exist_ok=True)
    for name, (_, data) in problem_file_bytes().items():
        (ws / "problems" / f"{name}.toml").write_bytes(data)
    for name, (_, data) in state_file_bytes().items():
        (ws / "states" / f"{name}.csv").write_bytes(data)
    for name, text in GOOD_STATE_FILES.items():
        (ws / "states" / f"good_{name}.csv").write_text(text, encoding="utf-8")
    (ws / "problems" / "good_bom.toml").write_bytes(b"\xef\xbb\xbf" + paper_text().encode("utf-8"))
    limit = edit("p_max = 600.0", "p_max = 1e12").replace("a = 0.0020", "a = 0.0", 1)  # at the limit: valid
    (ws / "problems" / "good_at_limit.toml").write_text(limit, encoding="utf-8")
    (ws / "problems" / "a_file.txt").write_text("not a folder\n")
    (ws / "problems" / "empty_dir").mkdir(exist_ok=True)
    models = ws / "models"
    for name, data in MODEL_FILES.items():
        (models / name).mkdir(parents=True, exist_ok=True)
        (models / name / "model.json").write_bytes(data)
    (models / "empty_folder").mkdir(parents=True, exist_ok=True)
    _good_run(ws / "runs")
    shutil.copytree(PLUGINS, ws / "plugins", dirs_exist_ok=True)


MODEL_FILES = {
    "random_bytes": bytes(range(256)) * 2,
    "invalid_json": b'{"solver": "madrl_tvc", ',
    "json_list": b'["madrl_tvc", 1]',
    "json_string": b'"model"',
    "empty_json": b"",
    "wrong_fields": b'{"solver": 5, "problem": []}',
    "nan_json": b'{"solver": NaN}',
    "deep_json": b"[" * 100000 + b"]" * 100000,
}


def _good_run(runs: Path) -> None:
    from hand_results import HandResults, write_run

    hand = HandResults(runs / "inputs")
    rows = [hand.row("exactA", "tableIV", 0, 0.0, "optimal", exact=True)]
    rows += [hand.row("pso", "tableIV", seed, 1.0 + seed, stochastic=True) for seed in (0, 1)]
    rows += [hand.row("exactA", f"t{i}", 0, 0.0, "optimal", file="day.csv", exact=True) for i in range(4)]
    rows += [hand.row("pso", f"t{i}", 0, 2.0, file="day.csv", stochastic=True) for i in range(4)]
    write_run(runs / "good", rows)


def copy_run(damage: Callable[[Path], None] | None = None, into: str = "run") -> Callable[[Path, Path], None]:
    """Setup: the good results folder copied to ``{case}/into``, then damaged."""

    def setup(case_dir: Path, ws: Path) -> None:
        dst = case_dir / into
        shutil.copytree(ws / "runs" / "good", dst, symlinks=True)
        if damage is not None:
            damage(dst)

    return setup


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]


def _write_rows(folder: Path, rows: list[dict]) -> None:
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "results.parquet").unlink(missing_ok=True)  # the log is the record; the view is stale


def _bytes_edit(fn: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / "rows.jsonl"
        path.write_bytes(fn(path.read_bytes()))
        (folder / "results.parquet").unlink(missing_ok=True)

    return damage


def _row_edit(fn: Callable[[list[dict]], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        rows = _rows(folder)
        fn(rows)
        _write_rows(folder, rows)

    return damage


def _append(**changes: object) -> Callable[[Path], None]:
    return _row_edit(lambda rows: rows.append({**rows[0], **changes}))


def _first(pattern: bytes, new: bytes) -> Callable[[Path], None]:
    return _bytes_edit(lambda data: re.sub(pattern, new, data, count=1))


def _link(name: str, target: str = "victim") -> Callable[[Path], None]:
    """Replace ``name`` in the folder with a symbolic link to the case's victim file (or folder)."""

    def damage(folder: Path) -> None:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        case_dir = folder.parent
        path.symlink_to(case_dir / "victim.txt" if target == "victim" else case_dir / target)

    return damage


def _remove(*names: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        for name in names:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    return damage


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return damage


def _edit_input(name: str, data: bytes) -> Callable[[Path], None]:
    """The run's input file changed since the run: the results folder names a copy in the case."""

    def damage(folder: Path) -> None:
        inputs = folder.parent / "inputs"
        shutil.copytree(folder.parents[0].parent.parent / "runs" / "inputs", inputs, dirs_exist_ok=True)
        rows = _rows(folder)
        for r in rows:
            r["problem_file"] = str(inputs / Path(r["problem_file"]).name)
            r["states_file"] = str(inputs / Path(r["states_file"]).name)
        _write_rows(folder, rows)
        manifest = (folder / "manifest.jsonl").read_text()
        (folder / "manifest.jsonl").write_text(manifest)
        if data:
            (inputs / name).write_bytes(data)
        else:
            (inputs / name).unlink()

    return damage


def _chain(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        for d in damages:
            d(folder)

    return damage


# ---- the cases ----------------------------------------------------------------------------------------


def all_cases() -> list[Case]:
    cases = (
        problem_cases()
        + state_cases()
        + option_cases()
        + spec_cases()
        + model_cases()
        + tampered_cases()
        + run_cases()
        + generate_cases()
        + plugin_cases()
        + dask_cases()
        + report_cases()
        + api_cases()
    )
    names = [(c.cls, c.name) for c in cases]
    assert len(names) == len(set(names)), "case names are unique within a class"
    return cases


FAST_PROBLEMS = {
    "types: region_list (validate)",
    "types: p_max_date (validate)",
    "types: region_list (solve)",
    "syntax: binary (validate)",
    "syntax: utf16 (validate)",
    "syntax: BOM is accepted",
    "names: newline_in_group (validate)",
    "names: script_problem_name (validate)",
    "limits: p_max_1e308 (validate)",
    "limits: cost_overflow_at_p_max (validate)",
}


def problem_cases() -> list[Case]:
    table_iv = str(TABLE_IV)
    out: list[Case] = []
    for name, (cls, _) in problem_file_bytes().items():
        path = f"{{ws}}/problems/{name}.toml"
        out.append(Case("problem files", f"{cls}: {name} (validate)", ["validate", path], says=f"{name}.toml"))
        if cls == "limits" or name in ("region_list", "type_list", "p_max_string", "script_problem_name"):
            out.append(Case("problem files", f"{cls}: {name} (solve)", ["solve", "-p", path, "-s", table_iv]))
    out.append(Case("problem files", "syntax: BOM is accepted", ["validate", "{ws}/problems/good_bom.toml"], "", "ok"))
    out.append(
        Case(
            "problem files",
            "limits: 1e12 kW at the limit solves",
            ["solve", "-p", "{ws}/problems/good_at_limit.toml", "-s", table_iv, "--solver", "scip", "--json"],
            expect="ok",
            check=stdout_has(OPTIMAL),
        )
    )
    out.append(Case("problem files", "syntax: problem path is a folder", ["validate", "{ws}/problems/"]))
    out.append(Case("problem files", "syntax: problem is a CSV", ["solve", "-p", table_iv, "-s", table_iv]))
    out.append(Case("problem files", "syntax: problem is a text file", ["validate", "{ws}/problems/a_file.txt"]))
    out.append(Case("problem files", "syntax: problem is /dev/zero", ["validate", "/dev/zero"], timeout=30))
    out.append(Case("problem files", "syntax: problem is a FIFO", ["validate", "{case}/fifo.toml"], setup=_fifo))
    out.append(  # an input may be a link (only writing through one is refused)
        Case(
            "problem files",
            "syntax: problem is a link",
            ["validate", "{case}/link.toml"],
            expect="ok",
            setup=_link_to(PAPER),
        )
    )
    for c in out:
        c.fast = c.name in FAST_PROBLEMS
    return out


def _fifo(case_dir: Path, _: Path) -> None:
    os.mkfifo(case_dir / "fifo.toml")


def _link_to(target: Path) -> Callable[[Path, Path], None]:
    def setup(case_dir: Path, _: Path) -> None:
        (case_dir / ("link" + target.suffix)).symlink_to(target)

    return setup


FAST_STATES = {
    "labels: script_label (validate)",
    "labels: newline_label (validate)",
    "values: cell_1e13 (validate)",
    "encoding: binary (validate)",
    "good: bom",
    "good: time_labels",
    "columns: other_problem (validate)",
}


def state_cases() -> list[Case]:
    paper = str(PAPER)
    out: list[Case] = []
    for name, (cls, _) in state_file_bytes().items():
        path = f"{{ws}}/states/{name}.csv"
        out.append(Case("state files", f"{cls}: {name} (validate)", ["validate", path, "--problem", paper]))
        if cls == "labels" or name in ("cell_1e13", "nan_cell"):
            out.append(
                Case("state files", f"{cls}: {name} (solve)", ["solve", "-p", paper, "-s", path, "--solver", "scip"])
            )
    for name in GOOD_STATE_FILES:
        out.append(
            Case("state files", f"good: {name}", ["validate", f"{{ws}}/states/good_{name}.csv", "-p", paper], "", "ok")
        )
    out.append(
        Case(
            "state files",
            "good: BOM solves",
            ["solve", "-p", paper, "-s", "{ws}/states/good_bom.csv", "--solver", "scip", "--json"],
            expect="ok",
            check=stdout_has(OPTIMAL),
        )
    )
    out.append(Case("state files", "columns: state file is the TOML", ["solve", "-p", paper, "-s", paper]))
    out.append(Case("state files", "columns: state file is /dev/zero", ["validate", "/dev/zero", "-p", paper]))
    many = f"{HEADER}\n" + "".join(f"s{i},{ROW}\n" for i in range(3))
    out.append(
        Case(
            "state files",
            "labels: 3 states, one line too long",
            ["validate", "{case}/long.csv", "-p", paper],
            setup=_text("long.csv", many + "x" * 2_000_000 + f",{ROW}\n"),
        )
    )
    for c in out:
        c.fast = c.name in FAST_STATES
    return out


def _text(name: str, text: str) -> Callable[[Path, Path], None]:
    def setup(case_dir: Path, _: Path) -> None:
        (case_dir / name).write_text(text, encoding="utf-8")

    return setup


def option_cases() -> list[Case]:
    """Options of solve, validate and train."""
    paper, table_iv = str(PAPER), str(TABLE_IV)
    solve = ["solve", "-p", paper, "-s", table_iv, "--solver", "scip"]
    train = ["train", "-p", paper, "--solver", "madrl_tvc", "--no-progress"]
    cases = [
        ("solve --time-limit nan", [*solve, "--time-limit", "nan"], True),
        ("solve --time-limit inf", [*solve, "--time-limit", "inf"], True),
        ("solve --time-limit 1e300", [*solve, "--time-limit", "1e300"], False),
        ("solve --time-limit -1", [*solve, "--time-limit", "-1"], False),
        ("solve --time-limit 0", [*solve, "--time-limit", "0"], False),
        ("solve --time-limit abc", [*solve, "--time-limit", "abc"], False),
        ("solve --startup-timeout 0", [*solve, "--startup-timeout", "0"], False),
        ("solve --startup-timeout nan", [*solve, "--startup-timeout", "nan"], False),
        ("solve --seed -1", [*solve, "--seed", "-1"], False),
        ("solve --seed huge", [*solve, "--seed", "99999999999999999999"], True),
        ("solve --seed 2**40", [*solve, "--seed", str(2**40)], False),
        ("solve --seed garbage", [*solve, "--seed", "x1"], False),
        ("solve --seed float", [*solve, "--seed", "1.5"], False),
        ("solve missing --solver", ["solve", "-p", paper, "-s", table_iv], True),
        ("solve missing --problem", ["solve", "-s", table_iv, "--solver", "scip"], False),
        ("solve missing --states", ["solve", "-p", paper, "--solver", "scip"], False),
        ("solve missing problem file", ["solve", "-p", "{case}/nope.toml", "-s", table_iv, "--solver", "scip"], False),
        ("solve missing state file", ["solve", "-p", paper, "-s", "{case}/nope.csv", "--solver", "scip"], False),
        ("solve states is a folder", ["solve", "-p", paper, "-s", "{ws}/problems", "--solver", "scip"], False),
        ("solve unknown option", [*solve, "--fast"], False),
        ("solve overlong path", ["solve", "-p", "{case}/" + "n" * 5000, "-s", table_iv, "--solver", "scip"], True),
        ("solve overlong name", ["solve", "-p", "{case}/" + "n" * 300, "-s", table_iv, "--solver", "scip"], False),
        ("validate missing file", ["validate", "{case}/nope.toml"], False),
        ("validate csv without --problem", ["validate", table_iv], False),
        ("validate folder", ["validate", "{ws}/problems/empty_dir"], True),
        ("validate txt file", ["validate", "{ws}/problems/a_file.txt"], False),
        ("validate no argument", ["validate"], False),
        ("unknown command", ["sovle"], False),
        ("train --out is a file", [*train, "--steps", "10", "--out", "{ws}/problems/a_file.txt"], False),
        ("train --steps 0", [*train, "--steps", "0", "--out", "{case}/t"], False),
        ("train --steps -5", [*train, "--steps", "-5", "--out", "{case}/t"], False),
        ("train --steps huge", [*train, "--steps", "99999999999999999999", "--out", "{case}/t"], False),
        ("train non-learner", ["train", "-p", paper, "--solver", "scip", "--out", "{case}/t", "--no-progress"], True),
        ("train --seed huge", [*train, "--steps", "10", "--seed", "99999999999999999999", "--out", "{case}/t"], False),
        ("train --resume into empty", [*train, "--steps", "10", "--resume", "--out", "{case}/t"], False),
        ("train missing --solver", ["train", "-p", paper, "--out", "{case}/t", "--no-progress"], False),
        ("train bad problem", [*train[:2], "{ws}/problems/binary.toml", *train[3:], "--out", "{case}/t"], False),
    ]
    return [Case("command options", name, argv, fast=fast, check=no_path("t")) for name, argv, fast in cases]


def spec_cases() -> list[Case]:
    paper, table_iv = str(PAPER), str(TABLE_IV)
    solve = ["solve", "-p", paper, "-s", table_iv]
    specs = [
        "scip[time_limit=-1]",
        "scip[rel_gap=-1]",
        "pso[w=nan]",
        "pso[c1=inf]",
        "pso[particles=0]",
        "nlopt[xtol_rel=-1]",
        "nlopt[max_patterns=-1]",
        "pso[w=1,w=2]",
        "scip[rel_gap=0.1,rel_gap=0.2]",
        "scip[time_limit=inf]",
        "scip[time_limit=1e300]",
        "scip[time_limit=nan]",
        "scip[rel_gap=1]",
        "scip[rel_gap=nan]",
        "scip[persistent=maybe]",
        "scip[gap=0.1]",
        "scip[rel_gap=tiny]",
        "pso[particles=1.5]",
        "pso[particles=1e99]",
        "pso[particles=99999999999999999999]",
        "pso[w=-1]",
        "pso[w=5]",
        "pso[c2=-0.1]",
        "pso[decode=foo]",
        "pso[iterations=0]",
        "pso[c1=-inf]",
        "nlopt[algorithm=nope]",
        "nlopt[algorithm=LD_LBFGS]",
        "nlopt[commitment=foo]",
        "nlopt[encoding=x]",
        "nlopt[maxeval=0]",
        "nlopt[starts=0]",
        "nlopt[ftol_rel=nan]",
        "nlopt[inner_maxeval=99999999999]",
        "nlopt[xtol_rel=inf]",
        "nlopt[algorithm=LN_NELDERMEAD,encoding=equality]",
        "cplex",
        "scip[",
        "scip]",
        "[x]",
        "scip[rel_gap]",
        "scip[=1]",
        "scip[rel_gap=]",
        "scip[1x=2]",
        "scip[[rel_gap=0.1]]",
        "sc ip",
        "scip\nerror: fake",
        "pso[w=0.5]]",
        "madrl_tvc[refine=-5]",
        "madrl_tvc[model=/nonexistent/model]",
        "maddpg[model=/nonexistent/model]",
        "madrl_tvc[nosuch=1]",
        "",
        "scip,pso",
        "SCIP",
        "scip[rel_gap=1e-9" + ",rel_gap=1e-9" * 2000 + "]",
        "x" * 100000,
        "../../solvers/scip",
        "scip.py",
        "dispatchbench.solvers.scip:Scip",
    ]
    fast = {
        "scip[time_limit=-1]",
        "pso[w=nan]",
        "pso[particles=0]",
        "nlopt[xtol_rel=-1]",
        "pso[w=1,w=2]",
        "scip\nerror: fake",
        "nlopt[algorithm=nope]",
        "cplex",
    }
    out = [
        Case("solver specs", f"solve {spec[:60]!r}", [*solve, "--solver", spec], fast=spec in fast) for spec in specs
    ]
    run_specs = [
        "scip[time_limit=-1]",
        "pso[w=nan]",
        "pso[particles=0]",
        "nlopt[xtol_rel=-1]",
        "pso[w=1,w=2]",
        "scip,cplex",
        "scip],pso",
        "scip[rel_gap=0.1",
        "madrl_tvc[refine=-5]",
        "madrl_tvc[model=/nonexistent/model]",
        "scip,scip",
        ",",
        "scip,,pso",
    ]
    for spec in run_specs:
        argv = ["run", "-p", paper, "-s", table_iv, "--solvers", spec, "--out", "{case}/out", "--no-progress"]
        if spec in ("scip,scip", "scip,,pso"):  # documented: a spec given twice runs once, empty items are skipped
            out.append(Case("solver specs", f"run {spec!r}", argv, expect="ok", check=stdout_has("rows written")))
            continue
        out.append(Case("solver specs", f"run {spec!r}", argv, check=nothing_in("out"), fast=spec == "scip,cplex"))
    for spec in ["madrl_tvc[refine=-5]", "maddpg[w=1,w=2]", "madrl_tvc[nosuch=1]", "nosuch", "maddpg[batch_size=0]"]:
        argv = ["train", "-p", paper, "--solver", spec, "--steps", "10", "--out", "{case}/t", "--no-progress"]
        out.append(Case("solver specs", f"train {spec!r}", argv, check=no_path("t")))
    return out


def model_cases() -> list[Case]:
    paper, table_iv = str(PAPER), str(TABLE_IV)
    solve = ["solve", "-p", paper, "-s", table_iv]
    out: list[Case] = []
    for name in [*MODEL_FILES, "empty_folder", "missing"]:
        folder = f"{{ws}}/models/{name}"
        for solver in ("madrl_tvc", "maddpg"):
            out.append(
                Case(
                    "model folders",
                    f"solve {solver} model={name}",
                    [*solve, "--solver", f"{solver}[model={folder}]"],
                    fast=solver == "madrl_tvc" and name == "deep_json",
                )
            )
        out.append(
            Case(
                "model folders",
                f"train --resume {name}",
                ["train", "-p", paper, "--solver", "madrl_tvc", "--steps", "10", "--resume", "--out", folder]
                + ["--no-progress"],
            )
        )
    for name, damage in {
        "model.json is a link": lambda d: (d / "model.json").symlink_to(d.parent / "victim.txt"),
        "folder is a link to a file": None,
        "model.json is a folder": lambda d: (d / "model.json").mkdir(),
    }.items():

        def setup(case_dir: Path, _: Path, damage: Callable[[Path], None] | None = damage, name: str = name) -> None:
            folder = case_dir / "model"
            if damage is None:
                folder.symlink_to(case_dir / "victim.txt")
                return
            folder.mkdir()
            damage(folder)

        for solver in ("madrl_tvc", "maddpg"):
            out.append(
                Case(
                    "model folders",
                    f"solve {solver}: {name}",
                    [*solve, "--solver", f"{solver}[model={{case}}/model]"],
                    setup=setup,
                    fast=name == "model.json is a link" and solver == "madrl_tvc",
                )
            )
    return out


def tampered_cases() -> list[Case]:
    """A valid results folder, copied and damaged; every reader must refuse it with one line."""
    damages: dict[str, Callable[[Path], None]] = {
        "torn middle line": _bytes_edit(lambda b: b.replace(b"\n", b"", 1)),
        "empty object line": _bytes_edit(lambda b: b.replace(b"\n", b"\n{}\n", 1)),
        "list line": _bytes_edit(lambda b: b.replace(b"\n", b"\n[1, 2]\n", 1)),
        "empty line": _bytes_edit(lambda b: b.replace(b"\n", b"\n\n", 1)),
        "cost is text": _first(rb'"cost": [0-9.]+', b'"cost": "cheap"'),
        "status unknown": _first(rb'"status": "optimal"', b'"status": "great"'),
        "seed -1": _first(rb'"seed": 0', b'"seed": -1'),
        "state_index 7": _first(rb'"state_index": 0', b'"state_index": 7'),
        "torn last line": _bytes_edit(lambda b: b[:-40]),
        "binary line": _bytes_edit(lambda b: b + b"\xff\xfe\n"),
        "NUL bytes": _bytes_edit(lambda b: b + b"\x00" * 100 + b"\n"),
        "forged optimal row": _append(seed=0, solver="pso", cost=1.0, status="optimal", dispatch=None, state="t1"),
        "unplanned seed": _append(seed=5),
        "unknown run id": _append(run_id="20991231T000000-deadbeef"),
        "other problem hash": _append(problem_sha256="0" * 64),
        "unplanned spec": _append(solver="exactA[x=1]"),
        "duplicate row": _row_edit(lambda rows: rows.append(dict(rows[0]))),
        "cost without dispatch": _row_edit(lambda rows: rows[0].update(dispatch=None)),
        "dispatch of another shape": _row_edit(lambda rows: rows[0]["dispatch"].popitem()),
        "dispatch is text": _row_edit(lambda rows: rows[0].update(dispatch="<script>")),
        "cost NaN": _first(rb'"cost": [0-9.]+', b'"cost": NaN'),
        "huge number": _first(rb'"time_s": [0-9.]+', b'"time_s": 1' + b"0" * 400),
        "deep nesting": _row_edit(lambda rows: rows[0].update(info=json.loads("[" * 500 + "]" * 500))),
        "manifest removed": _remove("manifest.jsonl"),
        "manifest garbage": _write("manifest.jsonl", b"{not json\n"),
        "manifest empty": _write("manifest.jsonl", b""),
        "rows.jsonl is a link": _link("rows.jsonl"),
        "manifest is a link": _link("manifest.jsonl"),
        "results.parquet is a link, no log": _chain(_remove("rows.jsonl"), _link("results.parquet")),
        "parquet truncated, no log": _chain(
            _remove("rows.jsonl"), lambda d: (d / "results.parquet").write_bytes(b"PAR1\x00\x00")
        ),
        "rows.jsonl is a folder": _chain(
            _remove("rows.jsonl", "results.parquet"), lambda d: (d / "rows.jsonl").mkdir()
        ),
        "problem file changed": _edit_input("hand.toml", b'[problem]\nname = "hand"\ncommitment = true\n'),
        "state file removed": _edit_input("iv.csv", b""),
        "rows.jsonl is 0 bytes": _chain(_write("rows.jsonl", b""), _remove("results.parquet")),
    }
    fast = {"torn middle line", "forged optimal row", "rows.jsonl is a link", "manifest removed", "cost is text"}
    out: list[Case] = []
    for name, damage in damages.items():
        out.append(
            Case(
                "tampered result folders",
                f"table: {name}",
                ["table", "{case}/run", "--baseline", "pso", "--out", "{case}/tables"],
                setup=copy_run(damage),
                check=no_path("tables"),
                fast=name in fast,
            )
        )
    for name in ("forged optimal row", "rows.jsonl is a link", "manifest garbage", "duplicate row", "unknown run id"):
        out.append(
            Case(
                "tampered result folders",
                f"report: {name}",
                ["report", "{case}/run", "--reports", "{case}/reports", "--name", "r"],
                setup=copy_run(damages[name]),
                check=no_path("reports/r"),
            )
        )
        out.append(
            Case(
                "tampered result folders",
                f"load_results: {name}",
                api='db.load_results("{case}/run")',
                setup=copy_run(damages[name]),
            )
        )
    out.append(
        Case(
            "tampered result folders",
            "table: the untouched copy is read",
            ["table", "{case}/run", "--baseline", "pso", "--out", "{case}/tables"],
            expect="ok",
            setup=copy_run(),
            check=stdout_has("exactA"),
            fast=True,
        )
    )
    out.append(
        Case(
            "tampered result folders",
            "table: --out is a link to a folder elsewhere",
            ["table", "{case}/run", "--baseline", "pso", "--out", "{case}/tables"],
            setup=_chain_setup(copy_run(), _mkdir_link("tables", "elsewhere")),
            check=_empty_dir("elsewhere"),
        )
    )
    return out


def _chain_setup(*setups: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def setup(case_dir: Path, ws: Path) -> None:
        for s in setups:
            s(case_dir, ws)

    return setup


def _mkdir_link(name: str, target: str) -> Callable[[Path, Path], None]:
    def setup(case_dir: Path, _: Path) -> None:
        (case_dir / target).mkdir(exist_ok=True)
        (case_dir / name).symlink_to(case_dir / target)

    return setup


def _empty_dir(rel: str) -> Callable[[subprocess.CompletedProcess, Path], tuple[str, str] | None]:
    def check(_: subprocess.CompletedProcess, case_dir: Path) -> tuple[str, str] | None:
        if any((case_dir / rel).iterdir()):
            return "security", f"written through a link into {rel}"
        return None

    return check


def run_cases() -> list[Case]:
    paper, table_iv = str(PAPER), str(TABLE_IV)

    def run(*extra: str, solvers: str = "scip", out: str = "{case}/out") -> list[str]:
        return ["run", "-p", paper, "-s", table_iv, "--solvers", solvers, "--out", out, "--no-progress", *extra]

    hand_run = ["run", "-p", HAND_TOML, "-s", HAND_IV, "--solvers", "scip", "--out", "{case}/run", "--no-progress"]
    cases: list[Case] = [
        Case("run / resume / lock", "run --timeout nan", run("--timeout", "nan"), fast=True),
        Case("run / resume / lock", "run --timeout inf", run("--timeout", "inf")),
        Case("run / resume / lock", "run --timeout 1e300", run("--timeout", "1e300")),
        Case("run / resume / lock", "run --timeout -5", run("--timeout", "-5")),
        Case("run / resume / lock", "run --startup-timeout 0", run("--startup-timeout", "0")),
        Case("run / resume / lock", "run --seeds huge", run("--seeds", "99999999999999999999", solvers="pso")),
        Case("run / resume / lock", "run --seeds negative", run("--seeds", "-1", solvers="pso")),
        Case("run / resume / lock", "run --seeds garbage", run("--seeds", "a-b", solvers="pso"), fast=True),
        Case("run / resume / lock", "run --seeds reversed", run("--seeds", "5-1", solvers="pso")),
        Case("run / resume / lock", "run --seeds too many", run("--seeds", "0-99999999", solvers="pso")),
        Case("run / resume / lock", "run --seeds empty", run("--seeds", "", solvers="pso")),
        Case("run / resume / lock", "run --jobs 0", run("--jobs", "0")),
        Case("run / resume / lock", "run --jobs -1", run("--jobs", "-1")),
        Case("run / resume / lock", "run --jobs 100000", run("--jobs", "100000")),
        Case("run / resume / lock", "run --out is a file", run(out="{ws}/problems/a_file.txt")),
        Case(
            "run / resume / lock",
            "run missing state file",
            ["run", "-p", paper, "-s", "{case}/nope.csv", "--solvers", "scip", "--out", "{case}/out", "--no-progress"],
        ),
        Case("run / resume / lock", "run empty --solvers", run(solvers="")),
        Case("run / resume / lock", "run --resume and --force", run("--resume", "--force")),
        Case(
            "run / resume / lock",
            "run into a results folder without --resume",
            hand_run,
            setup=copy_run(),
            fast=True,
        ),
        Case(  # a results folder may hold several problems (table/report --problem picks one)
            "run / resume / lock",
            "resume with another problem",
            ["run", "-p", paper, "-s", table_iv, "--solvers", "scip", "--out", "{case}/run", "--resume"]
            + ["--no-progress"],
            expect="ok",
            setup=copy_run(),
        ),
        Case(
            "run / resume / lock", "resume a tampered folder", [*hand_run, "--resume"], setup=copy_run(_append(seed=5))
        ),
        Case(
            "run / resume / lock",
            "resume with a linked lock",
            [*hand_run, "--resume"],
            setup=copy_run(_link(".lock")),
            fast=True,
        ),
        Case(
            "run / resume / lock",
            "resume with a linked manifest",
            [*hand_run, "--resume"],
            setup=copy_run(_link("manifest.jsonl")),
        ),
        Case(
            "run / resume / lock",
            "resume with a linked log",
            [*hand_run, "--resume"],
            setup=copy_run(_link("rows.jsonl")),
        ),
        Case("run / resume / lock", "resume when the lock is held", [*hand_run, "--resume"], setup=_held_lock),
        Case(
            "run / resume / lock",
            "run --out is a link to a folder",
            run(out="{case}/out"),
            setup=_mkdir_link("out", "elsewhere"),
            check=_empty_dir("elsewhere"),
        ),
        Case(
            "run / resume / lock",
            "run --force over a linked log",
            [*hand_run, "--force"],
            setup=copy_run(_link("rows.jsonl")),
        ),
    ]
    return cases


def _held_lock(case_dir: Path, ws: Path) -> None:
    """The results folder's lock held by another live process (a run in progress)."""
    copy_run()(case_dir, ws)
    lock = case_dir / "run" / ".lock"
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    (case_dir / "holder.pid").write_text(str(proc.pid))


def generate_cases() -> list[Case]:
    paper = str(PAPER)
    gp = ["generate", "problem"]
    gs = ["generate", "states", "-p", paper]
    cases = [
        ("problem --regions 0", [*gp, "--regions", "0", "--out", "{case}/g.toml"], True),
        ("problem --regions 513", [*gp, "--regions", "513", "--out", "{case}/g.toml"], False),
        ("problem --regions -1", [*gp, "--regions", "-1", "--out", "{case}/g.toml"], False),
        ("problem --regions abc", [*gp, "--regions", "abc", "--out", "{case}/g.toml"], False),
        ("problem --regions huge", [*gp, "--regions", "9" * 30, "--out", "{case}/g.toml"], False),
        ("problem --seed -1", [*gp, "--regions", "3", "--seed", "-1", "--out", "{case}/g.toml"], False),
        ("problem --seed huge", [*gp, "--regions", "3", "--seed", "9" * 30, "--out", "{case}/g.toml"], True),
        ("problem --out is a folder", [*gp, "--regions", "3", "--out", "{ws}/problems/empty_dir"], False),
        ("problem --out in a missing folder", [*gp, "--regions", "3", "--out", "{case}/no/such/g.toml"], False),
        ("problem --out overlong", [*gp, "--regions", "3", "--out", "{case}/" + "n" * 300], False),
        ("problem missing --out", [*gp, "--regions", "3"], False),
        ("problem unknown subcommand", ["generate", "problems", "--regions", "3"], False),
        ("states missing --family", [*gs, "--out", "{case}/g.csv"], False),
        ("states unknown family", [*gs, "--family", "nosuch", "--out", "{case}/g.csv"], True),
        ("states random without --count", [*gs, "--family", "random", "--out", "{case}/g.csv"], False),
        (
            "states --count with a day family",
            [*gs, "--family", "base_load", "--count", "3", "--out", "{case}/g.csv"],
            False,
        ),
        ("states --count 0", [*gs, "--family", "random", "--count", "0", "--out", "{case}/g.csv"], False),
        ("states --count -1", [*gs, "--family", "random", "--count", "-1", "--out", "{case}/g.csv"], False),
        ("states --count huge", [*gs, "--family", "random", "--count", "999999999999", "--out", "{case}/g.csv"], True),
        ("states --days 0", [*gs, "--family", "base_load", "--days", "0", "--out", "{case}/g.csv"], False),
        ("states --days -1", [*gs, "--family", "base_load", "--days", "-1", "--out", "{case}/g.csv"], False),
        ("states --days huge", [*gs, "--family", "base_load", "--days", "999999999", "--out", "{case}/g.csv"], True),
        ("states --seed -1", [*gs, "--family", "base_load", "--seed", "-1", "--out", "{case}/g.csv"], False),
        ("states --seed huge", [*gs, "--family", "base_load", "--seed", "9" * 30, "--out", "{case}/g.csv"], False),
        (
            "states bad problem",
            ["generate", "states", "-p", "{ws}/problems/utf16.toml", "--family", "random"]
            + ["--count", "2", "--out", "{case}/g.csv"],
            False,
        ),
        (
            "states missing problem",
            ["generate", "states", "-p", "{case}/nope.toml", "--family", "random"]
            + ["--count", "2", "--out", "{case}/g.csv"],
            False,
        ),
        (
            "states --out is a folder",
            [*gs, "--family", "random", "--count", "2", "--out", "{ws}/problems/empty_dir"],
            False,
        ),
        (
            "states --out in a missing folder",
            [*gs, "--family", "random", "--count", "2", "--out", "{case}/a/b.csv"],
            False,
        ),
    ]
    out = [Case("generate", name, argv, fast=fast, check=no_path("g.csv")) for name, argv, fast in cases]
    out.append(
        Case(
            "generate",
            "problem --out is a link to a file elsewhere",
            [*gp, "--regions", "3", "--out", "{case}/g.toml"],
            setup=lambda case_dir, _: (case_dir / "g.toml").symlink_to(case_dir / "victim.txt"),
            fast=True,
        )
    )
    out.append(
        Case(
            "generate",
            "states --out is a link to a file elsewhere",
            [*gs, "--family", "random", "--count", "2", "--out", "{case}/g.csv"],
            setup=lambda case_dir, _: (case_dir / "g.csv").symlink_to(case_dir / "victim.txt"),
        )
    )
    out.append(
        Case("generate", "states --list", ["generate", "states", "--list"], expect="ok", check=stdout_has("random"))
    )
    return out


def plugin_cases() -> list[Case]:
    paper, table_iv = str(PAPER), str(TABLE_IV)
    solve = ["solve", "-p", paper, "-s", table_iv, "--json"]

    def env(folder: str) -> dict[str, str]:
        return {"DISPATCHBENCH_SOLVER_PATH": f"{{ws}}/plugins/{folder}"}

    def local_plugin(description: str, solver: str, file: str, source: str, **expectation: Any) -> Case:
        """``solve --solver SOLVER`` with one plugin file written into the case's own solver path."""
        return Case(
            "plugins",
            description,
            [*solve, "--solver", solver],
            env={"DISPATCHBENCH_SOLVER_PATH": "{case}/p"},
            setup=_plugin_file(file, source),
            **expectation,
        )

    run = ["run", "-p", paper, "-s", table_iv, "--out", "{case}/out", "--no-progress"]
    out = [
        Case(
            "plugins",
            "solve: plugin exits at import",
            [*solve, "--solver", "exits_at_import"],
            env=env("unruly"),
            fast=True,
        ),
        Case(
            "plugins",
            "solve: plugin ends its process at import",
            [*solve, "--solver", "ends_at_import"],
            env=env("unruly"),
        ),
        Case(
            "plugins",
            "solve: plugin loops at import",
            [*solve, "--solver", "loops_at_import", "--startup-timeout", "5"],
            env=env("unruly"),
            fast=True,
        ),
        Case(
            "plugins",
            "solve: plugin sleeps at import",
            [*solve, "--solver", "import_hang", "--startup-timeout", "5"],
            env=env("hanging"),
        ),
        Case(
            "plugins",
            "solve: plugin prints at import (stdout stays JSON)",
            [*solve, "--solver", "chatty"],
            env=env("unruly"),
            expect="ok",
            check=both(stdout_has(OPTIMAL), stdout_lacks("chatty:")),
        ),
        Case(
            "plugins",
            "solve: plugin patches the evaluator",
            [*solve, "--solver", "patch_evaluator"],
            env=env("hostile"),
            expect="ok",
            check=both(stdout_has('"cost": 4903.96'), stdout_lacks('"cost": 1.0,')),
            fast=True,
        ),
        Case(
            "plugins",
            "solve: plugin zeroes the demand it is given",
            [*solve, "--solver", "zero_demand"],
            env=env("hostile"),
            expect="ok",
            check=both(stdout_has('"status": "infeasible"'), stdout_lacks(OPTIMAL)),
        ),
        Case(
            "plugins",
            "run: plugin forges a row in the results",
            [*run, "--solvers", "scip,forge_rows[folder={case}/out]"],
            env=env("hostile"),
            expect="ok",
        ),
        Case(
            "plugins",
            "table after a plugin forged a row",
            ["table", "{case}/out", "--baseline", "scip"],
            env=env("hostile"),
            setup=_forged_run,
            fast=True,
        ),
        Case("plugins", "solve: plugin misses fit", [*solve, "--solver", "no_fit"], env=env("broken_contract")),
        Case(
            "plugins", "solve: plugin with a bad label", [*solve, "--solver", "bad_label"], env=env("broken_contract")
        ),
        Case(
            "plugins",
            "solve: plugin with a learns flag",
            [*solve, "--solver", "learns_flag"],
            env=env("broken_contract"),
        ),
        Case(
            "plugins",
            "run: plugin exits at import",
            [*run, "--solvers", "scip,exits_at_import"],
            env=env("unruly"),
            check=nothing_in("out"),
        ),
        Case(
            "plugins",
            "solvers --json with unruly plugins",
            ["solvers", "--json", "--startup-timeout", "5"],
            env=env("unruly"),
            expect="ok",
            check=both(stdout_has('"broken"'), stdout_lacks("chatty:")),
        ),
        Case(
            "plugins",
            "solver path is a file",
            [*solve, "--solver", "scip"],
            env={"DISPATCHBENCH_SOLVER_PATH": "{ws}/problems/a_file.txt"},
            expect="ok",
            check=stdout_has(OPTIMAL),
        ),
        Case(
            "plugins",
            "solver path does not exist",
            [*solve, "--solver", "nosuch_plugin"],
            env={"DISPATCHBENCH_SOLVER_PATH": "{case}/nope"},
        ),
        Case(
            "plugins",
            "plugin file given by path that does not exist",
            [*solve, "--solver", "{case}/nope.py"],
        ),
        local_plugin("plugin file that is not Python", "bad", "bad.py", "this is not python\n"),
        local_plugin("plugin whose name is not an identifier", "weird", "weird.py", PLUGIN_BAD_NAME),
        local_plugin("plugin whose constructor raises", "ctor_raises", "ctor.py", PLUGIN_CTOR_RAISES),
        local_plugin(
            "plugin that writes outside its cell",
            "writer",
            "writer.py",
            PLUGIN_WRITES,
            expect="ok",
            check=stdout_has(OPTIMAL),
        ),
        Case(  # documented: the first plugin found with a name wins (plugins.plugin_origins)
            "plugins",
            "two plugins with one name",
            [*solve, "--solver", "twin"],
            expect="ok",
            env={"DISPATCHBENCH_SOLVER_PATH": "{case}/p"},
            setup=_chain_setup(_plugin_file("a.py", PLUGIN_TWIN), _plugin_file("b.py", PLUGIN_TWIN)),
        ),
    ]
    return out


PLUGIN_BAD_NAME = """
from dispatchbench.solvers.scip import Scip

class Weird(Scip):
    name = "weird name[x]"
"""

PLUGIN_CTOR_RAISES = """
from dispatchbench.solvers.scip import Scip

class CtorRaises(Scip):
    name = "ctor_raises"

    def __init__(self, **params):
        raise RuntimeError("boom in the constructor")
"""

PLUGIN_WRITES = """
from pathlib import Path
from typing import Any
from dispatchbench.solvers.scip import Scip

class Writer(Scip):
    name = "writer"

    def solve(self, problem, states, *, seed=0, time_limit=None):
        Path("written-by-plugin.txt").write_text("x")
        return super().solve(problem, states, seed=seed, time_limit=time_limit)
"""

PLUGIN_TWIN = """
from dispatchbench.solvers.scip import Scip

class Twin(Scip):
    name = "twin"
"""


def _plugin_file(name: str, text: str) -> Callable[[Path, Path], None]:
    def setup(case_dir: Path, _: Path) -> None:
        (case_dir / "p").mkdir(exist_ok=True)
        (case_dir / "p" / name).write_text(text)

    return setup


def _forged_run(case_dir: Path, ws: Path) -> None:
    """A results folder into which a plugin appended a forged optimal row from inside its cell."""
    out = case_dir / "out"
    subprocess.run(
        [sys.executable, "-P", "-m", "dispatchbench", "run", "-p", str(PAPER), "-s", str(TABLE_IV), "--solvers"]
        + [f"scip,forge_rows[folder={out}]", "--out", str(out), "--no-progress"],
        env={**os.environ, "DISPATCHBENCH_SOLVER_PATH": str(ws / "plugins" / "hostile")},
        capture_output=True,
        check=True,
        timeout=300,
    )


def dask_cases() -> list[Case]:
    paper, table_iv = str(PAPER), str(TABLE_IV)
    run = ["run", "-p", paper, "-s", table_iv, "--solvers", "scip", "--out", "{case}/out", "--no-progress"]
    addresses = {
        "no port": "tcp://localhost",
        "port 0": "tcp://localhost:0",
        "port 99999": "tcp://localhost:99999",
        "not a URL": "not an address",
        "http scheme": "http://localhost:8786",
        "nobody listens": "tcp://127.0.0.1:1",
        "unresolvable host": "tcp://nosuch.invalid:8786",
        "broken IPv6": "tcp://[::1:8786",
        "path in address": "tcp://localhost:8786/x",
        "empty": "",
        "newline": "tcp://localhost:8786\nerror: fake",
        "unroutable host": "tcp://10.255.255.1:8786",
    }
    out = [
        Case(
            "Dask addresses",
            f"--scheduler {name}",
            [*run, "--executor", "dask", "--scheduler", address],
            check=nothing_in("out"),
            timeout=60,
            fast=name in ("nobody listens", "not a URL", "newline"),
        )
        for name, address in addresses.items()
    ]
    out.append(Case("Dask addresses", "--executor nosuch", [*run, "--executor", "nosuch"], check=nothing_in("out")))
    out.append(
        Case(
            "Dask addresses",
            "--scheduler without --executor dask",
            [*run, "--scheduler", "tcp://127.0.0.1:1"],
            check=nothing_in("out"),
        )
    )
    return out


def report_cases() -> list[Case]:
    table = ["table", RUN, "--baseline", "pso"]
    report = ["report", RUN, "--reports", "{case}/reports"]
    cases = [
        ("table missing folder", ["table", "{case}/nope", "--baseline", "pso"], False),
        ("table empty folder", ["table", "{ws}/problems/empty_dir", "--baseline", "pso"], True),
        ("table on a file", ["table", "{ws}/problems/a_file.txt", "--baseline", "pso"], False),
        ("table --out is a file", [*table, "--out", "{ws}/problems/a_file.txt"], False),
        ("table --baseline unknown", [*table, "--out", "{case}/t", "--baseline", "nosuch"], True),
        ("table --state unknown", [*table, "--state", "nosuch", "--out", "{case}/t"], False),
        ("table --day unknown", [*table, "--day", "nosuch", "--out", "{case}/t"], False),
        ("table --solvers malformed", [*table, "--solvers", "scip[", "--out", "{case}/t"], False),
        ("table --solvers unknown", [*table, "--solvers", "cplex", "--out", "{case}/t"], False),
        ("table --problem unknown", [*table, "--problem", "nosuch", "--out", "{case}/t"], False),
        ("report --method unknown", [*report, "--name", "m", "--method", "nosuch"], True),
        ("report --baseline unknown", [*report, "--name", "m", "--baseline", "nosuch"], False),
        ("report --reports is a file", ["report", RUN, "--reports", "{ws}/problems/a_file.txt", "--name", "r"], False),
        ("report --name ../../x", [*report, "--name", "../../x"], True),
        ("report --name absolute", [*report, "--name", "{case}/abs"], True),
        ("report --name a/b", [*report, "--name", "a/b"], False),
        ("report --name ..", [*report, "--name", ".."], False),
        ("report --name .hidden", [*report, "--name", ".hidden"], False),
        ("report --name empty", [*report, "--name", ""], False),
        ("report --name newline", [*report, "--name", "a\nb"], False),
        ("report --name overlong", [*report, "--name", "n" * 300], False),
        ("report missing folder", ["report", "{case}/nope", "--reports", "{case}/reports"], False),
        ("report empty folder", ["report", "{ws}/problems/empty_dir", "--reports", "{case}/reports"], False),
    ]
    out = [
        Case("report options", name, argv, fast=fast, check=both(no_path("t"), no_path("reports/m"), no_path("abs")))
        for name, argv, fast in cases
    ]
    out.append(  # the report leaves Table IV out with a note (the table command refuses instead)
        Case(
            "report options",
            "report --state unknown",
            [*report, "--name", "m", "--state", "nosuch"],
            expect="ok",
            check=stderr_has("no state 'nosuch' in the results: Table IV left out"),
        )
    )
    out.append(
        Case(
            "report options",
            "report --reports is a link to a folder elsewhere",
            [*report[:2], "--reports", "{case}/reports", "--name", "r"],
            setup=_mkdir_link("reports", "elsewhere"),
            check=_empty_dir("elsewhere"),
        )
    )
    out.append(
        Case(
            "report options",
            "report folder is a link to a folder elsewhere",
            [*report, "--name", "r"],
            setup=lambda case_dir, _: (
                (case_dir / "elsewhere").mkdir(),
                (case_dir / "reports").mkdir(),
                (case_dir / "reports" / "r").symlink_to(case_dir / "elsewhere"),
            ),
            check=_empty_dir("elsewhere"),
            fast=True,
        )
    )
    out.append(
        Case(
            "report options",
            "report.html is a link to a file elsewhere",
            [*report, "--name", "r"],
            setup=lambda case_dir, _: (
                (case_dir / "reports" / "r").mkdir(parents=True),
                (case_dir / "reports" / "r" / "report.html").symlink_to(case_dir / "victim.txt"),
            ),
        )
    )
    return out


def api_cases() -> list[Case]:
    paper, iv = f"{PROBLEMS}/paper-4region.toml", f"{PROBLEMS}/paper-4region-tableIV.csv"
    solve = f'db.solve("{paper}", "{iv}"'
    run = f'db.run("{paper}", "{iv}"'
    calls = {
        "solve without a solver": f"{solve})",
        "solve solver=None": f"{solve}, solver=None)",
        "solve solver=5": f"{solve}, solver=5)",
        "solve solver unknown": f'{solve}, solver="cplex")',
        "solve spec malformed": f'{solve}, solver="scip[")',
        "solve seed=-1": f'{solve}, solver="scip", seed=-1)',
        "solve seed=2**70": f'{solve}, solver="scip", seed=2**70)',
        "solve seed=True": f'{solve}, solver="scip", seed=True)',
        "solve seed='0'": f'{solve}, solver="scip", seed="0")',
        "solve time_limit=0": f'{solve}, solver="scip", time_limit=0)',
        "solve time_limit=nan": f'{solve}, solver="scip", time_limit=float("nan"))',
        "solve time_limit=True": f'{solve}, solver="scip", time_limit=True)',
        "solve time_limit='60'": f'{solve}, solver="scip", time_limit="60")',
        "solve startup_timeout=-1": f'{solve}, solver="scip", startup_timeout=-1)',
        "solve states=[]": f'db.solve("{paper}", [], solver="scip")',
        "solve states=[1, 2]": f'db.solve("{paper}", [1, 2], solver="scip")',
        "solve states=5": f'db.solve("{paper}", 5, solver="scip")',
        "solve problem=5": f'db.solve(5, "{iv}", solver="scip")',
        "solve problem overlong": f'db.solve("x" * 5000, "{iv}", solver="scip")',
        "solve problem missing": f'db.solve("{{case}}/nope.toml", "{iv}", solver="scip")',
        "solve problem bad file": f'db.solve("{{ws}}/problems/binary.toml", "{iv}", solver="scip")',
        "solve states bad file": f'db.solve("{paper}", "{{ws}}/states/nan_cell.csv", solver="scip")',
        "run solvers=''": f'{run}, "", out="{{case}}/out", progress=False)',
        "run solvers=5": f'{run}, 5, out="{{case}}/out", progress=False)',
        "run seeds='a-b'": f'{run}, "scip", "a-b", out="{{case}}/out", progress=False)',
        "run seeds=-1": f'{run}, "scip", -1, out="{{case}}/out", progress=False)',
        "run timeout=nan": f'{run}, "scip", out="{{case}}/out", timeout=float("nan"), progress=False)',
        "run out is a file": f'{run}, "scip", out="{{ws}}/problems/a_file.txt", progress=False)',
        "run unknown option": f'{run}, "scip", out="{{case}}/out", progress=False, nosuch=1)',
        "run spec unknown": f'{run}, "scip,cplex", out="{{case}}/out", progress=False)',
        "run resume and force": f'{run}, "scip", out="{{case}}/out", progress=False, resume=True, force=True)',
        "load_results missing": 'db.load_results("{case}/nope")',
        "load_results a file": 'db.load_results("{ws}/problems/a_file.txt")',
        "load_results empty folder": 'db.load_results("{ws}/problems/empty_dir")',
        "load_results 5": "db.load_results(5)",
        "load_problem missing": 'db.load_problem("{case}/nope.toml")',
        "load_problem binary": 'db.load_problem("{ws}/problems/binary.toml")',
        "load_problem 5": "db.load_problem(5)",
        "load_states bad file": f'db.load_states("{{ws}}/states/text_cell.csv", db.load_problem("{paper}"))',
        "load_states problem=None": f'db.load_states("{iv}", None)',
        "list_solvers startup_timeout=0": "db.list_solvers(startup_timeout=0)",
    }
    fast = {"solve without a solver", "solve seed=2**70", "run spec unknown", "load_results missing", "load_problem 5"}
    return [
        Case("Python API", name, api=code, fast=name in fast, check=nothing_in("out")) for name, code in calls.items()
    ]
