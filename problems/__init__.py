"""Bundled problem files (TOML) and state files (CSV), read through importlib.resources."""
