"""The child process that imports a plugin: ``python -P -m dispatchbench.bench.cell_child``.

Every piece of plugin code the project runs for ``run``, ``solve`` and ``solvers`` runs here,
in a process of its own that the parent (:mod:`cell_runner`) can kill, never in the process that
scores and writes. Why a fresh interpreter started with ``subprocess`` rather than a
``multiprocessing`` child:

* **Nothing from the working folder runs.** ``-P`` keeps the current folder off the module path,
  so a ``pandas.py`` or ``pyomo.py`` lying where the user typed the command is never imported
  (a ``multiprocessing`` fork server or spawned child starts with ``python -c``, which puts the
  working folder first on the path). ``-I`` would do that too, but also drop the user's
  site-packages and ``PYTHON*`` variables, which breaks ``pip install --user`` set-ups.
* **It runs under a stock Dask worker.** Dask's worker processes are daemonic, and
  ``multiprocessing`` refuses to start children from a daemonic process; ``subprocess`` has no
  such rule.

Protocol: one JSON request on stdin (read to its end), newline-delimited JSON messages back on
the process's *original* stdout. Before anything else is imported the child keeps that file
descriptor for its messages and points fd 1 (and ``sys.stdout``) at stderr: whatever a plugin
prints — at import, in its constructor, while solving — goes to stderr, and can neither garble
the messages nor reach a command's own output (``solve --json``, ``solvers --json``).

Requests (``kind``):

* ``cell``: import the plugin at ``origin``, build ``spec`` (with ``overrides`` for parameters
  that name files, materialised on this machine), then solve one state at a time. Messages:
  ``["built", description]``, then ``["skip", reason]`` or ``["fatal", reason]`` or
  ``["ready"]`` followed by ``["answer", index, raw_answer]`` per state and ``["done"]``.
* ``probe``: build each of ``specs`` once; one message, a list with each spec's description or
  ``{"spec", "error"}``.
* ``describe``: import the plugin file or entry point at ``origin`` and describe every solver
  class in it: ``["classes", [...]]`` or ``["error", reason]``.

The child only ever sends plain numbers and text; the parent scores every answer itself.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from types import FrameType
from typing import Any


def claim_stdout() -> int:
    """The original stdout as a private message channel; fd 1 and ``sys.stdout`` become stderr.
    Called before any plugin code is imported."""
    channel = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def send(channel: int, message: Any) -> None:
    """One message: a JSON document on one line (``json.dumps`` never emits a raw newline)."""
    data = (json.dumps(message, default=str) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(channel, view) :]


# ---- staying under the parent's control -----------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — dead, not yet reaped — counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _watch_parent(parent: int) -> None:
    """Exit if the process that started this one dies (e.g. SIGKILL of the harness or of a Dask
    worker): an orphaned, hung solver must not run forever. Two signs: the parent is gone, or
    this process was re-parented."""
    born_to = os.getppid()

    def watch() -> None:
        while _alive(parent) and os.getppid() == born_to:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # a clean exit if the main thread is in Python code
        time.sleep(2)
        os._exit(3)  # stuck in C code: leave without cleaning up

    threading.Thread(target=watch, daemon=True).start()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the child through normal interpreter shutdown, so the semaphores that libraries
    (pyomo) create at import are released instead of reported as leaked."""
    raise SystemExit(128 + signum)


def _setup(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the request was read; a plugin waiting on stdin gets EOF at once
    os.close(devnull)
    _watch_parent(parent)


# ---- what a plugin is ----------------------------------------------------------------------------


def plugin_error(exc: BaseException) -> str:
    """One line for an exception from plugin code, naming ``sys.exit`` calls for what they are."""
    if isinstance(exc, SystemExit):
        return f"the plugin called sys.exit({exc.code!r})"
    if isinstance(exc, LookupError) and type(exc).__name__ == "SolverNotFound":
        return str(exc.args[0] if exc.args else exc)
    return f"{type(exc).__name__}: {exc}"


def path_parameters(solver: Any) -> tuple[str, ...]:
    """Parameters whose values name files or folders (they travel with the cell by content).

    A plugin declares them in ``path_parameters``; a learner that declares nothing but has the
    conventional ``model`` parameter gets it (every learner takes one, see the README)."""
    declared = tuple(getattr(type(solver), "path_parameters", ()) or ())
    if declared:
        return declared
    return ("model",) if solver.capabilities.learns and "model" in solver.params else ()


def describe_instance(spec: str, solver: Any) -> dict[str, Any]:
    """A spec as the harness plans it: its typed parameters, capabilities and the plugin's own
    label (display name and family) for those parameters; a label that raises refuses the spec."""
    from dispatchbench.contract.solver import label_of

    label = label_of(solver)
    return {
        "spec": spec,
        "solver_spec": solver.spec,  # the spec as the solver writes it (non-default values only)
        "name": solver.name,
        "label": label.name,
        "family": label.family,
        "params": dict(solver.params),
        "capabilities": asdict(solver.capabilities),
        "path_parameters": list(path_parameters(solver)),
    }


def default_label(cls: Any) -> Any:
    """The plugin's label for its default parameters; None if its ``label`` fails (plugin code:
    a listing must not stop at one plugin, and any spec of it is refused with the reason)."""
    from dispatchbench.contract.solver import Label

    try:
        label = cls.label(dict(cls.parameters))
    except Exception:  # noqa: BLE001 (plugin code)
        return None
    return label if isinstance(label, Label) else None


def describe_class(cls: Any) -> dict[str, Any]:
    from dispatchbench.contract.learner import Learner

    label = default_label(cls)
    return {
        "name": cls.name,
        "label": label.name if label else None,  # how a report names it with its defaults
        "family": label.family if label else None,
        "default_train_steps": cls.default_train_steps if issubclass(cls, Learner) else None,
        "default_train_seconds": cls.default_train_seconds if issubclass(cls, Learner) else None,
        "any_size": bool(cls.any_size) if issubclass(cls, Learner) else None,
        "description": cls.description,
        "parameters": dict(cls.parameters),
        "parameter_ranges": {k: list(v) for k, v in cls.parameter_ranges.items()},
        "parameter_choices": {k: list(v) for k, v in cls.parameter_choices.items()},
        "capabilities": asdict(cls.capabilities),
        "path_parameters": list(getattr(cls, "path_parameters", ()) or ()),
        "module": cls.__module__,
        "qualname": cls.__qualname__,
    }


# ---- the three requests ------------------------------------------------------------------------------


def run_cell(channel: int, request: dict[str, Any]) -> None:
    """Build the solver, then solve one state at a time and send each answer's raw numbers. The
    problem and states here are this process's own; the parent never reads them back."""
    from dispatchbench.bench.plugins import make_solver_from
    from dispatchbench.bench.scoring import crash_answer, raw_answer
    from dispatchbench.contract.answer_checks import checked_answers
    from dispatchbench.model.problem import State
    from dispatchbench.model.problem_file import load_problem

    spec = request["spec"]
    try:
        problem = load_problem(request["problem"])
        states = {int(i): State(s["label"], dict(s["demand"]), dict(s["v2g"])) for i, s in request["states"].items()}
        solver = make_solver_from(request["origin"], spec, request.get("overrides") or {})
        send(channel, ["built", describe_instance(spec, solver)])
        skip = solver.skip(copy.deepcopy(problem))
        if skip:
            send(channel, ["skip", str(skip)])
            return
        prepared = time.perf_counter()
        solver.prepare(problem)  # model loading etc.: kept out of every state's time
        prepare_s = time.perf_counter() - prepared
    except BaseException as exc:  # noqa: BLE001 (plugin code: sys.exit at import is a broken plugin too)
        send(channel, ["fatal", f"could not start solver {spec!r}: {plugin_error(exc)}"])
        return
    send(channel, ["ready"])
    time_limit = request.get("time_limit")
    for index in request["todo"]:
        start = time.perf_counter()
        try:
            given = [copy.deepcopy(states[index])]
            answers = solver.solve(problem, given, seed=request["seed"], time_limit=time_limit)
            raw = raw_answer(checked_answers(solver.name, problem, [states[index]], answers)[0])  # the plugin's terms
        except Exception as exc:  # a crashing backend is a result, not a crash of the run
            where = f"{solver.name}.solve: state {states[index].label!r}: "
            raw = raw_answer(crash_answer(exc, time.perf_counter() - start, where))
        raw["info"] = {**raw["info"], "solver_time_s": raw["time_s"], "prepare_s": prepare_s}
        send(channel, ["answer", index, raw])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # work done: let interpreter shutdown run undisturbed
    send(channel, ["done"])


def run_probe(channel: int, request: dict[str, Any]) -> None:
    """Build every spec once: each one's name, typed parameters and capabilities, or its error."""
    from dispatchbench.bench.plugins import make_solver_from

    out = []
    for spec in request["specs"]:
        try:
            out.append(describe_instance(spec, make_solver_from(request["origin"], spec)))
        except BaseException as exc:  # noqa: BLE001 (see run_cell)
            out.append({"spec": spec, "error": plugin_error(exc)})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    send(channel, out)


def run_describe(channel: int, request: dict[str, Any]) -> None:
    """Every solver class a plugin file or entry point defines."""
    from dispatchbench.bench.plugins import solver_classes_at

    try:
        classes = [describe_class(cls) for cls in solver_classes_at(request["origin"])]
    except BaseException as exc:  # noqa: BLE001 (see run_cell)
        send(channel, ["error", plugin_error(exc)])
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    send(channel, ["classes", classes])


REQUESTS = {"cell": run_cell, "probe": run_probe, "describe": run_describe}


def main() -> None:
    channel = claim_stdout()
    request = json.loads(sys.stdin.buffer.read())
    _setup(int(request["parent"]))
    REQUESTS[request["kind"]](channel, request)


if __name__ == "__main__":
    main()
