"""Limits and defaults that several commands check against, each defined once.

The CLI, the Python API, the harness and the results store used to carry their own copies of
these numbers; a limit that two places spell can drift into two limits."""

from __future__ import annotations

MAX_TRAIN_STEPS = 10**9  # training steps per `train`: far beyond any budget in the studies; more is a typo
SEED_MAX = 2**32 - 1  # numpy's generators take 32-bit seeds; every seed option is 0..SEED_MAX
MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week per state or call: beyond it a limit is a typo (and overflows timers)
DEFAULT_TIMEOUT_S = 60.0  # the harness's hard limit per state when none is given
STARTUP_LIMIT_S = 180.0  # importing a backend (torch, pyomo) and loading a model, before any state
