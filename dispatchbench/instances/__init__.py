"""Generated instances and state families: problems and days beyond the paper's one.

``generate_problem`` (N regions from the paper's perturbed groups), ``state_families`` (days of
96 intervals of several shapes, and random states), ``state_repair`` (how a drawn state is made
feasible) and ``protocol`` (which seeds are training, validation and test). See
``docs/generator.md`` and ``docs/protocol.md``.
"""
