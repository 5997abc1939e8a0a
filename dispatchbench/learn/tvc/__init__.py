"""MADRL-TVC: multi-agent RL with target-value competition, one policy per type for any size.

The plugin is ``solvers/madrl_tvc.py``; its parts are the modules of this package, one idea each:

- ``hyperparameters.py``: the dataclass the spec parameters come from;
- ``curves.py``: each agent's own convex cost curve, fitted by NNLS to the bills it metered;
  ``offers.py``: the price response read off that curve;
- ``policy.py``: the commitment and move networks (one per type, or one per agent: ``share``) and
  their replay buffers; ``features.py``: what an agent hears after a clearing, as named ratios;
- ``team.py``: the agents together around one clearing; ``ledger.py``: messages per state;
- ``rounds.py``: the policy and move rounds (one mover per zone of regions); ``repair.py``: the
  repair by ratings; ``plans.py``: a plan's solo flips and hand-overs; ``decision.py``: a decision;
- ``competition.py``: the targets read from the plan search (``formulations/plan_search.py``:
  plans scored by the true team cost, nothing learned);
- ``accounting.py``: what training cost, counted like decisions (messages, true-cost evaluations);
- ``training.py``: the training loop (one problem, or generated instances of several sizes);
  ``model.py``: checkpoints, resume, loading to execute.

In short, every charger group is one agent that meters its own bills and fits its own convex cost
curve (never reading a cost coefficient), offers at a shared price from that curve (so offers are
monotone and the distributed price search meets every balance), and decides on/off with a
commitment network and moves with a move network on features that are ratios of its own ratings,
its own curve and its region — nothing grows with the number of regions, so one policy per group
type decides an instance of any size. Training sets every agent's targets by a competition of the
plans tried at each state, scored by the team's cost; ``share=agent`` keeps every agent's
networks its own (fully distributed: every exchange a counted message), ``share=type`` one central
copy per type (CTDE-like, labelled so), ``share=auto`` (the default) the first on one problem and
the second for any size. The design and why: ``docs/madrl-tvc.md``.
"""
