"""The package's layers import downwards only, and no module imports itself in a circle.

model → contract → instances → formulations → learn → bench → report → CLI (the package root and
``cli.py``). A module may import from its own layer or any layer below it, never above: an
upward import is how the old ``report``/``reproduce`` cycle started. Plugins
(``dispatchbench.solvers``) sit on top of everything and nothing in the package imports them by
name. The check reads the source with ``ast`` (imports inside functions count too), so it needs
no third-party tool and fails CI the moment someone adds an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dispatchbench"
LAYERS = ["model", "contract", "instances", "formulations", "learn", "bench", "report", "cli"]
TOP = len(LAYERS) - 1


def layer_of(module: str) -> int | None:
    """Layer index of a ``dispatchbench...`` module name, None for data/plugin packages."""
    parts = module.split(".")
    if parts[0] != "dispatchbench":
        return None
    if len(parts) == 1 or parts[1] in ("cli", "__main__", "api"):
        return TOP
    if parts[1] in ("solvers", "problems"):
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else TOP


def module_name(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) for every dispatchbench import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "dispatchbench"]


def upward_imports(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        own = layer_of(module_name(path, root))
        if own is None:
            continue
        for line, target in imports_of(path, root):
            if target.startswith("dispatchbench.solvers"):
                problems.append(f"{path.relative_to(root.parent)}:{line} imports plugin {target}")
                continue
            other = layer_of(target)
            if other is not None and other > own:
                problems.append(
                    f"{path.relative_to(root.parent)}:{line} ({LAYERS[own]}) imports {target} ({LAYERS[other]})"
                )
    return problems


def test_every_module_belongs_to_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"subpackages outside the layer list: {sorted(folders - set(LAYERS))}"
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "cli", "api"}
    assert not loose, f"modules outside any layer folder: {sorted(loose)}"


def test_layers_import_downwards_only() -> None:
    assert upward_imports() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The test above can fail: a copy of the package with one upward import is caught."""
    import shutil

    copy = tmp_path / "dispatchbench"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "model" / "problem.py"
    target.write_text(
        target.read_text(encoding="utf-8") + "\nfrom dispatchbench.report.tables import make_tables\n", encoding="utf-8"
    )
    found = upward_imports(copy)
    assert len(found) >= 1 and "model/problem.py" in found[0] and "(report)" in found[0]


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_each_layer_folder_has_a_docstring(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} says nothing of its layer"
