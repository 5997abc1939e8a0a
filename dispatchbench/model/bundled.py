"""Where the bundled problem and state files live once installed.

They sit in ``problems/`` at the top of the repository and are installed as the package
``dispatchbench.problems``; reading them through importlib.resources makes a wheel and an
editable checkout behave the same, wherever the command is run from.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from dispatchbench.model.errors import InputError
from dispatchbench.model.paths import check_path, exists

PACKAGE = "dispatchbench.problems"


def problems_dir() -> Path:
    """The folder holding the bundled problem files."""
    folder = Path(str(importlib.resources.files(PACKAGE)))
    if not folder.is_dir():  # a zipped install: every caller needs real files
        raise InputError(
            PACKAGE,
            "install",
            "the bundled problems are not a folder on disk",
            "install dispatchbench unzipped (pip install does)",
        )
    return folder


def find_input(path: str | Path) -> Path:
    """A problem or state file named as given (relative to the working directory), else a bundled
    one of that name (``problems/paper-4region.toml`` or ``paper-4region.toml``)."""
    given = check_path(path)
    if exists(given) and given.is_file():
        return given.resolve()
    bundled = problems_dir() / given.name
    if given.parent.name in ("", "problems") and bundled.is_file():
        return bundled
    raise InputError(
        path, "file", "not found", f"give a path to an existing file, or the name of a bundled one in {problems_dir()}"
    )
