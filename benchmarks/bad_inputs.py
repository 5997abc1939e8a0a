#!/usr/bin/env python3
"""Bad-input campaign: hundreds of wrong files, options and specs thrown at the real command line.

Every case runs ``python -m dispatchbench ...`` in a subprocess (the real entry point, exit status
and streams) with a time limit, and is classified:

- ``clean``: an error was due and the command exited 2 with exactly one line on stderr starting
  ``error:`` and no traceback (or, for the few valid edge cases, it exited 0 as it should);
- ``traceback``: a Python traceback reached the user;
- ``hang``: the command did not finish within its limit;
- ``wrong``: exit 0 where an error was due, a result with the wrong status, work started before
  the error (rows written), or an error that is not one line / not exit 2.

Why a campaign rather than only unit tests: a user meets the command line, so the check is on
the real process — including imports, argument parsing and the plugins' own constructors.

Usage::

    python benchmarks/bad_inputs.py [--jobs 2] [--only CLASS] [--json benchmarks/results/bad_inputs.json]

Writes a per-class table (class, count, clean, traceback, hang, wrong) and every case's outcome
to the JSON file and prints the table as Markdown. ``tests/test_cli.py`` runs a fast subset of
the same cases in-process (see :func:`cases`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
PAPER = PROBLEMS / "paper-4region.toml"
TABLE_IV = PROBLEMS / "paper-4region-tableIV.csv"
HEADER = "state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6"
ROW = "100,120,50,530,70,150"
RESULTS = ROOT / "benchmarks" / "results" / "backends-run"  # a real run folder, only read by the cases
CLASSES = ("problem file", "state file", "cli options", "solver specs", "model folders")


@dataclass
class Case:
    """One bad input: the command line, what is due (``error`` or ``ok``), an optional extra check."""

    cls: str
    name: str
    argv: list[str]
    expect: str = "error"  # "error": exit 2 with one line; "ok": exit 0
    timeout: float = 90.0
    check: Callable[[subprocess.CompletedProcess], str | None] | None = field(default=None, repr=False)


@dataclass
class Outcome:
    cls: str
    name: str
    argv: list[str]
    verdict: str
    exit_code: int | None
    first_line: str
    seconds: float
    why: str = ""


# ---- the workspace: every bad file written once ------------------------------------------------


def _paper_text() -> str:
    return PAPER.read_text(encoding="utf-8")


def _edit(old: str, new: str, count: int = 1) -> str:
    text = _paper_text()
    assert old in text, old
    return text.replace(old, new, count)


def problem_files() -> dict[str, tuple[str, bytes]]:
    """name -> (class, file bytes) for problem (TOML) files."""
    t = lambda s: s.encode("utf-8")  # noqa: E731
    fdc1 = "p_max = 600.0"
    out: dict[str, tuple[str, bytes]] = {}

    def add(cls: str, name: str, data: str | bytes) -> None:
        out[name] = (cls, data if isinstance(data, bytes) else t(data))

    # syntax
    add("syntax", "unclosed_header", _edit("[[groups]]", "[[groups"))
    add("syntax", "double_equals", _edit(fdc1, "p_max = = 600.0"))
    add("syntax", "unquoted_string", _edit('name = "FDC1"', "name = FDC1"))
    add("syntax", "duplicate_key", _edit(fdc1, fdc1 + "\n" + fdc1))
    add("syntax", "latin1", _paper_text().replace("paper-4region", "paper-4régïon").encode("latin-1"))
    add("syntax", "binary", bytes(random.Random(1).randrange(256) for _ in range(2000)))
    add("syntax", "empty", "")
    add("syntax", "comments_only", "# nothing here\n")
    add("syntax", "problem_array", _edit("[problem]", "[[problem]]"))
    add("syntax", "nul_byte", _paper_text().replace("commitment", "commit\x00ment", 1))
    add("syntax", "utf16", _paper_text().encode("utf-16"))
    add("syntax", "json_not_toml", json.dumps({"problem": {"name": "x"}}))
    # types
    add("types", "region_list", _edit('region = "A"', 'region = ["A"]'))
    add("types", "region_int", _edit('region = "A"', "region = 1"))
    add("types", "region_table", _edit('region = "A"', "region = {name = 'A'}"))
    add("types", "group_name_int", _edit('name = "FDC1"', "name = 1"))
    add("types", "group_name_list", _edit('name = "FDC1"', 'name = ["FDC1"]'))
    add("types", "type_int", _edit('type = "FDC"', "type = 1"))
    add("types", "type_list", _edit('type = "FDC"', 'type = ["FDC"]'))
    add("types", "type_table", _edit('type = "FDC"', "type = {t = 'FDC'}"))
    add("types", "p_max_string", _edit(fdc1, 'p_max = "600"'))
    add("types", "p_max_bool", _edit(fdc1, "p_max = true"))
    add("types", "p_max_list", _edit(fdc1, "p_max = [600.0]"))
    add("types", "p_max_date", _edit(fdc1, "p_max = 2024-01-01"))
    add("types", "cs_max_table", _edit("cs_max = 200.0", "cs_max = {kw = 200.0}"))
    add("types", "commitment_string", _edit("commitment = true", 'commitment = "yes"'))
    add("types", "commitment_int", _edit("commitment = true", "commitment = 1"))
    add("types", "problem_name_bool", _edit('name = "paper-4region"', "name = true"))
    add("types", "regions_int", "regions = 5\n" + _paper_text().replace("[[regions]]", "[[zones]]"))
    add("types", "groups_string", _paper_text().split("[[groups]]")[0].replace("[problem]", 'groups = "x"\n[problem]'))
    add("types", "problem_int", "problem = 5\n" + _paper_text().split("[problem]", 1)[1].split("\n", 3)[3])
    add("types", "a_string", _edit("a = 0.0020", 'a = "0.002"'))
    add("types", "efficiency_string", _edit("efficiency = 0.9", 'efficiency = "90%"'))
    add("types", "min_ratio_list", _edit("min_ratio = 0.5", "min_ratio = [0.5]"))
    add("types", "h_max_string", _edit("h_max = 100.0", 'h_max = "hot"'))
    add(
        "types",
        "regions_inline_strings",
        _paper_text().split("[[regions]]")[0]
        + 'regions = ["A", "B"]\n'
        + "[[groups]]"
        + _paper_text().split("[[groups]]", 1)[1],
    )
    # values
    add("values", "negative_cs_max", _edit("cs_max = 200.0", "cs_max = -200.0"))
    add("values", "negative_p_max", _edit(fdc1, "p_max = -600.0"))
    add("values", "p_min_above_p_max", _edit("p_min = 100.0", "p_min = 700.0"))
    add("values", "min_ratio_above_1", _edit("min_ratio = 0.5", "min_ratio = 1.5"))
    add("values", "min_ratio_negative", _edit("min_ratio = 0.5", "min_ratio = -0.5"))
    add("values", "efficiency_zero", _edit("efficiency = 0.9", "efficiency = 0.0"))
    add("values", "efficiency_above_1", _edit("efficiency = 0.9", "efficiency = 1.2"))
    add("values", "concave_cost", _edit("a = 0.0020", "a = -0.002"))
    add("values", "nan_cost", _edit("b = 10.0", "b = nan"))
    add("values", "inf_capacity", _edit("cs_max = 200.0", "cs_max = inf"))
    add("values", "minus_inf_cost", _edit("c = 500.0", "c = -inf"))
    add("values", "unknown_key", _edit("cs_max = 200.0", "cs_max = 200.0\nlimit = 1"))
    add("values", "missing_key", _edit("p_min = 100.0\n", ""))
    add("values", "unknown_type", _edit('type = "FDC"', 'type = "DCFC"'))
    add("values", "unknown_region", _edit('region = "A"', 'region = "Z"'))
    add("values", "duplicate_region", _edit('name = "B"', 'name = "A"'))
    add("values", "duplicate_group", _edit('name = "FDC2"', 'name = "FDC1"'))
    add("values", "dead_region", _paper_text() + '\n[[regions]]\nname = "E"\ncs_max = 0.0\n')
    add("values", "other_types_key", _edit(fdc1, fdc1 + "\nefficiency = 0.9"))
    add("values", "no_groups", _paper_text().split("[[groups]]")[0])
    add("values", "unknown_top_level", _paper_text() + "\n[solver]\nname = 'scip'\n")
    # names
    add("names", "slash_in_group", _edit('name = "FDC1"', 'name = "FDC/1"'))
    add("names", "script_in_group", _edit('name = "FDC1"', 'name = "<script>alert(1)</script>"'))
    add("names", "newline_in_group", _edit('name = "FDC1"', 'name = "FDC\\n1"'))
    add("names", "tab_in_group", _edit('name = "FDC1"', 'name = "FDC\\t1"'))
    add("names", "space_in_group", _edit('name = "FDC1"', 'name = "FDC 1"'))
    add("names", "empty_group_name", _edit('name = "FDC1"', 'name = ""'))
    add("names", "long_group_name", _edit('name = "FDC1"', f'name = "{"G" * 65}"'))
    add("names", "unicode_group_name", _edit('name = "FDC1"', 'name = "FDCé"'))
    add(
        "names",
        "dots_region",
        _paper_text().replace('name = "A"', 'name = ".."').replace('region = "A"', 'region = ".."'),
    )
    add(
        "names",
        "slash_region",
        _paper_text().replace('name = "A"', 'name = "A/B"').replace('region = "A"', 'region = "A/B"'),
    )
    add(
        "names",
        "img_in_region",
        _paper_text()
        .replace('name = "A"', 'name = "<img src=x onerror=alert(1)>"')
        .replace('region = "A"', 'region = "<img src=x onerror=alert(1)>"'),
    )
    add(
        "names",
        "comma_region",
        _paper_text().replace('name = "A"', 'name = "A,B"').replace('region = "A"', 'region = "A,B"'),
    )
    add("names", "slash_problem_name", _edit('name = "paper-4region"', 'name = "../paper"'))
    add("names", "newline_problem_name", _edit('name = "paper-4region"', 'name = "paper\\nerror: fake"'))
    add("names", "script_problem_name", _edit('name = "paper-4region"', 'name = "<script>alert(1)</script>"'))
    add("names", "quote_problem_name", _edit('name = "paper-4region"', 'name = "it\'s"'))
    add("names", "control_char_name", _edit('name = "FDC1"', 'name = "FDC\\u00071"'))
    # limits
    add("limits", "p_max_1e25", _edit(fdc1, "p_max = 1e25"))
    add("limits", "p_max_1e308", _edit(fdc1, "p_max = 1e308"))
    add("limits", "p_max_1e13", _edit(fdc1, "p_max = 1e13"))
    add("limits", "p_max_huge_int", _edit(fdc1, "p_max = 1000000000000000000000000000000"))
    add("limits", "cs_max_1e13", _edit("cs_max = 200.0", "cs_max = 1e13"))
    add("limits", "cs_max_1e300", _edit("cs_max = 200.0", "cs_max = 1e300"))
    add("limits", "v2g_p_max_1e20", _edit("p_max = 90.0", "p_max = 1e20"))
    add("limits", "asc_p_max_1e16", _edit("p_max = 200.0", "p_max = 1e16"))
    add("limits", "a_1e300", _edit("a = 0.0020", "a = 1e300"))
    add("limits", "b_1e20", _edit("b = 10.0", "b = 1e20"))
    add("limits", "c_1e16", _edit("c = 500.0", "c = 1e16"))
    add("limits", "b_minus_1e20", _edit("b = 10.0", "b = -1e20"))
    add("limits", "g_1e20", _edit("g = 5.0", "g = 1e20"))
    add("limits", "h_1e16", _edit("h = 15.0", "h = 1e16"))
    add("limits", "h_max_1e20", _edit("h_max = 100.0", "h_max = 1e20"))
    add("limits", "cost_overflow_at_p_max", _edit(fdc1, "p_max = 1e9"))  # a=0.002 -> 2e15 at p_max
    return out


def state_files() -> dict[str, tuple[str, bytes]]:
    """name -> (class, file bytes) for state (CSV) files of the paper problem."""
    out: dict[str, tuple[str, bytes]] = {}

    def add(cls: str, name: str, data: str | bytes) -> None:
        out[name] = (cls, data if isinstance(data, bytes) else data.encode("utf-8"))

    add("columns", "missing_column", "state,d_A,d_B,d_C,d_D,v_V2G5\ns,100,120,50,530,70\n")
    add("columns", "extra_column", f"{HEADER},d_E\ns,{ROW},1\n")
    add("columns", "duplicate_column", f"{HEADER},d_A\ns,{ROW},1\n")
    add("columns", "trailing_comma", f"{HEADER},\ns,{ROW},\n")
    add("columns", "semicolons", HEADER.replace(",", ";") + "\ns;" + ROW.replace(",", ";") + "\n")
    add("columns", "tabs", HEADER.replace(",", "\t") + "\ns\t" + ROW.replace(",", "\t") + "\n")
    add("columns", "no_header", f"s,{ROW}\n")
    add("columns", "header_only", HEADER + "\n")
    add("columns", "empty", "")
    add("columns", "blank_lines", "\n \n\n")
    add("columns", "too_many_fields", f"{HEADER}\ns,{ROW},7\n")
    add("columns", "too_few_fields", f"{HEADER}\ns,100,120\n")
    add("columns", "other_problem", (PROBLEMS / "wood-wollenberg-3a.csv").read_bytes())
    add("columns", "broken_quote", f'{HEADER}\n"s,{ROW}\n')
    add("values", "text_cell", f"{HEADER}\ns,100,abc,50,530,70,150\n")
    add("values", "negative_cell", f"{HEADER}\ns,-5,120,50,530,70,150\n")
    add("values", "nan_cell", f"{HEADER}\ns,nan,120,50,530,70,150\n")
    add("values", "inf_cell", f"{HEADER}\ns,inf,120,50,530,70,150\n")
    add("values", "minus_inf_cell", f"{HEADER}\ns,100,120,50,530,-inf,150\n")
    add("values", "empty_cell", f"{HEADER}\ns,100,,50,530,70,150\n")
    add("values", "cell_1e13", f"{HEADER}\ns,1e13,120,50,530,70,150\n")
    add("values", "cell_1e400", f"{HEADER}\ns,1e400,120,50,530,70,150\n")
    add("values", "v2g_1e300", f"{HEADER}\ns,100,120,50,530,1e300,150\n")
    add("values", "thousands_separator", f'{HEADER}\ns,"1,000",120,50,530,70,150\n')
    add("values", "hex_cell", f"{HEADER}\ns,0x10,120,50,530,70,150\n")
    add("values", "space_cell", f"{HEADER}\ns, ,120,50,530,70,150\n")
    add("values", "percent_cell", f"{HEADER}\ns,10%,120,50,530,70,150\n")
    add("labels", "slash_label", f"{HEADER}\na/b,{ROW}\n")
    add("labels", "script_label", f"{HEADER}\n<script>alert(1)</script>,{ROW}\n")
    add("labels", "img_label", f'{HEADER}\n"<img src=x onerror=alert(1)>",{ROW}\n')
    add("labels", "tab_label", f'{HEADER}\n"a\tb",{ROW}\n')
    add("labels", "newline_label", f'{HEADER}\n"a\nb",{ROW}\n')
    add("labels", "duplicate_label", f"{HEADER}\ns,{ROW}\ns,{ROW}\n")
    add("labels", "empty_label", f"{HEADER}\n,{ROW}\n")
    add("labels", "long_label", f"{HEADER}\n{'L' * 65},{ROW}\n")
    add("labels", "unicode_label", f"{HEADER}\nété,{ROW}\n")
    add("labels", "comma_label", f'{HEADER}\n"a,b",{ROW}\n')
    add("labels", "dotdot_slash_label", f"{HEADER}\n../x,{ROW}\n")
    add("labels", "quote_label", f"{HEADER}\nit's,{ROW}\n")
    add("encoding", "latin1", f"{HEADER}\nété,{ROW}\n".encode("latin-1"))
    add("encoding", "utf16", f"{HEADER}\ns,{ROW}\n".encode("utf-16"))
    add("encoding", "binary", bytes(random.Random(2).randrange(256) for _ in range(1000)))
    add("encoding", "nul_byte", f"{HEADER}\ns\x00,{ROW}\n")
    return out


GOOD_STATE_FILES = {  # edge cases that are valid and must load (exit 0)
    "bom": "\ufeff" + f"{HEADER}\ntableIV,{ROW}\n",
    "time_labels": f"{HEADER}\n08:00,{ROW}\n2024-06-01 08:15,{ROW}\n",
    "cell_1e12": f"{HEADER}\nbig,100,120,50,530,70,150\n",
}


def build_workspace(ws: Path) -> dict[str, Path]:
    """Write every file the cases use into ``ws``; returns a name -> path map."""
    files: dict[str, Path] = {}
    (ws / "problems").mkdir(parents=True, exist_ok=True)
    (ws / "states").mkdir(exist_ok=True)
    for name, (_, data) in problem_files().items():
        files[f"p:{name}"] = ws / "problems" / f"{name}.toml"
        files[f"p:{name}"].write_bytes(data)
    for name, (_, data) in state_files().items():
        files[f"s:{name}"] = ws / "states" / f"{name}.csv"
        files[f"s:{name}"].write_bytes(data)
    for name, text in GOOD_STATE_FILES.items():
        files[f"good:{name}"] = ws / "states" / f"good_{name}.csv"
        files[f"good:{name}"].write_text(text, encoding="utf-8")
    bom = ws / "problems" / "good_bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + _paper_text().encode("utf-8"))
    files["good:bom_toml"] = bom
    limit = ws / "problems" / "good_at_limit.toml"  # 1e12 kW with a linear cost: at the limit, valid
    limit.write_text(_edit("p_max = 600.0", "p_max = 1e12").replace("a = 0.0020", "a = 0.0", 1), encoding="utf-8")
    files["good:at_limit"] = limit
    # an existing file where a folder is expected, and garbage result folders
    (ws / "a_file.txt").write_text("not a folder\n")
    files["a_file"] = ws / "a_file.txt"
    garbage = ws / "garbage_results"
    garbage.mkdir(exist_ok=True)
    (garbage / "rows.jsonl").write_text('{"run_id": 1\nnot json\n')
    files["garbage_results"] = garbage
    (ws / "empty_dir").mkdir(exist_ok=True)
    files["empty_dir"] = ws / "empty_dir"
    # model folders
    models = ws / "models"
    for name, data in {
        "random_bytes": bytes(random.Random(3).randrange(256) for _ in range(512)),
        "invalid_json": b'{"solver": "madrl_tvc", ',
        "json_list": b'["madrl_tvc", 1]',
        "json_string": b'"model"',
        "empty_json": b"",
        "wrong_fields": b'{"solver": 5, "problem": []}',
    }.items():
        folder = models / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.json").write_bytes(data)
        files[f"m:{name}"] = folder
    (models / "empty_folder").mkdir(parents=True, exist_ok=True)
    files["m:empty_folder"] = models / "empty_folder"
    files["m:missing"] = models / "does_not_exist"
    return files


# ---- the cases --------------------------------------------------------------------------------


def _no_rows(folder: Path) -> Callable[[subprocess.CompletedProcess], str | None]:
    """Extra check for `run` cases: the error came before any cell (no rows written)."""

    def check(_: subprocess.CompletedProcess) -> str | None:
        rows = folder / "rows.jsonl"
        if rows.is_file() and rows.read_text().strip():
            return "rows were written before the error"
        return None

    return check


def cases(ws: Path, files: dict[str, Path]) -> list[Case]:
    """Every case, with paths inside ``ws``. Names are unique: ``tests/test_cli.py`` picks some by name."""
    paper, table_iv = str(PAPER), str(TABLE_IV)
    out: list[Case] = []
    problem_cls = {name: cls for name, (cls, _) in problem_files().items()}
    for name, cls in problem_cls.items():
        path = str(files[f"p:{name}"])
        out.append(Case("problem file", f"{cls}: {name} (validate)", ["validate", path]))
        if cls == "limits" or name in ("region_list", "type_list", "p_max_string", "script_problem_name"):
            out.append(Case("problem file", f"{cls}: {name} (solve)", ["solve", "-p", path, "-s", table_iv]))
    out.append(Case("problem file", "syntax: BOM is accepted", ["validate", str(files["good:bom_toml"])], "ok"))
    out.append(
        Case(
            "problem file",
            "limits: 1e12 kW at the limit solves",
            ["solve", "-p", str(files["good:at_limit"]), "-s", table_iv, "--json"],
            "ok",
            check=lambda p: None if '"status": "optimal"' in p.stdout else "not optimal",
        )
    )
    out.append(Case("problem file", "syntax: problem path is a folder", ["validate", str(ws / "problems") + "/"]))
    out.append(Case("problem file", "syntax: problem is a CSV", ["solve", "-p", table_iv, "-s", table_iv]))

    for name, (cls, _) in state_files().items():
        path = str(files[f"s:{name}"])
        out.append(Case("state file", f"{cls}: {name} (validate)", ["validate", path, "--problem", paper]))
        if cls == "labels" or name in ("cell_1e13", "nan_cell"):
            out.append(Case("state file", f"{cls}: {name} (solve)", ["solve", "-p", paper, "-s", path]))
    for name in GOOD_STATE_FILES:
        out.append(
            Case("state file", f"good: {name}", ["validate", str(files[f"good:{name}"]), "--problem", paper], "ok")
        )
    out.append(
        Case(
            "state file",
            "good: BOM solves",
            ["solve", "-p", paper, "-s", str(files["good:bom"]), "--json"],
            "ok",
            check=lambda p: None if '"status": "optimal"' in p.stdout else "not optimal",
        )
    )
    out.append(Case("state file", "columns: state file is the TOML", ["solve", "-p", paper, "-s", paper]))

    solve = ["solve", "-p", paper, "-s", table_iv]
    cli = [
        ("solve --time-limit nan", [*solve, "--time-limit", "nan"]),
        ("solve --time-limit inf", [*solve, "--time-limit", "inf"]),
        ("solve --time-limit 1e300", [*solve, "--time-limit", "1e300"]),
        ("solve --time-limit -1", [*solve, "--time-limit", "-1"]),
        ("solve --time-limit 0", [*solve, "--time-limit", "0"]),
        ("solve --time-limit abc", [*solve, "--time-limit", "abc"]),
        ("solve --seed -1", [*solve, "--seed", "-1"]),
        ("solve --seed huge", [*solve, "--seed", "99999999999999999999"]),
        ("solve --seed 2**40", [*solve, "--seed", str(2**40)]),
        ("solve --seed garbage", [*solve, "--seed", "x1"]),
        ("solve --seed float", [*solve, "--seed", "1.5"]),
        ("solve missing --problem", ["solve", "-s", table_iv]),
        ("solve missing --states", ["solve", "-p", paper]),
        ("solve missing problem file", ["solve", "-p", str(ws / "nope.toml"), "-s", table_iv]),
        ("solve missing state file", ["solve", "-p", paper, "-s", str(ws / "nope.csv")]),
        ("solve states is a folder", ["solve", "-p", paper, "-s", str(ws)]),
        ("solve unknown option", [*solve, "--fast"]),
        ("solve empty --solver", [*solve, "--solver", ""]),
        ("validate missing file", ["validate", str(ws / "nope.toml")]),
        ("validate csv without --problem", ["validate", table_iv]),
        ("validate folder", ["validate", str(ws / "empty_dir")]),
        ("validate txt file", ["validate", str(files["a_file"])]),
        ("unknown command", ["sovle"]),
        (
            "run --timeout nan",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "scip",
                "--timeout",
                "nan",
                "--out",
                str(ws / "out_nan"),
                "--no-progress",
            ],
        ),
        (
            "run --timeout inf",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "scip",
                "--timeout",
                "inf",
                "--out",
                str(ws / "out_inf"),
                "--no-progress",
            ],
        ),
        (
            "run --timeout 1e300",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "scip",
                "--timeout",
                "1e300",
                "--out",
                str(ws / "out_1e300"),
                "--no-progress",
            ],
        ),
        (
            "run --timeout -5",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "scip",
                "--timeout",
                "-5",
                "--out",
                str(ws / "out_neg"),
                "--no-progress",
            ],
        ),
        (
            "run --seeds huge",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "pso",
                "--seeds",
                "99999999999999999999",
                "--out",
                str(ws / "out_seeds"),
                "--no-progress",
            ],
        ),
        (
            "run --seeds negative",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "pso",
                "--seeds",
                "-1",
                "--out",
                str(ws / "out_seeds2"),
                "--no-progress",
            ],
        ),
        (
            "run --seeds garbage",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "pso",
                "--seeds",
                "a-b",
                "--out",
                str(ws / "out_seeds3"),
                "--no-progress",
            ],
        ),
        (
            "run --seeds reversed",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "pso",
                "--seeds",
                "5-1",
                "--out",
                str(ws / "out_seeds4"),
                "--no-progress",
            ],
        ),
        (
            "run --seeds too many",
            [
                "run",
                "-p",
                paper,
                "-s",
                table_iv,
                "--solvers",
                "pso",
                "--seeds",
                "0-99999999",
                "--out",
                str(ws / "out_seeds5"),
                "--no-progress",
            ],
        ),
        (
            "run --out is a file",
            ["run", "-p", paper, "-s", table_iv, "--solvers", "scip", "--out", str(files["a_file"]), "--no-progress"],
        ),
        (
            "run missing state file",
            [
                "run",
                "-p",
                paper,
                "-s",
                str(ws / "nope.csv"),
                "--solvers",
                "scip",
                "--out",
                str(ws / "out_missing"),
                "--no-progress",
            ],
        ),
        (
            "run empty --solvers",
            ["run", "-p", paper, "-s", table_iv, "--solvers", "", "--out", str(ws / "out_empty"), "--no-progress"],
        ),
        (
            "train --out is a file",
            [
                "train",
                "-p",
                paper,
                "--solver",
                "madrl_tvc",
                "--steps",
                "10",
                "--out",
                str(files["a_file"]),
                "--no-progress",
            ],
        ),
        (
            "train --steps 0",
            [
                "train",
                "-p",
                paper,
                "--solver",
                "madrl_tvc",
                "--steps",
                "0",
                "--out",
                str(ws / "train_0"),
                "--no-progress",
            ],
        ),
        (
            "train --steps -5",
            [
                "train",
                "-p",
                paper,
                "--solver",
                "madrl_tvc",
                "--steps",
                "-5",
                "--out",
                str(ws / "train_neg"),
                "--no-progress",
            ],
        ),
        (
            "train non-learner",
            [
                "train",
                "-p",
                paper,
                "--solver",
                "scip",
                "--steps",
                "10",
                "--out",
                str(ws / "train_scip"),
                "--no-progress",
            ],
        ),
        (
            "train --seed huge",
            [
                "train",
                "-p",
                paper,
                "--solver",
                "madrl_tvc",
                "--steps",
                "10",
                "--seed",
                "99999999999999999999",
                "--out",
                str(ws / "train_seed"),
                "--no-progress",
            ],
        ),
        ("table missing folder", ["table", str(ws / "nope"), "--baseline", "pso"]),
        ("table empty folder", ["table", str(files["empty_dir"]), "--baseline", "pso"]),
        ("table on a file", ["table", str(files["a_file"]), "--baseline", "pso"]),
        ("table garbage rows", ["table", str(files["garbage_results"]), "--baseline", "pso"]),
        ("table --out is a file", ["table", str(RESULTS), "--baseline", "pso", "--out", str(files["a_file"])]),
        ("table --baseline unknown", ["table", str(RESULTS), "--baseline", "nosuch", "--out", str(ws / "t1")]),
        (
            "table --state unknown",
            ["table", str(RESULTS), "--baseline", "pso", "--state", "nosuch", "--out", str(ws / "t2")],
        ),
        (
            "table --day unknown",
            ["table", str(RESULTS), "--baseline", "pso", "--day", "nosuch", "--out", str(ws / "t3")],
        ),
        (
            "table --solvers malformed",
            ["table", str(RESULTS), "--baseline", "pso", "--solvers", "scip[", "--out", str(ws / "t4")],
        ),
        (
            "table --solvers unknown",
            ["table", str(RESULTS), "--baseline", "pso", "--solvers", "cplex", "--out", str(ws / "t5")],
        ),
        (
            "report --method unknown",
            ["report", str(RESULTS), "--reports", str(ws / "reports"), "--name", "m", "--method", "nosuch"],
        ),
        ("report --reports is a file", ["report", str(RESULTS), "--reports", str(files["a_file"]), "--name", "r"]),
        (
            "report --name ../../x (real results)",
            ["report", str(RESULTS), "--reports", str(ws / "reports"), "--name", "../../x"],
        ),
        ("report missing folder", ["report", str(ws / "nope"), "--reports", str(ws / "reports")]),
        ("report empty folder", ["report", str(files["empty_dir"]), "--reports", str(ws / "reports")]),
        ("report garbage rows", ["report", str(files["garbage_results"]), "--reports", str(ws / "reports")]),
        (
            "report --name ../../x",
            ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", "../../x"],
        ),
        (
            "report --name absolute",
            ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", str(ws / "abs")],
        ),
        ("report --name a/b", ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", "a/b"]),
        ("report --name ..", ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", ".."]),
        (
            "report --name .hidden",
            ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", ".hidden"],
        ),
        ("report --name empty", ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", ""]),
        (
            "report --name newline",
            ["report", str(files["empty_dir"]), "--reports", str(ws / "reports"), "--name", "a\nb"],
        ),
    ]
    for name, argv in cli:
        check = None
        if name.startswith("run ") and "--out" in argv:
            check = _no_rows(Path(argv[argv.index("--out") + 1]))
        out.append(Case("cli options", name, argv, check=check))

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
    ]
    for spec in specs:
        out.append(Case("solver specs", f"solve {spec!r}", [*solve, "--solver", spec]))
    for i, spec in enumerate(
        [
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
        ]
    ):
        folder = ws / f"run_spec_{i}"
        out.append(
            Case(
                "solver specs",
                f"run {spec!r}",
                ["run", "-p", paper, "-s", table_iv, "--solvers", spec, "--out", str(folder), "--no-progress"],
                check=_no_rows(folder),
            )
        )
    for i, spec in enumerate(
        ["madrl_tvc[refine=-5]", "maddpg[w=1,w=2]", "madrl_tvc[nosuch=1]", "nosuch", "maddpg[batch_size=0]"]
    ):
        out.append(
            Case(
                "solver specs",
                f"train {spec!r}",
                [
                    "train",
                    "-p",
                    paper,
                    "--solver",
                    spec,
                    "--steps",
                    "10",
                    "--out",
                    str(ws / f"train_spec_{i}"),
                    "--no-progress",
                ],
            )
        )

    for name in (
        "random_bytes",
        "invalid_json",
        "json_list",
        "json_string",
        "empty_json",
        "wrong_fields",
        "empty_folder",
        "missing",
    ):
        folder = str(files[f"m:{name}"])
        for solver in ("madrl_tvc", "maddpg"):
            out.append(
                Case("model folders", f"solve {solver} model={name}", [*solve, "--solver", f"{solver}[model={folder}]"])
            )
        out.append(
            Case(
                "model folders",
                f"train --resume {name}",
                [
                    "train",
                    "-p",
                    paper,
                    "--solver",
                    "madrl_tvc",
                    "--steps",
                    "10",
                    "--resume",
                    "--out",
                    folder,
                    "--no-progress",
                ],
            )
        )
    return out


# ---- running and classifying ------------------------------------------------------------------


def classify(case: Case, proc: subprocess.CompletedProcess | None, seconds: float) -> Outcome:
    if proc is None:
        return Outcome(case.cls, case.name, case.argv, "hang", None, "", seconds, f"no exit within {case.timeout:g} s")
    err_lines = proc.stderr.splitlines()
    first = err_lines[0][:300] if err_lines else (proc.stdout.splitlines()[:1] or [""])[0][:300]
    outcome = Outcome(case.cls, case.name, case.argv, "clean", proc.returncode, first, seconds)
    if "Traceback (most recent call last)" in proc.stderr or "Traceback" in proc.stdout:
        outcome.verdict, outcome.why = "traceback", _last_exception(proc.stderr + proc.stdout)
        return outcome
    if case.expect == "ok":
        if proc.returncode != 0:
            outcome.verdict, outcome.why = "wrong", f"exit {proc.returncode} on a valid input"
    elif proc.returncode == 0:
        outcome.verdict, outcome.why = "wrong", "exit 0 where an error was due"
    elif proc.returncode != 2 or len(err_lines) != 1 or not err_lines[0].startswith("error: "):
        outcome.verdict = "wrong"
        outcome.why = f"exit {proc.returncode} with {len(err_lines)} stderr lines (one 'error:' line and exit 2 due)"
    if outcome.verdict == "clean" and case.check is not None:
        problem = case.check(proc)
        if problem:
            outcome.verdict, outcome.why = "wrong", problem
    return outcome


def _last_exception(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run_case(case: Case, cwd: Path) -> Outcome:
    cmd = [sys.executable, "-m", "dispatchbench", *case.argv]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, err = proc.communicate(timeout=case.timeout)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the cell processes go too
        proc.communicate()
        done = None
    return classify(case, done, time.perf_counter() - start)


def summarize(outcomes: list[Outcome]) -> list[dict]:
    rows = []
    for cls in CLASSES:
        mine = [o for o in outcomes if o.cls == cls]
        if not mine:
            continue
        count = Counter(o.verdict for o in mine)
        rows.append(
            {
                "class": cls,
                "count": len(mine),
                "clean": count["clean"],
                "traceback": count["traceback"],
                "hang": count["hang"],
                "wrong": count["wrong"],
            }
        )
    total = Counter(o.verdict for o in outcomes)
    rows.append(
        {
            "class": "total",
            "count": len(outcomes),
            "clean": total["clean"],
            "traceback": total["traceback"],
            "hang": total["hang"],
            "wrong": total["wrong"],
        }
    )
    return rows


def markdown(rows: list[dict]) -> str:
    cols = ["class", "count", "clean", "traceback", "hang", "wrong"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (at most 2)")
    parser.add_argument("--only", choices=CLASSES, default=None, help="run one class of cases")
    parser.add_argument("--match", default=None, help="run only cases whose name contains this text")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bad_inputs.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        ws = Path(tmp)
        files = build_workspace(ws)
        todo = [
            c
            for c in cases(ws, files)
            if (args.only is None or c.cls == args.only) and (args.match is None or args.match in c.name)
        ]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
            outcomes = list(pool.map(lambda c: run_case(c, ws), todo))
        wall = time.perf_counter() - start
        ws_text = str(ws)
        for o in outcomes:  # the temporary folder's name means nothing after the run
            o.argv = [a.replace(ws_text, "$WS") for a in o.argv]
            o.first_line, o.why = o.first_line.replace(ws_text, "$WS"), o.why.replace(ws_text, "$WS")
    rows = summarize(outcomes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"wall_s": round(wall, 1), "table": rows, "cases": [asdict(o) for o in outcomes]}, indent=1) + "\n"
    )
    print(markdown(rows))
    print(f"\n{len(outcomes)} cases in {wall:.0f} s; details in {args.json}")
    for o in outcomes:
        if o.verdict != "clean":
            print(
                f"- {o.verdict}: [{o.cls}] {o.name}: {o.why or o.first_line}\n    dispatchbench "
                + " ".join(repr(a) if (" " in a or not a) else a for a in o.argv)
            )
    return 0 if rows[-1]["clean"] == rows[-1]["count"] else 1


if __name__ == "__main__":
    sys.exit(main())
