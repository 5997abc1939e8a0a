"""dispatchbench: one EV charging-dispatch problem, many solvers, one evaluator.

The names here are the public surface: the problem model and evaluator, and the plugin
interface a solver file implements (``from dispatchbench import Answer, Capabilities, Dispatch,
Solver``). Everything else lives in the layer folders (model, instances, formulations, learn,
bench, report) and may move.
"""

from dispatchbench.bench.solver_api import Answer, Capabilities, FitReport, Solver
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import Evaluation, evaluate
from dispatchbench.model.problem import Group, GroupType, Problem, Region, State
from dispatchbench.model.problem_file import load_problem
from dispatchbench.model.state_file import load_states

__all__ = ["Answer", "Capabilities", "Dispatch", "Evaluation", "FitReport", "Group", "GroupType", "Problem",
           "Region", "Solver", "State", "evaluate", "load_problem", "load_states"]
__version__ = "0.1.0"
