"""Problem and State objects written as the files the harness reads, exactly.

The Python API takes problems and states built in memory (``db.load_problem``, a generated
day, a hand-made ``State``). A run records the file and the SHA-256 of every input, and a cell
carries its inputs by content, so objects become files first: TOML and CSV with every number
written in full (``repr`` round-trips a float exactly), checked by reading them back with the
project's own loaders — a value the file formats cannot hold exactly is refused, never rounded.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path

from dispatchbench.bench.job_payload import Blob
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import GroupType, Problem, State
from dispatchbench.model.problem_file import parse_problem
from dispatchbench.model.state_file import expected_columns


def _value(value: object) -> str:
    """A TOML value: booleans, exact floats and (JSON-escaped, hence valid TOML) strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | int):
        return repr(float(value))
    return json.dumps(str(value))


def problem_toml(problem: Problem) -> str:
    """The problem file of ``problem`` (ASC groups by their ``min_ratio``, as the format has it)."""
    lines = ["[problem]", f"name = {_value(problem.name)}", f"commitment = {_value(problem.commitment)}", ""]
    for region in problem.regions:
        lines += ["[[regions]]", f"name = {_value(region.name)}", f"cs_max = {_value(region.cs_max)}", ""]
    for g in problem.groups:
        fields: list[tuple[str, object]] = [("name", g.name), ("type", g.type.value), ("region", g.region)]
        if g.type is GroupType.V2G:
            fields += [("g", g.g), ("h", g.h), ("efficiency", g.efficiency), ("p_max", g.p_max)]
        else:
            fields += [("a", g.a), ("b", g.b), ("c", g.c)]
            fields += [("p_min", g.p_min)] if g.type is GroupType.FDC else [("min_ratio", g.min_ratio)]
            fields += [("p_max", g.p_max)]
            if g.h_max is not None:
                fields.append(("h_max", g.h_max))
        lines += ["[[groups]]", *(f"{k} = {_value(v)}" for k, v in fields), ""]
    return "\n".join(lines)


def states_csv(problem: Problem, states: Sequence[State]) -> str:
    """The state file of ``states`` for ``problem``, every number exact."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(expected_columns(problem))
    for s in states:
        writer.writerow(
            [s.label]
            + [repr(float(s.demand[r])) for r in problem.region_names]
            + [repr(float(s.v2g_available[g])) for g in problem.v2g_names]
        )
    return out.getvalue()


def problem_blob(problem: Problem, where: str = "problem") -> Blob:
    """``problem`` as a problem file's bytes, named ``<name>.toml``; refused if it does not read
    back as the same problem."""
    text = problem_toml(problem)
    try:
        again = parse_problem(tomllib.loads(text), source=where)
    except (InputError, tomllib.TOMLDecodeError, TypeError) as exc:
        raise InputError(
            where, "Problem object", f"is not a valid problem ({exc})", "build it with db.load_problem"
        ) from None
    if dataclasses.replace(again, source=problem.source) != problem:
        raise InputError(
            where, "Problem object", "does not survive being written as a problem file", "load it from a file instead"
        )
    return Blob.of_bytes(f"{problem.name}.toml", text.encode())


def states_blob(problem: Problem, states: Sequence[State], name: str = "states.csv", where: str = "states") -> Blob:
    """``states`` as a state file's bytes; refused (one line) if they do not read back the same."""
    import pandas as pd

    from dispatchbench.model.state_file import states_from_frame

    missing = [s.label for s in states if set(s.demand) != set(problem.region_names)]
    missing += [s.label for s in states if set(s.v2g_available) != set(problem.v2g_names)]
    if missing:
        raise InputError(
            where,
            f"State {missing[0]!r}",
            f"does not give the demand of every region and the availability of every V2G group of {problem.name!r}",
            "build states with db.load_states for this problem",
        )
    text = states_csv(problem, states)
    rows = list(csv.reader(io.StringIO(text)))
    again = states_from_frame(pd.DataFrame(rows[1:], columns=rows[0], dtype=str), problem, source=where)
    if again != list(states):
        raise InputError(
            where, "State objects", "do not survive being written as a state file", "load them from a file"
        )
    return Blob.of_bytes(name, text.encode())


def write_blob(blob: Blob, folder: Path) -> Path:
    """Write ``blob`` into ``folder`` under ``<stem>-<sha256[:12]><suffix>`` (the same content
    always gets the same file; nothing else is overwritten) and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(blob.name)
    path = folder / f"{name.stem}-{blob.sha256[:12]}{name.suffix}"
    if not (path.is_file() and path.read_bytes() == blob.data):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(blob.data)
        tmp.replace(path)
    return path
