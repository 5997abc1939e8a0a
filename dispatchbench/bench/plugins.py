"""Finding solver plugins: the bundled ``dispatchbench.solvers`` package, folders on
``$DISPATCHBENCH_SOLVER_PATH`` and the ``dispatchbench.solvers`` entry-point group, and turning
spec strings like ``pso[particles=40]`` into instances."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.resources
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import Distribution, EntryPoint
from importlib.metadata import entry_points as entry_points  # re-exported: the CLI reads it here (tests replace it)
from pathlib import Path
from types import ModuleType
from typing import Any

from dispatchbench.contract.class_checks import contract_problems
from dispatchbench.contract.solver import Solver, label_of
from dispatchbench.model.errors import SolverNotFound

ENTRY_POINT_GROUP = "dispatchbench.solvers"
BUNDLED_PACKAGE = "dispatchbench.solvers"
SOLVER_PATH_ENV = "DISPATCHBENCH_SOLVER_PATH"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to import: listed with its error instead of crashing discovery."""

    origin: str
    error: str


def bundled_dir() -> Path | None:
    """The folder of the bundled plugins inside the installed package (``solvers/`` in a checkout)."""
    try:
        folder = Path(str(importlib.resources.files(BUNDLED_PACKAGE)))
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


def solver_dirs() -> list[Path]:
    """Plugin folders: the bundled one, then each folder on ``$DISPATCHBENCH_SOLVER_PATH``.

    Never the working directory: a ``solvers/`` folder that happens to sit where a user runs a
    command is not code they asked to run.
    """
    dirs = [d for d in [bundled_dir()] if d is not None]
    dirs += [Path(p) for p in os.environ.get(SOLVER_PATH_ENV, "").split(os.pathsep) if p]
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if d.is_dir() and key not in seen:
            seen.add(key)
            out.append(d)
    return out


def solver_path_problems() -> list[str]:
    """Each ``$DISPATCHBENCH_SOLVER_PATH`` entry discovery cannot use, as ``what — fix: how``:
    one that does not exist, or a plugin *file* where a folder is expected. Discovery skips them;
    said aloud, "no solver named X" is no longer the only clue."""
    out = []
    for entry in (p for p in os.environ.get(SOLVER_PATH_ENV, "").split(os.pathsep) if p):
        path = Path(entry)
        if path.is_file():
            out.append(
                f"${SOLVER_PATH_ENV} entry {entry!r} is a file, not a folder — fix: give the folder that holds "
                f"it ({path.parent})"
            )
        elif not path.is_dir():
            out.append(f"${SOLVER_PATH_ENV} entry {entry!r} does not exist — fix: give an existing folder of plugins")
    return out


def places_searched() -> str:
    """Where discovery looked, for "no solver named X": the bundled folder, each solver-path entry
    (with why an unusable one was skipped) and the entry-point group."""
    bundled = bundled_dir()
    places = [
        f"the bundled plugins ({bundled})" if bundled else f"the bundled plugins ({BUNDLED_PACKAGE}: not installed)"
    ]
    entries = [p for p in os.environ.get(SOLVER_PATH_ENV, "").split(os.pathsep) if p]
    if not entries:
        places.append(f"${SOLVER_PATH_ENV} (not set)")
    for entry in entries:
        path = Path(entry)
        state = "" if path.is_dir() else " (a file, not a folder: skipped)" if path.is_file() else " (missing: skipped)"
        places.append(f"{SOLVER_PATH_ENV} folder {entry}{state}")
    others = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if not _is_bundled_entry_point(ep)]
    places.append(f"entry points '{ENTRY_POINT_GROUP}' ({', '.join(sorted(others)) or 'none besides the bundled'})")
    return "searched " + ", ".join(places)


def no_solver_named(name: str, available: Iterable[str]) -> SolverNotFound:
    """The one error for a spec whose name no plugin declares: what there is and where it looked."""
    names = ", ".join(sorted(available)) or "(none)"
    return SolverNotFound(
        f"no solver named {name!r}; available: {names}; {places_searched()} — fix: run 'dispatchbench solvers' to "
        f"see names and parameters, or put the plugin's folder on ${SOLVER_PATH_ENV}"
    )


@dataclass(frozen=True)
class Shadowed:
    """A plugin of a name an earlier one already took: never used, and said so."""

    name: str
    origin: str  # the plugin that is ignored
    source: str  # its source: ``solver path`` or ``entry point``
    winner: str  # the plugin used instead
    winner_source: str

    def warning(self) -> str:
        return (
            f"plugin {self.name!r} from {self.origin} ({self.source}) is ignored: {self.winner} ({self.winner_source}) "
            f"has that name and comes first — fix: rename one (name = ...), or remove it"
        )


def shadowed_plugins() -> list[Shadowed]:
    """Plugins hidden by an earlier one of the same name, found as :func:`plugin_origins` finds
    names (``ast`` and entry-point names, nothing imported)."""
    first: dict[str, tuple[str, str]] = {}
    out = []
    bundled = bundled_dir()
    for folder in solver_dirs():
        source = "bundled" if bundled is not None and folder.resolve() == bundled.resolve() else "solver path"
        for path in _plugin_files(folder):
            for name in declared_names(path):
                if name in first and first[name][0] != str(path.resolve()):
                    out.append(Shadowed(name, str(path.resolve()), source, *first[name]))
                first.setdefault(name, (str(path.resolve()), source))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _is_bundled_entry_point(ep):
            continue
        if ep.name in first and first[ep.name][0] != ep.value:
            out.append(Shadowed(ep.name, ep.value, "entry point", *first[ep.name]))
        first.setdefault(ep.name, (ep.value, "entry point"))
    return out


def discovery_warnings() -> list[str]:
    """What discovery skipped or hid, one line each (commands print them on stderr)."""
    return solver_path_problems() + [s.warning() for s in shadowed_plugins()]


def declared_names(path: Path) -> list[str]:
    """Solver names a plugin file declares (``name = "..."`` in a class), read without importing it.

    Lets ``make_solver("scip")`` import only the SCIP plugin instead of every plugin (torch's
    import alone costs seconds).
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return []
    names = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            target = (
                stmt.targets[0]
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                else getattr(stmt, "target", None)
            )
            value = getattr(stmt, "value", None)
            if (
                isinstance(target, ast.Name)
                and target.id == "name"
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                names.append(value.value)
    return names


def _module_name(path: Path) -> str:
    """Bundled plugins import as ``dispatchbench.solvers.<file>`` (picklable, the same module an
    entry point names); plugins from other folders under a private prefix."""
    bundled = bundled_dir()
    if bundled is not None and path.parent.resolve() == bundled.resolve():
        return f"{BUNDLED_PACKAGE}.{path.stem}"
    return f"dispatchbench_plugin_{path.stem}"


def checked(cls: type[Solver]) -> type[Solver]:
    """``cls`` if it keeps the plugin contract, else a ``TypeError`` naming its first breach and
    the fix (discovery then lists the plugin as broken, with that line)."""
    problems = contract_problems(cls)
    if problems:
        raise TypeError(f"{cls.__qualname__}: {problems[0]}")
    return cls


def _solver_classes(module: ModuleType) -> list[type[Solver]]:
    """The plugin classes a module defines (those with a ``name``), each checked: one that misses
    a method of the contract is reported, not silently passed over."""
    return [
        checked(obj)
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Solver)
        and obj.__module__ == module.__name__
        and getattr(obj, "name", None)
    ]


@cache
def _load_file(path: Path) -> list[type[Solver]]:
    """Import a plugin file once (cached: re-executing it would make distinct, unpicklable classes)."""
    path = path.resolve()
    module_name = _module_name(path)
    if module_name.startswith(BUNDLED_PACKAGE + "."):
        return _solver_classes(importlib.import_module(module_name))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # only for a name without a .py loader; files here end in .py
        raise ImportError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pickling and dataclasses need the module registered
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return _solver_classes(module)


def _plugin_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def _is_bundled_entry_point(ep: EntryPoint) -> bool:
    """The package registers its own plugins as entry points too; where the bundled folder is
    there, it is the one source of them (scanned, or reported broken, from the folder)."""
    return ep.value.startswith(BUNDLED_PACKAGE + ".") and bundled_dir() is not None


def _load_entry_point(ep: EntryPoint) -> type[Solver]:
    cls = ep.load()
    if not (inspect.isclass(cls) and issubclass(cls, Solver)):
        raise TypeError(f"{ep.value} is not a dispatchbench Solver subclass")
    return checked(cls)


@lru_cache(maxsize=1)
def _discover(dirs: tuple[Path, ...]) -> tuple[dict[str, type[Solver]], tuple[BrokenPlugin, ...]]:
    found: dict[str, type[Solver]] = {}
    broken: list[BrokenPlugin] = []
    for folder in dirs:
        for path in _plugin_files(folder):
            try:
                classes = _load_file(path)
            except Exception as exc:  # a broken plugin must not take the others down
                broken.append(BrokenPlugin(str(path), f"{type(exc).__name__}: {exc}"))
                continue
            for cls in classes:
                found.setdefault(cls.name, cls)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _is_bundled_entry_point(ep):
            continue
        try:
            cls = _load_entry_point(ep)
        except Exception as exc:
            broken.append(BrokenPlugin(f"entry point {ep.name} ({ep.value})", f"{type(exc).__name__}: {exc}"))
            continue
        found.setdefault(cls.name, cls)
    return found, tuple(broken)


def discover() -> dict[str, type[Solver]]:
    """All solver classes by name (first found wins: bundled, solver path, entry points)."""
    return dict(_discover(tuple(solver_dirs()))[0])


def broken_plugins() -> tuple[BrokenPlugin, ...]:
    return _discover(tuple(solver_dirs()))[1]


_SPEC = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:\[(.*)\])?\s*$")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"pso[particles=40,seed=1]"`` → ``("pso", {"particles": "40", "seed": "1"})``.

    A repeated key is an error rather than "last one wins": ``pso[w=1,w=2]`` is a typo or a
    pasted spec, and silently running one of the two values would benchmark something the user
    did not ask for.
    """
    match = _SPEC.match(spec)
    if not match:
        raise SolverNotFound(f"solver spec {spec!r} is malformed; write name or name[key=value,...]")
    name, body = match.group(1), match.group(2)
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (body or "").split(","))):
        if "=" not in part:
            raise SolverNotFound(f"solver spec {spec!r}: {part!r} is not key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        if not _KEY.fullmatch(key):
            raise SolverNotFound(f"solver spec {spec!r}: {key!r} is not a parameter name")
        if key in params:
            raise SolverNotFound(f"solver spec {spec!r}: parameter {key!r} is given twice; keep one value")
        params[key] = value
    return name, params


def split_specs(text: str) -> list[str]:
    """Split ``"scip,nlopt[a=1,b=2],pso"`` at the commas that are outside brackets.

    Unbalanced brackets are an error here: split anyway, ``"scip],pso"`` would become one
    malformed spec whose message points at the wrong place.
    """
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if depth < 0:
            raise SolverNotFound(f"solver list {text!r}: ']' without a matching '['")
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    if depth:
        raise SolverNotFound(f"solver list {text!r}: '[' without a matching ']'")
    out.append(current)
    return [s.strip() for s in out if s.strip()]


def instantiate(cls: type[Solver], name: str, params: dict[str, str]) -> Solver:
    """``cls(**params)``, with any failure of the plugin's constructor (or of its ``label``) as one
    :class:`SolverNotFound`.

    A constructor is plugin code: besides the ``ValueError`` of a bad value it may raise anything
    (a missing file, a ``TypeError``), and the command line must still show one line, not a
    traceback.
    """
    try:
        solver = cls(**params)
        label_of(solver)  # a label() that fails is the spec's error now, not a report's later
        return solver
    except ValueError as exc:
        raise SolverNotFound(str(exc)) from None
    except Exception as exc:
        raise SolverNotFound(f"solver {name!r} could not be created: {type(exc).__name__}: {exc}") from None


def find_solver_class(name: str) -> type[Solver] | None:
    """The class of solver ``name``, importing as little as possible (see :func:`declared_names`)."""
    for folder in solver_dirs():
        for path in _plugin_files(folder):
            if name in declared_names(path):
                try:
                    for cls in _load_file(path):
                        if cls.name == name:
                            return cls
                except Exception:
                    break  # broken file: let full discovery report it
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                cls = _load_entry_point(ep)
            except Exception:
                break
            if cls.name == name:
                return cls
    return discover().get(name)


def make_solver(spec: str) -> Solver:
    """Instantiate a solver from its parametrized name."""
    name, params = parse_spec(spec)
    cls = find_solver_class(name)
    if cls is None:
        registry = discover()
        hint = "; ".join(f"{b.origin}: {b.error}" for b in broken_plugins())
        error = no_solver_named(name, registry)
        if hint:
            error = SolverNotFound(f"{error.args[0].split(' — fix: ')[0]} (plugins that failed to load: {hint})")
        raise error
    return instantiate(cls, name, params)


def plugin_origins() -> dict[str, str]:
    """Solver name -> where its plugin is, found without importing any plugin: the names plugin
    files declare (read with ``ast``), then entry points by name. First found wins, as in
    :func:`discover`. The harness hands an origin to each cell's process, which imports that one
    plugin under the cell's time limit.

    An origin is a module for a bundled plugin (``dispatchbench.solvers.scip``: a worker imports
    its own installed copy, wherever it is installed), a file for a plugin from a folder on the
    solver path (its bytes travel with the cell), or an entry point's ``module:Class``."""
    found: dict[str, str] = {}
    for folder in solver_dirs():
        for path in _plugin_files(folder):
            module = _module_name(path)
            origin = module if module.startswith(BUNDLED_PACKAGE + ".") else str(path.resolve())
            for name in declared_names(path):
                found.setdefault(name, origin)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not _is_bundled_entry_point(ep):
            found.setdefault(ep.name, ep.value)
    return found


@dataclass(frozen=True)
class PluginSource:
    """One place a plugin can come from, as :func:`plugin_sources` lists them."""

    origin: str  # a plugin file's path, or an entry point's ``module:Class``
    source: str  # ``bundled``, ``solver path`` or ``entry point``
    label: str  # how a broken one is named: the file, or ``entry point NAME (module:Class)``


def plugin_sources() -> list[PluginSource]:
    """Every plugin file and entry point, in discovery order (first found wins), without
    importing any: what ``dispatchbench solvers`` imports, each in its own child process."""
    out: list[PluginSource] = []
    bundled = bundled_dir()
    for folder in solver_dirs():
        source = "bundled" if bundled is not None and folder.resolve() == bundled.resolve() else "solver path"
        out += [PluginSource(str(path.resolve()), source, str(path)) for path in _plugin_files(folder)]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not _is_bundled_entry_point(ep):
            out.append(PluginSource(ep.value, "entry point", f"entry point {ep.name} ({ep.value})"))
    return out


def solver_classes_at(origin: str) -> list[type[Solver]]:
    """The solver classes of a plugin file, or the one class an entry point's ``module:Class`` names."""
    if origin.endswith(".py"):
        return _load_file(Path(origin))
    module_name, _, qualname = origin.partition(":")
    cls = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (inspect.isclass(cls) and issubclass(cls, Solver)):
        raise TypeError(f"{origin} is not a dispatchbench Solver subclass")
    return [checked(cls)]


def make_solver_from(origin: str, spec: str, overrides: dict[str, str] | None = None) -> Solver:
    """Instantiate ``spec`` from the plugin at ``origin`` (see :func:`plugin_origins`).

    ``overrides`` replace parameter values after parsing: a cell on a worker gets its model
    folder's local copy this way, while the spec keeps the path the user wrote."""
    name, params = parse_spec(spec)
    params.update(overrides or {})
    if ":" in origin:
        (cls,) = solver_classes_at(origin)
    else:  # a plugin file, or a bundled plugin's module: the class of that name in it
        found = _load_file(Path(origin)) if origin.endswith(".py") else _solver_classes(importlib.import_module(origin))
        classes = [c for c in found if c.name == name]
        if not classes:
            raise SolverNotFound(f"{origin} defines no solver named {name!r}")
        cls = classes[0]
    return instantiate(cls, name, params)


# ---- where a plugin's code came from, recorded on every row -------------------------------------


@dataclass(frozen=True)
class PluginProvenance:
    """Which code of a plugin answered a row: its file and that file's SHA-256 (bundled and
    solver-path plugins), or its distribution and version (entry points; with the hash of the
    module's file too when the distribution lists it). The git revision on a row says which
    toolkit ran, not which plugin: a plugin edited between two runs into the same folder would
    otherwise look the same, and ``run --resume`` would keep its stale rows."""

    source: str  # ``bundled``, ``solver path`` or ``entry point``
    origin: str  # the plugin's file, or the entry point's ``module:Class``
    sha256: str | None = None
    package: str | None = None
    version: str | None = None

    @property
    def identity(self) -> tuple[str | None, str | None, str | None]:
        """What must match for a stored row to count as this plugin's (not where it lies)."""
        return (self.sha256, self.package, self.version)

    def describe(self) -> str:
        """``file hash 1a2b3c4d`` or ``my-plugins 0.2.0``, for messages and the report."""
        parts = [f"{self.package} {self.version}"] if self.package else []
        if self.sha256:
            parts.append(f"file hash {self.sha256[:8]}")
        return ", ".join(parts) or "unknown"

    def columns(self) -> dict[str, str | None]:
        return {
            "plugin_source": self.source,
            "plugin_origin": self.origin,
            "plugin_sha256": self.sha256,
            "plugin_package": self.package,
            "plugin_version": self.version,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PluginProvenance | None:
        """A stored row's provenance; None for a row written before it was recorded."""
        if not row.get("plugin_source"):
            return None
        return cls(
            str(row["plugin_source"]),
            str(row.get("plugin_origin") or ""),
            row.get("plugin_sha256") or None,
            row.get("plugin_package") or None,
            row.get("plugin_version") or None,
        )


PROVENANCE_COLUMNS: tuple[str, ...] = (
    "plugin_source",
    "plugin_origin",
    "plugin_sha256",
    "plugin_package",
    "plugin_version",
)


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def plugin_provenance(origin: str) -> PluginProvenance:
    """The provenance of the plugin at ``origin`` (as :func:`plugin_origins` gives it), found
    without importing it: a file is hashed; an entry point's distribution comes from its
    metadata."""
    if origin.startswith(BUNDLED_PACKAGE + ".") and ":" not in origin:
        folder = bundled_dir()
        path = None if folder is None else folder / f"{origin.rsplit('.', 1)[1]}.py"
        return PluginProvenance("bundled", str(path or origin), None if path is None else _sha256_of(path))
    if origin.endswith(".py"):
        return PluginProvenance("solver path", origin, _sha256_of(Path(origin)))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value == origin and ep.dist is not None:
            return PluginProvenance(
                "entry point", origin, _module_file_hash(ep.dist, origin), ep.dist.name, ep.dist.version
            )
    return PluginProvenance("entry point", origin)


def _module_file_hash(dist: Distribution, origin: str) -> str | None:
    """SHA-256 of the file of the entry point's module when its distribution lists that file
    (a regular install does; an editable one lists only a path hook, and its version is all
    there is to compare)."""
    module = origin.partition(":")[0].replace(".", "/")
    for file in dist.files or ():
        if str(file) in (f"{module}.py", f"{module}/__init__.py"):
            return _sha256_of(Path(str(dist.locate_file(file))))
    return None
