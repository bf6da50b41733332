"""Policy-gradient estimators as surrogate losses (notes 04, "Surrogate Objective").

An estimator is a *weight* Ψ_t (total return G(τ), reward-to-go G_t, or GAE(λ)) minus a
*baseline* b (none, the batch-mean return, the time-step-wise batch mean, or a learned
V(s_t)); the surrogate  J̃(θ) = 1/N Σ_i Σ_t log π_θ(a_t^i|s_t^i) · (Ψ_t^i - b_t^i)  has the
estimator as its autodiff gradient. Shapes: [T, B] time-major, B = N episodes.

Bias: these weights are unbiased for the undiscounted objective (γ = 1). For γ < 1 only
total_return is; reward_to_go and gae (with any baseline) need step t's term multiplied by
γ^t, t from the episode's start (`discount_from_start`, config `estimator.gamma_t=true`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from pgrun.core.batch import Batch
from pgrun.core.masked import masked_mean
from pgrun.core.names import BASELINES, WEIGHTS
from pgrun.core.names import needs_critic as needs_critic  # re-exported: the estimators' own fact
from pgrun.core.returns import gae, reward_to_go, total_return
from pgrun.core.slices import ROWS, sliced_sum

if TYPE_CHECKING:
    from pgrun.core.policies import Policy

# WEIGHTS, BASELINES (pgrun.core.names). "optimal": the per-parameter variance-optimal b* of notes 03
# App. C (pgrun/core/optimal_baseline.py); not a per-step advantage, so pgrun/train/program.py takes
# its gradient directly


class Advantages(NamedTuple):
    adv: jax.Array            # [T, B]  Ψ_t - b_t (0 on padding)
    critic_target: jax.Array  # [T, B]  regression target for V(s_t) (G_t, or GAE λ-return)


def leave_one_out_mean(x: jax.Array, axis: int = -1) -> jax.Array:
    """b_i = 1/(N-1) Σ_{j≠i} x_j along `axis` (N ≥ 2).

    Excluding episode i's own return keeps the baseline independent of its actions, so the
    estimator stays exactly unbiased; the plain mean would scale the gradient by (1 - 1/N).
    """
    n = x.shape[axis]
    return (jnp.sum(x, axis=axis, keepdims=True) - x) / (n - 1)


def compute_advantages(batch: Batch, weight: str, baseline: str, gamma: float | jax.Array, lam: float | jax.Array,
                       v_t: jax.Array | None = None, v_tp1: jax.Array | None = None) -> Advantages:
    """Ψ_t - b_t for every step of the batch, plus the critic's regression target.

    batch fields [T, B]; v_t = V(s_t), v_tp1 = V(s_{t+1}) [T, B] when a critic exists.
    """
    done = batch.terminated | batch.truncated
    continue_t = 1.0 - done.astype(jnp.float32)
    valid = batch.valid.astype(jnp.float32)
    rtg = jax.vmap(reward_to_go, in_axes=(1, 1, None), out_axes=1)(batch.reward, continue_t, gamma)
    target = rtg
    if weight == "total_return":
        psi = jnp.broadcast_to(
            jax.vmap(total_return, in_axes=(1, 1, None))(batch.reward, batch.valid, gamma), rtg.shape)
    elif weight == "reward_to_go":
        psi = rtg
    elif weight == "gae":
        if v_t is None or v_tp1 is None:
            raise TypeError("weight=gae needs the critic's values v_t and v_tp1")
        discount_t = gamma * (1.0 - batch.terminated.astype(jnp.float32))
        psi = jax.vmap(gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)(
            batch.reward, discount_t, continue_t, v_t, v_tp1, gamma, lam)
        target = psi + v_t  # the λ-return
        return Advantages(psi * valid, target)
    else:
        raise ValueError(f"unknown weight {weight!r}; valid: {WEIGHTS}")

    b: float | jax.Array
    if baseline in ("none", "optimal"):  # optimal: applied per parameter on the gradient (train/program.py)
        b = 0.0
    elif baseline == "batch_mean":
        g0 = jax.vmap(total_return, in_axes=(1, 1, None))(batch.reward, batch.valid, gamma)
        b = leave_one_out_mean(g0)[None, :]
    elif baseline == "batch_mean_time":
        b = leave_one_out_mean(psi * valid, axis=1)
    elif baseline == "value":
        if v_t is None:
            raise TypeError("baseline=value needs the critic's values v_t")
        b = v_t
    else:
        raise ValueError(f"unknown baseline {baseline!r}; valid: {BASELINES}")
    return Advantages((psi - b) * valid, target)


def episode_time(batch: Batch) -> jax.Array:
    """t [T, B] int32: each step's index within its episode, counted from the episode's reset.

    `batch.episode_t` where the rollout recorded it (steps mode: an episode may start anywhere
    in a column, or before the batch); otherwise the row index (episodes mode: every column
    is one episode that starts at row 0).
    """
    if batch.episode_t is not None:
        return batch.episode_t
    T, B = batch.reward.shape[:2]
    return jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32)[:, None], (T, B))


def discount_from_start(adv: jax.Array, batch: Batch, weight: str, gamma: float | jax.Array) -> jax.Array:
    """γ^t · A_t [T, B] for the weights reward_to_go and gae; A_t unchanged for total_return.

    The discounted objective J = E[Σ_t γ^t r_t] has the gradient
        ∇J = E[Σ_t γ^t ∇log π(a_t|s_t) G_t],   G_t = Σ_{k≥t} γ^{k-t} r_k,
    t counted from the episode's start (`episode_time`). Without γ^t, Σ_t ∇log π(a_t|s_t) G_t
    (reward-to-go, and every baseline-subtracted or GAE form of it) is the gradient of
    nothing for γ < 1 (Thomas 2014; Nota & Thomas 2020): it weights late states as if they
    were not discounted. Multiplying step t's term by γ^t makes those estimators unbiased for
    ∇J (a baseline b independent of a_t still adds zero in expectation).
    weight=total_return needs no factor: G(τ) = Σ_k γ^k r_k is already discounted from the
    episode's start, so Σ_t ∇log π(a_t|s_t) G(τ) is unbiased as it is (with γ^t it would not be).
    adv [T, B] -> [T, B].
    """
    if weight == "total_return":
        return adv
    return adv * gamma ** episode_time(batch).astype(adv.dtype)


def next_state_values(critic: Callable[[jax.Array], jax.Array], batch: Batch, v_t: jax.Array,
                      max_steps: int) -> jax.Array:
    """V(s_{t+1}) [T, B] for bootstrapping, given v_t = V(s_t) [T, B] and critic(obs [..., d]) -> [...].

    Within a column s_{t+1} is the next row's s_t, except after the last row and where the
    episode ended at t (next_obs is then the pre-reset observation). Terminated steps do not
    bootstrap (their V(s_{t+1}) is multiplied by 0), so the critic runs only on the last row
    and on the truncated steps, at most ⌈T / max_steps⌉ per column (a time limit cuts an
    episode at most once every max_steps steps): one critic pass over [K + 1, B] instead of
    [T, B]. Every other step reads V from v_t shifted by one row.
    """
    T, B = v_t.shape
    k = -(-T // max_steps)
    if k + 1 >= T:
        return critic(batch.next_obs)
    rows = jax.vmap(lambda c: jnp.nonzero(c, size=k, fill_value=T - 1)[0], in_axes=1, out_axes=1)(
        batch.truncated[:-1])                                             # [K, B]
    rows = jnp.concatenate([rows, jnp.full((1, B), T - 1, rows.dtype)])  # + the last row
    cols = jnp.broadcast_to(jnp.arange(B), rows.shape)
    values = critic(batch.next_obs[rows, cols])                           # [K + 1, B]
    shifted = jnp.concatenate([v_t[1:], v_t[-1:]])
    return shifted.at[rows, cols].set(values)


def normalize(adv: jax.Array, valid: jax.Array) -> jax.Array:
    """(A - mean) / std over the valid steps."""
    mean = masked_mean(adv, valid)
    std = jnp.sqrt(masked_mean((adv - mean) ** 2, valid))
    return (adv - mean) / (std + 1e-8) * valid


def pg_loss(params: Any, policy: Policy, batch: Batch, adv: jax.Array, entropy_coef: float | jax.Array,
            n_valid: float | jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative surrogate: -(1/B) Σ_{t,i} valid·log π(a|s)·A  - c_H · mean entropy.

    Returns (loss, metrics) with metrics {"entropy": mean entropy over valid steps}.
    n_valid: the number of valid steps the entropy is averaged over (default: this batch's);
    given, the loss is a plain sum over steps, so slices of a batch add up to the whole.
    """
    dist = policy.dist(params, batch.obs)
    logp = dist.log_prob(batch.action)
    if n_valid is None:
        n_valid = jnp.maximum(batch.valid.astype(jnp.float32).sum(), 1.0)
    num_episodes = batch.reward.shape[1]
    surrogate = jnp.sum(jnp.where(batch.valid, logp * jax.lax.stop_gradient(adv), 0.0)) / num_episodes
    entropy = jnp.sum(jnp.where(batch.valid, dist.entropy(), 0.0)) / n_valid
    return -surrogate - entropy_coef * entropy, {"entropy": entropy}


def pg_value_and_grad(params: Any, policy: Policy, batch: Batch, adv: jax.Array, entropy_coef: float | jax.Array,
                      rows: int = ROWS) -> Any:
    """`jax.value_and_grad(pg_loss, has_aux=True)`, accumulated over slices of the time axis
    (`slices.sliced_sum`) that stop after the last valid step of the program.

    The same value and gradient up to float summation order, but faster on CPU: slices of
    about `rows` steps keep their intermediates in cache, and short episodes cost their
    length, not the time limit (padding adds exactly zero).
    batch fields and adv: [T, B, ...].  Returns ((loss, {"entropy"}), grads like params).
    """
    n_valid = jnp.maximum(batch.valid.astype(jnp.float32).sum(), 1.0)
    vg = jax.value_and_grad(pg_loss, has_aux=True)
    return sliced_sum(lambda piece: vg(params, policy, piece[0], piece[1], entropy_coef, n_valid),
                      (batch, adv), batch.valid, rows)


def value_loss(phi, critic_apply, obs, target, valid):
    """½ mean over valid steps of (V_φ(s_t) - target_t)²."""
    v = critic_apply(phi, obs)
    return 0.5 * masked_mean((v - target) ** 2, valid)
