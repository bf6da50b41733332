"""Policy gradient with equal rewards vs behavioural cloning (notes 04, "Relationship to
Imitation Learning").

Behavioural cloning on the batch's own (s, a) pairs, with per-step weights w_t^i (1 for
plain BC), normalised per episode like `pgrun.core.estimators.pg_loss`:

    ∇L_BC^w(θ) = (1/N) Σ_i Σ_t w_t^i ∇ log π_θ(a_t^i | s_t^i)          (valid steps only)

The REINFORCE surrogate gradient is ∇J̃ = (1/N) Σ_i Σ_t Ψ_t^i ∇ log π_θ(a_t^i|s_t^i), i.e.
BC weighted by Ψ. Hence, exactly (same batch, no expectation involved):

  (a) constant trajectory return, r(τ) = c for every τ (the notes' statement):
        Ψ_t^i = c  ⇒  ∇J̃ = c · ∇L_BC
  (b) constant per-step reward c and every episode of length T (no early termination):
        R(τ) = c Σ_{t<T} γ^t = c (1-γ^T)/(1-γ)   (= c·T for γ = 1)
        ⇒  ∇J̃ = c · (Σ_{t<T} γ^t) · ∇L_BC
  (c) constant per-step reward c, episode lengths T_i that differ (CartPole: r = 1 each step):
        ∇J̃ = ∇L_BC^w with w^i = c Σ_{t<T_i} γ^t — BC that imitates long episodes more,
        NOT a multiple of plain BC
  (d) reward-to-go weights with constant per-step reward c:
        Ψ_t^i = c Σ_{k=t}^{T_i-1} γ^{k-t} — BC weighted towards early steps, not plain BC.

In expectation over the policy's own samples, E[∇L_BC] = E[Σ_t ∇ log π] = 0 (notes 03,
Appendix B), consistent with ∇J = 0 when every trajectory has the same return.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgrun.core.batch import Batch


def bc_grad(policy, params, batch: Batch, weights: jax.Array | None = None) -> jax.Array:
    """∇_θ (1/N) Σ_i Σ_t w_t^i log π_θ(a_t^i|s_t^i) over valid steps, flattened [P].

    weights: [T, N] or [N] (per episode) or None (= 1, plain BC).
    """
    N = batch.reward.shape[1]
    w = jnp.ones(batch.reward.shape) if weights is None else jnp.broadcast_to(weights, batch.reward.shape)

    def objective(p):
        logp = policy.dist(p, batch.obs).log_prob(batch.action)
        return jnp.sum(jnp.where(batch.valid, w * logp, 0.0)) / N

    return ravel_pytree(jax.grad(objective)(params))[0]


def constant_step_reward(batch: Batch, c: float) -> Batch:
    """Every valid step pays c."""
    return batch._replace(reward=jnp.where(batch.valid, jnp.float32(c), 0.0))


def constant_return(batch: Batch, c: float) -> Batch:
    """r(τ) = c for every episode: c paid at t = 0 (so γ does not touch it), 0 afterwards."""
    first = jnp.zeros_like(batch.reward).at[0].set(1.0)
    return batch._replace(reward=jnp.where(batch.valid, c * first, 0.0))


def discounted_length(batch: Batch, gamma) -> jax.Array:
    """Σ_{t<T_i} γ^t per episode.  -> [N]."""
    t = jnp.arange(batch.reward.shape[0], dtype=jnp.float32)[:, None]
    return jnp.sum(jnp.where(batch.valid, gamma**t, 0.0), axis=0)


def discounted_steps_to_go(batch: Batch, gamma) -> jax.Array:
    """Σ_{k=t}^{T_i-1} γ^{k-t} for each valid step.  -> [T, N] (0 on padding)."""
    from pgrun.core.returns import reward_to_go

    ones = batch.valid.astype(jnp.float32)
    cont = 1.0 - (batch.terminated | batch.truncated).astype(jnp.float32)
    return jax.vmap(reward_to_go, in_axes=(1, 1, None), out_axes=1)(ones, cont, gamma)
