"""The package names no bundled plugin: a third-party plugin is read exactly like a bundled one.

Reports name methods by the label their plugin gives (``Solver.label``, stored on every row), the
harness and the CLI tell learners by ``issubclass(cls, Learner)`` and read ``info`` through the
documented ``AnswerInfo`` keys. So no module under ``dispatchbench/`` needs a string that *is* a
bundled plugin's spec (``"scip"``, ``"pso[iterations=60]"``, ``"madrl_tvc"``): this test reads
every module with ``ast`` and fails on such a string constant. Docstrings, comments and prose
(a help text's ``e.g. scip or pso[particles=40]``) are words, not specs, and pass.

No module is exempt: ``solve`` (CLI and API) has no default solver; the user names it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dispatchbench.bench.plugins import bundled_dir, declared_names, split_specs
from dispatchbench.model.errors import SolverNotFound

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dispatchbench"
# (module, string) that are not plugin specs although they spell one
NOT_SPECS = {("bench/run_metadata.py", "nlopt")}  # the NLopt library's distribution name (its version column)
_SPEC = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:\[(.*)\])?\s*$")


def bundled_names() -> set[str]:
    """The spec names the bundled plugin files declare (read with ``ast``, as discovery does)."""
    folder = bundled_dir()
    assert folder is not None, "the bundled plugins are not installed"
    return {name for path in folder.glob("*.py") for name in declared_names(path)}


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, nodes)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def named_plugins(text: str, names: set[str]) -> list[str]:
    """The bundled plugins a string constant names, when it is a spec or a list of specs
    (``"scip,pso[particles=40]"``); prose that mentions one is not a spec."""
    try:
        parts = split_specs(text)
    except SolverNotFound:
        return []
    matches = [_SPEC.match(part) for part in parts]
    if not parts or not all(matches):
        return []
    return [m.group(1) for m in matches if m and m.group(1) in names]


def offenders(root: Path, names: set[str]) -> dict[str, list[str]]:
    """``path relative to the package -> ["line: 'string'", ...]`` for every string constant of a
    module that is a bundled plugin's spec."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                rel = path.relative_to(root).as_posix()
                if named_plugins(node.value, names) and (rel, node.value) not in NOT_SPECS:
                    found.setdefault(rel, []).append(f"{node.lineno}: {node.value[:60]!r}")
    return found


def test_the_bundled_plugins_are_known():
    assert bundled_names() >= {"scip", "nlopt", "pso", "madrl_tvc", "maddpg"}


def test_no_module_names_a_bundled_plugin():
    found = offenders(PACKAGE, bundled_names())
    assert found == {}, "name the method through its plugin (label, capabilities, Learner), not its spec"


def test_the_check_can_fail(tmp_path):
    """A module with a spec literal is caught; the same words in a docstring, a comment or a help
    text are not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "ok.py").write_text(
        '"""Runs scip and pso[particles=40]."""\n'
        "# scip is the reference\n"
        'HELP = "Solver spec, e.g. scip or pso[particles=40]."\n'
        "LIST = 'Solver specs, e.g. \"scip,nlopt[algorithm=LD_SLSQP],pso\".'\n"
        'OTHER = "SCIP (gap 1e-9)"\n'
    )
    (package / "bad.py").write_text('REFERENCE = "scip"\nPAIR = "nlopt[algorithm=LD_SLSQP],pso"\n')
    found = offenders(package, {"scip", "nlopt", "pso"})
    assert set(found) == {"bad.py"} and len(found["bad.py"]) == 2, found
