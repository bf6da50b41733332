"""The variance-optimal baseline of notes 03, Appendix C, per parameter dimension.

A Monte-Carlo policy gradient with a constant baseline b_k per parameter k estimates

    ĝ_k = (1/N) Σ_i (u_ik - b_k g_ik),     g_i = Σ_t ∇_θ log π_θ(a_t^i | s_t^i)           [P],
                                           u_i = Σ_t ∇_θ log π_θ(a_t^i | s_t^i) Ψ_t^i      [P],

with Ψ_t the estimator's weight: the total return R_i = Σ_t γ^t r_t^i (then u_i = g_i R_i and
ĝ_k = (1/N) Σ_i g_ik (R_i - b_k), notes 03) or the reward-to-go G_t^i (notes 04, causality).
Appendix C's argument, applied to each coordinate separately, minimises Var[u_k - b_k g_k]:

    b*_k = E[g_k u_k] / E[g_k²]            (total return: E[g_k² R] / E[g_k²], App. C's form).

Unbiasedness rests on E[g_ik · b_k] = E[g_ik] · b_k = 0, which needs b_k to be *independent of
episode i* (notes 03, Appendix B: b may depend on anything but a_t). The plug-in ratio of the
batch's own sums contains g_ik u_ik and biases the estimate (by O(1/N)).

Two independent estimates of b* live here:

* leave-one-out inside the batch (`loo_optimal_baseline`), b*_{k,-i} = Σ_{j≠i} g_jk u_jk /
  Σ_{j≠i} g_jk², a ratio of ~N-1 noisy terms: its noise costs more variance than b* saves
  (measured in docs/estimator_lab.md);
* running sums (`running_optimal_baseline`, what `estimator=optimal_baseline` trains with):
  decayed sums S_gu, S_gg of g_k u_k and g_k² over the *previous* batches, carried in the
  training state (`BaselineStats`), plus the other episodes of the current batch:

      b_{k,-i} = (λ S_gu,k + Σ_{j≠i} g_jk u_jk) / (λ S_gg,k + Σ_{j≠i} g_jk²),
      then  S_gu ← λ S_gu + Σ_j g_j u_j,   S_gg ← λ S_gg + Σ_j g_j²      (λ = decay).

  Given the past, b_{k,-i} depends only on earlier batches and on episodes j ≠ i, all
  independent of episode i, so E[ĝ | past] = E[u] exactly. λ = 0 is the leave-one-out;
  the first batch (S = 0) is the leave-one-out too. λ^age discounts batches sampled under
  older θ; the sums hold ≈ N/(1-λ) episodes.

Where the denominator is exactly 0 (no episode so far has a non-zero score in coordinate k,
e.g. a tabular state no other episode visited), the baseline is `fallback` (the leave-one-out
mean return, also independent of episode i). Leave-one-out sums are exclusive prefix +
suffix sums, never "total minus own term", so an exactly-zero Σ_{j≠i} stays exactly zero.

Sign convention: every gradient returned here is an ASCENT direction, an estimate of
+∇_θ J(θ) — the opposite sign of `jax.grad(pgrun.core.estimators.pg_loss)`, which
differentiates the *negative* surrogate for optimizers that minimise.

Shapes: N episodes, P = number of policy parameters (flattened with ravel_pytree),
batches are `pgrun.core.batch.Batch` time-major [T, N, ...].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgrun.core.batch import Batch
from pgrun.core.estimators import leave_one_out_mean
from pgrun.core.returns import total_return

if TYPE_CHECKING:
    from pgrun.core.policies import Policy


class BaselineStats(NamedTuple):
    """Decayed sums over the episodes of previous batches, per parameter (the training state of
    `estimator=optimal_baseline`): b*_k ≈ gu_k / gg_k."""

    gu: jax.Array  # [P]  Σ_batches λ^age Σ_j g_jk u_jk   (= Σ g_jk² R_j with total-return weights)
    gg: jax.Array  # [P]  Σ_batches λ^age Σ_j g_jk²


def init_baseline_stats(num_params: int) -> BaselineStats:
    """No history: S_gu = S_gg = 0 [P] (the first batch then uses the leave-one-out)."""
    return BaselineStats(jnp.zeros((num_params,), jnp.float32), jnp.zeros((num_params,), jnp.float32))


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


def episode_scores_and_weighted(policy: Policy, params: Any, batch: Batch,
                                weight: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(g, u): g_i = Σ_t ∇_θ log π_θ(a_t^i|s_t^i), u_i = Σ_t ∇_θ log π_θ(a_t^i|s_t^i) Ψ_t^i.

    weight Ψ [T, N] (0 on padding; no gradient flows through it) -> g, u [N, P]. One forward
    pass per episode and two reverse passes (jacrev of the two sums).
    """

    def sums(p, obs, action, valid, w):  # [T, ...] -> [2]
        logp = jnp.where(valid, policy.dist(p, obs).log_prob(action), 0.0)
        return jnp.stack([jnp.sum(logp), jnp.sum(logp * jax.lax.stop_gradient(w))])

    def one(obs, action, valid, w):
        jac = jax.jacrev(sums)(params, obs, action, valid, w)  # pytree of [2, ...]
        return jax.vmap(lambda row: ravel_pytree(row)[0])(jac)  # [2, P]

    both = jax.vmap(one, in_axes=(1, 1, 1, 1))(batch.obs, batch.action, batch.valid, weight)  # [N, 2, P]
    return both[:, 0], both[:, 1]


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


def running_optimal_baseline(stats: BaselineStats, g: jax.Array, u: jax.Array, decay: float | jax.Array,
                             fallback: jax.Array) -> jax.Array:
    """b_{k,-i} = (λ S_gu,k + Σ_{j≠i} g_jk u_jk) / (λ S_gg,k + Σ_{j≠i} g_jk²).

    stats [P] each, g, u [N, P], decay λ in [0, 1], fallback [N] (used where the denominator
    is exactly 0) -> b [N, P]. Independent of episode i given the past (module docstring).
    """
    num = decay * stats.gu[None, :] + _sum_over_others(g * u)
    den = decay * stats.gg[None, :] + _sum_over_others(g**2)
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), fallback[:, None])


def update_baseline_stats(stats: BaselineStats, g: jax.Array, u: jax.Array,
                          decay: float | jax.Array) -> BaselineStats:
    """S_gu ← λ S_gu + Σ_j g_j u_j,  S_gg ← λ S_gg + Σ_j g_j².   g, u [N, P] -> [P] each."""
    return BaselineStats(decay * stats.gu + jnp.sum(g * u, axis=0), decay * stats.gg + jnp.sum(g**2, axis=0))


def running_optimal_baseline_grad_flat(stats: BaselineStats, g: jax.Array, u: jax.Array,
                                       decay: float | jax.Array,
                                       fallback: jax.Array) -> tuple[jax.Array, BaselineStats]:
    """(ĝ, stats'): ĝ_k = (1/N) Σ_i (u_ik - b_{k,-i} g_ik) [P] (ascent), and the sums updated
    with this batch for the next one. g, u [N, P], fallback [N] (`running_optimal_baseline`)."""
    b = running_optimal_baseline(stats, g, u, decay, fallback)
    return jnp.mean(u - b * g, axis=0), update_baseline_stats(stats, g, u, decay)


def loo_optimal_baseline(g: jax.Array, R: jax.Array) -> jax.Array:
    """b*_{k,-i} = Σ_{j≠i} g_jk² R_j / Σ_{j≠i} g_jk².   g [N, P], R [N] -> b [N, P].

    Falls back to the leave-one-out mean return (1/(N-1)) Σ_{j≠i} R_j where
    Σ_{j≠i} g_jk² = 0. Requires N ≥ 2. (`running_optimal_baseline` with no history, u = g R.)
    """
    return running_optimal_baseline(init_baseline_stats(g.shape[1]), g, g * R[:, None], 0.0,
                                    leave_one_out_mean(R))


def optimal_baseline_grad_flat(g: jax.Array, R: jax.Array) -> jax.Array:
    """ĝ_k = (1/N) Σ_i g_ik (R_i - b*_{k,-i}), b* leave-one-out.   g [N, P], R [N] -> [P] (ascent)."""
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


def running_optimal_baseline_grad(policy: Policy, params: Any, batch: Batch, weight: jax.Array,
                                  gamma: float | jax.Array, stats: BaselineStats,
                                  decay: float | jax.Array) -> tuple[Any, BaselineStats]:
    """(ĝ, stats'): the training estimator of `estimator=optimal_baseline`, an estimate of
    +∇_θ J(θ) (ASCENT direction, same pytree as `params`) with the running-sum b*.

    weight Ψ [T, N]: the per-step weights (total return or reward-to-go, 0 on padding);
    stats: the sums of the previous batches; decay λ. Unbiased for E[Σ_t ∇log π Ψ_t] (the
    exact ∇J with total-return weights at any γ; with reward-to-go for γ = 1).
    """
    g, u = episode_scores_and_weighted(policy, params, batch, weight)
    fallback = leave_one_out_mean(episode_returns(batch, gamma))
    flat, stats = running_optimal_baseline_grad_flat(stats, g, u, decay, fallback)
    return ravel_pytree(params)[1](flat), stats
