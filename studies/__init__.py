"""Bundled study files (TOML) for ``dispatchbench reproduce``, read through importlib.resources."""
