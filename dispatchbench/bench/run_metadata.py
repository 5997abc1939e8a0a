"""Where a result came from: library versions, machine and git revision, stamped on every row.

A time or a cost is only comparable with another if both were measured with the same code on
the same kind of machine, so the harness copies these fields onto every row of the results
table (benchopt does the same) instead of keeping them in a side file that can get separated.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

# column name -> distribution name; a library that is not installed gets a null, not a missing column
LIBRARIES: dict[str, str] = {
    "dispatchbench_version": "dispatchbench",
    "pyomo_version": "pyomo",
    "pyscipopt_version": "PySCIPOpt",
    "nlopt_version": "nlopt",
    "pyswarms_version": "pyswarms",
    "torch_version": "torch",
    "numpy_version": "numpy",
}

# the checkout this package runs from, when it runs from one (editable install or source tree)
SOURCE_ROOT = Path(__file__).resolve().parents[2]

# Where the row's cell ran: the machine of the worker that started the solver's process (on a
# Dask cluster not the driver's, whose machine the columns above describe). Null when no plugin
# ran for the row (a state the pre-check found infeasible, a plugin that could not be probed).
WORKER_COLUMNS: tuple[str, ...] = ("worker_host", "worker_cpu")

METADATA_COLUMNS: tuple[str, ...] = (
    "python_version",
    *LIBRARIES,
    "cpu_model",
    "cpu_cores",
    "ram_gb",
    "os",
    "hostname",
    *WORKER_COLUMNS,
    "git_revision",
    "git_dirty",
    "install_source",
)


def _library_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 2)
    except (ValueError, OSError, AttributeError):
        return None


def _is_own_checkout(folder: Path) -> bool:
    """True only for a dispatchbench checkout: a venv inside some other repository must not
    stamp that repository's revision on our rows."""
    pyproject = folder / "pyproject.toml"
    try:
        return (folder / ".git").exists() and 'name = "dispatchbench"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False


# Folders the project's own runs write into (committed reports, benchmark results): a study that
# rewrites reports/ while a second one runs leaves the code unchanged, so they do not make it dirty.
OUTPUT_PATHSPECS = (":(exclude)reports", ":(exclude)benchmarks/results")


def _git(folder: Path) -> tuple[str | None, bool | None]:
    try:
        rev = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUT_PATHSPECS],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return rev or None, bool(status.strip())


def direct_url() -> dict[str, Any] | None:
    """PEP 610 ``direct_url.json`` of the installed distribution (where pip installed it from)."""
    try:
        text = distribution("dispatchbench").read_text("direct_url.json")
        return json.loads(text) if text else None
    except (PackageNotFoundError, ValueError, OSError):
        return None


def git_revision() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the code that runs, or ``(None, None)`` when nobody can tell.

    From a checkout (source tree or editable install): git, with dirty meaning tracked files
    outside the output folders (``OUTPUT_PATHSPECS``) differ from the commit, since results from
    such a run cannot be reproduced from the revision alone. From a wheel: the commit pip
    recorded when it installed from a VCS URL (PEP 610), and nothing otherwise.
    """
    if _is_own_checkout(SOURCE_ROOT):
        return _git(SOURCE_ROOT)
    info = direct_url() or {}
    commit = (info.get("vcs_info") or {}).get("commit_id")
    return (commit, False) if commit else (None, None)


def install_source() -> str | None:
    """Where the running package was installed from: a checkout, a URL, or None (an index)."""
    if _is_own_checkout(SOURCE_ROOT):
        return "checkout"
    info = direct_url()
    return info.get("url") if info else None


@lru_cache(maxsize=1)
def run_metadata() -> dict[str, Any]:
    """The fields every row carries (computed once per process: they do not change during a run)."""
    rev, dirty = git_revision()
    return {
        "python_version": platform.python_version(),
        **{column: _library_version(dist) for column, dist in LIBRARIES.items()},
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "ram_gb": ram_gb(),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        "git_revision": rev,
        "git_dirty": dirty,
        "install_source": install_source(),
    }


@lru_cache(maxsize=1)
def worker_metadata() -> dict[str, Any]:
    """The :data:`WORKER_COLUMNS` of the machine this process runs on (a cell's worker)."""
    return {"worker_host": socket.gethostname(), "worker_cpu": cpu_model()}


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
