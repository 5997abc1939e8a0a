"""An installable dispatchbench plugin: ``cheapest_first`` (docs/plugins.md), found through the
``dispatchbench.solvers`` entry point its pyproject.toml declares."""
