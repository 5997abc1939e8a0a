"""Problem (TOML) and state (CSV) loaders: the shipped files load to the paper's data, and every
kind of bad input comes back as one :class:`InputError` naming the file, the entry and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchbench import GroupType, load_problem, load_states
from dispatchbench.model.errors import InputError

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
PAPER = PROBLEMS / "paper-4region.toml"

# A small valid problem; each bad case below is a textual edit of it.
BASE = """\
[problem]
name = "tiny"
commitment = true

[[regions]]
name = "A"
cs_max = 50.0

[[regions]]
name = "B"
cs_max = 50.0

[[groups]]
name = "F1"
type = "FDC"
region = "A"
a = 0.01
b = 2.0
c = 10.0
p_min = 20.0
p_max = 100.0

[[groups]]
name = "S1"
type = "ASC"
region = "B"
a = 0.02
b = 1.0
c = 5.0
p_max = 80.0
min_ratio = 0.5

[[groups]]
name = "V1"
type = "V2G"
region = "B"
g = 3.0
h = 2.0
efficiency = 0.8
p_max = 50.0
"""


def write(tmp_path: Path, text: str, name: str = "problem.toml", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def expect_error(fn, path: Path, entry: str, problem: str) -> InputError:
    """The error names the file, the entry, says what is wrong, and gives a fix, on one line."""
    with pytest.raises(InputError) as info:
        fn()
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert entry in err.entry, message
    assert problem in err.problem, message
    assert err.fix and " — fix: " in message
    return err


# ---- the shipped files ---------------------------------------------------------------------


def test_paper_problem_loads_tables_i_to_iii():
    p = load_problem(PAPER)
    assert p.name == "paper-4region" and p.commitment
    assert p.region_names == ("A", "B", "C", "D")
    assert p.cs_max.tolist() == [200.0] * 4
    assert p.group_names == ("FDC1", "FDC2", "FDC3", "FDC4", "V2G5", "V2G6", "ASC7", "ASC8", "ASC9")
    by = {g.name: g for g in p.groups}
    assert (by["FDC1"].a, by["FDC1"].b, by["FDC1"].c, by["FDC1"].p_min, by["FDC1"].p_max) == (0.002, 10, 500, 100, 600)
    assert by["V2G6"].type is GroupType.V2G and by["V2G6"].region == "B"  # decision 1: Table II
    assert (by["V2G6"].g, by["V2G6"].h, by["V2G6"].efficiency, by["V2G6"].p_max) == (4, 20, 0.9, 90)
    assert by["ASC9"].p_min == pytest.approx(90.0) and by["ASC9"].h_max == 80.0  # 0.5 * 180
    convex = load_problem(PROBLEMS / "paper-4region-convex.toml")
    assert not convex.commitment and convex.groups == p.groups and convex.regions == p.regions


def test_table_iv_state_loads():
    (s,) = load_states(PROBLEMS / "paper-4region-tableIV.csv", load_problem(PAPER))
    assert s.label == "tableIV"
    assert s.demand == {"A": 100, "B": 120, "C": 50, "D": 530} and s.total_demand == 800
    assert s.v2g_available == {"V2G5": 70, "V2G6": 150}


def test_base_problem_is_valid(tmp_path):
    p = load_problem(write(tmp_path, BASE))
    assert p.group_names == ("F1", "S1", "V1") and p.p_min.tolist() == [20.0, 40.0, 0.0]
    assert p.source == str(tmp_path / "problem.toml")


# ---- bad problem files ------------------------------------------------------------------------


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


BAD_PROBLEMS = {
    # id: (file text, entry named, what is wrong)
    "unknown top-level key": (BASE + "\n[solver]\nname = 'scip'\n", "top level", "unknown key 'solver'"),
    "unknown key in [problem]": (
        edit("commitment = true", "commitment = true\nhorizon = 96"),
        "[problem]",
        "unknown key 'horizon'",
    ),
    "unknown key in a region": (
        edit("cs_max = 50.0\n\n[[regions]]", "cs_max = 50.0\ncs_min = 0\n\n[[regions]]"),
        "region 'A'",
        "unknown key 'cs_min'",
    ),
    "misspelt key in a group": (edit("p_max = 100.0", "pmax = 100.0"), "group 'F1'", "unknown key 'pmax'"),
    "another type's key in a group": (
        edit("p_max = 100.0", "p_max = 100.0\nefficiency = 0.9"),
        "group 'F1'",
        "unknown key 'efficiency'",
    ),
    "p_min given to an ASC": (
        edit("min_ratio = 0.5", "min_ratio = 0.5\np_min = 40.0"),
        "group 'S1'",
        "unknown key 'p_min'",
    ),
    "missing [problem]": (BASE.split("\n", 4)[4], "[problem]", "missing"),
    "[[problem]] array": (edit("[problem]", "[[problem]]"), "[problem]", "not a single table"),
    "missing problem name": (edit('name = "tiny"\n', ""), "[problem].name", "missing"),
    "commitment not a boolean": (
        edit("commitment = true", 'commitment = "yes"'),
        "[problem].commitment",
        "not a boolean",
    ),
    "no regions": (
        "\n".join(line for line in BASE.splitlines() if "[[regions]]" not in line)
        .replace('name = "A"\ncs_max = 50.0\n', "")
        .replace('name = "B"\ncs_max = 50.0\n', ""),
        "[[regions]]",
        "missing or empty",
    ),
    "no groups": (BASE.split("[[groups]]")[0], "[[groups]]", "missing or empty"),
    "groups as one table": (
        BASE.split("[[groups]]")[0] + "[groups]\nname = 'F1'\n",
        "[groups]",
        "not an array of tables",
    ),
    "missing group key": (edit("p_min = 20.0\n", ""), "group 'F1'.p_min", "missing"),
    "missing cs_max": (
        edit(
            "cs_max = 50.0\n",
            "",
        ),
        "region 'A'.cs_max",
        "missing",
    ),
    "missing group name": (edit('name = "F1"\n', ""), "[[groups]] #1.name", "missing"),
    "missing type": (edit('type = "FDC"\n', ""), "group 'F1'.type", "missing"),
    "lower-case type": (edit('type = "FDC"', 'type = "fdc"'), "group 'F1'.type", "'fdc' is not a charger type"),
    "unknown type": (edit('type = "FDC"', 'type = "DCFC"'), "group 'F1'.type", "'DCFC' is not a charger type"),
    "negative cs_max": (edit("cs_max = 50.0", "cs_max = -50.0"), "region 'A'.cs_max", "out of range"),
    "negative p_max": (edit("p_max = 100.0", "p_max = -100.0"), "group 'F1'.p_max", "out of range"),
    "negative p_min": (edit("p_min = 20.0", "p_min = -1.0"), "group 'F1'.p_min", "out of range"),
    "negative V2G p_max": (edit("p_max = 50.0", "p_max = -5.0"), "group 'V1'.p_max", "out of range"),
    "p_min > p_max": (edit("p_min = 20.0", "p_min = 120.0"), "group 'F1'.p_min", "p_min 120.0 > p_max 100.0"),
    "min_ratio > 1": (edit("min_ratio = 0.5", "min_ratio = 1.5"), "group 'S1'.min_ratio", "exceeds 1"),
    "negative min_ratio": (edit("min_ratio = 0.5", "min_ratio = -0.5"), "group 'S1'.min_ratio", "out of range"),
    "efficiency > 1": (edit("efficiency = 0.8", "efficiency = 1.2"), "group 'V1'.efficiency", "exceeds 1"),
    "efficiency 0": (edit("efficiency = 0.8", "efficiency = 0.0"), "group 'V1'.efficiency", "out of range"),
    "concave cost": (edit("a = 0.01", "a = -0.01"), "group 'F1'.a", "negative"),
    "number as a string": (edit("p_max = 100.0", 'p_max = "100"'), "group 'F1'.p_max", "not a finite number"),
    "boolean as a number": (edit("c = 10.0", "c = true"), "group 'F1'.c", "not a finite number"),
    "infinite capacity": (edit("cs_max = 50.0", "cs_max = inf"), "region 'A'.cs_max", "not a finite number"),
    "nan cost": (edit("b = 2.0", "b = nan"), "group 'F1'.b", "not a finite number"),
    "group names an unknown region": (edit('region = "A"', 'region = "Z"'), "group 'F1'.region", "'Z' is not a region"),
    "group without a region": (edit('region = "A"\n', ""), "group 'F1'.region", "missing"),
    "region nobody names and no CS": (
        BASE + '\n[[regions]]\nname = "C"\ncs_max = 0.0\n',
        "region 'C'",
        "has no charger group and no CS capacity",
    ),
    "duplicate region": (edit('name = "B"\ncs_max', 'name = "A"\ncs_max'), "[[regions]] 'A'", "name used twice"),
    "duplicate group": (edit('name = "S1"', 'name = "F1"'), "[[groups]] 'F1'", "name used twice"),
    "name with a space": (edit('name = "F1"', 'name = "F 1"'), "[[groups]] #1.name", "contains ' '"),
    "region name not a string": (edit('name = "A"', "name = 1"), "[[regions]] #1.name", "not a string"),
    "bad TOML syntax": (edit("p_max = 100.0", "p_max = = 100.0"), "TOML syntax", "line"),
    "unclosed table header": (edit("[[groups]]", "[[groups"), "TOML syntax", ""),
    "empty file": ("", "[problem]", "missing"),
    # wrong types anywhere are one line, not a TypeError
    "region as a list": (edit('region = "A"', 'region = ["A"]'), "group 'F1'.region", "['A'] is not a string"),
    "region as a number": (edit('region = "A"', "region = 1"), "group 'F1'.region", "1 is not a string"),
    "type as a list": (edit('type = "FDC"', 'type = ["FDC"]'), "group 'F1'.type", "is not a charger type"),
    "type as a table": (edit('type = "FDC"', "type = {t = 'FDC'}"), "group 'F1'.type", "is not a charger type"),
    "number as a list": (edit("p_max = 100.0", "p_max = [100.0]"), "group 'F1'.p_max", "not a finite number"),
    "number as a date": (edit("p_max = 100.0", "p_max = 2024-01-01"), "group 'F1'.p_max", "not a finite number"),
    "integer beyond a double": (
        edit("p_max = 100.0", "p_max = " + "9" * 400),
        "group 'F1'.p_max",
        "not a finite number",
    ),
    # names follow the documented character set
    "slash in a group name": (edit('name = "F1"', 'name = "F/1"'), "[[groups]] #1.name", "contains '/'"),
    "markup in a group name": (edit('name = "F1"', 'name = "<script>"'), "[[groups]] #1.name", "contains '<'"),
    "newline in a group name": (edit('name = "F1"', 'name = "F\\n1"'), "[[groups]] #1.name", "contains '\\n'"),
    "tab in a region name": (edit('name = "A"', 'name = "A\\tB"'), "[[regions]] #1.name", "contains '\\t'"),
    "non-ASCII name": (edit('name = "F1"', 'name = "F\u00e91"'), "[[groups]] #1.name", "contains"),
    "name too long": (edit('name = "F1"', 'name = "' + "G" * 65 + '"'), "[[groups]] #1.name", "longer than 64"),
    "empty name": (edit('name = "F1"', 'name = ""'), "[[groups]] #1.name", "missing or empty"),
    "slash in the problem name": (edit('name = "tiny"', 'name = "../tiny"'), "[problem].name", "contains '.'"),
    # numbers the solvers cannot represent (a p_max of 1e25 hangs SCIP)
    "p_max 1e25": (edit("p_max = 100.0", "p_max = 1e25"), "group 'F1'.p_max", "beyond what the solvers can represent"),
    "p_max 1e308": (edit("p_max = 100.0", "p_max = 1e308"), "group 'F1'.p_max", "beyond"),
    "cs_max above 1e12": (edit("cs_max = 50.0", "cs_max = 2e12"), "region 'A'.cs_max", "beyond"),
    "V2G p_max above 1e12": (edit("p_max = 50.0", "p_max = 1e13"), "group 'V1'.p_max", "beyond"),
    "coefficient above 1e15": (edit("b = 2.0", "b = 1e16"), "group 'F1'.b", "beyond"),
    "negative coefficient below -1e15": (edit("c = 10.0", "c = -1e16"), "group 'F1'.c", "beyond"),
    "cost at p_max overflows": (edit("p_max = 100.0", "p_max = 1e9"), "group 'F1'", "running cost at p_max"),
    "V2G cost at p_max overflows": (
        edit("g = 3.0", "g = 1e14").replace("p_max = 50.0", "p_max = 100.0"),
        "group 'V1'",
        "running cost at p_max",
    ),
}


@pytest.mark.parametrize("text, entry, what", list(BAD_PROBLEMS.values()), ids=list(BAD_PROBLEMS))
def test_bad_problem_file(tmp_path, text, entry, what):
    path = write(tmp_path, text)
    expect_error(lambda: load_problem(path), path, entry, what)


def test_a_byte_order_mark_is_accepted_in_toml_as_in_csv(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    assert load_problem(path).name == "tiny"


def test_powers_and_costs_at_the_documented_limits_load(tmp_path):
    text = BASE.replace("p_max = 100.0", "p_max = 1e12").replace("a = 0.01", "a = 0.0", 1)
    text = text.replace("b = 2.0", "b = 999.0").replace("cs_max = 50.0", "cs_max = 1e12", 1)
    p = load_problem(write(tmp_path, text))
    assert p.groups[0].p_max == 1e12 and p.regions[0].cs_max == 1e12


def test_region_without_groups_but_with_a_cs_link_is_a_pure_load(tmp_path):
    # A region nobody's group names is fine if the grid can serve it; only a dead end is rejected.
    p = load_problem(write(tmp_path, BASE + '\n[[regions]]\nname = "C"\ncs_max = 10.0\n'))
    assert p.region_names == ("A", "B", "C") and p.groups_in("C") == ()


def test_missing_problem_file(tmp_path):
    path = tmp_path / "nope.toml"
    expect_error(lambda: load_problem(path), path, "file", "not found")


def test_problem_path_is_a_directory(tmp_path):
    expect_error(lambda: load_problem(tmp_path), tmp_path, "file", "is a directory")


def test_problem_file_not_utf8(tmp_path):
    path = write(tmp_path, BASE.replace("tiny", "tïny"), encoding="latin-1")
    expect_error(lambda: load_problem(path), path, "file", "not UTF-8")


# ---- state files ------------------------------------------------------------------------------

HEADER = "state,d_A,d_B,v_V1"


@pytest.fixture
def tiny(tmp_path):
    return load_problem(write(tmp_path, BASE))


def test_states_load_with_any_column_order_blank_lines_and_a_byte_order_mark(tmp_path, tiny):
    text = "\ufeffv_V1, d_B ,state,d_A\n30,70,s1,60\n\n 0 ,0.5,s2,1e2\n"
    states = load_states(write(tmp_path, text, "states.csv"), tiny)
    assert [s.label for s in states] == ["s1", "s2"]
    assert states[0].demand == {"A": 60.0, "B": 70.0} and states[0].v2g_available == {"V1": 30.0}
    assert states[1].demand == {"A": 100.0, "B": 0.5} and states[1].v2g_available == {"V1": 0.0}


BAD_STATES = {
    # id: (file text, entry named, what is wrong)
    "missing region column": ("state,d_A,v_V1\ns,1,1\n", "column 'd_B'", "missing"),
    "missing V2G column": ("state,d_A,d_B\ns,1,1\n", "column 'v_V1'", "missing"),
    "no label column": ("label,d_A,d_B,v_V1\ns,1,1,1\n", "column 'label'", "does not match problem 'tiny'"),
    "region the problem lacks": (HEADER + ",d_C\ns,1,1,1,1\n", "column 'd_C'", "does not match problem"),
    "V2G column of a non-V2G group": (HEADER + ",v_F1\ns,1,1,1,1\n", "column 'v_F1'", "does not match problem"),
    "column twice": ("state,d_A,d_A,d_B,v_V1\ns,1,1,1,1\n", "column 'd_A'", "appears twice"),
    "stray trailing comma": (HEADER + ",\ns,1,1,1,\n", "header column 5", "has no name"),
    "semicolons": ("state;d_A;d_B;v_V1\ns;1;1;1\n", "header", "separated by ';', not commas"),
    "row with a field too many": (HEADER + "\ns1,1,1,1\ns2,1,1,1,1\n", "line 3", "has 5 fields but the header has 4"),
    "row with a field too few": (HEADER + "\ns1,1,1\n", "line 2", "has 3 fields"),
    "non-numeric cell": (HEADER + "\ns1,1,abc,1\n", "line 2, state 's1', column 'd_B'", "'abc' is not a number"),
    "negative demand": (HEADER + "\ns1,-5,1,1\n", "column 'd_A'", "'-5' is not a number >= 0"),
    "negative V2G availability": (HEADER + "\ns1,5,1,-1\n", "column 'v_V1'", "is not a number >= 0"),
    "empty cell": (HEADER + "\ns1,1,,1\n", "column 'd_B'", "'' is not a number"),
    "nan cell": (HEADER + "\ns1,nan,1,1\n", "column 'd_A'", "'nan' is not a number"),
    "infinite cell": (HEADER + "\ns1,1,inf,1\n", "column 'd_B'", "'inf' is not a number"),
    "duplicate label": (HEADER + "\ns1,1,1,1\ns2,1,1,1\n\ns1,2,2,2\n", "line 5, state 's1'", "label used twice"),
    "empty label": (HEADER + "\n,1,1,1\n", "line 2, column 'state'", "empty label"),
    "header only": (HEADER + "\n", "rows", "no states"),
    "empty file": ("", "file", "is empty"),
    "blank file": ("  \n\n", "file", "is empty"),
    "broken quoting": (HEADER + '\n"s1,1,1,1\n', "line", "not valid CSV"),
    "demand above 1e12 kW": (HEADER + "\ns1,2e12,1,1\n", "column 'd_A'", "beyond what the solvers can represent"),
    "V2G availability 1e300": (HEADER + "\ns1,1,1,1e300\n", "column 'v_V1'", "beyond"),
    "slash in a label": (HEADER + "\na/b,1,1,1\n", "line 2, column 'state'", "contains '/'"),
    "markup in a label": (HEADER + "\n<script>,1,1,1\n", "line 2, column 'state'", "contains '<'"),
    "tab in a label": (HEADER + '\n"a\tb",1,1,1\n', "line 2, column 'state'", "contains '\\t'"),
    "newline in a label": (HEADER + '\n"a\nb",1,1,1\n', "column 'state'", "contains '\\n'"),
    "label too long": (HEADER + "\n" + "L" * 65 + ",1,1,1\n", "line 2, column 'state'", "longer than 64"),
    # issue 20: Python's float() takes all of these; the file format does not (docs/model.md)
    "full-width digits": (HEADER + "\ns1,\uff11\uff12,1,1\n", "column 'd_A'", "is not a number >= 0 in the file's"),
    "Arabic-Indic digits": (HEADER + "\ns1,1,\u0661\u0662,1\n", "column 'd_B'", "number format"),
    "underscore in a number": (HEADER + "\ns1,1_000,1,1\n", "column 'd_A'", "'1_000' is not a number"),
    "space inside a number": (HEADER + "\ns1,1 000,1,1\n", "column 'd_A'", "'1 000' is not a number"),
    "hexadecimal": (HEADER + "\ns1,0x10,1,1\n", "column 'd_A'", "'0x10' is not a number"),
    "quoted thousands separator": (HEADER + '\ns1,"1,000",1,1\n', "column 'd_A'", "'1,000' is not a number"),
    "quoted separator and digits": (HEADER + '\ns1,"1,2",1,1\n', "column 'd_A'", "'1,2' is not a number"),
    "exponent overflowing to inf": (HEADER + "\ns1,1e999,1,1\n", "column 'd_A'", "is not a number >= 0"),
}


@pytest.mark.parametrize("text, entry, what", list(BAD_STATES.values()), ids=list(BAD_STATES))
def test_bad_state_file(tmp_path, tiny, text, entry, what):
    path = write(tmp_path, text, "states.csv")
    expect_error(lambda: load_states(path, tiny), path, entry, what)


def test_time_and_date_labels_load(tmp_path, tiny):
    text = HEADER + "\n08:00,1,1,1\n2024-06-01 08:15,1,1,1\nday+1.5,1,1,1\n"
    assert [s.label for s in load_states(write(tmp_path, text, "states.csv"), tiny)] == [
        "08:00",
        "2024-06-01 08:15",
        "day+1.5",
    ]


def test_state_file_header_message_gives_the_expected_header(tmp_path, tiny):
    path = write(tmp_path, "state,d_A,v_V1\ns,1,1\n", "states.csv")
    with pytest.raises(InputError, match=r"fix: the header must be state,d_A,d_B,v_V1$"):
        load_states(path, tiny)


def test_state_file_for_another_problem():
    paper = load_problem(PAPER)
    path = PROBLEMS / "wood-wollenberg-3a.csv"
    expect_error(lambda: load_states(path, paper), path, "column 'd_area'", "does not match problem 'paper-4region'")
    path = PROBLEMS / "paper-4region-tableIV.csv"
    ed = load_problem(PROBLEMS / "wood-wollenberg-3a.toml")
    expect_error(lambda: load_states(path, ed), path, "column 'd_A'", "does not match problem 'wood-wollenberg-3a'")


def test_missing_state_file(tmp_path, tiny):
    path = tmp_path / "nope.csv"
    expect_error(lambda: load_states(path, tiny), path, "file", "not found")


def test_state_file_not_utf8(tmp_path, tiny):
    path = write(tmp_path, HEADER + "\nété,1,1,1\n", "states.csv", encoding="latin-1")
    expect_error(lambda: load_states(path, tiny), path, "file", "not UTF-8")


# ---- the example in docs/model.md stays true --------------------------------------------------


def test_docs_example_files_load_and_the_example_error_is_what_the_loader_says(tmp_path):
    import re

    text = (PROBLEMS.parent / "docs" / "model.md").read_text(encoding="utf-8")
    toml_text = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    csv_text = re.search(r"```csv\n(.*?)```", text, re.S).group(1)
    problem = load_problem(write(tmp_path, toml_text, "two-regions.toml"))
    states = load_states(write(tmp_path, csv_text, "two-regions.csv"), problem)
    assert problem.group_names == ("fast1", "slow1", "v2g1") and [s.label for s in states] == ["08:00", "08:15"]
    example = re.search(r"^error: (two-regions\.toml: .*)$", text, re.M).group(1)
    bad = write(tmp_path, toml_text.replace("p_min = 20.0", "p_min = 120.0"), "two-regions.toml")
    with pytest.raises(InputError) as info:
        load_problem(bad)
    assert str(info.value) == example.replace("two-regions.toml", str(bad), 1)


# ---- input edges (issue 20): sizes, paths, special files ------------------------------------------


def test_plain_numbers_in_every_ascii_form_load(tmp_path, tiny):
    text = HEADER + "\ns1,+5,.5,5.\ns2,1E2, 2e-1 ,0\n"
    states = load_states(write(tmp_path, text, "states.csv"), tiny)
    assert states[0].demand == {"A": 5.0, "B": 0.5} and states[0].v2g_available == {"V1": 5.0}
    assert states[1].demand == {"A": 100.0, "B": 0.2}


def test_a_state_file_past_the_row_limit_is_refused_at_the_row_that_crosses_it(tmp_path, tiny, monkeypatch):
    import dispatchbench.model.state_file as state_file

    monkeypatch.setattr(state_file, "MAX_STATES", 3)
    rows = "".join(f"s{i},1,1,1\n" for i in range(3))
    assert len(load_states(write(tmp_path, HEADER + "\n" + rows, "ok.csv"), tiny)) == 3
    path = write(tmp_path, HEADER + "\n" + rows + "s3,1,1,1\n" + "garbage\n" * 10, "big.csv")
    expect_error(lambda: load_states(path, tiny), path, "line 5", "more than 3 states")


def test_a_state_file_past_the_cell_limit_is_refused(tmp_path, tiny, monkeypatch):
    import dispatchbench.model.state_file as state_file

    monkeypatch.setattr(state_file, "MAX_CELLS", 9)  # 4 columns: two rows fit, the third does not
    path = write(tmp_path, HEADER + "\ns0,1,1,1\ns1,1,1,1\ns2,1,1,1\n", "cells.csv")
    expect_error(lambda: load_states(path, tiny), path, "line 4", "more than 2 states")


def test_a_file_past_the_byte_limit_is_refused_without_reading_it(tmp_path, tiny):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(600 * 2**20)  # sparse: nothing is written, st_size says 600 MiB
    expect_error(lambda: load_states(path, tiny), path, "file", "over the 512 MiB limit")
    toml = tmp_path / "huge.toml"
    with toml.open("wb") as handle:
        handle.truncate(20 * 2**20)
    expect_error(lambda: load_problem(toml), toml, "file", "over the 16 MiB limit")


def test_a_fifo_or_a_device_is_refused_before_it_is_opened(tmp_path, tiny):
    import os

    fifo = tmp_path / "states.csv"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    expect_error(lambda: load_states(fifo, tiny), fifo, "file", "is a FIFO")
    expect_error(lambda: load_problem(fifo), fifo, "file", "is a FIFO")
    expect_error(lambda: load_problem(Path("/dev/zero")), Path("/dev/zero"), "file", "is a device")


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda tmp: tmp / ("n" * 300 + ".toml"), "name in the path is 305 bytes long, over 255"),
        (lambda tmp: tmp / "/".join(["d" * 200] * 25) / "p.toml", "over 4095"),
        (lambda tmp: tmp / "missing" / "p.toml", "not found"),
    ],
    ids=["a 300-byte name", "a 5000-byte path", "a missing folder"],
)
def test_overlong_paths_are_one_line(tmp_path, tiny, make, what):
    path = make(tmp_path)
    for load in (lambda: load_problem(path), lambda: load_states(path, tiny)):
        with pytest.raises(InputError, match=what) as info:
            load()
        assert "\n" not in str(info.value) and " — fix: " in str(info.value)


def test_a_symlink_loop_is_one_line(tmp_path):
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="loops through symbolic links"):
        load_problem(loop)


def test_toml_nesting_and_huge_integers_are_one_line(tmp_path):
    deep = write(tmp_path, "x = " + "[" * 50_000 + "]" * 50_000 + "\n" + BASE, "deep.toml")
    expect_error(lambda: load_problem(deep), deep, "TOML", "nested too deeply")
    huge = write(tmp_path, BASE.replace("cs_max = 50.0", "cs_max = 1" + "0" * 5000, 1), "huge.toml")
    expect_error(lambda: load_problem(huge), huge, "TOML", "integer of thousands of digits")


def test_toml_numbers_follow_the_toml_spec_underscores_included(tmp_path):
    """TOML allows 1_000 (its spec's digit separator); tomllib refuses non-ASCII digits itself."""
    problem = load_problem(write(tmp_path, BASE.replace("cs_max = 50.0", "cs_max = 1_000.5", 1)))
    assert problem.regions[0].cs_max == 1000.5
    bad = write(tmp_path, BASE.replace("cs_max = 50.0", "cs_max = \uff15\uff10", 1), "fw.toml")
    expect_error(lambda: load_problem(bad), bad, "TOML syntax", "")


# ---- found by the bad-input campaign (tests/campaign) ------------------------------------------------


@pytest.mark.parametrize("path", [5, None, 1.5, ["a.toml"]])
def test_a_path_that_is_not_a_path_is_one_line(path):
    with pytest.raises(InputError, match="is not a path — fix: give .* as a str or pathlib.Path"):
        load_problem(path)


def test_states_read_against_something_that_is_not_a_problem_is_one_line():
    with pytest.raises(InputError, match="problem: None: is not a Problem"):
        load_states(PROBLEMS / "paper-4region-tableIV.csv", None)


def test_an_output_file_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    from dispatchbench.model.paths import output_file

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "out.toml").symlink_to(victim)
    with pytest.raises(InputError, match="is a symbolic link"):
        output_file(tmp_path / "out.toml")
    assert victim.read_text() == "keep me\n"
    assert output_file(tmp_path / "new.toml") == tmp_path / "new.toml"  # a plain new file is fine
