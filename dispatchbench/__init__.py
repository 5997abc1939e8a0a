"""dispatchbench: one EV charging-dispatch problem, many solvers, one evaluator.

The names here are the public surface:

* the plugin contract a solver file implements (``from dispatchbench import Answer,
  Capabilities, Dispatch, Solver``; learners ``Learner`` and ``FitReport``; ``Status``,
  ``Label`` and the documented ``AnswerInfo`` keys),
* the problem model and the evaluator (``load_problem``, ``load_states``, ``evaluate``, ...),
* the notebook API (``solve``, ``run``, ``load_results``, ``list_solvers``; see
  :mod:`dispatchbench.api`).

Everything else lives in the layer folders (model, contract, instances, formulations, learn,
bench, report) and may move. Names are imported on first use (PEP 562 module ``__getattr__``): every
plugin file starts with ``from dispatchbench import Solver``, and the harness imports plugins in
fresh processes, so an eager import of pandas, the harness and the report code here would be
paid once per plugin per process for nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Read by setuptools at build time (pyproject: dynamic version), so the wheel, ``--version`` and
# the ``dispatchbench_version`` column of every results row have one source.
__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Answer": "dispatchbench.contract.solver",
    "Capabilities": "dispatchbench.contract.solver",
    "Label": "dispatchbench.contract.solver",
    "Solver": "dispatchbench.contract.solver",
    "FitReport": "dispatchbench.contract.learner",
    "Learner": "dispatchbench.contract.learner",
    "Status": "dispatchbench.contract.status",
    "AnswerInfo": "dispatchbench.contract.info",
    "Dispatch": "dispatchbench.model.dispatch",
    "Evaluation": "dispatchbench.model.evaluate",
    "evaluate": "dispatchbench.model.evaluate",
    "Group": "dispatchbench.model.problem",
    "GroupType": "dispatchbench.model.problem",
    "Problem": "dispatchbench.model.problem",
    "Region": "dispatchbench.model.problem",
    "State": "dispatchbench.model.problem",
    "load_problem": "dispatchbench.api",  # bundled names too, as the CLI (model.problem_file: paths only)
    "load_states": "dispatchbench.api",
    "solve": "dispatchbench.api",
    "run": "dispatchbench.api",
    "load_results": "dispatchbench.api",
    "list_solvers": "dispatchbench.api",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dispatchbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # static checkers and IDEs see the names without the lazy import
    from dispatchbench.api import list_solvers, load_results, run, solve
    from dispatchbench.contract.info import AnswerInfo
    from dispatchbench.contract.learner import FitReport, Learner
    from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
    from dispatchbench.contract.status import Status
    from dispatchbench.model.dispatch import Dispatch
    from dispatchbench.model.evaluate import Evaluation, evaluate
    from dispatchbench.model.problem import Group, GroupType, Problem, Region, State
    from dispatchbench.model.problem_file import load_problem
    from dispatchbench.model.state_file import load_states
