"""MADRL-TVC's hyper-parameters: one dataclass, turned into the plugin's spec parameters.

Every field is a spec parameter (``madrl_tvc[q_lr=5e-4]``) with a declared range or choices,
checked when the spec is parsed, and recorded in the trained model's ``model.json``
(``dispatchbench.learn.lifecycle``); a resumed run and a loaded model read them back from there.
Defaults were chosen on validation states (``docs/madrl-tvc.md``, "Settings and why").
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatchbench.learn.lifecycle import BISECTIONS, COUNT, FRACTION, NON_NEGATIVE, POSITIVE, ROUNDS, WIDTH


@dataclass
class Hyperparameters:
    # policy networks
    # "type": one commitment and one move network per group type, a central copy (CTDE-like; any
    # size); "agent": every agent its own (fully distributed); "auto": "agent" when trained on one
    # problem whole (the paper size's 580 validation states, seed 0, 1500 steps: agent 0.0072 %
    # mean, worst 0.98 %; type 0.015 %, worst 1.8 %), "type" for any size and on pieces of one
    # problem (``piece_regions``: per-agent networks cannot be cut into pieces)
    share: str = "auto"
    q_hidden: int = 64
    q_lr: float = 1e-3
    rounds: int = 2  # policy rounds per decision, each one clearing (after the trial clearing)
    moves: int = 3  # move rounds after them, one clearing each
    zone_regions: int = 8  # move rounds: one mover per block of this many regions (the whole system up to it)
    move_explore: float = 0.2  # training: chance per state and move round that a random agent moves instead
    drop: str = ""  # ablation: features read as 0 ("flip_workable", "cover", "handover_saving", or "+"-joined)
    # targets: team advantages per agent's share of the state's cost (its best team cost / agents)
    advantage_clip: float = 2.0  # advantages (≤ 0) clipped at −this many shares (an unworkable plan: −clip)
    advantage_resolution: float = 1e-3  # shares below which targets stay linear (log-compressed above)
    # cost curves (each agent meters its own bill: a one-off calibration)
    cost_knots: int = 8  # softplus ramps of the convex part
    calibration_points: int = 17  # own bills metered per agent, evenly over its running range
    # exploration, counterfactuals and data
    states_per_step: int = 8  # states visited per training step
    flip_prob: float = 0.05  # exploration: each agent flips its greedy on/off with this probability
    search_rounds: int = 6  # rounds of local search around each state's best plan
    max_flips: int = 48  # solo flips tried per plan and round (a sample when there are more agents)
    max_swaps: int = 32  # coordinated swaps (one stops, one starts) tried per plan and round
    train_search_iterations: int = 24  # bisection steps per level while training (ranking plans needs less)
    generated_share: float = 0.5  # training mixture: share of draws from generated training-seed days
    instances_per_size: int = 8  # --generated: training instances per size (generator seeds from the training split)
    # one problem of more regions than this: train on pieces of it (random sets of 4, 8, ... up to
    # this many of its regions, ``learn/pieces.py``, instances_per_size of each) with share=auto
    # or type, then decide it whole; 0: always train the whole problem. Chosen on
    # generate_problem(128, 1000), 70 validation states, seed 0: whole (share=agent, 50 steps in
    # 840 s) 8.8 % mean; pieces up to 32 regions (1,500 steps, 527 s) 1.72 %; up to 64 (1,500
    # steps, 1,100 s) 2.3 %; up to 32 with 2,400 steps 1.83 %, with a whole-problem step every 50th 2.1 %
    piece_regions: int = 32
    batch_size: int = 256
    updates_per_step: int = 4  # network updates per training step
    buffer_size: int = 100_000  # rows per replay buffer (one per network slice)
    # execution
    table_points: int = 2049  # resolution of each agent's marginal-cost table
    search_iterations: int = 40  # bisection steps per level (bracket / 2^40, then exact interpolation)
    log_every: int = 100
    checkpoint_every: int = 1000


# Checked when a spec is parsed (``madrl_tvc[q_lr=0]`` stops before any work).
HYPERPARAMETER_RANGES = {
    "q_hidden": WIDTH,
    "q_lr": POSITIVE,
    "rounds": (1, ROUNDS[1]),
    "moves": ROUNDS,
    "zone_regions": COUNT,
    "move_explore": FRACTION,
    "advantage_clip": POSITIVE,
    "advantage_resolution": POSITIVE,
    "cost_knots": WIDTH,
    "calibration_points": (3, WIDTH[1]),
    "states_per_step": COUNT,
    "flip_prob": FRACTION,
    "search_rounds": ROUNDS,
    "max_flips": COUNT,
    "max_swaps": NON_NEGATIVE,
    "train_search_iterations": BISECTIONS,
    "generated_share": FRACTION,
    "instances_per_size": COUNT,
    "piece_regions": NON_NEGATIVE,
    "batch_size": COUNT,
    "updates_per_step": COUNT,
    "buffer_size": COUNT,
    "table_points": (2, 65_537),
    "search_iterations": BISECTIONS,
    "log_every": COUNT,
    "checkpoint_every": COUNT,
}
HYPERPARAMETER_CHOICES = {
    "share": ("auto", "type", "agent"),
    "drop": (
        "",
        "flip_workable",
        "cover",
        "handover_saving",
        "flip_workable+cover",
        "flip_workable+cover+handover_saving",
    ),
}


def dropped(hp: Hyperparameters) -> frozenset[str]:
    """The features an ablation switches off."""
    return frozenset(name for name in hp.drop.split("+") if name)
