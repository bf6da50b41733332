"""`Batch`: the time-major batch every estimator reads, and its validity mask.

Every field is [T, B, ...]: T time steps (rows) of B columns (episodes, or env columns in
steps mode). `valid` marks the steps that happened; padding has reward 0. Terminated and
truncated stay apart: a time-limit cut is not a terminal state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Batch(NamedTuple):
    obs: jax.Array         # [T, B, obs_dim]  s_t
    action: jax.Array      # [T, B] (discrete) or [T, B, act_dim]: a_t as sampled (unclipped)
    log_prob: jax.Array    # [T, B]  log π_behaviour(a_t|s_t) at sampling time
    reward: jax.Array      # [T, B]  r_t (0 on padding)
    terminated: jax.Array  # [T, B]  bool: s_{t+1} is terminal
    truncated: jax.Array   # [T, B]  bool: the time limit cut the episode after step t
    valid: jax.Array       # [T, B]  bool: step t happened
    next_obs: jax.Array    # [T, B, obs_dim]  s_{t+1} (pre-reset), for bootstrapping
    dist: Any = None       # π_behaviour(·|s_t) as sampled, every leaf [T, B, ...] (None: not recorded)
    episode_t: Any = None  # [T, B] int32: index of step t within its episode, from the episode's reset
    #                        (steps mode, where episodes start anywhere in a column; None: the row
    #                        index, as in episodes mode where every column starts at row 0)


def broadcast_dist(dist: Any, batch_shape: tuple) -> Any:
    """Every leaf of a distribution broadcast to batch_shape + its event axis, so it can be
    stacked and split like the batch (DiagGaussian's state-independent log_std)."""
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, tuple(batch_shape) + x.shape[-1:]), dist)
