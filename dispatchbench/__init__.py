"""dispatchbench: one EV charging-dispatch problem, many solvers, one evaluator."""

from .dispatch import Dispatch
from .evaluate import Evaluation, evaluate
from .problem import Group, GroupType, Problem, Region, State
from .problem_file import load_problem
from .state_file import load_states

__all__ = ["Dispatch", "Evaluation", "Group", "GroupType", "Problem", "Region", "State", "evaluate",
           "load_problem", "load_states"]
__version__ = "0.1.0"
