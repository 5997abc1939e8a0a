"""Errors a user can act on: each names the file, the entry and the fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad problem or state input. The CLI prints ``str(err)`` as one line and exits 2."""

    def __init__(self, file: str, entry: str, problem: str, fix: str) -> None:
        self.file, self.entry, self.problem, self.fix = str(file), entry, problem, fix
        super().__init__(f"{self.file}: {entry}: {problem} — fix: {fix}")


class SolverNotFound(LookupError):
    """A solver name or spec that no plugin answers to."""
