"""The bundled solver plugins, one file each; installed as ``dispatchbench.solvers``."""
