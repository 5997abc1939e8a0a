"""The paper's hierarchical distributed binary search, executed by message passing.

``balancing.balance`` holds the search itself (two-level bisection over monotone responses);
every sum it takes goes through a *reducer*. This module supplies a reducer that computes those
sums the way agents that only talk to their neighbours would, and counts the messages they send:

- **within a region**, by default every agent sends its CS node one **bid** per decision — its
  response to the signal as a few numbers (a learned offer curve the agent published once, plus
  its on/off; or a shift response's centre and width) — and hears back one **setpoint** once the
  search ends (``within="bid"``, ``2G`` messages per decision). The CS node then evaluates its
  region's supply at any signal itself, so the bisection costs no messages inside a region: the
  market-clearing arrangement of a dispatch centre that collects supply bids. The older options
  make the agents answer every probe of the search: one scalar to and from the CS node per sum
  (``within="star"``) or average consensus on a ring through the region (``within="ring"``);
- **between regions** the CS nodes add their values over a spanning tree (``between="tree"``,
  the default: a convergecast to the root, then a broadcast of the total back down, so every CS
  node holds the same exact sum for ``2(n − 1)`` messages), or agree on it by average consensus
  on a CS-to-CS graph (``between="ring" | "line" | "complete"``, kept as options).

The tree is the binary heap on the CS nodes (node ``i`` reports to ``(i − 1) // 2``), depth
``⌈log₂ n⌉``; any spanning tree costs the same ``2(n − 1)`` messages, the shape only sets the
latency. Being exact, the default graph needs no tolerance and no rounds: a decision's message
count grows linearly with groups + regions. A team-wide sum or maximum of one number per agent
outside the search (used by TVC's repair and flip tests) costs one report per agent to its CS
node plus one tree sum (:meth:`DistributedSearch.sum_messages`).

Average consensus uses Metropolis weights ``W``; it runs a fixed number of rounds
``k = ceil(log(tol) / log(ρ))`` (``ρ`` = second-largest eigenvalue modulus of ``W``, a property
of the graph that every node can be told at design time), after which every node's estimate is
within ``tol`` (relative) of the true average. Each round every node sends its value to each
neighbour, so a consensus costs ``k · 2|E|`` messages — thousands of rounds as regions grow,
which is why it is no longer the default. Every CS node acts on its *own* estimate; the reducer
records when the nodes' estimates disagree on the sign (the only way a finite consensus could
send the bisection the wrong way).

Messages per decision (one state), for ``it`` bisection iterations per level:
``B + (2·it + 7) · M_region + (it + 4) · M_system`` where ``B`` is the bids and setpoints (``2G``
with bids, else 0), ``M_region`` one round of regional sums (bid: 0; star: ``2G``; ring:
``Σ_I k_I · 2|E_I|``) and ``M_system`` one CS-to-CS sum (tree: ``2(R − 1)``; consensus:
``k · 2|E_CS|``) — with the defaults ``2G + (it + 4)·2(R − 1)``
(see :meth:`DistributedSearch.messages_per_decision`). Counts are per state: a batch of ``B``
states runs the same protocol once per state, side by side, so each state is charged the same.
A message is one report from one node to a neighbour; a bid carries a handful of numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from dispatchbench.formulations.balancing import (
    Balanced,
    PriceResponse,
    Response,
    ShiftResponse,
    States,
    balance,
    state_bounds,
)
from dispatchbench.model.dispatch import Dispatch
from dispatchbench.model.problem import Problem

WITHIN = ("bid", "star", "ring")
BETWEEN = ("tree", "ring", "line", "complete")


@dataclass(frozen=True)
class CommGraph:
    """Who talks to whom: the communication topology inside regions and between CS nodes."""

    within: str = "bid"
    between: str = "tree"
    consensus_tol: float = 1e-12  # consensus options only; the star and the tree are exact

    def __post_init__(self) -> None:
        if self.within not in WITHIN:
            raise ValueError(f"within={self.within!r}: choose one of {', '.join(WITHIN)}")
        if self.between not in BETWEEN:
            raise ValueError(f"between={self.between!r}: choose one of {', '.join(BETWEEN)}")


def graph_edges(n: int, kind: str) -> list[tuple[int, int]]:
    """Undirected edges of a tree (binary heap), ring, line or complete graph on ``n`` nodes."""
    if n < 2:
        return []
    if kind == "tree":
        return [((i - 1) // 2, i) for i in range(1, n)]
    if kind == "complete":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    line = [(i, i + 1) for i in range(n - 1)]
    if kind == "ring" and n > 2:
        line.append((n - 1, 0))
    return line


@dataclass(frozen=True)
class Consensus:
    """Average consensus on one graph: the ``k``-round mixing matrix and its message cost."""

    n: int
    edges: tuple[tuple[int, int], ...]
    rounds: int
    mixing: np.ndarray  # (n, n) = W^rounds

    @classmethod
    def on(cls, n: int, edges: list[tuple[int, int]], tol: float) -> Consensus:
        w = np.zeros((n, n))
        degree = np.zeros(n, dtype=int)
        for i, j in edges:
            degree[i] += 1
            degree[j] += 1
        for i, j in edges:  # Metropolis–Hastings weights: symmetric, doubly stochastic
            w[i, j] = w[j, i] = 1.0 / (1 + max(degree[i], degree[j]))
        w[np.diag_indices(n)] = 1.0 - w.sum(1)
        if n < 2:
            return cls(n, tuple(edges), 0, np.eye(n))
        moduli = np.sort(np.abs(np.linalg.eigvalsh(w)))[::-1]
        rho = float(moduli[1])
        rounds = 1 if rho < 1e-15 else max(1, math.ceil(math.log(tol) / math.log(rho)))
        return cls(n, tuple(edges), rounds, np.linalg.matrix_power(w, rounds))

    @property
    def messages(self) -> int:
        return self.rounds * 2 * len(self.edges)

    def run(self, values: np.ndarray) -> np.ndarray:
        """Every node's estimate of the average after ``rounds`` rounds: ``(B, n) -> (B, n)``."""
        return values @ self.mixing.T


SMALL_TREE = 32  # nodes up to which a tree sum adds one message at a time (see ``TreeSum.run``)


@dataclass(frozen=True)
class TreeSum:
    """Exact sum over a spanning tree: convergecast to the root, broadcast back.

    Each non-root node sends its subtree's partial sum to its parent (``n − 1`` scalars); the
    root then sends the total down every edge (``n − 1`` more), so every node ends with the same
    number — no tolerance, no rounds, no disagreement to diagnose.
    """

    n: int
    parent: tuple[int, ...]  # parent[i] of every node but the root (node 0); children have larger ids

    @classmethod
    def on(cls, n: int) -> TreeSum:
        return _heap_tree(n)

    @property
    def messages(self) -> int:
        return 2 * max(self.n - 1, 0)

    @cached_property
    def _passes(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """The convergecast as vector steps: deepest level first, and within a level every
        node's higher-id child before its lower-id one, the order in which a node adds what its
        children send (so the sums are bit-for-bit those of one message at a time)."""
        child = np.arange(1, self.n)
        parent = np.asarray(self.parent, dtype=int)
        depth = np.zeros(self.n, dtype=int)
        for c in child:  # parents come first (smaller ids)
            depth[c] = depth[parent[c - 1]] + 1
        passes = []
        for level in range(int(depth.max(initial=0)), 0, -1):
            at = child[depth[child] == level]
            rank = np.zeros(len(at), dtype=int)  # 0 for a parent's highest-id child, 1 for the next...
            order = np.lexsort((-at, parent[at - 1]))
            sorted_parents = parent[at[order] - 1]
            starts = np.r_[0, np.flatnonzero(np.diff(sorted_parents)) + 1]
            rank[order] = np.arange(len(at)) - np.repeat(starts, np.diff(np.r_[starts, len(at)]))
            for r in range(int(rank.max(initial=-1)) + 1):  # each step touches a parent once
                step = at[rank == r]
                passes.append((step, parent[step - 1]))
        return tuple(passes)

    def run(self, values: np.ndarray) -> np.ndarray:
        """``(B, n)`` node values -> ``(B,)`` their sum, added up the tree (leaves first).

        Up to ``SMALL_TREE`` nodes one message at a time is fastest; beyond, the vector passes on
        node-major rows (the clearing of a 512-region plan: 0.6 ms a sum one by one, 0.06 ms so).
        Both add the same numbers in the same order."""
        if self.n <= SMALL_TREE:
            return self.run_message_by_message(values)
        rows = np.array(np.moveaxis(np.asarray(values, dtype=float), -1, 0), order="C")  # (n, B)
        for children, parents in self._passes:
            rows[parents] += rows[children]
        return rows[0]

    def run_message_by_message(self, values: np.ndarray) -> np.ndarray:
        """:meth:`run` as the stations send it: every child, highest id first, adds its subtree's
        sum into its parent's (``benchmarks/bench_tree_sums.py`` times it against the passes)."""
        partial = np.array(values, dtype=float, copy=True)
        for child in range(self.n - 1, 0, -1):  # a child's id exceeds its parent's: leaves first
            partial[..., self.parent[child - 1]] += partial[..., child]
        return partial[..., 0]


@lru_cache(maxsize=64)
def _heap_tree(n: int) -> TreeSum:
    """One shared (immutable) tree per size, so its vector passes are worked out once."""
    return TreeSum(n, tuple((i - 1) // 2 for i in range(1, n)))


def region_slots(problem: Problem) -> np.ndarray:
    """``(R, K)``: each region's group indices, padded with ``G`` (an index one past the last
    group, for a column the caller appends: 0 to sum, ``inf`` to take a minimum)."""
    region = np.asarray(problem.group_region, dtype=int)
    order = np.argsort(region, kind="stable")  # every region's groups, in group order
    counts = np.bincount(region, minlength=len(problem.regions))
    slots = np.full((len(problem.regions), int(counts.max(initial=0))), len(problem.groups), dtype=int)
    place = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    slots[region[order], place] = order
    return slots


@dataclass
class ConsensusReducer:
    """The sums of :func:`balancing.balance`, computed by neighbour-to-neighbour messages."""

    problem: Problem
    graph: CommGraph
    messages: int = 0
    sign_disagreements: int = 0
    _regions: list[np.ndarray] = field(init=False, repr=False)
    _region_consensus: list[Consensus | None] = field(init=False, repr=False)
    _system: Consensus | TreeSum = field(init=False, repr=False)
    _slots: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p = self.problem
        self._regions = [np.flatnonzero(p.group_region == r) for r in range(len(p.regions))]
        if self.graph.within == "ring":  # the region's agents and its CS node (last) on one ring
            self._region_consensus = [
                Consensus.on(len(idx) + 1, graph_edges(len(idx) + 1, "ring"), self.graph.consensus_tol)
                for idx in self._regions
            ]
        else:
            self._region_consensus = [None for _ in self._regions]
        self._slots = None if self.graph.within == "ring" else region_slots(p)
        n = len(p.regions)
        self._system = (
            TreeSum.on(n)
            if self.graph.between == "tree"
            else Consensus.on(n, graph_edges(n, self.graph.between), self.graph.consensus_tol)
        )

    # ---- message cost of one call --------------------------------------------------------
    @property
    def regional_messages(self) -> int:
        """Messages of one round of regional sums (0 with bids: the CS node evaluates them)."""
        if self.graph.within == "bid":
            return 0
        return sum(2 * len(idx) if c is None else c.messages for idx, c in zip(self._regions, self._region_consensus))

    @property
    def bid_messages(self) -> int:
        """Per decision: every agent's bid to its CS node and the setpoint it hears back."""
        return 2 * len(self.problem.groups) if self.graph.within == "bid" else 0

    @property
    def system_messages(self) -> int:
        return self._system.messages

    @property
    def system_rounds(self) -> int:
        """Rounds of one CS-to-CS consensus (0 for the tree: one pass up, one down)."""
        return getattr(self._system, "rounds", 0)

    # ---- the Reducer protocol --------------------------------------------------------------
    def regional(self, power: np.ndarray) -> np.ndarray:
        delivered = power * self.problem.delivery
        if self._slots is not None:  # bid or star everywhere: each CS node adds its agents' outputs
            self.messages += self.regional_messages
            padded = np.concatenate([delivered, np.zeros(delivered.shape[:-1] + (1,))], -1)
            return padded[..., self._slots].sum(-1)
        out = np.empty(delivered.shape[:-1] + (len(self._regions),))
        for r, (idx, cons) in enumerate(zip(self._regions, self._region_consensus)):
            assert cons is not None  # ring within regions (no slots): every region has its consensus
            # ring: the CS node (value 0) reads the sum off its own average estimate
            values = np.concatenate([delivered[..., idx], np.zeros(delivered.shape[:-1] + (1,))], axis=-1)
            out[..., r] = cons.run(values)[..., -1] * cons.n
        self.messages += self.regional_messages
        return out

    def system(self, per_region: np.ndarray) -> np.ndarray:
        self.messages += self.system_messages
        if isinstance(self._system, TreeSum):  # exact: every CS node holds the root's total
            return self._system.run(per_region)
        n = self._system.n
        estimates = self._system.run(per_region) * n  # every CS node's estimate of the sum
        # Diagnostic only (the simulation knows the exact sum, the nodes do not): consensus
        # guarantees |estimate − sum| <= n·tol·||x − mean||, so nodes whose signs differ while the
        # exact sum lies outside that band mean the consensus did not converge.
        spread = np.linalg.norm(per_region - per_region.mean(-1, keepdims=True), axis=-1)
        owed = np.abs(per_region.sum(-1)) > n * self.graph.consensus_tol * spread + 1e-12
        signs = np.sign(estimates)
        self.sign_disagreements += int(np.sum(owed & (signs.min(-1) != signs.max(-1))))
        return estimates[..., 0]  # node 0's view drives the (shared) bisection step


@dataclass(frozen=True)
class SearchResult:
    """Balanced powers and imports plus what the distributed execution cost."""

    balanced: Balanced
    messages: int  # scalars sent per decision (per state)
    consensus_rounds: int  # rounds of one CS-to-CS consensus (0 with the exact tree)
    sign_disagreements: int  # bisection steps where CS nodes disagreed on sign(δ): 0 when exact or converged

    @property
    def feasible(self) -> np.ndarray:
        return self.balanced.feasible

    def row(self, k: int) -> SearchResult:
        """Row ``k`` of a batch as a batch of one (its messages are already per state)."""
        return self.take(np.array([k]))

    def take(self, rows: np.ndarray) -> SearchResult:
        """Rows ``rows`` of a batch as a batch of their own (messages are already per state)."""
        b = self.balanced
        some = Balanced(
            power=b.power[rows],
            imports=b.imports[rows],
            system_signal=b.system_signal[rows],
            region_signal=b.region_signal[rows],
            feasible=b.feasible[rows],
            outer_iterations=b.outer_iterations,
            inner_iterations=b.inner_iterations,
        )
        return SearchResult(some, self.messages, self.consensus_rounds, self.sign_disagreements)

    def with_rows(self, rows: np.ndarray, other: SearchResult) -> SearchResult:
        """This batch with rows ``rows`` replaced by ``other``'s (one row each, in order): what a
        batch looks like after only some of its states were cleared again."""
        b, o = self.balanced, other.balanced
        if not len(rows):
            return self

        def put(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
            out = mine.copy()
            out[rows] = theirs
            return out

        merged = Balanced(
            power=put(b.power, o.power),
            imports=put(b.imports, o.imports),
            system_signal=put(b.system_signal, o.system_signal),
            region_signal=put(b.region_signal, o.region_signal),
            feasible=put(b.feasible, o.feasible),
            outer_iterations=b.outer_iterations,
            inner_iterations=b.inner_iterations,
        )
        return SearchResult(
            merged, self.messages, self.consensus_rounds, self.sign_disagreements + other.sign_disagreements
        )

    def dispatch(self, problem: Problem, on: np.ndarray, row: int = 0) -> Dispatch:
        """Row ``row`` of the batch as a :class:`Dispatch` with the given commitment."""
        on_row = np.broadcast_to(np.asarray(on, dtype=bool), self.balanced.power.shape)[row]
        if not problem.commitment:
            on_row = np.ones_like(on_row)
        return Dispatch(
            on=on_row.copy(), power=self.balanced.power[row].copy(), imports=self.balanced.imports[row].copy()
        )


class DistributedSearch:
    """The hierarchical distributed binary search for one problem and communication graph."""

    def __init__(self, problem: Problem, graph: CommGraph | None = None, iterations: int = 60) -> None:
        self.problem = problem
        self.graph = graph or CommGraph()
        self.iterations = iterations
        probe = ConsensusReducer(problem, self.graph)
        self._regional_messages, self._system_messages = probe.regional_messages, probe.system_messages
        self._bid_messages = probe.bid_messages

    def messages_per_decision(self) -> int:
        """The documented message count of one run (see the module docstring)."""
        it = self.iterations
        return self._bid_messages + (2 * it + 7) * self._regional_messages + (it + 4) * self._system_messages

    @property
    def sum_messages(self) -> int:
        """Messages for one team-wide sum (or maximum) of one number per agent, outside the
        search: every agent reports to its CS node (one message each; with star or ring, one
        round of regional sums), then one CS-to-CS sum. What a learner pays when its agents add
        up estimates or pick the agent with the largest value."""
        regional = len(self.problem.groups) if self.graph.within == "bid" else self._regional_messages
        return regional + self._system_messages

    @property
    def system_sum_messages(self) -> int:
        """Messages for one CS-to-CS sum or maximum of one number per CS node (the tree)."""
        return self._system_messages

    def run(self, state: States, response: Response) -> SearchResult:
        reducer = ConsensusReducer(self.problem, self.graph)
        balanced = balance(self.problem, state, response, iterations=self.iterations, reducer=reducer)
        return SearchResult(
            balanced, reducer.messages + reducer.bid_messages, reducer.system_rounds, reducer.sign_disagreements
        )

    def project(self, state: States, on: np.ndarray, center: np.ndarray) -> SearchResult:
        """Close the balances by shifting proposed powers ``center`` (each agent moves by the same
        kW signal, clipped to its own range): the Euclidean projection used by the learners.
        ``on`` and ``center`` are ``(G,)`` or ``(B, G)``; ``state`` one state or one per row."""
        on, center = self._rows(on, center)
        lb, ub = state_bounds(self.problem, state, len(center))
        if not self.problem.commitment:
            on = np.ones_like(on)
        response = ShiftResponse(
            center=np.clip(center, lb, ub), lb=lb, ub=ub, on=on, width=np.ones(len(self.problem.groups))
        )
        return self.run(state, response)

    def price(self, state: States, on: np.ndarray) -> SearchResult:
        """λ-iteration: each running group answers the shared price with its cost-minimising output.
        Reads the cost coefficients, so it is a classical reference, never part of a learner."""
        (on,) = self._rows(on)
        lb, ub = state_bounds(self.problem, state, len(on))
        if not self.problem.commitment:
            on = np.ones_like(on)
        p = self.problem
        return self.run(state, PriceResponse(a=p.a, b=p.b, delivery=p.delivery, lb=lb, ub=ub, on=on))

    def _rows(self, *arrays: np.ndarray) -> list[np.ndarray]:
        out = [np.atleast_2d(np.asarray(a)) for a in arrays]
        out[0] = out[0].astype(bool)
        for a in out[1:]:
            if a.shape != out[0].shape and a.shape[-1] != len(self.problem.groups):
                raise ValueError(f"expected (B, {len(self.problem.groups)}) arrays, got {a.shape}")
        return [np.broadcast_to(a, np.broadcast_shapes(*(x.shape for x in out))).copy() for a in out]
