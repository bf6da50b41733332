"""Splitting one time-major batch into M equal minibatches, in a random order per epoch.

Two ways (`pgrun.offpolicy.splits_by_column` picks): whole columns (episodes in episode
mode; envs in steps mode, which keeps episode segments whole), or single transitions
(steps mode). Each minibatch stays a time-major [T', B', ...] array so the same losses apply:
columns give [T, B/M, ...], transitions [1, T·B/M, ...]. M = 1 keeps the batch as it is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def split_columns(key, tree, num_minibatches: int):
    """Leaves [T, B, ...] -> [M, T, B/M, ...] with the B columns permuted at random."""
    leaves = jax.tree_util.tree_leaves(tree)
    num_cols = leaves[0].shape[1]
    size = num_cols // num_minibatches
    perm = jax.random.permutation(key, num_cols) if num_minibatches > 1 else None

    def split(x):
        if perm is not None:
            x = jnp.take(x, perm, axis=1)
        x = x.reshape((x.shape[0], num_minibatches, size) + x.shape[2:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree_util.tree_map(split, tree)


def split_transitions(key, tree, num_minibatches: int):
    """Leaves [T, B, ...] -> [M, 1, T·B/M, ...] with the T·B transitions permuted at random."""
    leaves = jax.tree_util.tree_leaves(tree)
    n = leaves[0].shape[0] * leaves[0].shape[1]
    size = n // num_minibatches
    perm = jax.random.permutation(key, n) if num_minibatches > 1 else None

    def split(x):
        x = x.reshape((n,) + x.shape[2:])
        if perm is not None:
            x = jnp.take(x, perm, axis=0)
        return x.reshape((num_minibatches, 1, size) + x.shape[1:])

    return jax.tree_util.tree_map(split, tree)
