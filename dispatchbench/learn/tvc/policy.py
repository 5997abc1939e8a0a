"""The commitment and move networks, shared by the agents of one group type (or one per agent).

``Q(f, u)`` says how much the team loses by each of an agent's two actions; ``M(f)`` how much the
team gains when the agent alone changes its mind (a solo flip) or starts so that another can
stop (a hand-over). Both read an agent's features after a clearing (``features.py``), whose
every column is a ratio — of the agent's own ratings, its own curve, its region — so nothing in
them grows with the number of regions, and their targets are per agent's share of the state's
cost (the best plan's team cost over the number of agents, ``competition.state_unit``), so a flip
is worth as much at 512 regions as at 4.

``share="type"``: one Q-network and one move network per group type (FDC, ASC, V2G), every agent
of the type running the same policy on its own features — one model for any instance of any
size. Training keeps **one central copy** of each type's networks, updated from every agent's
experience (a parameter server: the training is CTDE-like, and the model says so; execution
stays decentralised, each agent running its copy on what it hears).
``share="agent"``: one pair of networks per agent, trained only on that agent's own data (fully
distributed; better at the paper's size on validation states). ``share="auto"`` (the default,
:func:`resolved_share`): per agent on one problem, per type for any size.

A slice of stacked weights per network (``S`` slices: the types, or the agents); rows are routed
to their slice by an index, so one batched product serves every agent of every type.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from dispatchbench.learn.replay_buffer import ReplayBuffer
from dispatchbench.learn.tvc.features import N_FEATURES
from dispatchbench.learn.tvc.hyperparameters import Hyperparameters
from dispatchbench.model.problem import Problem

TYPES = ("FDC", "ASC", "V2G")  # the slices of share="type", in this order
SHARES = ("type", "agent")


def resolved_share(hp_share: str, *, any_size: bool) -> str:
    """``share=auto`` made concrete when training starts (what model.json then records)."""
    if hp_share != "auto":
        return hp_share
    return "type" if any_size else "agent"


def slice_index(problem: Problem, share: str) -> np.ndarray:
    """``(G,)`` which network slice each agent runs: its type's, or its own."""
    if share == "type":
        return np.array([TYPES.index(g.type.value) for g in problem.groups], dtype=np.int64)
    return np.arange(len(problem.groups), dtype=np.int64)


def slice_count(problem: Problem | None, share: str) -> int:
    return len(TYPES) if share == "type" else len(problem.groups) if problem is not None else 0


class SlicedLinear(nn.Module):
    """``S`` independent linear layers; row block ``n`` of the input uses slice ``index[n]``."""

    def __init__(self, slices: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / np.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(slices, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(slices, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``x (N, B, d_in)`` with ``index (N,)`` -> ``(N, B, d_out)``."""
        return torch.baddbmm(self.bias[index], x, self.weight[index])


class SlicedMLP(nn.Module):
    """Two hidden ReLU layers per slice."""

    def __init__(self, slices: int, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                SlicedLinear(slices, d_in, hidden),
                SlicedLinear(slices, hidden, hidden),
                SlicedLinear(slices, hidden, d_out),
            ]
        )

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = layer(x, index)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class PolicyNets(nn.Module):
    """The Q-networks (outputs: value of off, of on) and move networks (outputs: gain of a solo
    flip, of starting a hand-over), ``slices`` of each, and their optimiser."""

    def __init__(self, slices: int, hp: Hyperparameters) -> None:
        super().__init__()
        self.hp = hp
        self.q = SlicedMLP(slices, N_FEATURES, hp.q_hidden, 2)
        self.move = SlicedMLP(slices, N_FEATURES, hp.q_hidden, 2)
        self.opt = torch.optim.Adam(self.parameters(), lr=hp.q_lr)

    # ---- the unit of the targets --------------------------------------------------------
    def compress(self, value: np.ndarray) -> np.ndarray:
        """``sign(A)·log(1 + |A| / resolution)``: the sign is all a decision needs, and a V2G
        group that wastes a little when it runs idle must be told apart from a group whose stop
        breaks a balance; regressing raw values spends the network on the large ones. Monotone,
        so the best action keeps the highest value and the largest gain stays the largest."""
        return np.sign(value) * np.log1p(np.abs(value) / self.hp.advantage_resolution)

    def decompress(self, value: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`compress` (back to the agent's own unit)."""
        return np.sign(value) * np.expm1(np.abs(value)) * self.hp.advantage_resolution

    # ---- acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def values(self, features: np.ndarray, index: np.ndarray) -> np.ndarray:
        """``features (G, B, F)`` -> ``(G, B, 2)`` each agent's values of off / on (in the
        networks' own precision: double once loaded for execution, so batched and one-by-one
        decisions agree)."""
        return self._run(self.q, features, index)

    @torch.no_grad()
    def gains(self, features: np.ndarray, index: np.ndarray) -> np.ndarray:
        """``features (G, B, F)`` -> ``(G, B, 2)`` the learned team gains of a solo flip and of
        starting a hand-over, compressed (:meth:`decompress` gives the agent's own unit)."""
        return self._run(self.move, features, index)

    def _run(self, net: SlicedMLP, features: np.ndarray, index: np.ndarray) -> np.ndarray:
        dtype = next(net.parameters()).dtype
        return net(torch.as_tensor(features, dtype=dtype), torch.as_tensor(index)).numpy()

    # ---- learning -------------------------------------------------------------------------
    def update(self, plans: Mapping[int, dict[str, np.ndarray]], moves: Mapping[int, dict[str, np.ndarray]]) -> float:
        """One Adam step on mini-batches per slice (``{slice: {"features", "targets"|"gain",
        "mask"}}``): the masked squared error of every output that has a target, averaged per
        slice and summed over slices. Returns the loss."""
        loss = torch.zeros(())
        for net, batches, key in ((self.q, plans, "targets"), (self.move, moves, "gain")):
            if not batches:
                continue
            index = torch.as_tensor(sorted(batches))
            x = torch.as_tensor(np.stack([batches[s]["features"] for s in sorted(batches)]))
            y = torch.as_tensor(np.stack([batches[s][key] for s in sorted(batches)]))
            mask = torch.as_tensor(np.stack([batches[s]["mask"] for s in sorted(batches)]))
            err = mask * (net(x, index) - y) ** 2
            loss = loss + (err.sum((-1, -2)) / mask.sum((-1, -2)).clamp(min=1.0)).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.detach())


class Experience:
    """Replay buffers per network slice: commitment targets and move gains, each row with a mask
    of the outputs it has a target for (a counterfactual that was not tried has none)."""

    def __init__(self, slices: int, hp: Hyperparameters, seed: int) -> None:
        self.hp = hp
        self.shared = hp.share == "type"  # one central copy per type: every row is sent to the learner
        fields: dict[str, tuple[int, ...]] = {"features": (N_FEATURES,), "targets": (2,), "mask": (2,)}
        self.plans = [ReplayBuffer(hp.buffer_size, fields, seed + 2 * s) for s in range(slices)]
        move_fields: dict[str, tuple[int, ...]] = {"features": (N_FEATURES,), "gain": (2,), "mask": (2,)}
        self.moves = [ReplayBuffer(hp.buffer_size, move_fields, seed + 2 * s + 1) for s in range(slices)]

    def add(self, kind: str, index: np.ndarray, features: np.ndarray, values: np.ndarray, mask: np.ndarray) -> int:
        """Rows ``(N, ...)`` into the buffers of their slices ``index (N,)``; returns rows stored."""
        buffers, key = (self.plans, "targets") if kind == "plans" else (self.moves, "gain")
        for s in np.unique(index):
            rows = index == s
            buffers[s].add(features=features[rows], **{key: values[rows]}, mask=mask[rows])
        return len(index)

    def sample(self, kind: str) -> dict[int, dict[str, np.ndarray]]:
        buffers = self.plans if kind == "plans" else self.moves
        return {s: b.sample(self.hp.batch_size) for s, b in enumerate(buffers) if len(b)}

    def __len__(self) -> int:
        return sum(len(b) for b in self.plans)

    def state_dict(self) -> dict:
        return {"plans": [b.state_dict() for b in self.plans], "moves": [b.state_dict() for b in self.moves]}

    def load_state_dict(self, state: dict) -> None:
        for b, saved in zip(self.plans, state["plans"], strict=True):
            b.load_state_dict(saved)
        for b, saved in zip(self.moves, state["moves"], strict=True):
            b.load_state_dict(saved)
