"""A predicate shared by every run of a vmapped program, for loops that stop early.

Under `jax.vmap`, a `lax.while_loop` whose condition differs between batch members runs
until the last member is done and wraps every carry in a select (a copy of its buffers per
iteration). `any_in_program(x)` is `jnp.any(x)` reduced over every vmapped axis too, so the
condition is one unbatched bool: no selects, and the loop stops when no run needs another
iteration. Loops that use it must leave a run's results unchanged by extra iterations
(padding rows that are masked out).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


@custom_vmap
def any_in_program(x: jax.Array) -> jax.Array:
    """any(x) over all its elements and over every vmapped axis it carries: bool []."""
    return jnp.any(x)


@any_in_program.def_vmap
def _any_over_batch(axis_size, in_batched, x):
    del axis_size, in_batched  # x's leading axis is the vmapped one
    return any_in_program(jnp.any(x, axis=0)), False
