"""Returns and advantages for one trajectory, time-major; callers vmap over the batch.

Naming follows rlax: r_t is the reward of step t, discount_t = γ·(1 - terminated_t) is the
bootstrap discount of step t, and continue_t = 1 - done_t (done = terminated or truncated)
says whether step t+1 belongs to the same episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def reward_to_go(r_t: jax.Array, continue_t: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """G_t = r_t + γ·continue_t·G_{t+1}, with G_T = 0.

    r_t, continue_t: [T] -> G_t: [T]. Within one episode G_t = Σ_{k≥t} γ^{k-t} r_k.
    """
    def body(g_next, x):
        r, c = x
        g = r + gamma * c * g_next
        return g, g

    _, g_t = jax.lax.scan(body, jnp.zeros((), r_t.dtype), (r_t, continue_t), reverse=True)
    return g_t


def total_return(r_t: jax.Array, valid_t: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """G(τ) = Σ_t γ^t r_t over the valid steps of one episode that starts at t = 0.

    r_t, valid_t: [T] -> scalar.
    """
    t = jnp.arange(r_t.shape[0], dtype=r_t.dtype)
    return jnp.sum(jnp.where(valid_t, r_t * gamma**t, 0.0))


def gae(r_t: jax.Array, discount_t: jax.Array, continue_t: jax.Array, v_t: jax.Array, v_tp1: jax.Array,
        gamma: float | jax.Array, lam: float | jax.Array) -> jax.Array:
    """Generalised advantage estimation, GAE(λ).

    δ_t = r_t + discount_t·V(s_{t+1}) - V(s_t)            (no bootstrap at termination)
    A_t = δ_t + γλ·continue_t·A_{t+1},  A_T = 0              (chain cut at episode ends)
    All inputs [T] (v_tp1 = V of the next observation, the pre-reset one at a time-limit
    cut, so truncation bootstraps from V) -> A_t [T].
    """
    delta_t = r_t + discount_t * v_tp1 - v_t

    def body(a_next, x):
        d, c = x
        a = d + gamma * lam * c * a_next
        return a, a

    _, a_t = jax.lax.scan(body, jnp.zeros((), r_t.dtype), (delta_t, continue_t), reverse=True)
    return a_t
