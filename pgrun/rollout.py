"""Sampling episodes inside jit: a `lax.scan` over time for a batch of envs.

`Batch` is time-major: every field is [T, B, ...]. In episode mode each of the B columns
is one whole episode started at t = 0 and run to termination or the time limit T; steps
after the end are padding with valid = False (and reward 0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pgrun.envs import reset, step


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


def broadcast_dist(dist, batch_shape: tuple):
    """Every leaf of a distribution broadcast to batch_shape + its event axis, so it can be
    stacked and split like the batch (DiagGaussian's state-independent log_std)."""
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, tuple(batch_shape) + x.shape[-1:]), dist)


def action_clipper(action_space):
    """Clip actions to a Box space's bounds when stepping the env (not in the log-prob)."""
    if isinstance(action_space, spaces.Box):
        low = jnp.asarray(np.broadcast_to(action_space.low, action_space.shape), jnp.float32)
        high = jnp.asarray(np.broadcast_to(action_space.high, action_space.shape), jnp.float32)
        return lambda a: jnp.clip(a, low, high)
    return lambda a: a


def rollout_episodes(env, env_params, policy, params, key, num_episodes: int, max_steps: int) -> Batch:
    """Sample `num_episodes` episodes of at most `max_steps` steps with π_params.

    Returns a Batch of shape [max_steps, num_episodes, ...].
    """
    clip = action_clipper(env.action_space)
    k_reset, k_steps = jax.random.split(key)
    state, obs = jax.vmap(lambda k: reset(env, env_params, k))(jax.random.split(k_reset, num_episodes))
    alive = jnp.ones((num_episodes,), bool)

    def body(carry, xs):
        state, obs, alive = carry
        t, k_act, k_env = xs
        dist = policy.dist(params, obs)
        action = dist.sample(k_act)
        log_prob = dist.log_prob(action)
        env_keys = jax.random.split(k_env, num_episodes)
        out = jax.vmap(lambda s, a, ke: step(env, env_params, s, a, ke, t, max_steps))(
            state, clip(action), env_keys)
        record = Batch(
            obs=obs, action=action, log_prob=log_prob,
            reward=jnp.where(alive, out.reward, 0.0),
            terminated=out.terminated & alive, truncated=out.truncated & alive,
            valid=alive, next_obs=out.obs, dist=broadcast_dist(dist, (num_episodes,)),
        )
        # an ended episode's env is frozen, so padding stays finite however long the limit
        state_next = jax.tree_util.tree_map(
            lambda new, old: jnp.where(alive.reshape(alive.shape + (1,) * (new.ndim - 1)), new, old),
            out.state, state)
        obs_next = jnp.where(alive[:, None], out.obs, obs)
        alive = alive & ~(out.terminated | out.truncated)
        return (state_next, obs_next, alive), record

    # every step's keys split up front: a split inside the loop body is itself a small loop
    k_act, k_env = jax.random.split(k_steps)
    xs = (jnp.arange(max_steps), jax.random.split(k_act, max_steps), jax.random.split(k_env, max_steps))
    _, batch = jax.lax.scan(body, (state, obs, alive), xs)
    return batch
