"""NLopt on the dispatch: a continuous solver per commitment, with a commitment strategy around it.

NLopt has no integer variables, so the on/off decisions are chosen outside it (``commitment``):

- ``enumerate`` (default): every on/off pattern whose capacity can serve the state
  (:func:`dispatchbench.formulations.vector_form.shortfall` = 0) is solved as a continuous problem, cheapest
  cost floor first, stopping once a pattern's floor exceeds the best evaluated answer (a valid
  bound, so no better pattern is skipped). Beyond ``max_patterns`` workable patterns (or 20
  groups) it falls back to ``greedy``.
- ``greedy``: start with every group on; repeatedly make the single on/off flip that most
  improves the evaluated answer, until none does. Beyond 20 groups flips are tried in a priority
  order and the first improving one is taken (a full pass costs one NLopt solve per group).
- ``all_on``: every group runs (what a user who ignores commitment would get).

Problems with more than ``max_groups`` groups are skipped with the reason (one SLSQP solve grows
as n³). Under a time limit the deadline is checked before every solve and the best feasible
answer so far is returned as ``feasible``, or ``timeout`` if there is none; each NLopt run gets
the time left (``set_maxtime``). ``info`` records the budget (``time_budget_s``) and whether it
struck (``stopped_at_budget``).

For one commitment the problem is compiled to NLopt's vector form
(:class:`dispatchbench.formulations.vector_form.VectorForm`) in one of two encodings:

- ``equality``: x = running groups' powers; ``Σ δ x = Σ d`` as an equality and the CS limits as
  inequalities, all with analytic gradients (SLSQP, COBYLA, AUGLAG).
- ``eliminate``: one running group (the widest) is solved from the balance, so only
  inequalities remain (its bounds and the CS limits). Used for algorithms that reject
  equalities or, like GN_ISRES, return points that miss them (stack-notes).

Every candidate NLopt returns is scored by the evaluator and the best evaluated one is kept;
an answer that violates a constraint is returned as it is, and scoring reports it infeasible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nlopt
import numpy as np

from dispatchbench.contract.solver import Answer, Capabilities, Label, Solver
from dispatchbench.contract.status import Status
from dispatchbench.formulations.vector_form import VectorForm, all_patterns, cost_floor, shortfall
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.evaluate import Evaluation, evaluate
from dispatchbench.model.problem import Problem, State

_TAKES_EQUALITY = {
    "LD_SLSQP",
    "LN_COBYLA",
    "AUGLAG",
    "AUGLAG_EQ",
    "LD_AUGLAG",
    "LD_AUGLAG_EQ",
    "LN_AUGLAG",
    "LN_AUGLAG_EQ",
    "GN_ISRES",
}
# GN_ORIG_DIRECT(_L) and GN_AGS also take inequalities, but ORIG_DIRECT ignored maxeval here and ran on.
_TAKES_INEQUALITY = _TAKES_EQUALITY | {"LD_MMA", "LD_CCSAQ"}
_AUGLAG = {"AUGLAG", "AUGLAG_EQ", "LD_AUGLAG", "LD_AUGLAG_EQ", "LN_AUGLAG", "LN_AUGLAG_EQ"}
_MISSES_EQUALITY = {"GN_ISRES"}  # accepts h(x) = 0 but returns points off it (stack-notes)
_RANDOM = {
    "GN_ISRES",
    "GN_CRS2_LM",
    "GN_ESCH",
    "GN_DIRECT_L_RAND",
    "GN_DIRECT_L_RAND_NOSCAL",
    "GD_STOGO_RAND",
    "G_MLSL",
    "GN_MLSL",
    "GD_MLSL",
}
_STRATEGIES = ("enumerate", "greedy", "all_on")
_ENCODINGS = ("auto", "equality", "eliminate")
_MAX_ENUMERATED_GROUPS = 20
# Every algorithm constant the installed nlopt defines (LD_SLSQP, GN_DIRECT_L, AUGLAG, ...).
_ALGORITHMS = tuple(
    sorted(
        k for k, v in vars(nlopt).items() if isinstance(v, int) and k.isupper() and k.startswith(("G", "L", "AUGLAG"))
    )
)
_C_INT_MAX = 2**31 - 1  # nlopt's counters are C ints: a larger value overflows in set_maxeval


def _short(algorithm: str) -> str:
    """``GN_DIRECT_L`` → ``DIRECT-L``: NLopt's prefix is the family, which the label states apart."""
    for prefix in ("GN_", "GD_", "LN_", "LD_", "G_"):
        if algorithm.startswith(prefix):
            algorithm = algorithm[len(prefix) :]
            break
    return algorithm.replace("_", "-")


def _family(algorithm: str) -> str:
    """NLopt's prefix read out: G/L global or local, N/D derivative-free or gradient-based."""
    scope = "global" if algorithm.startswith("G") else "local"
    derivatives = {"N": "derivative-free", "D": "gradient"}.get(algorithm[1:2])
    return f"{scope}, {derivatives}" if derivatives else scope


@dataclass
class _Candidate:
    """One NLopt result for one commitment, after the evaluator has seen it."""

    dispatch: Dispatch
    evaluation: Evaluation
    nlopt_result: str
    evaluations: int

    @property
    def key(self) -> tuple[bool, float]:
        ev = self.evaluation
        return (not ev.feasible, ev.cost if ev.feasible else ev.max_violation)


class NloptSolver(Solver):
    name = "nlopt"
    description = "NLopt per commitment (enumerate / greedy / all-on) on the continuous dispatch"
    parameters = {
        "algorithm": "LD_SLSQP",  # any nlopt algorithm taking constraints, or AUGLAG(+inner)
        "inner_algorithm": "LN_COBYLA",  # AUGLAG's subsidiary solver (e.g. GN_DIRECT_L, LD_LBFGS)
        "inner_maxeval": 500,  # evaluations per AUGLAG subproblem (a global inner needs a cap)
        "commitment": "enumerate",  # enumerate | greedy | all_on
        "max_patterns": 512,  # enumerate falls back to greedy beyond this many workable patterns
        "encoding": "auto",  # auto | equality | eliminate
        "starts": 1,  # NLopt runs per commitment: a balanced start, then uniform random ones
        "xtol_rel": 1e-10,
        "ftol_rel": 1e-12,
        "maxeval": 3000,  # evaluations per NLopt run
        "max_groups": 100,  # skip larger problems: one SLSQP solve took 6 s of CPU at 163 groups (docs)
        # per-state budget in seconds (0: none of its own, only the harness's limit): a study gives
        # it as a multiple of a learner's decision time (scip has the same parameter)
        "time_limit": 0.0,
    }
    parameter_ranges = {
        "inner_maxeval": (1, _C_INT_MAX),
        "max_patterns": (1, None),
        "starts": (1, 100_000),
        "xtol_rel": (0.0, 1.0),
        "ftol_rel": (0.0, 1.0),
        "maxeval": (1, _C_INT_MAX),
        "time_limit": (0.0, 1e9),
    }
    parameter_choices = {
        "algorithm": _ALGORITHMS,
        "inner_algorithm": _ALGORITHMS,
        "commitment": _STRATEGIES,
        "encoding": _ENCODINGS,
    }
    capabilities = Capabilities(exact=False, stochastic=False, learns=False, handles_commitment=True)
    test_settings = {"maxeval": 500}

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> Label:
        """``NLopt SLSQP``, ``NLopt AUGLAG+DIRECT-L``: AUGLAG is a wrapper, its inner solver searches."""
        algorithm = str(params.get("algorithm", cls.parameters["algorithm"]))
        if algorithm in _AUGLAG:
            inner = str(params.get("inner_algorithm", cls.parameters["inner_algorithm"]))
            return Label(f"NLopt {_short(algorithm)}+{_short(inner)}", _family(inner))
        return Label(f"NLopt {_short(algorithm)}", _family(algorithm))

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        for key in ("algorithm", "inner_algorithm"):
            if not hasattr(nlopt, str(p[key])) or not str(p[key]).isupper():
                raise ValueError(
                    f"solver 'nlopt': {key}={p[key]!r} is not an NLopt algorithm "
                    "(e.g. LD_SLSQP, LN_COBYLA, GN_ISRES, AUGLAG with inner_algorithm=GN_DIRECT_L)"
                )
        if p["algorithm"] not in _TAKES_INEQUALITY:
            raise ValueError(
                f"solver 'nlopt': {p['algorithm']} takes no constraints; use it as "
                f"algorithm=AUGLAG,inner_algorithm={p['algorithm']} or pick one of "
                f"{', '.join(sorted(_TAKES_INEQUALITY))}"
            )
        if p["commitment"] not in _STRATEGIES:
            raise ValueError(f"solver 'nlopt': commitment={p['commitment']!r}; choose one of {', '.join(_STRATEGIES)}")
        if p["encoding"] not in _ENCODINGS:
            raise ValueError(f"solver 'nlopt': encoding={p['encoding']!r}; choose one of {', '.join(_ENCODINGS)}")
        if p["encoding"] == "equality" and p["algorithm"] not in _TAKES_EQUALITY:
            raise ValueError(f"solver 'nlopt': {p['algorithm']} rejects equality constraints; use encoding=eliminate")
        if p["starts"] < 1 or p["maxeval"] < 1 or p["inner_maxeval"] < 1:
            raise ValueError("solver 'nlopt': starts, maxeval and inner_maxeval must be at least 1")
        # Per instance: only randomised algorithms (or random restarts) make the seed matter.
        uses_inner = p["algorithm"] in _AUGLAG
        random = p["algorithm"] in _RANDOM or (uses_inner and p["inner_algorithm"] in _RANDOM) or p["starts"] > 1
        self.capabilities = Capabilities(exact=False, stochastic=random, learns=False, handles_commitment=True)

    # ---- plugin API --------------------------------------------------------------------
    def skip(self, problem: Problem) -> str | None:
        """Too many groups for any commitment search to finish: say so instead of timing out.

        NLopt's dense SQP subproblems grow as n³: one all-on SLSQP solve took 0.7 s of CPU at 85
        groups, 5.9 s at 163 and had not converged after 29 s at 312, and a greedy pass needs one
        solve per group (docs/classical-backends.md, "Scale").
        """
        groups = len(problem.groups)
        if groups > self.params["max_groups"]:
            return (
                f"{groups} groups > max_groups={self.params['max_groups']}: one NLopt solve of the dispatch "
                f"grows as n^3 (6 s of CPU at 163 groups) and the commitment search needs one per group flip"
            )
        return None

    def solve(
        self, problem: Problem, states: Sequence[State], *, seed: int = 0, time_limit: float | None = None
    ) -> list[Answer]:
        time_limit = self.state_time_limit(time_limit)
        return [self._solve_state(problem, state, seed, time_limit) for state in states]

    @property
    def encoding(self) -> str:
        if self.params["encoding"] != "auto":
            return self.params["encoding"]
        algo, inner = self.params["algorithm"], self.params["inner_algorithm"]
        if algo not in _TAKES_EQUALITY or algo in _MISSES_EQUALITY:
            return "eliminate"
        # AUGLAG's penalty, minimised by a global inner solver, leaves the balance off by ~0.1-1 kW
        return "eliminate" if algo in _AUGLAG and inner.startswith("G") else "equality"

    # ---- commitment strategies ------------------------------------------------------------
    def _solve_state(self, problem: Problem, state: State, seed: int, time_limit: float | None) -> Answer:
        start = time.perf_counter()
        deadline = start + time_limit if time_limit else math.inf
        nlopt.srand(int(seed))  # per state, so an answer does not depend on which states came before
        rng = np.random.default_rng(int(seed))
        strategy = self.params["commitment"] if problem.commitment else "all_on"
        solved: dict[bytes, _Candidate] = {}

        def run(on: np.ndarray) -> _Candidate:
            key = on.tobytes()
            if key not in solved:
                solved[key] = self._solve_commitment(problem, state, on, rng, deadline)
            return solved[key]

        info: dict[str, Any] = {"strategy": strategy, "encoding": self.encoding, "time_budget_s": time_limit}
        n_groups = len(problem.groups)
        if strategy == "enumerate":
            if n_groups > _MAX_ENUMERATED_GROUPS:
                strategy = info["strategy"] = "greedy (too many groups to enumerate)"
            else:
                patterns = all_patterns(n_groups)
                workable = patterns[shortfall(problem, state, patterns) <= problem.tolerance(state)]
                info["patterns_workable"] = len(workable)
                if len(workable) > self.params["max_patterns"]:
                    strategy = info["strategy"] = f"greedy ({len(workable)} patterns > max_patterns)"
                else:
                    best = self._enumerate(problem, workable, run, deadline)
        if strategy.startswith("greedy"):
            best = self._greedy(problem, state, run, deadline)
        elif strategy == "all_on":
            best = run(np.ones(n_groups, dtype=bool))
        info.update(
            patterns_solved=len(solved),
            evaluations=sum(c.evaluations for c in solved.values()),
            nlopt_result=best.nlopt_result,
        )
        elapsed = time.perf_counter() - start
        ev = best.evaluation
        info["stopped_at_budget"] = time.perf_counter() > deadline or best.nlopt_result == "maxtime reached"
        if info["stopped_at_budget"]:
            info["time_limit_reached"] = True
            if not ev.feasible:  # nothing usable yet: a timeout, not an "infeasible" claim
                return Answer(
                    None,
                    Status.TIMEOUT,
                    f"time limit {time_limit:g} s reached after {len(solved)} commitments without a feasible answer",
                    elapsed,
                    info,
                )
            info["note"] = (
                f"time limit {time_limit:g} s reached after {len(solved)} commitments; best feasible answer so far"
            )
            return Answer(best.dispatch, Status.FEASIBLE, info["note"], elapsed, info)
        if not ev.feasible:
            return Answer(
                best.dispatch,
                Status.INFEASIBLE,
                f"NLopt's best answer violates {ev.worst} by {ev.max_violation:.3g} kW ({best.nlopt_result})",
                elapsed,
                info,
            )
        return Answer(best.dispatch, Status.FEASIBLE, "", elapsed, info)

    def _enumerate(
        self, problem: Problem, workable: np.ndarray, run: Callable[[np.ndarray], _Candidate], deadline: float
    ) -> _Candidate:
        """Cheapest cost floor first; stop when no remaining pattern can beat the best answer."""
        if len(workable) == 0:  # the state cannot be served: show what all-on gives
            return run(np.ones(len(problem.groups), dtype=bool))
        floors = cost_floor(problem, workable)
        best: _Candidate | None = None
        for k in np.argsort(floors, kind="stable"):
            if best is not None and (
                time.perf_counter() > deadline or (best.evaluation.feasible and floors[k] >= best.evaluation.cost)
            ):
                break
            cand = run(workable[k])
            if best is None or cand.key < best.key:
                best = cand
        return best

    def _greedy(
        self, problem: Problem, state: State, run: Callable[[np.ndarray], _Candidate], deadline: float
    ) -> _Candidate:
        """Single flips from all-on; unworkable patterns rank by their shortfall.

        Up to 20 groups every flip is tried and the best taken (best improvement). Beyond, a pass
        of G solves is too slow, so flips are tried in priority order — running groups by their
        average cost per delivered kW, dearest first, then stopped groups by marginal cost,
        cheapest first — and the first improving one is taken (first improvement). The deadline
        is checked before every solve, and the best answer seen so far is always returned.
        """
        tol = problem.tolerance(state)
        first_improvement = len(problem.groups) > _MAX_ENUMERATED_GROUPS

        def score(on: np.ndarray) -> tuple[Any, ...]:
            short = float(shortfall(problem, state, on)[0])
            if short > tol:
                return (2, short)
            cand = run(on)
            return (int(cand.key[0]), cand.key[1])

        current = np.ones(len(problem.groups), dtype=bool)
        current_score = score(current)
        improved = True
        while improved and time.perf_counter() <= deadline:
            improved, moves = False, []
            for g in self._flip_order(problem, run(current)) if first_improvement else range(len(current)):
                if time.perf_counter() > deadline:
                    break
                flipped = current.copy()
                flipped[g] = not flipped[g]
                flipped_score = score(flipped)
                if first_improvement and flipped_score < current_score:
                    current, current_score, improved = flipped, flipped_score, True
                    break
                moves.append((flipped_score, g, flipped))
            if not first_improvement and moves:
                best_score, _, best_on = min(moves, key=lambda m: (m[0], m[1]))
                if best_score < current_score:
                    current, current_score, improved = best_on, best_score, True
        return run(current)

    @staticmethod
    def _flip_order(problem: Problem, cand: _Candidate) -> list[int]:
        """Running groups dearest per delivered kW first, then stopped ones cheapest marginal first."""
        on, power = cand.dispatch.on, cand.dispatch.power
        delivered = np.maximum(power * problem.delivery, 1e-9)
        average = (problem.a * power**2 + problem.b * power + problem.c) / delivered
        marginal = problem.b / problem.delivery
        running = sorted(np.flatnonzero(on), key=lambda g: (-average[g], g))
        stopped = sorted(np.flatnonzero(~on), key=lambda g: (marginal[g], g))
        return [int(g) for g in running + stopped]

    # ---- one commitment ------------------------------------------------------------------
    def _solve_commitment(
        self, problem: Problem, state: State, on: np.ndarray, rng: np.random.Generator, deadline: float
    ) -> _Candidate:
        form = VectorForm.build(problem, state, on)
        ctol = 1e-3 * problem.tolerance(state)
        best: _Candidate | None = None
        evaluations = 0
        for k in range(self.params["starts"]):
            x0 = form.balanced_start() if k == 0 else rng.uniform(form.lb, form.ub)
            x, result, n_eval = self._optimize(form, x0, ctol, deadline)
            evaluations += n_eval
            dispatch = form.dispatch(problem, state, x)
            cand = _Candidate(dispatch, evaluate(problem, state, dispatch), result, 0)
            if best is None or cand.key < best.key:
                best = cand
            if time.perf_counter() > deadline:
                break
        best.evaluations = evaluations
        return best

    def _optimize(self, form: VectorForm, x0: np.ndarray, ctol: float, deadline: float) -> tuple[np.ndarray, str, int]:
        """One NLopt run from ``x0``; returns the powers of the running groups."""
        n = form.size
        free = np.ones(n, dtype=bool)
        eliminate = self.encoding == "eliminate" and n > 0
        if eliminate:
            slack = int(np.argmax(form.delivery * (form.ub - form.lb)))
            free[slack] = False
        # x = base + J z: identity on free groups; the slack absorbs the balance
        jac = np.eye(n)[:, free]
        base = np.zeros(n)
        if eliminate:
            jac[slack] = -form.delivery[free] / form.delivery[slack]
            base[slack] = form.demand.sum() / form.delivery[slack]
        m = int(free.sum())
        if m == 0:  # nothing left to choose: the balance (or nothing) fixes the point
            return base.copy(), "no free variables", 0
        expand = lambda z: base + jac @ z  # noqa: E731
        seen = {"n": 0, "best": None, "best_cost": math.inf}

        def objective(z: np.ndarray, grad: np.ndarray) -> float:
            x = expand(z)
            if grad.size:
                grad[:] = jac.T @ form.gradient(x)
            value = form.cost(x)
            seen["n"] += 1
            if value < seen["best_cost"] and form.violation(x) <= ctol:
                seen["best"], seen["best_cost"] = z.copy(), value
            return value

        def inequalities(result: np.ndarray, z: np.ndarray, grad: np.ndarray) -> None:
            x = expand(z)
            rows = [form.cs_limits(x)]
            jrows = [form.cs_jacobian @ jac]
            if eliminate:
                rows.append([form.lb[slack] - x[slack], x[slack] - form.ub[slack]])
                jrows.append(np.vstack([-jac[slack], jac[slack]]))
            result[:] = np.concatenate(rows)
            if grad.size:
                grad[:] = np.vstack(jrows)

        def equality(z: np.ndarray, grad: np.ndarray) -> float:
            if grad.size:
                grad[:] = jac.T @ form.delivery
            return form.balance(expand(z))

        opt = self._make_opt(m)
        opt.set_lower_bounds(form.lb[free])
        opt.set_upper_bounds(form.ub[free])
        opt.set_min_objective(objective)
        n_ineq = 2 * len(form.demand) + (2 if eliminate else 0)
        opt.add_inequality_mconstraint(inequalities, [ctol] * n_ineq)
        if not eliminate:
            opt.add_equality_constraint(equality, ctol)
        remaining = deadline - time.perf_counter()
        if math.isfinite(remaining):
            opt.set_maxtime(max(remaining, 1e-3))
        z0 = np.clip(x0[free], form.lb[free], form.ub[free])
        try:
            z = opt.optimize(z0)
            result = _RESULTS.get(opt.last_optimize_result(), str(opt.last_optimize_result()))
        except _NLOPT_FAILURES as exc:  # keep the best point NLopt had reached (its last iterate is lost)
            z = seen["best"] if seen["best"] is not None else z0
            result = f"NLopt {type(exc).__name__}" + (
                "; best point it had visited" if seen["best"] is not None else "; no point within the constraints"
            )
        return expand(np.asarray(z)), result, seen["n"]

    def _make_opt(self, m: int) -> nlopt.opt:
        p = self.params
        opt = nlopt.opt(getattr(nlopt, p["algorithm"]), m)
        opt.set_xtol_rel(p["xtol_rel"])
        opt.set_ftol_rel(p["ftol_rel"])
        opt.set_maxeval(p["maxeval"])
        if p["algorithm"] in _AUGLAG:
            inner = nlopt.opt(getattr(nlopt, p["inner_algorithm"]), m)
            inner.set_xtol_rel(p["xtol_rel"])
            inner.set_ftol_rel(p["ftol_rel"])
            inner.set_maxeval(p["inner_maxeval"])
            opt.set_local_optimizer(inner)
        return opt


# roundoff_limited, and the SWIG-wrapped std::runtime_error that tight tolerances can raise
_NLOPT_FAILURES = (nlopt.RoundoffLimited, RuntimeError, nlopt.exception)
_RESULTS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maxeval reached",
    nlopt.MAXTIME_REACHED: "maxtime reached",
}
