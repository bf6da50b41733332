"""The persistent XLA compilation cache: re-runs and multirun jobs skip compilation."""

from __future__ import annotations

import os

import jax


def enable_compilation_cache() -> str:
    """Persistent XLA cache, so re-runs and multirun jobs skip compilation."""
    path = os.environ.get("PGRUN_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "pgrun", "jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
