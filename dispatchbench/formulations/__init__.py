"""Compilers from the problem model to backends: the Pyomo model, the vector form for NLopt and
PSO, and the balancing searches (central and distributed) that make a plan feasible."""
