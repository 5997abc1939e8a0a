"""What plugin discovery checks of a solver class before it lists it.

A class that breaks the contract (a ``learns`` flag without ``fit``, a learner without its
budget, test settings for a parameter it does not have) would otherwise fail much later, in a
child process halfway through a run or in a report. Discovery reports it as a broken plugin
instead, with the first problem and its fix in one line.
"""

from __future__ import annotations

import inspect
from typing import Any

from dispatchbench.contract.learner import Learner
from dispatchbench.contract.solver import SPEC_NAME, Capabilities

CASTABLE = (str, int, float)  # bool is an int: the types ``contract.solver._cast`` turns spec text into


def contract_problems(cls: type[Any]) -> list[str]:
    """Every way ``cls`` breaks the plugin contract, each as ``what — fix: how``; empty when none."""
    found: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not SPEC_NAME.fullmatch(name):
        found.append(f"name {name!r} is not a spec name — fix: letters, digits, '_' or '-' only")
    if not isinstance(getattr(cls, "parameters", None), dict):
        found.append("parameters is not a dict — fix: parameters = {'key': default, ...}")
        return found
    if not isinstance(getattr(cls, "capabilities", None), Capabilities):
        found.append("capabilities is not a Capabilities — fix: capabilities = Capabilities(...)")
        return found
    for key, default in cls.parameters.items():
        if not isinstance(default, CASTABLE):
            found.append(
                f"parameter {key!r} defaults to {default!r}, which a spec's text cannot be cast to (the plugin "
                "would get a str) — fix: a str, int, float or bool default (0.0, '' or False for 'not given')"
            )
            break
    settings = getattr(cls, "test_settings", None)
    if not isinstance(settings, dict):
        found.append("test_settings is not a dict — fix: a dict of spec parameters, or leave it out")
    elif unknown := sorted(set(settings) - set(cls.parameters)):
        found.append(f"test_settings names {unknown[0]!r}, not a parameter — fix: use parameter names")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        found.append(f"{missing} not implemented — fix: define them (every solver: solve; a Learner: fit too)")
    learner = issubclass(cls, Learner)
    if cls.capabilities.learns and not learner:
        found.append("capabilities.learns is set but the class is no Learner — fix: subclass dispatchbench.Learner")
    if learner and not cls.capabilities.learns:
        found.append("a Learner must declare capabilities.learns=True — fix: Capabilities(learns=True, ...)")
    if learner:
        for attr in ("default_train_steps", "test_steps"):
            value = getattr(cls, attr, None)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                found.append(f"{attr} is {value!r} — fix: a positive number of training steps")
        if not isinstance(cls.parameters.get("model"), str):
            found.append("a Learner has no str parameter 'model' — fix: parameters = {'model': '', ...}")
    return found
