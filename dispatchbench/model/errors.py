"""Errors a user can act on: each names the file, the entry and the fix."""

from __future__ import annotations

from os import PathLike


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters shown escaped.

    Messages quote what the user wrote (a name, a cell, a path); a newline inside it would split
    the promised single line of the error and could forge a second, innocent-looking one.
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class InputError(ValueError):
    """Bad problem or state input. The CLI prints ``str(err)`` as one line and exits 2."""

    def __init__(self, file: str | PathLike[str], entry: str, problem: str, fix: str) -> None:
        self.file, self.entry, self.problem, self.fix = str(file), entry, problem, fix  # a path names its file
        super().__init__(one_line(f"{self.file}: {entry}: {problem} — fix: {fix}"))


class SolverNotFound(LookupError):
    """A solver name or spec that no plugin answers to."""

    def __init__(self, message: str = "") -> None:
        text = str(message)
        if " — fix: " not in text:  # every user error says how to fix it
            text += " — fix: run 'dispatchbench solvers' to see names and parameters (list_solvers() in Python)"
        super().__init__(one_line(text))
