"""The ``dispatchbench`` command line.

Commands stay thin: each parses options, calls the module that does the work, and prints.
Input mistakes exit with status 2 and one line (file, entry, fix), never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dispatchbench import __version__
from dispatchbench.bench.plugins import BrokenPlugin, make_solver
from dispatchbench.bench.scoring import Record
from dispatchbench.contract.learner import Learner
from dispatchbench.contract.limits import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, MAX_TRAIN_STEPS, SEED_MAX, STARTUP_LIMIT_S
from dispatchbench.model.bundled import find_input
from dispatchbench.model.errors import InputError, SolverNotFound, one_line
from dispatchbench.model.paths import exists, output_file
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Benchmark MADRL against classical solvers on EV charging-station dispatch.",
)
console = Console()

ProblemOpt = Annotated[Path, typer.Option("--problem", "-p", help="Problem file (TOML).")]
StatesOpt = Annotated[Path, typer.Option("--states", "-s", help="State file (CSV).")]
TracebackOpt = Annotated[
    bool, typer.Option("--traceback", help="Print a plugin's full traceback (stderr) for each row it raised on.")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr and a non-zero exit: the only way the CLI reports bad input."""
    typer.echo(f"error: {one_line(message)}", err=True)  # a spec or path may carry a newline
    raise typer.Exit(code)


def warn_discovery() -> None:
    """What plugin discovery skipped or hid (a missing solver-path folder, a plugin shadowed by an
    earlier one of its name), one warning line each on stderr; nothing is imported for it."""
    from dispatchbench.bench.plugins import discovery_warnings

    for line in discovery_warnings():
        typer.echo(f"warning: {one_line(line)}", err=True)


def input_file(path: Path) -> Path:
    """The problem or state file as given when it exists (messages then name it as the user wrote
    it), else the bundled file of that name (``paper-4region.toml``, ``problems/paper-4region.toml``),
    so the README's commands work from any folder, not only from a checkout."""
    return path if exists(path) else find_input(path)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dispatchbench {__version__} (Python {platform.python_version()}, {platform.platform()})")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Benchmark MADRL against classical solvers on EV charging-station dispatch."""


@app.command()
def solve(
    problem: ProblemOpt,
    states: StatesOpt,
    solver: Annotated[
        str | None, typer.Option("--solver", help="Solver spec (required), e.g. scip or pso[particles=40].")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed for stochastic solvers (0..2**32-1).")] = 0,
    time_limit: Annotated[
        float | None,
        typer.Option(help="Hard limit per state, seconds, as run's --timeout (default: none, the solver's own)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per state, one per line.")] = False,
    startup_timeout: Annotated[
        float, typer.Option(help="Limit on the plugin's import and set-up, seconds.")
    ] = STARTUP_LIMIT_S,
    show_traceback: TracebackOpt = False,
) -> None:
    """Solve every state of a state file with one solver; costs come from the evaluator.

    The solver runs in a child process (its import under --startup-timeout, its prints on
    stderr); with --time-limit S it is killed at S seconds on a state, which becomes timeout."""
    for option, value in (("--time-limit", time_limit), ("--startup-timeout", startup_timeout)):
        if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
            fail(f"{option} {value:g}: not a number of seconds in (0, {MAX_TIMEOUT_S:g}] — fix: give e.g. {option} 60")
    from dispatchbench.bench.job_payload import Blob
    from dispatchbench.bench.solve_in_child import solve_in_child

    problem_path, states_path = input_file(problem), input_file(states)
    prob = load_problem(problem_path)
    sts = load_states(states_path, prob)
    if solver is None:  # no default: the package names no plugin (tests/test_contract_names.py)
        fail("--solver: missing — fix: give --solver, e.g. --solver scip (dispatchbench solvers lists them)")
    warn_discovery()
    try:
        solved = solve_in_child(
            prob,
            Blob.of_file(problem_path),
            sts,
            Blob.of_file(states_path),
            solver,
            seed=seed,
            time_limit=time_limit,
            startup_timeout=startup_timeout,
        )
    except SolverNotFound as exc:  # a message that carries its own fix (a model folder's) keeps it
        fail(
            f"--solver {solver}: {exc}"
            + ("" if " — fix: " in str(exc) else " — fix: run 'dispatchbench solvers' to see names and parameters")
        )
    if solved.skipped and solved.solver["capabilities"].get("learns"):  # no model for this problem: refuse
        fail(f"--solver {solver}: {solved.skipped}")
    records = solved.records
    if as_json:
        for rec in records:
            typer.echo(json.dumps(rec.to_json(prob)))
    else:
        _print_records(prob, records)
    _plugin_failures(
        [(solver, records[0].reason)] if _every_row_error([(r.status, r.reason) for r in records]) else [],
        [(r.solver, r.state, r.info.get("traceback")) for r in records],
        show_traceback,
    )


def _every_row_error(rows: list[tuple[str, str]]) -> bool:
    """Every row ``error`` (a plugin that declined the problem, ``skipped: ...``, is no failure)."""
    return bool(rows) and all(s == "error" and not str(why).startswith("skipped: ") for s, why in rows)


def _plugin_failures(failed: list[tuple[str, str]], traces: list[tuple[str, str, Any]], show_traceback: bool) -> None:
    """With ``--traceback``, each plugin traceback on stderr; then exit 1 when every row of a
    solver is ``error`` — a script or CI job must not read a plugin that never answered as success."""
    if show_traceback:
        for spec, state, trace in traces:
            if isinstance(trace, str):
                typer.echo(f"--- traceback of {spec} on state {state!r}:\n{trace.rstrip()}", err=True)
    if failed:
        spec, reason = failed[0]
        others = f" (and {len(failed) - 1} other solver(s))" if len(failed) > 1 else ""
        fail(
            f"every row of {spec}{others} is error, the first: {reason}"
            + ("" if " — fix: " in reason else " — fix: correct the plugin as that says")
            + ("" if show_traceback else " (--traceback prints its traceback)"),
            code=1,
        )


def _print_records(prob, records: list[Record]) -> None:
    """One row per state, then each state's note (why infeasible, why stopped) on its own line.

    Cells are plain ``Text``, not Rich markup: a solver spec such as ``scip[persistent=False]``
    or a state label in brackets would otherwise be swallowed as a style tag. Notes go below the
    table so that a narrow terminal folds them instead of cutting them off with "…".
    """
    table = Table(title=Text(f"{prob.name}: {records[0].solver if records else ''}"))
    numeric = {"cost", "max violation (kW)", "time (s)"}
    for col in ("state", "status", "cost", "max violation (kW)", "time (s)", "groups off"):
        table.add_column(
            col, justify="right" if col in numeric else "left", overflow="fold", no_wrap=col != "groups off"
        )
    for r in records:
        off = ", ".join(g for g, on in zip(prob.group_names, r.dispatch.on) if not on) if r.dispatch is not None else ""
        table.add_row(
            *map(
                Text,
                (
                    r.state,
                    r.status,
                    "" if r.cost is None else f"{r.cost:.4f}",
                    "" if r.max_violation is None else f"{r.max_violation:.2e}",
                    f"{r.time_s:.3f}",
                    off if prob.commitment else "(commitment off)",
                ),
            )
        )
    console.print(table)
    for r in records:
        if r.reason:
            console.print(Text(f"{r.state}: {r.reason}"))
    if len(records) == 1 and records[0].dispatch is not None:
        d = records[0].dispatch
        detail = Table(title="dispatch (kW; V2G: battery-side power)")
        for col in ("group", "region", "on", "power"):
            detail.add_column(col)
        for i, g in enumerate(prob.groups):
            detail.add_row(*map(Text, (g.name, g.region, "on" if d.on[i] else "off", f"{d.power[i]:.4f}")))
        for i, r in enumerate(prob.region_names):
            detail.add_row(*map(Text, (f"import {r}", r, "", f"{d.imports[i]:.4f}")))
        console.print(detail)


@app.command()
def solvers(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON document: solvers (parameters, ranges, choices, "
            "capabilities, origin) and plugins that failed to load.",
        ),
    ] = False,
    startup_timeout: Annotated[
        float, typer.Option(help="Limit on each plugin's import, seconds (each imports in its own process).")
    ] = STARTUP_LIMIT_S,
) -> None:
    """List solver plugins, their capabilities and default parameters (exit 1 when there is none).

    Each plugin is imported in a process of its own under --startup-timeout: one that fails,
    exits or hangs at import is listed as broken with the reason, and prints nothing on stdout."""
    if not (math.isfinite(startup_timeout) and 0 < startup_timeout <= MAX_TIMEOUT_S):
        fail(
            f"--startup-timeout {startup_timeout:g}: not a number of seconds in (0, {MAX_TIMEOUT_S:g}] "
            "— fix: give e.g. --startup-timeout 60"
        )
    from dispatchbench.bench.plugin_catalogue import plugin_catalogue

    catalogue = plugin_catalogue(startup_timeout)
    for line in catalogue.warnings():  # on stderr in both forms: --json keeps stdout for the JSON
        typer.echo(f"warning: {one_line(line)}", err=True)
    if as_json:
        broken = [{"origin": b.origin, "error": b.error} for b in catalogue.broken]
        document = {"dispatchbench_version": __version__, "solvers": catalogue.solvers, "broken": broken}
        document["shadowed"] = [asdict(s) for s in catalogue.shadowed]
        document["solver_path_problems"] = catalogue.path_problems
        typer.echo(json.dumps(document, indent=2, default=str))
        if not catalogue.solvers:
            fail(_why_no_solvers(catalogue.broken), code=1)
        return
    if not catalogue.solvers:
        fail(_why_no_solvers(catalogue.broken), code=1)
    table = Table(title="solver plugins (capabilities: the flags a plugin sets)")
    for col in ("name", "capabilities", "parameters", "description"):
        # parameters one per line and never cut with "…": a half-shown default is useless
        table.add_column(col, overflow="fold", no_wrap=col in {"name", "parameters"}, min_width=12)
    for entry in catalogue.solvers:
        caps = entry["capabilities"]
        flags = [
            flag
            for flag, key in (
                ("exact", "exact"),
                ("stochastic", "stochastic"),
                ("learns", "learns"),
                ("commitment", "handles_commitment"),
                ("reads costs", "reads_costs"),
            )
            if caps.get(key)
        ]
        params = "\n".join(f"{k}={v}" for k, v in entry["parameters"].items())
        table.add_row(*map(Text, (entry["name"], "\n".join(flags) or "-", params, str(entry["description"]))))
    console.print(table)
    for b in catalogue.broken:
        typer.echo(f"warning: plugin {b.origin} failed to load: {one_line(b.error)}", err=True)


def _why_no_solvers(broken: list[BrokenPlugin]) -> str:
    """Why discovery found nothing, place by place: an empty table with exit 0 hid a broken install."""
    from dispatchbench.bench import plugins

    bundled = plugins.bundled_dir()
    places = [
        f"the bundled plugins ({plugins.BUNDLED_PACKAGE}) are not installed"
        if bundled is None
        else f"the bundled folder {bundled} holds no plugin"
    ]
    path = os.environ.get(plugins.SOLVER_PATH_ENV, "")
    places.append(
        f"${plugins.SOLVER_PATH_ENV} is not set" if not path else f"${plugins.SOLVER_PATH_ENV}={path} holds no plugin"
    )
    registered = list(plugins.entry_points(group=plugins.ENTRY_POINT_GROUP))
    places.append(
        f"no installed package registers the entry-point group '{plugins.ENTRY_POINT_GROUP}'"
        if not registered
        else f"{len(registered)} entry point(s) of '{plugins.ENTRY_POINT_GROUP}' gave none"
    )
    if broken:
        places.append(f"{len(broken)} plugin(s) failed to load, first {broken[0].origin}: {broken[0].error}")
    return one_line(
        "no solver plugins found: " + "; ".join(places) + " — fix: reinstall dispatchbench with its "
        f"bundled plugins (pip install 'dispatchbench[all]') or put a plugin folder on "
        f"${plugins.SOLVER_PATH_ENV}"
    )


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A problem file (.toml) or a state file (.csv, needs --problem).")],
    problem: Annotated[Path | None, typer.Option("--problem", "-p", help="Problem the state file is for.")] = None,
) -> None:
    """Check a problem or state file and say what is wrong with it, or that it is fine."""
    if file.suffix.lower() == ".csv":
        if problem is None:
            fail(f"{file}: a state file is checked against a problem — fix: add --problem FILE.toml")
        prob = load_problem(input_file(problem))
        sts = load_states(input_file(file), prob)
        from dispatchbench.model.feasibility import infeasibility_reason

        bad = [(s.label, why) for s in sts if (why := infeasibility_reason(prob, s))]
        typer.echo(f"{file}: {len(sts)} states for problem {prob.name!r}, {len(sts) - len(bad)} feasible")
        for label, why in bad:
            typer.echo(f"  state {label}: infeasible: {why}")
        return
    prob = load_problem(input_file(file))
    kinds = ", ".join(f"{sum(g.type.value == t for g in prob.groups)} {t}" for t in ("FDC", "ASC", "V2G"))
    typer.echo(
        f"{file}: problem {prob.name!r} is valid: {len(prob.regions)} regions, {len(prob.groups)} groups "
        f"({kinds}), commitment {'on' if prob.commitment else 'off'}"
    )


@app.command()
def run(
    problem: ProblemOpt,
    states: Annotated[list[Path], typer.Option("--states", "-s", help="State file (CSV); repeat for several.")],
    solvers: Annotated[str, typer.Option("--solvers", help='Solver specs, e.g. "scip,nlopt[algorithm=LD_SLSQP],pso".')],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (rows.jsonl, results.parquet).")],
    seeds: Annotated[str, typer.Option(help='Seeds for stochastic solvers: "0-4" or "0,2,5".')] = "0",
    timeout: Annotated[float, typer.Option(help="Hard wall-clock limit per state, seconds.")] = DEFAULT_TIMEOUT_S,
    resume: Annotated[bool, typer.Option("--resume", help="Skip (solver, seed, state) already in --out.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the results already in --out.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells run at once (local processes or Dask workers).")] = 1,
    executor: Annotated[str, typer.Option(help="Where cells run: local or dask (docs/running.md).")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster of --jobs workers).")
    ] = None,
    startup_timeout: Annotated[
        float, typer.Option(help="Limit on a plugin's import and set-up per cell, seconds.")
    ] = STARTUP_LIMIT_S,
    split: Annotated[
        str | None,
        typer.Option(
            help="Where every --states file's states come from: training, validation, test, reported or none "
            "(default: each file's .provenance.json from `generate states`, else not stated)."
        ),
    ] = None,
    replicate: Annotated[
        int | None, typer.Option(help="With --split training/validation/test: the replicate (seed offset).")
    ] = None,
    show_traceback: TracebackOpt = False,
) -> None:
    """Run solvers x seeds x states, each cell in its own process under a hard time limit.

    Exits 1 when every row a solver got in this run is error (a plugin that never answered)."""
    from dispatchbench.bench.harness import parse_seeds, run_benchmark

    warn_discovery()
    summary = run_benchmark(
        input_file(problem),
        [input_file(s) for s in states],
        solvers,
        parse_seeds(seeds),
        out,
        timeout=timeout,
        resume=resume,
        force=force,
        progress=progress,
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        startup_timeout=startup_timeout,
        provenance=_run_provenance(split, replicate),
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing new"
    typer.echo(
        f"{summary.rows_written} rows written ({counts}), {summary.rows_skipped} already done; "
        f"results: {summary.out_dir / 'results.parquet'}"
    )
    if summary.interrupted:
        typer.echo("interrupted: every finished row is kept; continue with the same command and --resume", err=True)
        raise typer.Exit(130)
    _plugin_failures(summary.all_error(), summary.tracebacks, show_traceback)


def _run_provenance(split: str | None, replicate: int | None):
    """``--split/--replicate`` as one provenance for every states file, checked; None: not given."""
    from dispatchbench.instances.provenance import SPLIT_NAMES, Provenance

    if split is None:
        if replicate is not None:
            fail(f"--replicate {replicate}: needs --split — fix: add e.g. --split test")
        return None
    try:
        return Provenance(split, replicate)
    except ValueError as exc:
        fail(
            f"--split {split} --replicate {replicate}: {exc} — fix: a split of {', '.join(SPLIT_NAMES)}, "
            "and a replicate only for training/validation/test"
        )


@app.command()
def table(
    dirs: Annotated[list[Path], typer.Argument(help="Output directories of `dispatchbench run` (one or more).")],
    baseline: Annotated[str, typer.Option(help="Method the improvement column is relative to (spec or name).")],
    state: Annotated[str | None, typer.Option(help="State of Table IV (default: tableIV if present).")] = None,
    day: Annotated[str | None, typer.Option(help="State file of Table V, if the runs hold several.")] = None,
    solvers: Annotated[str | None, typer.Option(help='Only these specs or solver names, e.g. "scip,pso".')] = None,
    problem: Annotated[str | None, typer.Option("--problem", help="Problem name, if the runs hold several.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the tables (default DIR/tables).")] = None,
) -> None:
    """Print and write Table IV (cost at one state) and Table V (average cost per hour over a day)."""
    from dispatchbench.report.tables import make_tables

    target = out if out is not None else dirs[0] / "tables"
    if target.is_symlink():  # the tables would be written wherever the link points
        fail(f"--out {target}: is a symbolic link — fix: give a real folder for the tables (links are not followed)")
    if target.exists() and not target.is_dir():
        fail(f"--out {target}: is a file, not a folder — fix: give a folder for the tables (it is created if missing)")
    written = make_tables(dirs, baseline, state=state, day=day, solvers=solvers, problem=problem, out_dir=out)
    typer.echo(written.text)
    for note in written.notes:  # a stored cost the evaluator disagrees with comes as "WARNING: ..."
        typer.echo(note if note.startswith("WARNING") else f"note: {note}", err=True)
    typer.echo("written: " + ", ".join(str(f) for f in written.files), err=True)


@app.command()
def train(
    solver: Annotated[str, typer.Option("--solver", help="Learning solver spec, e.g. madrl_tvc or maddpg.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model, checkpoints and training logs.")],
    problem: Annotated[
        Path | None, typer.Option("--problem", "-p", help="Problem file (TOML): a model for this instance.")
    ] = None,
    generated: Annotated[
        str | None,
        typer.Option(
            "--generated",
            help="Instead of -p: one model for any size, trained on generated instances of these sizes "
            "(regions, e.g. 4,8,16,32; training generator seeds).",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Total training steps (with --resume: continue up to this many). Default: the solver's documented "
            "budget, the one the tables report (default_train_steps in `dispatchbench solvers --json`), capped by "
            "its default wall time (default_train_seconds)."
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Wall-time budget (15m, 900s, 1h): training stops before it and records the steps done "
            "(--steps N with that number reproduces the model).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the training run (0..2**32-1).")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train a learning solver on sampled states (never the evaluation states); then solve with the spec
    NAME\\[model=OUT]."""
    import inspect

    from dispatchbench.contract.training import TrainingBudget, TrainingSet, parse_duration

    if (problem is None) == (generated is None):
        fail("train: give either --problem FILE (a model for that instance) or --generated SIZES (any size)")
    prob = load_problem(input_file(problem)) if problem is not None else None
    _probe_plugin(solver)  # its import first in a child, under the start-up limit
    with contextlib.redirect_stdout(sys.stderr):  # a plugin's prints must not mix with the command's output
        learner = make_solver(solver)
    if not isinstance(learner, Learner):
        from dispatchbench.bench.plugin_catalogue import plugin_catalogue

        learners = sorted(s["name"] for s in plugin_catalogue().solvers if s["capabilities"].get("learns"))
        fail(
            f"--solver {solver}: {learner.name!r} does not learn — fix: choose a learning solver "
            f"({', '.join(learners) or 'none installed'})"
        )
    try:
        training_set = TrainingSet.parse(generated) if generated is not None else None
        seconds = parse_duration(budget) if budget is not None else None
    except ValueError as exc:
        fail(str(exc))
    if training_set is not None and not learner.any_size:
        fail(f"--generated: {learner.name} trains one model per instance — fix: give --problem FILE")
    if steps is None and seconds is None:  # the documented default budget of the method
        steps = learner.default_train_steps if training_set is None else None
        seconds = learner.default_train_seconds
        if steps is None and seconds is None:
            fail(f"--generated: {learner.name} has no default wall time — fix: give --budget (e.g. 15m) or --steps")
    if steps is not None and not 1 <= steps <= MAX_TRAIN_STEPS:  # 10**20: a typo, not a budget
        fail(f"--steps {steps}: not in 1..{MAX_TRAIN_STEPS} — fix: give the number of training steps")
    if (seconds is not None or training_set is not None) and "budget" not in inspect.signature(learner.fit).parameters:
        fail(f"--budget: {learner.name} does not take a wall-time budget — fix: give --steps N")
    from dispatchbench.learn.checkpoints import CHECKPOINT_FILE

    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file, not a folder — fix: give a new or existing folder for the model")
    if resume and not (out / CHECKPOINT_FILE).exists():
        fail(f"{out}: no {CHECKPOINT_FILE} to resume from — fix: drop --resume or point --out at a training run")
    options: dict[str, Any] = {}
    if seconds is not None or training_set is not None:
        options["budget"] = TrainingBudget(steps=steps, seconds=seconds)
    if training_set is not None:
        options["training_set"] = training_set
    with contextlib.redirect_stdout(sys.stderr):
        report = learner.fit(prob, seed=seed, steps=steps, out_dir=out, resume=resume, progress=progress, **options)
    stopped, pieces = report.info.get("stopped_by"), report.info.get("pieces")
    typer.echo(
        f"trained {learner.name} for {report.steps} steps in {report.time_s:.1f} s"
        + (f" (stopped by the {'wall-time budget' if stopped == 'time' else 'step budget'})" if stopped else "")
        + (
            f" on {pieces['count']} pieces of the problem ({'/'.join(map(str, pieces['sizes']))} of its regions)"
            if pieces
            else ""
        )
        + f"; model: {report.model_path} "
        f'(use --solver "{learner.name}[model={report.model_path}]")'
    )


def _probe_plugin(spec: str) -> None:
    """Build ``spec`` once in a child process under the start-up limit before this process
    imports the plugin: a plugin that hangs, exits or fails at import is one line (exit 2) here
    instead of a hung or silently ended command."""
    from dispatchbench.bench.cell_runner import probe_specs
    from dispatchbench.bench.plugins import no_solver_named, parse_spec, plugin_origins

    name, _ = parse_spec(spec)
    origins = plugin_origins()
    if name not in origins:
        fail(f"--solver {spec}: {no_solver_named(name, origins)}")
    entry = probe_specs({origins[name]: [spec]}, STARTUP_LIMIT_S)[spec]
    if "error" in entry or "timeout" in entry:
        why = str(entry.get("error") or entry.get("timeout"))
        fail(f"--solver {spec}: {why}" + ("" if " — fix: " in why else " — fix: run 'dispatchbench solvers'"))


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="Output directory of `dispatchbench run` (or `reproduce`).")],
    name: Annotated[str | None, typer.Option(help="Report folder under --reports (default: DIR's name).")] = None,
    method: Annotated[
        str | None,
        typer.Option(help="Method whose dispatches Figs. 6-8 show (default: best learned by day-average cost)."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Method the improvement column is relative to (default: the certified optimum's)."),
    ] = None,
    state: Annotated[str, typer.Option(help="State label of Table IV.")] = "tableIV",
    reports: Annotated[Path, typer.Option("--reports", help="Folder the report folder is created in.")] = Path(
        "reports"
    ),
) -> None:
    """Turn a results directory into reports/<name>/report.html (self-contained) and report.md + PNGs."""
    from dispatchbench.report.html_report import build_report

    if reports.is_symlink():  # the report would be written wherever the link points
        fail(f"--reports {reports}: is a symbolic link — fix: give a real folder (links are not followed)")
    files = build_report(results, out_root=reports, name=name, method=method, baseline=baseline, state=state)
    for note in files.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"report: {files.html} and {files.markdown} ({len(files.figures)} figures"
        + (f"; dispatch figures from {files.dispatch_method}" if files.dispatch_method else "")
        + ")"
    )


def _bundled_studies() -> str:
    from dispatchbench.report.study_file import bundled_studies

    return ", ".join(bundled_studies()) or "none installed"


@app.command()
def reproduce(
    target: Annotated[
        str,
        typer.Argument(
            help=f"A bundled study ({_bundled_studies()}) or your own study file (.toml; see the README, "
            "'Studies'). paper: the paper's comparison; scaling: every method from 4 to 512 regions.",
        ),
    ],
    quick: Annotated[bool, typer.Option("--quick", help="Smoke run: the study's \\[quick] overrides.")] = False,
    print_file: Annotated[
        bool, typer.Option("--print", help="Print the study file (to copy and edit) and exit; nothing runs.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Results directory (default runs/<study name>[-quick]).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Report folder under --reports (default: the study's report name[-quick]).")
    ] = None,
    reports: Annotated[Path, typer.Option("--reports", help="Folder the report folder is created in.")] = Path(
        "reports"
    ),
    cache: Annotated[
        Path | None, typer.Option(help="Trained-model cache (default ~/.cache/dispatchbench/models).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            "--workers",
            help="Trainings and cells at once (default: the study's \\[run], else 2 cores).",
        ),
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="Where cells and trainings run: local or dask (default: the study's \\[run]).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster of --jobs workers).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep shoot-out rows already in --out.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Run a study file: train the learned methods (cached), run every method, write the report.

    A study of kind ``paper`` runs one problem's reported cases and the protocol's test states
    (Tables IV and V); kind ``scaling`` runs every method on instances of several sizes, generated
    or your own, and writes the scaling table and plots."""
    from dispatchbench.report.study_file import QUICK_SUFFIX, find_study, load_study

    if print_file:
        typer.echo(find_study(target).read_text(encoding="utf-8"), nl=False)
        return
    study = load_study(target, quick=quick)
    out = out or Path("runs") / (study.name + (QUICK_SUFFIX if study.quick else ""))
    report_name = name or study.report_name
    options: dict[str, Any] = dict(
        cache_root=cache,
        workers=workers,
        report_root=reports,
        report_name=report_name,
        resume=resume,
        progress=progress,
        executor=executor,
        scheduler=scheduler,
    )
    if study.kind == "scaling":
        from dispatchbench.report.scaling import reproduce_scaling

        result = reproduce_scaling(out, study, **options)
        times = ", ".join(f"{k} {v:.0f} s" for k, v in result.wall_s.items())
        typer.echo(f"{study.name} study in {result.out_dir}; wall time: {times}")
        for f in result.failures:
            where = f" ({f['regions']} regions)" if f.get("regions") else ""
            typer.echo(f"failed: {f['method']} at {f.get('stage', 'run')}{where}: {f['reason']}", err=True)
        typer.echo(f"report: {reports / report_name}/report.html")
        return
    from dispatchbench.report.reproduce import reproduce as run_reproduce

    outcome = run_reproduce(study, out, **options)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.wall_s.items())
    cached = sum(m["cached"] for m in outcome.models)
    typer.echo(
        f"{outcome.rows} result rows in {outcome.out_dir}; {len(outcome.models)} models "
        f"({cached} from the cache); wall time: {times}"
    )
    for f in outcome.failures:
        typer.echo(f"failed: {f['method']} at {f['stage']}: {f['reason']}", err=True)
    typer.echo(f"report: {outcome.report}")


generate_app = typer.Typer(no_args_is_help=True, help="Generate problem files and days of states (docs/generator.md).")
app.add_typer(generate_app, name="generate")


def _out_file(out: Path) -> None:
    """Refuse an --out that cannot become a regular file (a folder, a FIFO, a device such as
    /dev/null, a missing folder, an overlong path), before any work."""
    output_file(out, "--out")


@generate_app.command("problem")
def generate_problem_cmd(
    regions: Annotated[int, typer.Option(help="Number of regions (1 to 512).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Problem file to write (TOML).")],
    seed: Annotated[int, typer.Option(help="Seed: same arguments, byte-identical file.")] = 0,
    commitment: Annotated[
        bool, typer.Option("--commitment/--no-commitment", help="On/off decisions (MIQP) or all on (QP).")
    ] = True,
) -> None:
    """Write a generated problem: regions of four kinds built from the paper's perturbed groups."""
    from dispatchbench.instances.generate_problem import check_arguments, write_problem

    try:
        check_arguments(regions, seed)
    except ValueError as exc:
        fail(str(exc))
    _out_file(out)
    prob = write_problem(out, regions, seed, commitment)
    typer.echo(
        f"{out}: problem {prob.name!r}, {len(prob.regions)} regions, {len(prob.groups)} groups, "
        f"commitment {'on' if prob.commitment else 'off'}"
    )


@generate_app.command("states")
def generate_states_cmd(
    problem: Annotated[Path | None, typer.Option("--problem", "-p", help="Problem file (TOML).")] = None,
    family: Annotated[str | None, typer.Option(help="Family of days, or random (see --list).")] = None,
    days: Annotated[int, typer.Option(help="Days of 96 intervals to write.")] = 1,
    count: Annotated[int | None, typer.Option(help="With --family random: how many states.")] = None,
    seed: Annotated[
        int, typer.Option(help="Seed (docs/protocol.md: 0-999 training, 1000-1999 validation, 2000-2999 test).")
    ] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="State file to write (CSV).")] = None,
    list_families: Annotated[bool, typer.Option("--list", help="Print the families, one per line, and exit.")] = False,
) -> None:
    """Write generated days (labels <family>_d<k>_t<NN>) or random states; every state passes the pre-check."""
    from dispatchbench.instances.state_families import (
        FAMILIES,
        RANDOM,
        family_lines,
        generate_days,
        generate_random,
        write_states,
    )

    if list_families:
        for line in family_lines():
            typer.echo(line)
        return
    if problem is None or family is None or out is None:
        fail("generate states: --problem, --family and --out are required — fix: add them, or use --list")
    if family != RANDOM and family not in FAMILIES:
        fail(f"--family {family}: unknown — fix: use one of {', '.join([*FAMILIES, RANDOM])} (see --list)")
    if family == RANDOM and count is None:
        fail("--family random: needs --count K — fix: add e.g. --count 100")
    if family != RANDOM and count is not None:
        fail(f"--count: only for --family random — fix: drop it, or use --days for family {family}")
    if seed < 0:
        fail(f"--seed {seed}: negative — fix: give a seed >= 0")
    _out_file(out)
    prob = load_problem(input_file(problem))
    try:
        made = generate_random(prob, count, seed) if count is not None else generate_days(prob, family, days, seed)
    except ValueError as exc:
        fail(str(exc))
    from dispatchbench.instances.provenance import Provenance, write_sidecar

    write_states(out, prob, made.states)
    sidecar = write_sidecar(out, seed)  # `run` reads it: every row then says which split drew the states
    typer.echo(
        f"{out}: {len(made.states)} states ({family}, seed {seed}: {Provenance.of_seed(seed).describe()}) "
        f"for problem {prob.name!r}; repaired to be feasible: {made.clipped} clipped, {made.scaled} scaled; "
        f"provenance in {sidecar.name}"
    )


def main() -> None:
    """Entry point: run the app, turning input and usage errors into one line and exit status 2.

    Typer runs in non-standalone mode so that its own usage errors (a missing option, an unknown
    command, a non-numeric --seed) reach us as exceptions instead of a multi-line boxed message.
    """
    try:
        code = app(standalone_mode=False, prog_name="dispatchbench")
    except (InputError, SolverNotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a path the system refuses wherever a command touches it (model/paths.py)
        if exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP):
            raise
        where = str(exc.filename or "a path")
        where = where if len(where) <= 120 else f"{where[:60]}...{where[-40:]} ({len(where)} characters)"
        typer.echo(
            f"error: {one_line(where)}: {exc.strerror} — fix: use a shorter path without symlink loops", err=True
        )
        sys.exit(2)
    except typer.TyperException as exc:  # click's ClickException/UsageError derive from it
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `dispatchbench`: show the help
            typer.echo(exc.format_message())
        elif ctx is not None:
            typer.echo(
                f"error: {ctx.command_path}: {one_line(exc.format_message())} — fix: see '{ctx.command_path} --help'",
                err=True,
            )
        else:
            typer.echo(f"error: {one_line(exc.format_message())}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
