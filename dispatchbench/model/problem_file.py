"""Reading and validating problem files (TOML).

Problems are data so that a user adds one without code; in exchange every mistake in a file
must come back as one line naming the file, the entry and the fix, never a traceback.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from dispatchbench.model.errors import InputError
from dispatchbench.model.paths import check_path, exists, regular_input
from dispatchbench.model.problem import Group, GroupType, Problem, Region

_PROBLEM_KEYS = {"name": str, "commitment": bool}
_REGION_KEYS = {"name", "cs_max"}
_REQUIRED: dict[GroupType, set[str]] = {
    GroupType.FDC: {"a", "b", "c", "p_min", "p_max"},
    GroupType.ASC: {"a", "b", "c", "p_max", "min_ratio"},
    GroupType.V2G: {"g", "h", "efficiency", "p_max"},
}
_OPTIONAL: dict[GroupType, set[str]] = {
    GroupType.FDC: set(),
    GroupType.ASC: {"h_max"},
    GroupType.V2G: set(),
}
_COMMON = {"name", "type", "region"}

# Names end up as CSV column suffixes (d_<region>), HTML, file names and solver messages, so they
# are kept to a set that needs no quoting anywhere (docs/model.md, "File formats").
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAME_RULE = "use 1-64 letters (A-Z, a-z), digits, - and _ only"
# What the solvers can represent: SCIP treats 1e20 as infinity and its feasibility tolerance is
# relative, so a bound of 1e25 kW never terminates (issue 11). Powers up to 1e12 kW (a terawatt,
# far above any charging site) and costs up to 1e15 per interval keep every backend's numbers
# well inside double precision and SCIP's range.
MAX_POWER_KW = 1e12
MAX_COST = 1e15


MAX_PROBLEM_BYTES = 16 * 2**20  # a generated 512-region problem is ~0.3 MB


def load_problem(path: str | Path) -> Problem:
    """Load and validate a problem file; raise :class:`InputError` on any defect."""
    path = check_path(path)
    if not exists(path):
        raise InputError(path, "file", "not found", "give the path of an existing .toml problem file")
    regular_input(path, "file", MAX_PROBLEM_BYTES)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a BOM, as CSV accepts
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, "TOML syntax", str(exc), "correct the TOML syntax at that line") from None
    except RecursionError:
        raise InputError(path, "TOML", "arrays or tables are nested too deeply", "write a flat problem file") from None
    except UnicodeDecodeError:
        raise InputError(path, "file", "is not UTF-8 text", "save the problem file as UTF-8 TOML") from None
    except ValueError:  # an integer of thousands of digits (int's own limit), before any check of ours
        raise InputError(
            path, "TOML", "holds an integer of thousands of digits", "write every number in at most 20 digits"
        ) from None
    except OSError as exc:
        raise InputError(
            path, "file", f"cannot be read ({exc.strerror})", "check the path and its permissions"
        ) from None
    return parse_problem(data, source=str(path))


def parse_problem(data: dict[str, Any], source: str = "<problem>") -> Problem:
    """Validate an already-parsed TOML document (also used for problems built in code)."""
    _unknown(source, "top level", data, {"problem", "regions", "groups"})
    head = data.get("problem")
    if head is not None and not isinstance(head, dict):
        raise InputError(source, "[problem]", "is not a single table", "write one [problem] table (single brackets)")
    if not isinstance(head, dict):
        raise InputError(
            source, "[problem]", "missing", 'add a [problem] table with name = "..." and commitment = true|false'
        )
    _unknown(source, "[problem]", head, set(_PROBLEM_KEYS))
    name = head.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(source, "[problem].name", "missing or not a string", 'add name = "my-problem"')
    check_name(source, "[problem].name", name)
    commitment = head.get("commitment", True)
    if not isinstance(commitment, bool):
        raise InputError(
            source, "[problem].commitment", f"{commitment!r} is not a boolean", "write commitment = true or false"
        )

    regions = [_region(source, i, r) for i, r in enumerate(_array(source, data, "regions"))]
    _unique(source, "[[regions]]", [r.name for r in regions])
    region_names = {r.name for r in regions}
    groups = [_group(source, i, g, region_names) for i, g in enumerate(_array(source, data, "groups"))]
    _unique(source, "[[groups]]", [g.name for g in groups])
    for r in regions:
        if not any(g.region == r.name for g in groups) and r.cs_max <= 0:
            raise InputError(
                source,
                f"region {r.name!r}",
                "has no charger group and no CS capacity, so it can serve no demand",
                "give it a group or a positive cs_max, or remove it",
            )
    return Problem(name=name, regions=tuple(regions), groups=tuple(groups), commitment=commitment, source=source)


def _array(source: str, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    if items is not None and not isinstance(items, list):
        raise InputError(
            source,
            f"[{key}]",
            "is a single table, not an array of tables",
            f"write each entry under its own [[{key}]] header (double brackets)",
        )
    if not items:
        raise InputError(source, f"[[{key}]]", "missing or empty", f"add at least one [[{key}]] entry")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(source, f"[[{key}]] #{i + 1}", "is not a table", f"write each entry as a [[{key}]] table")
    return items


def _unknown(source: str, entry: str, table: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise InputError(
            source, entry, f"unknown key {extra[0]!r}", f"remove it or use one of: {', '.join(sorted(allowed))}"
        )


def _unique(source: str, entry: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(source, f"{entry} {n!r}", "name used twice", "give every entry a unique name")
        seen.add(n)


def _number(
    source: str,
    entry: str,
    table: dict[str, Any],
    key: str,
    *,
    minimum: float = 0.0,
    strict: bool = False,
    maximum: float = MAX_COST,
) -> float:
    """A finite number in ``[minimum, maximum]``; by default at most :data:`MAX_COST` in size,
    powers are capped at :data:`MAX_POWER_KW` by their callers."""
    if key not in table:
        raise InputError(source, f"{entry}.{key}", "missing", f"add {key} = <number>")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source, f"{entry}.{key}", f"{_show(value)} is not a finite number", f"write {key} as a number")
    try:
        number = float(value)
    except OverflowError:  # a TOML integer beyond a double
        number = math.inf
    if not math.isfinite(number):
        raise InputError(source, f"{entry}.{key}", f"{_show(value)} is not a finite number", f"write {key} as a number")
    if number < minimum or (strict and number == minimum):
        bound = ">" if strict else ">="
        raise InputError(source, f"{entry}.{key}", f"{number} is out of range", f"use a value {bound} {minimum}")
    if abs(number) > maximum:
        raise InputError(
            source,
            f"{entry}.{key}",
            f"{number:g} is beyond what the solvers can represent",
            f"use a value of magnitude <= {maximum:g} (docs/model.md, limits)",
        )
    return number


def _show(value: Any) -> str:
    """A value for a one-line message: repr, newlines escaped, long values cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _power(source: str, entry: str, table: dict[str, Any], key: str, **kw: Any) -> float:
    return _number(source, entry, table, key, maximum=MAX_POWER_KW, **kw)


def _name(source: str, entry: str, table: dict[str, Any]) -> str:
    name = table.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise InputError(source, f"{entry}.name", "missing or empty", 'add name = "..."')
    if not isinstance(name, str):
        raise InputError(source, f"{entry}.name", f"{_show(name)} is not a string", 'write name = "..." in quotes')
    check_name(source, f"{entry}.name", name)
    return name


def check_name(source: str, entry: str, name: str) -> None:
    """Reject a name outside the documented character set (see :data:`NAME_PATTERN`)."""
    if not NAME_PATTERN.fullmatch(name):
        bad = next((ch for ch in name if not re.fullmatch(r"[A-Za-z0-9_-]", ch)), None)
        what = f"contains {bad!r}" if bad is not None else "is longer than 64 characters"
        raise InputError(source, entry, f"{_show(name)} {what}", NAME_RULE)


def _region(source: str, i: int, table: dict[str, Any]) -> Region:
    entry = f"[[regions]] #{i + 1}"
    name = _name(source, entry, table)
    entry = f"region {name!r}"
    _unknown(source, entry, table, _REGION_KEYS)
    return Region(name=name, cs_max=_power(source, entry, table, "cs_max"))


def _group(source: str, i: int, table: dict[str, Any], region_names: set[str]) -> Group:
    name = _name(source, f"[[groups]] #{i + 1}", table)
    entry = f"group {name!r}"
    raw_type = table.get("type")
    if raw_type is None:
        raise InputError(source, f"{entry}.type", "missing", 'add type = "FDC", "ASC" or "V2G"')
    try:
        gtype = GroupType(raw_type) if isinstance(raw_type, str) else None
    except ValueError:
        gtype = None
    if gtype is None:
        raise InputError(
            source, f"{entry}.type", f"{_show(raw_type)} is not a charger type", 'use type = "FDC", "ASC" or "V2G"'
        )
    _unknown(source, entry, table, _COMMON | _REQUIRED[gtype] | _OPTIONAL[gtype])
    region = table.get("region")
    if region is None:
        raise InputError(source, f"{entry}.region", "missing", f"add region = one of {sorted(region_names)}")
    if not isinstance(region, str):
        raise InputError(
            source,
            f"{entry}.region",
            f"{_show(region)} is not a string",
            f'write region = "NAME" with one of {sorted(region_names)}',
        )
    if region not in region_names:
        raise InputError(
            source,
            f"{entry}.region",
            f"{_show(region)} is not a region of this problem",
            f"use one of {sorted(region_names)} or add a [[regions]] entry with that name",
        )

    def num(key: str, **kw: Any) -> float:
        return _number(source, entry, table, key, **kw)

    if gtype is GroupType.V2G:
        efficiency = num("efficiency", strict=True)
        if efficiency > 1:
            raise InputError(
                source,
                f"{entry}.efficiency",
                f"{efficiency} exceeds 1",
                "give the delivered fraction, 0 < efficiency <= 1",
            )
        p_max = _power(source, entry, table, "p_max")
        g, h = num("g", minimum=-math.inf), num("h", minimum=-math.inf)
        _cost_at_p_max(source, entry, abs(g) * p_max + abs(h), "g * p_max + h")
        return Group(name=name, type=gtype, region=region, p_max=p_max, g=g, h=h, efficiency=efficiency)
    p_max = _power(source, entry, table, "p_max")
    if gtype is GroupType.FDC:
        p_min = _power(source, entry, table, "p_min")
        min_ratio = None
    else:
        min_ratio = num("min_ratio")
        if min_ratio > 1:
            raise InputError(
                source, f"{entry}.min_ratio", f"{min_ratio} exceeds 1", "use a fraction of p_max between 0 and 1"
            )
        p_min = min_ratio * p_max
    if p_min > p_max:
        raise InputError(source, f"{entry}.p_min", f"p_min {p_min} > p_max {p_max}", "make p_min <= p_max")
    a = num("a", minimum=-math.inf)
    if a < 0:
        raise InputError(
            source,
            f"{entry}.a",
            f"{a} is negative (a concave cost)",
            "use a >= 0; the model assumes convex running costs",
        )
    h_max = _power(source, entry, table, "h_max", minimum=-math.inf) if "h_max" in table else None
    b, c = num("b", minimum=-math.inf), num("c", minimum=-math.inf)
    _cost_at_p_max(source, entry, a * p_max * p_max + abs(b) * p_max + abs(c), "a * p_max^2 + b * p_max + c")
    return Group(
        name=name, type=gtype, region=region, p_max=p_max, p_min=p_min, a=a, b=b, c=c, min_ratio=min_ratio, h_max=h_max
    )


def _cost_at_p_max(source: str, entry: str, size: float, formula: str) -> None:
    """Each coefficient can be representable while the cost at full output is not (a = 1e10 at
    p_max = 1e12 gives 1e34); a solver's objective then loses every digit that tells two
    dispatches apart, so the running cost itself is capped too."""
    if not size <= MAX_COST:
        raise InputError(
            source,
            f"{entry}",
            f"the running cost at p_max ({formula}, in size) is {size:.3g}",
            f"scale the costs or p_max so it is at most {MAX_COST:g} (docs/model.md, limits)",
        )
