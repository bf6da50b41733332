"""The variance-optimal baseline of notes 03, Appendix C, per parameter dimension.

Trajectory-level REINFORCE with a baseline estimates, for each parameter k,

    ĝ_k = (1/N) Σ_i g_ik (R_i - b_k),     g_i = Σ_t ∇_θ log π_θ(a_t^i | s_t^i)  [P],
                                           R_i = Σ_t γ^t r_t^i               (scalar),

and Appendix C's argument, applied to each coordinate of the score separately, gives the
b_k that minimises Var[g_k (R - b_k)]:

    b*_k = E[g_k² R] / E[g_k²]      ≈   Σ_j g_jk² R_j / Σ_j g_jk².

Why leave-one-out. Unbiasedness rests on E[g_ik · b] = E[g_ik] · b = 0, which needs b to
be *independent of episode i* (notes 03, Appendix B: b may depend on anything but a_t).
The plug-in b*_k computed from the whole batch contains g_ik² R_i, so
E[g_ik · b*_k] ≠ 0 in general and the estimate is biased (by O(1/N), but biased). Using

    b*_{k,-i} = Σ_{j≠i} g_jk² R_j / Σ_{j≠i} g_jk²

for episode i keeps the baseline a function of the *other* N-1 episodes only, which are
independent of episode i, so E[g_ik (R_i - b*_{k,-i})] = E[g_ik R_i] = ∂J/∂θ_k exactly.
(Same reasoning as `pgrun.core.estimators.leave_one_out_mean`.) Where no other episode has a
non-zero score in coordinate k (Σ_{j≠i} g_jk² = 0, e.g. a tabular state visited by one
episode only), the fallback baseline is the leave-one-out mean return, also independent
of episode i. The leave-one-out sums are formed from exclusive prefix and suffix sums,
never as "total minus own term", so an exactly-zero Σ_{j≠i} stays exactly zero.

Sign convention: every gradient returned here is an ASCENT direction, an estimate of
+∇_θ J(θ) — the opposite sign of `jax.grad(pgrun.core.estimators.pg_loss)`, which
differentiates the *negative* surrogate for optimizers that minimise.

Shapes: N episodes, P = number of policy parameters (flattened with ravel_pytree),
batches are `pgrun.core.batch.Batch` time-major [T, N, ...].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgrun.core.batch import Batch
from pgrun.core.estimators import leave_one_out_mean
from pgrun.core.returns import total_return

if TYPE_CHECKING:
    from pgrun.core.policies import Policy


def episode_scores(policy: Policy, params: Any, batch: Batch) -> jax.Array:
    """g_i = Σ_t valid_t ∇_θ log π_θ(a_t^i | s_t^i), flattened.   -> [N, P].

    vmap over the episode axis (axis 1 of the time-major batch) of the gradient of one
    episode's summed log-probability; padding steps (valid = False) contribute nothing.
    """

    def episode_logp(p, obs, action, valid):  # obs [T, obs_dim], action [T, ...], valid [T]
        logp = policy.dist(p, obs).log_prob(action)
        return jnp.sum(jnp.where(valid, logp, 0.0))

    def one(obs, action, valid):
        return ravel_pytree(jax.grad(episode_logp)(params, obs, action, valid))[0]

    return jax.vmap(one, in_axes=(1, 1, 1))(batch.obs, batch.action, batch.valid)


def episode_returns(batch: Batch, gamma: float | jax.Array) -> jax.Array:
    """R_i = Σ_t γ^t r_t^i over the valid steps of episode i.   -> [N]."""
    return jax.vmap(total_return, in_axes=(1, 1, None))(batch.reward, batch.valid, gamma)


def optimal_baseline(g: jax.Array, R: jax.Array) -> jax.Array:
    """Plug-in b*_k = Σ_j g_jk² R_j / Σ_j g_jk² from the whole batch (NOT leave-one-out).

    g [N, P], R [N] -> b [P]; coordinates with Σ_j g_jk² = 0 get the mean return.
    Shown for reference (and tests); using it on the same batch biases the gradient.
    """
    w = g**2
    s2 = jnp.sum(w, axis=0)
    s1 = jnp.sum(w * R[:, None], axis=0)
    return jnp.where(s2 > 0, s1 / jnp.where(s2 > 0, s2, 1.0), jnp.mean(R))


def _sum_over_others(x: jax.Array) -> jax.Array:
    """out[i] = Σ_{j≠i} x[j] along axis 0, as exclusive prefix + exclusive suffix sums.

    x [N, ...] -> [N, ...]. No "total minus own" subtraction, so no cancellation.
    """
    zero = jnp.zeros_like(x[:1])
    prefix = jnp.concatenate([zero, jnp.cumsum(x, axis=0)[:-1]], axis=0)
    suffix = jnp.concatenate([jnp.cumsum(x[::-1], axis=0)[::-1][1:], zero], axis=0)
    return prefix + suffix


def loo_optimal_baseline(g: jax.Array, R: jax.Array) -> jax.Array:
    """b*_{k,-i} = Σ_{j≠i} g_jk² R_j / Σ_{j≠i} g_jk².   g [N, P], R [N] -> b [N, P].

    Falls back to the leave-one-out mean return (1/(N-1)) Σ_{j≠i} R_j where
    Σ_{j≠i} g_jk² = 0. Requires N ≥ 2.
    """
    w = g**2
    s2 = _sum_over_others(w)
    s1 = _sum_over_others(w * R[:, None])
    fallback = leave_one_out_mean(R)[:, None]
    ok = s2 > 0
    return jnp.where(ok, s1 / jnp.where(ok, s2, 1.0), fallback)


def optimal_baseline_grad_flat(g: jax.Array, R: jax.Array) -> jax.Array:
    """ĝ_k = (1/N) Σ_i g_ik (R_i - b*_{k,-i}).   g [N, P], R [N] -> [P] (ascent)."""
    b = loo_optimal_baseline(g, R)
    return jnp.mean(g * (R[:, None] - b), axis=0)


def optimal_baseline_grad(policy: Policy, params: Any, batch: Batch, gamma: float | jax.Array) -> Any:
    """Estimate of +∇_θ J(θ) (ASCENT direction) with the leave-one-out optimal baseline.

    Same pytree structure as `params`. Unbiased for ∇J of the discounted objective
    J = E[Σ_t γ^t r_t] (see the module docstring); apply with θ ← θ + α ĝ, or hand
    -ĝ to an optax optimizer that minimises.
    """
    g = episode_scores(policy, params, batch)
    R = episode_returns(batch, gamma)
    unravel = ravel_pytree(params)[1]
    return unravel(optimal_baseline_grad_flat(g, R))
