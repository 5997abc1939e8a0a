"""MADRL-TVC's hyper-parameters: one dataclass, turned into the plugin's spec parameters.

Every field is a spec parameter (``madrl_tvc[q_lr=5e-4]``) with a declared range, checked when the
spec is parsed, and recorded in the trained model's ``model.json`` (``dispatchbench.learn.lifecycle``);
a resumed run and a loaded model read them back from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatchbench.learn.lifecycle import BISECTIONS, COUNT, FRACTION, NON_NEGATIVE, POSITIVE, ROUNDS, WIDTH


@dataclass
class Hyperparameters:
    # cost network (input-convex in the agent's own power)
    cost_knots: int = 8  # softplus ramps of the convex part
    cost_batch: int = 1024  # replay mini-batch of one cost-network fit (L-BFGS: slopes must be precise)
    cost_iterations: int = 25  # L-BFGS iterations per fit
    cost_every: int = 50  # training steps between fits (bills never change: the curve settles early)
    # commitment network
    q_hidden: int = 64
    q_lr: float = 1e-3
    gossip: int = 0  # after each update, rounds of parameter averaging with same-type ring neighbours (0: none)
    rounds: int = 2  # policy rounds per decision, each one clearing (after the trial clearing)
    moves: int = 3  # move rounds after them: the agent with the highest learned gain flips, one clearing each
    move_explore: float = 0.2  # training: chance per state and move round that a random agent moves instead
    advantage_clip: float = 20.0  # team advantages (≤ 0) in % of the state's best cost, clipped at −this
    advantage_resolution: float = 0.01  # % of cost below which targets stay linear (log-compressed above)
    # exploration and data
    warmup_states: int = 400  # states explored with uniform random actions before learning offers
    warmup_actions: int = 8  # random action profiles per warm-up state
    states_per_step: int = 8  # states visited per training step
    flip_prob: float = 0.05  # exploration: each agent flips its greedy on/off with this probability
    search_rounds: int = 8  # rounds of local search (solo flips + swaps) setting each state's targets
    max_flips: int = 64  # solo flips tried per state and round (a random subset when there are more agents)
    max_swaps: int = 64  # coordinated swaps tried per state and round (a random subset when more)
    train_search_iterations: int = 24  # bisection steps per level while training (ranking plans needs less)
    generated_share: float = 0.5  # training mixture: share of draws from generated training-seed days
    batch_size: int = 256
    updates_per_step: int = 4  # commitment-network updates per training step
    buffer_size: int = 50_000
    # execution
    table_points: int = 2049  # resolution of each agent's learned marginal-cost table
    search_iterations: int = 40  # bisection steps per level (bracket / 2^40, then exact interpolation)
    log_every: int = 100
    checkpoint_every: int = 1000


# Checked when a spec is parsed (``madrl_tvc[q_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES = {
    "cost_knots": WIDTH,
    "cost_batch": COUNT,
    "cost_iterations": COUNT,
    "cost_every": COUNT,
    "q_hidden": WIDTH,
    "q_lr": POSITIVE,
    "gossip": ROUNDS,
    "rounds": (1, ROUNDS[1]),
    "moves": ROUNDS,
    "move_explore": FRACTION,
    "advantage_clip": POSITIVE,
    "advantage_resolution": POSITIVE,
    "warmup_states": COUNT,
    "warmup_actions": COUNT,
    "states_per_step": COUNT,
    "flip_prob": FRACTION,
    "search_rounds": ROUNDS,
    "max_flips": NON_NEGATIVE,
    "max_swaps": NON_NEGATIVE,
    "train_search_iterations": BISECTIONS,
    "generated_share": FRACTION,
    "batch_size": COUNT,
    "updates_per_step": COUNT,
    "buffer_size": COUNT,
    "table_points": (2, 65_537),
    "search_iterations": BISECTIONS,
    "log_every": COUNT,
    "checkpoint_every": COUNT,
}
