"""The ``dispatchbench`` command line.

Commands stay thin: each parses options, calls the module that does the work, and prints.
Input mistakes exit with status 2 and one line (file, entry, fix), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import InputError, SolverNotFound
from .plugins import broken_plugins, discover, make_solver
from .problem_file import load_problem
from .scoring import Record, solve_and_score
from .state_file import load_states

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Benchmark MADRL against classical solvers on EV charging-station dispatch.")
console = Console()

ProblemOpt = Annotated[Path, typer.Option("--problem", "-p", help="Problem file (TOML).")]
StatesOpt = Annotated[Path, typer.Option("--states", "-s", help="State file (CSV).")]


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit: the only way the CLI reports bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def solve(
    problem: ProblemOpt,
    states: StatesOpt,
    solver: Annotated[str, typer.Option("--solver", help="Solver spec, e.g. scip or pso[particles=40].")] = "scip",
    seed: Annotated[int, typer.Option(help="Seed for stochastic solvers.")] = 0,
    time_limit: Annotated[Optional[float], typer.Option(help="Time limit per call, seconds.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per state, one per line.")] = False,
) -> None:
    """Solve every state of a state file with one solver; costs come from the evaluator."""
    prob = load_problem(problem)
    sts = load_states(states, prob)
    records = solve_and_score(prob, sts, make_solver(solver), seed=seed, time_limit=time_limit)
    if as_json:
        for rec in records:
            typer.echo(json.dumps(rec.to_json(prob)))
        return
    _print_records(prob, records)


def _print_records(prob, records: list[Record]) -> None:
    table = Table(title=f"{prob.name}: {records[0].solver if records else ''}")
    for col in ("state", "status", "cost", "max violation (kW)", "time (s)", "groups off", "note"):
        table.add_column(col, justify="right" if col in {"cost", "max violation (kW)", "time (s)"} else "left")
    for r in records:
        off = ", ".join(g for g, on in zip(prob.group_names, r.dispatch.on) if not on) if r.dispatch is not None else ""
        table.add_row(r.state, r.status, "" if r.cost is None else f"{r.cost:.4f}",
                      "" if r.max_violation is None else f"{r.max_violation:.2e}", f"{r.time_s:.3f}",
                      off if prob.commitment else "(commitment off)", r.reason)
    console.print(table)
    if len(records) == 1 and records[0].dispatch is not None:
        d = records[0].dispatch
        detail = Table(title="dispatch (kW; V2G: battery-side power)")
        for col in ("group", "region", "on", "power"):
            detail.add_column(col)
        for i, g in enumerate(prob.groups):
            detail.add_row(g.name, g.region, "on" if d.on[i] else "off", f"{d.power[i]:.4f}")
        for i, r in enumerate(prob.region_names):
            detail.add_row(f"import {r}", r, "", f"{d.imports[i]:.4f}")
        console.print(detail)


@app.command()
def solvers() -> None:
    """List solver plugins, their capabilities and default parameters."""
    table = Table(title="solver plugins")
    for col in ("name", "exact", "stochastic", "learns", "commitment", "parameters", "description"):
        table.add_column(col)
    yes = lambda flag: "yes" if flag else "no"  # noqa: E731
    for name, cls in sorted(discover().items()):
        caps = cls.capabilities
        params = ", ".join(f"{k}={v}" for k, v in cls.parameters.items())
        table.add_row(name, yes(caps.exact), yes(caps.stochastic), yes(caps.learns), yes(caps.handles_commitment),
                      params, cls.description)
    console.print(table)
    for b in broken_plugins():
        typer.echo(f"warning: plugin {b.origin} failed to load: {b.error}", err=True)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A problem file (.toml) or a state file (.csv, needs --problem).")],
    problem: Annotated[Optional[Path], typer.Option("--problem", "-p", help="Problem the state file is for.")] = None,
) -> None:
    """Check a problem or state file and say what is wrong with it, or that it is fine."""
    if file.suffix.lower() == ".csv":
        if problem is None:
            fail(f"{file}: a state file is checked against a problem — fix: add --problem FILE.toml")
        prob = load_problem(problem)
        sts = load_states(file, prob)
        from .feasibility import infeasibility_reason

        bad = [(s.label, why) for s in sts if (why := infeasibility_reason(prob, s))]
        typer.echo(f"{file}: {len(sts)} states for problem {prob.name!r}, {len(sts) - len(bad)} feasible")
        for label, why in bad:
            typer.echo(f"  state {label}: infeasible: {why}")
        return
    prob = load_problem(file)
    kinds = ", ".join(f"{sum(g.type.value == t for g in prob.groups)} {t}" for t in ("FDC", "ASC", "V2G"))
    typer.echo(f"{file}: problem {prob.name!r} is valid: {len(prob.regions)} regions, {len(prob.groups)} groups "
               f"({kinds}), commitment {'on' if prob.commitment else 'off'}")


def main() -> None:
    """Entry point: run the app, turning input errors into one line and exit status 2."""
    try:
        app()
    except (InputError, SolverNotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
