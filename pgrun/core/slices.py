"""Loops over slices of a batch's time axis that stop after the last valid step.

A [T, B] episode batch is padding after each episode's end; on CPU, work on a whole
[500, 16] batch also spills the caches (activations and cotangents are MBs per layer).
`sliced_sum` runs a function on slices of about `rows` steps, adds up what it returns, and
stops at the first slice after which no run of the program has a valid step
(`any_in_program`: one bool over every vmapped run, so all seeds and sweep points stop
together). Slices never run add nothing, which is what padding adds when the function
masks it.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from pgrun.core.batching import any_in_program

# steps per slice: 2k rows ran 7% faster than 4k in steady state (CartPole, 64x64 MLP, 8 seeds)
ROWS = 2048


def time_slices(num_steps: int, num_episodes: int, rows: int) -> int:
    """The divisor k of num_steps whose slices (num_steps/k · num_episodes steps) are nearest `rows`."""
    divisors = [k for k in range(1, num_steps + 1) if num_steps % k == 0]
    return min(divisors, key=lambda k: abs(num_steps // k * num_episodes - rows))


def sliced_sum(fn: Callable, xs: Any, valid: jax.Array, rows: int = ROWS) -> Any:
    """Σ_slices fn(slice of xs): the pytree fn returns, summed (fn must add nothing for padding).

    xs: pytree of [T, B, ...] arrays; valid: [T, B] bool.  fn(xs slice) -> pytree of arrays.
    """
    T, B = valid.shape
    k = time_slices(T, B, rows)
    if k == 1:
        return fn(xs)
    size = T // k
    take = lambda i: jax.tree_util.tree_map(lambda x: jax.lax.dynamic_slice_in_dim(x, i * size, size), xs)  # noqa: E731
    # valid_from[i]: some step at or after slice i is valid
    valid_from = jnp.flip(jnp.cumsum(jnp.flip(valid.reshape(k, -1).any(axis=1)))) > 0

    def more(loop):
        i, _ = loop
        return (i < k) & any_in_program(valid_from[jnp.minimum(i, k - 1)])

    def body(loop):
        i, acc = loop
        return i + 1, jax.tree_util.tree_map(jnp.add, acc, fn(take(i)))

    zero = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(fn, take(0)))
    return jax.lax.while_loop(more, body, (jnp.int32(0), zero))[1]
