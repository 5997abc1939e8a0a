"""Every solver plugin as ``dispatchbench solvers`` and ``dispatchbench.list_solvers()`` show it,
learned without importing one into the calling process.

Listing plugins means importing them, and an import is plugin code: it may hang, call
``sys.exit``, or print onto the stdout that ``solvers --json`` reserves for its JSON. So each
plugin file and entry point is imported in a child process of its own (:mod:`cell_child`, all
at once), under the start-up limit; the child's prints go to stderr. A plugin that fails, exits
or takes too long is listed as broken with the reason, and the others still list. The order of
discovery is kept: the first plugin of a name wins (bundled, solver path, entry points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dispatchbench.bench.cell_runner import describe_origins
from dispatchbench.bench.plugins import BrokenPlugin, Shadowed, plugin_sources, solver_path_problems
from dispatchbench.contract.limits import STARTUP_LIMIT_S


@dataclass
class Catalogue:
    """The plugins found (JSON-ready descriptions, sorted by name) and those that failed."""

    solvers: list[dict[str, Any]] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    shadowed: list[Shadowed] = field(default_factory=list)  # found, but an earlier plugin has the name
    path_problems: list[str] = field(default_factory=list)  # solver-path entries that are missing or files

    def warnings(self) -> list[str]:
        return self.path_problems + [s.warning() for s in self.shadowed]


def plugin_catalogue(startup_timeout: float = STARTUP_LIMIT_S) -> Catalogue:
    """Import every plugin in its own child under ``startup_timeout`` seconds and describe it.

    Each solver: ``name``, ``description``, ``parameters`` (defaults), ``parameter_ranges``,
    ``parameter_choices``, ``capabilities``, ``path_parameters``, ``source`` (``bundled``,
    ``solver path``, ``entry point``) and ``origin`` (the file, or ``module:Class``)."""
    sources = plugin_sources()
    described = describe_origins([s.origin for s in sources], startup_timeout) if sources else {}
    found: dict[str, dict[str, Any]] = {}
    broken: list[BrokenPlugin] = []
    shadowed: list[Shadowed] = []
    for source in sources:
        classes, why = described[source.origin]
        if classes is None:
            broken.append(BrokenPlugin(source.label, why))
            continue
        for cls in classes:
            origin = source.origin if source.source != "entry point" else f"{cls['module']}:{cls['qualname']}"
            entry = {k: v for k, v in cls.items() if k not in ("module", "qualname")}
            first = found.setdefault(cls["name"], {**entry, "source": source.source, "origin": origin})
            if first["origin"] != origin:
                shadowed.append(Shadowed(cls["name"], origin, source.source, first["origin"], first["source"]))
    return Catalogue([found[name] for name in sorted(found)], broken, shadowed, solver_path_problems())
