"""Means over the valid steps of a padded batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(x: jax.Array, valid: jax.Array) -> jax.Array:
    """(1/n) Σ valid·x over every axis, n = max(Σ valid, 1) (an all-padding batch gives 0).

    x: [...] floats; valid: same shape, bool or 0/1 floats.  -> scalar.
    """
    v = valid.astype(x.dtype)
    return jnp.sum(x * v) / jnp.maximum(jnp.sum(v), 1.0)
