"""MADRL-TVC: fully distributed multi-agent RL with target-value competition.

The plugin is ``solvers/madrl_tvc.py``; its parts are the modules of this package, one idea each:

- ``hyperparameters.py``: the dataclass the spec parameters come from;
- ``cost_network.py``, ``commitment.py``: the networks (cost; commitment Q and move, gossip);
- ``agent.py``: one agent's buffers, scales and fits; ``offers.py``: the learned price response;
- ``features.py``: what an agent hears after a clearing, as named columns;
- ``team.py``: the agents together around one clearing; ``ledger.py``: messages per state;
- ``rounds.py``: the policy and move rounds; ``repair.py``: the repair by ratings;
  ``plans.py``: a plan's solo flips and hand-overs; ``decision.py``: a decision at execution;
- ``competition.py``: plans scored by the true team cost, and the targets read from them;
- ``training.py``: the training loop; ``model.py``: checkpoints, resume, loading to execute.

The design, and why it is shaped this way, is in ``docs/madrl-tvc.md``; in short, every charger
group is one agent that owns

- a **cost network** ``C_i(o_i, P_i)``: its own operating cost, learned from its own bills
  (the reward term a station measures itself), input-convex in its own power. At a shared price
  ``λ`` the agent offers ``argmin_P C_i(P) − λ·delivered(P)`` from its own learned marginal-cost
  curve, so offers are monotone in ``λ`` and the hierarchical distributed binary search
  (``dispatchbench.formulations.distributed_search``) meets every balance and CS limit exactly;
- a **commitment Q-network** ``Q_i(f_i, u)`` (``u`` = off/on) on what the agent can hear cheaply
  after a clearing (``features.FEATURE_NAMES``): its own observation and status, the regional and
  system prices relative to its own learned marginal-cost range, the output it would offer at its
  regional price and its learned margin there, its CS link's loading, whether the plan cleared
  and whether it would still be workable with the agent's own status flipped;
- a **move network** ``M_i(f_i)`` on the same features: the team gain of flipping its own status,
  and (stopped) of starting so that a running agent can stop (a hand-over).

A decision is a few clearings: everyone offers (a trial clearing); ``rounds`` times every agent
reads its features and picks on/off by its Q-network and the plan is cleared; then up to
``moves`` move rounds in which the one agent with the largest positive learned gain (a tree
maximum) moves and the plan is cleared again. The last plan is the answer. A plan that cannot
meet the balances is repaired by ratings before one more clearing.
``madrl_tvc[refine=3]`` ("TVC + local search", a separate row) adds up to ``refine`` rounds of
learned flip and hand-over tests priced on the agents' own cost networks.

**Target-value competition.** At every training state the team tries plans — the policy's own
(with exploration flips) and the local search around the best one so far: every solo flip and
coordinated swaps (one agent stops, another starts) — each cleared on the learned offers and
scored by the environment's team reward (the evaluator's cost; no agent sees a coefficient). The
plans compete; the best sets every agent's target: ``Q_i(f_i, u)`` regresses the team advantage
of the best tried plan in which agent ``i`` plays ``u``, relative to the best plan overall, in %
of that state's cost (so cheap night states weigh like busy days). That is the optimistic
independent learner's fixed point — its part of the best joint commitment — computed per state
rather than approached by hysteresis, and because features come from the clearings the agent
itself takes part in, the same network applies to states, days and demand levels it never saw.
The move network regresses, at every plan a move round starts from, the team gain of each solo
flip and of the best tried hand-over each stopped agent could start.

Nothing is shared: every agent has its own modules, optimisers, buffers and random generator, and
learns from its own features, its own bill and scalars heard from the clearing (prices, its CS
link's loading) and the team reward. No agent ever reads a cost coefficient.
"""
