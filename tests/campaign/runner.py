"""Run one campaign case in a subprocess and say what the user met.

A case is a command line for the ``dispatchbench`` console script, or a few lines of Python
against the package's API run by a fresh interpreter. Either runs in its own folder
(``{case}``, also its working directory) beside a shared, read-only workspace (``{ws}``) of bad
files, under a time limit. The verdict:

- ``clean``: where an error is due, exit status 2 (or the case's documented status) with exactly
  one ``error: ...`` line on stderr that says how to fix it; where the input is valid, exit 0 and
  the case's own check passes;
- ``traceback``: a Python traceback reached the user;
- ``hang``: no exit within the case's limit (the process group is killed);
- ``silent``: exit 0 where an error was due, or a wrong result (a case check failed);
- ``security``: the shared workspace changed, a file appeared outside the case's folder, or a
  symbolic link's target (a ``victim`` file) was written through;
- ``unclear``: an error, but not one ``error:`` line with a fix, or another exit status.

Why subprocesses: a user meets the real process — imports, argument parsing, plugins'
constructors, exit statuses and streams — and a hang must be killable.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

VERDICTS = ("clean", "traceback", "hang", "silent", "security", "unclear")
VICTIM_TEXT = "keep me\n"

# A Python-API case: its code runs after this prelude; the package's user errors become what
# the CLI prints (one line, exit 2), anything else escapes as a traceback.
API_PRELUDE = """\
import sys
import dispatchbench as db
from dispatchbench.model.errors import InputError, SolverNotFound
try:
{body}
except (InputError, SolverNotFound) as exc:
    print(f"error: {{exc}}", file=sys.stderr)
    sys.exit(2)
"""

Check = Callable[[subprocess.CompletedProcess, Path], "tuple[str, str] | None"]
Setup = Callable[[Path, Path], None]


@dataclass
class Case:
    """One bad (or edge-valid) input. ``argv`` and ``api`` may hold ``{ws}`` and ``{case}``."""

    cls: str
    name: str
    argv: list[str] = field(default_factory=list)  # a dispatchbench command line ...
    api: str = ""  # ... or Python code against ``db`` (dispatchbench)
    expect: str = "error"  # "error": exit `status` with one line; "ok": exit 0
    status: int = 2
    timeout: float = 60.0
    fast: bool = False  # in the default (CI) subset; every case runs under -m slow
    setup: Setup | None = field(default=None, repr=False)  # (case folder, workspace) before the run
    check: Check | None = field(default=None, repr=False)  # -> (verdict, why) when something is wrong
    env: dict[str, str] = field(default_factory=dict)
    says: str = ""  # text the error line must hold (the file or entry it names)


@dataclass
class Outcome:
    cls: str
    name: str
    verdict: str
    exit_code: int | None
    first_line: str
    seconds: float
    why: str = ""


def fill(text: str, ws: Path, case_dir: Path) -> str:
    return text.replace("{ws}", str(ws)).replace("{case}", str(case_dir))


def console_script() -> str:
    """The ``dispatchbench`` script of the interpreter running the tests (a venv's own first)."""
    here = Path(sys.executable).parent / "dispatchbench"
    return str(here) if here.exists() else (shutil.which("dispatchbench") or "dispatchbench")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's hash, a link's target, or ``dir``."""
    out: dict[str, str] = {}
    if not folder.exists():
        return out
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def case_folder(ws: Path, case: Case) -> Path:
    slug = hashlib.sha256(f"{case.cls}/{case.name}".encode()).hexdigest()[:12]
    return ws / "cases" / slug


def run_case(case: Case, ws: Path) -> Outcome:
    """Run ``case`` against the workspace ``ws`` (built by :func:`campaign.cases.build_workspace`)."""
    case_dir = case_folder(ws, case)
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    (case_dir / "victim.txt").write_text(VICTIM_TEXT)  # what a planted link points at
    if case.setup is not None:
        case.setup(case_dir, ws)
    shared_before = {name: snapshot(ws / name) for name in SHARED}
    top_before = sorted(p.name for p in ws.iterdir())
    strays_before = _strays(ws)
    if case.api:
        body = "\n".join("    " + line for line in fill(case.api, ws, case_dir).splitlines())
        cmd = [sys.executable, "-P", "-c", API_PRELUDE.format(body=body)]
    else:
        cmd = [console_script(), *(fill(a, ws, case_dir) for a in case.argv)]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "HOME": str(case_dir / "home")}
    env.pop("DISPATCHBENCH_SOLVER_PATH", None)
    env.update({k: fill(v, ws, case_dir) for k, v in case.env.items()})
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=case_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=case.timeout)
        done: subprocess.CompletedProcess | None = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the cells and children go too
        proc.communicate()
        done = None
    seconds = time.perf_counter() - start
    holder = case_dir / "holder.pid"  # a process the setup started (holding a lock): ended here
    if holder.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(holder.read_text()), signal.SIGKILL)
    outcome = classify(case, done, seconds, case_dir)
    if outcome.verdict in ("clean", "silent", "unclear"):
        changed = [name for name in SHARED if snapshot(ws / name) != shared_before[name]]
        if changed:
            outcome.verdict, outcome.why = "security", f"the shared workspace changed: {changed}"
        elif (case_dir / "victim.txt").read_text() != VICTIM_TEXT:
            outcome.verdict, outcome.why = "security", "a link's target was written through"
        elif sorted(p.name for p in ws.iterdir()) != top_before or _strays(ws) != strays_before:
            outcome.verdict, outcome.why = "security", "a file appeared in the workspace, outside the case's folder"
    return outcome


SHARED = ("problems", "states", "models", "runs", "plugins")


def _strays(ws: Path) -> list[str]:
    """Entries of ``ws/cases`` that are not a case's folder (those are named by a 12-digit hash)."""
    return sorted(p.name for p in (ws / "cases").iterdir() if not re.fullmatch(r"[0-9a-f]{12}", p.name))


def classify(case: Case, proc: subprocess.CompletedProcess | None, seconds: float, case_dir: Path) -> Outcome:
    if proc is None:
        return Outcome(case.cls, case.name, "hang", None, "", seconds, f"no exit within {case.timeout:g} s")
    err_lines = proc.stderr.splitlines()
    first = err_lines[0][:300] if err_lines else (proc.stdout.splitlines()[:1] or [""])[0][:300]
    outcome = Outcome(case.cls, case.name, "clean", proc.returncode, first, seconds)
    if "Traceback (most recent call last)" in proc.stderr + proc.stdout:
        outcome.verdict, outcome.why = "traceback", _last_line(proc.stderr + proc.stdout)
        return outcome
    if case.expect == "ok":
        if proc.returncode != 0:
            outcome.verdict, outcome.why = "unclear", f"exit {proc.returncode} on a valid input"
    elif proc.returncode == 0:
        outcome.verdict, outcome.why = "silent", "exit 0 where an error was due"
    else:
        errors = [line for line in err_lines if line.startswith("error: ")]
        if proc.returncode != case.status or len(errors) != 1 or " fix" not in errors[0]:
            outcome.verdict = "unclear"
            outcome.why = (
                f"exit {proc.returncode} with {len(errors)} 'error:' line(s) of {len(err_lines)} on stderr "
                f"(exit {case.status} and one 'error: ... fix ...' line due)"
            )
        elif case.says and fill(case.says, case_dir.parent.parent, case_dir) not in errors[0]:
            outcome.verdict, outcome.why = "unclear", f"the error does not name {case.says!r}"
    if outcome.verdict == "clean" and case.check is not None:
        found = case.check(proc, case_dir)
        if found:
            outcome.verdict, outcome.why = found
    return outcome


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# ---- checks the cases share -------------------------------------------------------------------------


def nothing_in(rel: str) -> Check:
    """The error came before any work: no rows under ``{case}/rel``."""

    def check(_: subprocess.CompletedProcess, case_dir: Path) -> tuple[str, str] | None:
        rows = case_dir / rel / "rows.jsonl"
        if rows.is_file() and rows.read_text(errors="replace").strip():
            return "silent", f"rows were written into {rel} before the error"
        return None

    return check


def no_path(rel: str) -> Check:
    """Nothing was created at ``{case}/rel`` (a report or table folder refused)."""

    def check(_: subprocess.CompletedProcess, case_dir: Path) -> tuple[str, str] | None:
        path = case_dir / rel
        if path.exists() or path.is_symlink():
            return "silent", f"{rel} was written although the command failed"
        return None

    return check


def stdout_has(text: str, verdict: str = "silent") -> Check:
    def check(proc: subprocess.CompletedProcess, _: Path) -> tuple[str, str] | None:
        return None if text in proc.stdout else (verdict, f"stdout lacks {text!r}")

    return check


def stderr_has(text: str, verdict: str = "silent") -> Check:
    def check(proc: subprocess.CompletedProcess, _: Path) -> tuple[str, str] | None:
        return None if text in proc.stderr else (verdict, f"stderr lacks {text!r}")

    return check


def stdout_lacks(text: str, verdict: str = "security") -> Check:
    def check(proc: subprocess.CompletedProcess, _: Path) -> tuple[str, str] | None:
        return (verdict, f"stdout shows {text!r}") if text in proc.stdout else None

    return check


def both(*checks: Check) -> Check:
    def check(proc: subprocess.CompletedProcess, case_dir: Path) -> tuple[str, str] | None:
        for c in checks:
            found = c(proc, case_dir)
            if found:
                return found
        return None

    return check
