"""Running solvers: the plugin interface and discovery, scoring by the evaluator, the run
harness with its executors, the results store and the provenance stamped on every row."""
