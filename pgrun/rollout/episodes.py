"""Sampling episodes inside jit: chunks of a `lax.scan` over time for a batch of envs,
run until no episode of the program is alive.

In episode mode each of the B columns of the `Batch` (pgrun.core.batch) is one whole
episode started at t = 0 and run to termination or the time limit T; steps after the end
are padding with valid = False (and reward 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pgrun.core.batch import Batch, broadcast_dist
from pgrun.core.batching import any_in_program
from pgrun.envs import reset, step


def action_clipper(action_space):
    """Clip actions to a Box space's bounds when stepping the env (not in the log-prob)."""
    if isinstance(action_space, spaces.Box):
        low = jnp.asarray(np.broadcast_to(action_space.low, action_space.shape), jnp.float32)
        high = jnp.asarray(np.broadcast_to(action_space.high, action_space.shape), jnp.float32)
        return lambda a: jnp.clip(a, low, high)
    return lambda a: a


def rollout_episodes(env, env_params, policy, params, key, num_episodes: int, max_steps: int,
                     chunk: int = 16, group_size: int = 1) -> Batch:
    """Sample `num_episodes` episodes of at most `max_steps` steps with π_params.

    Returns a Batch of shape [max_steps, num_episodes, ...].  Steps run `chunk` at a time and
    stop after the first chunk at whose end no episode of the whole program is alive
    (`any_in_program`: all seeds and sweep points of a vmapped run), so a batch of short
    episodes costs their length, not the time limit. Rows after that are zeros with
    valid = False; rows after an episode's end within the run chunks are the frozen env's.
    group_size G: episodes gG .. gG + G - 1 share one reset (G completions of one prompt);
    G = 1 gives every episode its own, as without groups.
    A policy with a `decoder` (the transformer with policy.kv_cache) samples through it: its cache
    is prefilled from the first observations and carried from step to step; the same π(·|s_t).
    """
    clip = action_clipper(env.action_space)
    k_reset, k_steps = jax.random.split(key)
    state, obs = jax.vmap(lambda k: reset(env, env_params, k))(jax.random.split(k_reset, num_episodes // group_size))
    if group_size > 1:  # one reset per group, repeated (with rbg keys, equal keys under vmap draw apart)
        state, obs = jax.tree_util.tree_map(lambda x: jnp.repeat(x, group_size, axis=0), (state, obs))
    alive = jnp.ones((num_episodes,), bool)
    decoder = getattr(policy, "decoder", None)
    cache = decoder.init(params, obs) if decoder is not None else ()

    def body(carry, xs):
        state, obs, alive, cache = carry
        t, k_act, env_keys = xs
        if decoder is None:
            dist = policy.dist(params, obs)
        else:
            dist, cache = decoder.step(params, cache, obs)
        action = dist.sample(k_act)
        log_prob = dist.log_prob(action)
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
        return (state_next, obs_next, alive, cache), record

    # every step's keys split up front: a split inside the loop body is itself a small loop
    k_act, k_env = jax.random.split(k_steps)
    chunk = max(1, min(int(chunk), max_steps))
    n_chunks = -(-max_steps // chunk)
    padded = n_chunks * chunk
    # max_steps keys whatever the chunk (the same samples for any chunk size); the steps past
    # the time limit that round it up to whole chunks have no live episode and reuse keys
    keys = [jax.random.split(k_act, max_steps),
            jax.vmap(lambda k: jax.random.split(k, num_episodes))(jax.random.split(k_env, max_steps))]
    xs = (jnp.arange(padded), *[jnp.concatenate([k, k[:padded - max_steps]]) for k in keys])
    carry = (state, obs, alive, cache)
    # never-reached chunks keep these zeros: all-padding rows (valid False, reward 0), finite
    record_shape = jax.eval_shape(lambda c, x: body(c, x)[1], carry, jax.tree_util.tree_map(lambda x: x[0], xs))
    buffer = jax.tree_util.tree_map(lambda s: jnp.zeros((padded,) + s.shape, s.dtype), record_shape)

    def run_chunk(loop):
        i, carry, buffer = loop
        start = i * chunk
        carry, records = jax.lax.scan(
            body, carry, jax.tree_util.tree_map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, chunk), xs))
        buffer = jax.tree_util.tree_map(
            lambda b, r: jax.lax.dynamic_update_slice_in_dim(b, r, start, axis=0), buffer, records)
        return i + 1, carry, buffer

    def more(loop):
        i, (_, _, alive, _), _ = loop
        return (i < n_chunks) & any_in_program(alive)

    _, _, batch = jax.lax.while_loop(more, run_chunk, (jnp.int32(0), carry, buffer))
    return jax.tree_util.tree_map(lambda x: x[:max_steps], batch)
