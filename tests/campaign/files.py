"""The bad problem and state files of the campaign, as bytes: each a small edit of a bundled file.

Moved from ``benchmarks/bad_inputs.py`` (where the campaign started); :mod:`campaign.cases` turns
each into a ``validate`` case, and some into ``solve`` cases as well.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBLEMS = ROOT / "problems"
PAPER = PROBLEMS / "paper-4region.toml"
TABLE_IV = PROBLEMS / "paper-4region-tableIV.csv"
HEADER = "state,d_A,d_B,d_C,d_D,v_V2G5,v_V2G6"
ROW = "100,120,50,530,70,150"


def paper_text() -> str:
    return PAPER.read_text(encoding="utf-8")


def edit(old: str, new: str, count: int = 1) -> str:
    text = paper_text()
    assert old in text, old
    return text.replace(old, new, count)


def problem_files() -> dict[str, tuple[str, bytes]]:
    """name -> (class, file bytes) for problem (TOML) files."""
    fdc1 = "p_max = 600.0"
    out: dict[str, tuple[str, bytes]] = {}

    def add(cls: str, name: str, data: str | bytes) -> None:
        out[name] = (cls, data if isinstance(data, bytes) else data.encode("utf-8"))

    # syntax
    add("syntax", "unclosed_header", edit("[[groups]]", "[[groups"))
    add("syntax", "double_equals", edit(fdc1, "p_max = = 600.0"))
    add("syntax", "unquoted_string", edit('name = "FDC1"', "name = FDC1"))
    add("syntax", "duplicate_key", edit(fdc1, fdc1 + "\n" + fdc1))
    add("syntax", "latin1", paper_text().replace("paper-4region", "paper-4régïon").encode("latin-1"))
    add("syntax", "binary", bytes(random.Random(1).randrange(256) for _ in range(2000)))
    add("syntax", "empty", "")
    add("syntax", "comments_only", "# nothing here\n")
    add("syntax", "problem_array", edit("[problem]", "[[problem]]"))
    add("syntax", "nul_byte", paper_text().replace("commitment", "commit\x00ment", 1))
    add("syntax", "utf16", paper_text().encode("utf-16"))
    add("syntax", "json_not_toml", json.dumps({"problem": {"name": "x"}}))
    # types
    add("types", "region_list", edit('region = "A"', 'region = ["A"]'))
    add("types", "region_int", edit('region = "A"', "region = 1"))
    add("types", "region_table", edit('region = "A"', "region = {name = 'A'}"))
    add("types", "group_name_int", edit('name = "FDC1"', "name = 1"))
    add("types", "group_name_list", edit('name = "FDC1"', 'name = ["FDC1"]'))
    add("types", "type_int", edit('type = "FDC"', "type = 1"))
    add("types", "type_list", edit('type = "FDC"', 'type = ["FDC"]'))
    add("types", "type_table", edit('type = "FDC"', "type = {t = 'FDC'}"))
    add("types", "p_max_string", edit(fdc1, 'p_max = "600"'))
    add("types", "p_max_bool", edit(fdc1, "p_max = true"))
    add("types", "p_max_list", edit(fdc1, "p_max = [600.0]"))
    add("types", "p_max_date", edit(fdc1, "p_max = 2024-01-01"))
    add("types", "cs_max_table", edit("cs_max = 200.0", "cs_max = {kw = 200.0}"))
    add("types", "commitment_string", edit("commitment = true", 'commitment = "yes"'))
    add("types", "commitment_int", edit("commitment = true", "commitment = 1"))
    add("types", "problem_name_bool", edit('name = "paper-4region"', "name = true"))
    add("types", "regions_int", "regions = 5\n" + paper_text().replace("[[regions]]", "[[zones]]"))
    add("types", "groups_string", paper_text().split("[[groups]]")[0].replace("[problem]", 'groups = "x"\n[problem]'))
    add("types", "problem_int", "problem = 5\n" + paper_text().split("[problem]", 1)[1].split("\n", 3)[3])
    add("types", "a_string", edit("a = 0.0020", 'a = "0.002"'))
    add("types", "efficiency_string", edit("efficiency = 0.9", 'efficiency = "90%"'))
    add("types", "min_ratio_list", edit("min_ratio = 0.5", "min_ratio = [0.5]"))
    add("types", "h_max_string", edit("h_max = 100.0", 'h_max = "hot"'))
    add(
        "types",
        "regions_inline_strings",
        paper_text().split("[[regions]]")[0]
        + 'regions = ["A", "B"]\n'
        + "[[groups]]"
        + paper_text().split("[[groups]]", 1)[1],
    )
    # values
    add("values", "negative_cs_max", edit("cs_max = 200.0", "cs_max = -200.0"))
    add("values", "negative_p_max", edit(fdc1, "p_max = -600.0"))
    add("values", "p_min_above_p_max", edit("p_min = 100.0", "p_min = 700.0"))
    add("values", "min_ratio_above_1", edit("min_ratio = 0.5", "min_ratio = 1.5"))
    add("values", "min_ratio_negative", edit("min_ratio = 0.5", "min_ratio = -0.5"))
    add("values", "efficiency_zero", edit("efficiency = 0.9", "efficiency = 0.0"))
    add("values", "efficiency_above_1", edit("efficiency = 0.9", "efficiency = 1.2"))
    add("values", "concave_cost", edit("a = 0.0020", "a = -0.002"))
    add("values", "nan_cost", edit("b = 10.0", "b = nan"))
    add("values", "inf_capacity", edit("cs_max = 200.0", "cs_max = inf"))
    add("values", "minus_inf_cost", edit("c = 500.0", "c = -inf"))
    add("values", "unknown_key", edit("cs_max = 200.0", "cs_max = 200.0\nlimit = 1"))
    add("values", "missing_key", edit("p_min = 100.0\n", ""))
    add("values", "unknown_type", edit('type = "FDC"', 'type = "DCFC"'))
    add("values", "unknown_region", edit('region = "A"', 'region = "Z"'))
    add("values", "duplicate_region", edit('name = "B"', 'name = "A"'))
    add("values", "duplicate_group", edit('name = "FDC2"', 'name = "FDC1"'))
    add("values", "dead_region", paper_text() + '\n[[regions]]\nname = "E"\ncs_max = 0.0\n')
    add("values", "other_types_key", edit(fdc1, fdc1 + "\nefficiency = 0.9"))
    add("values", "no_groups", paper_text().split("[[groups]]")[0])
    add("values", "unknown_top_level", paper_text() + "\n[solver]\nname = 'scip'\n")
    # names
    add("names", "slash_in_group", edit('name = "FDC1"', 'name = "FDC/1"'))
    add("names", "script_in_group", edit('name = "FDC1"', 'name = "<script>alert(1)</script>"'))
    add("names", "newline_in_group", edit('name = "FDC1"', 'name = "FDC\\n1"'))
    add("names", "tab_in_group", edit('name = "FDC1"', 'name = "FDC\\t1"'))
    add("names", "space_in_group", edit('name = "FDC1"', 'name = "FDC 1"'))
    add("names", "empty_group_name", edit('name = "FDC1"', 'name = ""'))
    add("names", "long_group_name", edit('name = "FDC1"', f'name = "{"G" * 65}"'))
    add("names", "unicode_group_name", edit('name = "FDC1"', 'name = "FDCé"'))
    add(
        "names",
        "dots_region",
        paper_text().replace('name = "A"', 'name = ".."').replace('region = "A"', 'region = ".."'),
    )
    add(
        "names",
        "slash_region",
        paper_text().replace('name = "A"', 'name = "A/B"').replace('region = "A"', 'region = "A/B"'),
    )
    add(
        "names",
        "img_in_region",
        paper_text()
        .replace('name = "A"', 'name = "<img src=x onerror=alert(1)>"')
        .replace('region = "A"', 'region = "<img src=x onerror=alert(1)>"'),
    )
    add(
        "names",
        "comma_region",
        paper_text().replace('name = "A"', 'name = "A,B"').replace('region = "A"', 'region = "A,B"'),
    )
    add("names", "slash_problem_name", edit('name = "paper-4region"', 'name = "../paper"'))
    add("names", "newline_problem_name", edit('name = "paper-4region"', 'name = "paper\\nerror: fake"'))
    add("names", "script_problem_name", edit('name = "paper-4region"', 'name = "<script>alert(1)</script>"'))
    add("names", "quote_problem_name", edit('name = "paper-4region"', 'name = "it\'s"'))
    add("names", "control_char_name", edit('name = "FDC1"', 'name = "FDC\\u00071"'))
    # limits
    add("limits", "p_max_1e25", edit(fdc1, "p_max = 1e25"))
    add("limits", "p_max_1e308", edit(fdc1, "p_max = 1e308"))
    add("limits", "p_max_1e13", edit(fdc1, "p_max = 1e13"))
    add("limits", "p_max_huge_int", edit(fdc1, "p_max = 1000000000000000000000000000000"))
    add("limits", "cs_max_1e13", edit("cs_max = 200.0", "cs_max = 1e13"))
    add("limits", "cs_max_1e300", edit("cs_max = 200.0", "cs_max = 1e300"))
    add("limits", "v2g_p_max_1e20", edit("p_max = 90.0", "p_max = 1e20"))
    add("limits", "asc_p_max_1e16", edit("p_max = 200.0", "p_max = 1e16"))
    add("limits", "a_1e300", edit("a = 0.0020", "a = 1e300"))
    add("limits", "b_1e20", edit("b = 10.0", "b = 1e20"))
    add("limits", "c_1e16", edit("c = 500.0", "c = 1e16"))
    add("limits", "b_minus_1e20", edit("b = 10.0", "b = -1e20"))
    add("limits", "g_1e20", edit("g = 5.0", "g = 1e20"))
    add("limits", "h_1e16", edit("h = 15.0", "h = 1e16"))
    add("limits", "h_max_1e20", edit("h_max = 100.0", "h_max = 1e20"))
    add("limits", "cost_overflow_at_p_max", edit(fdc1, "p_max = 1e9"))  # a=0.002 -> 2e15 at p_max
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
