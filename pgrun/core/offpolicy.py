"""Reusing a batch sampled from π_θ to update π_θ' (notes 04, "Off-Policy Policy Gradients").

The batch records the behaviour log-probabilities log π_θ(a_t|s_t) at sampling time
(`Batch.log_prob`). The per-step ratio is ρ_t = π_θ'(a_t|s_t) / π_θ(a_t|s_t), and a
*correction* (`estimator.correction`) turns it into a weight w_t on step t's score term:

  none          w_t = 1                       "ratio ≈ 1": the on-policy surrogate on old data
  trajectory    w_t = w(τ) = Π_{k ∈ τ} ρ_k    notes 04 "Off-Policy Policy Gradient (Trajectory-Level)"
  per_decision  w_t = ρ_t                     notes 04 "Timestep-Level"
  clip          PPO's clipped ratio (pgrun.core.ppo), not a weight

The surrogate is written with the weight held constant (sg = stop_gradient):

  J̃(θ') = (1/N) Σ_i Σ_t sg(w_t^i) · log π_θ'(a_t^i|s_t^i) · A_t^i,
  ∇_θ' J̃(θ') = (1/N) Σ_i Σ_t w_t^i · ∇_θ' log π_θ'(a_t^i|s_t^i) · A_t^i,

with A_t = Ψ_t - b_t from `pgrun.core.estimators` (e.g. G_t - b). For `trajectory` this is
exactly the notes' (1/N) Σ_i w(τ_i) Σ_t ∇log π_θ'(a_t|s_t)(G_t - b), the causal, baselined
estimator under one episode weight. Why not the "ratio form" w(τ; θ')·Σ_t A_t? Its gradient
is w(τ)·(Σ_t ∇log π_θ'(a_t|s_t))·(Σ_t' A_t'): every score multiplies every A_t', the
*non-causal* estimator. Per step the two forms agree, ∇[ρ_t(θ') A_t] = ρ_t ∇log π_θ'(a_t|s_t) A_t,
which is why PPO, the KL penalty and TRPO may use ρ_t(θ')·A_t directly. At θ' = θ every
weight is 1: the first step on a fresh batch is the on-policy gradient.

Bias. `trajectory` is unbiased for ∇J(θ') (with a baseline independent of the episode's own
actions; for the undiscounted objective γ = 1, or with A_t × γ^t, `estimators.discount_from_start`).
`per_decision` corrects the action at t but neither the distribution of s_t (the
Π_{k<t} ρ_k of the actions leading there) nor the future actions inside G_t:
E_θ[ρ_t ∇log π_θ'(a_t|s_t) G_t] = E_{s_t ~ d_θ, a_t ~ π_θ'}[∇log π_θ'(a_t|s_t) Q^{π_θ}_t(s_t, a_t)],
exact on one-step problems (the bandit) and to first order in θ' - θ (the TRPO/PPO
surrogate), biased otherwise. `none` drops ρ_t too and is biased even on the bandit.

Truncation (`clip_weight` = c): w ← min(w, c), the episode weight and the per-step weight
alike; it trades bias for bounded variance.

Extremes. Weights are built in log space (log w = Σ log ρ_k) and exponentiated last; the
diagnostics (mean, ESS) switch to log-sum-exp / max-subtraction once the largest weight leaves
[e^-30, e^20], so they are exact where the weights under- or overflow float32. The
unnormalised estimator needs w itself: a weight with log w > LOG_FLOAT32_MAX =
log(float32 max) ≈ 88.72 is not representable, and `max_log_weight` is what the training
loop checks to stop the run with that cause.

Arrays are time-major [T, B]; in steps mode a column holds several episode *segments*
(episodes cut by the batch), and the trajectory weight is the product over the segment.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.core.masked import masked_mean
from pgrun.core.names import CORRECTIONS
from pgrun.core.names import splits_by_column as splits_by_column  # re-exported (pgrun.train.offpolicy)

LOG_FLOAT32_MAX = float(np.log(np.finfo(np.float32).max))  # 88.7228: exp of more is inf in float32
# ROLLOUTS, CORRECTIONS, CONSTRAINTS and minibatch_unit: pgrun.core.names


# ------------------------------------------------------------------ batch structure


def segment_sum(x_t: jax.Array, continue_t: jax.Array) -> jax.Array:
    """S_t = Σ_{k in seg(t)} x_k, the sum over the episode segment that contains step t.

    Segments end after every step with continue_t = 0 (done) and at the array's end.
    S = F + Bk - x with the forward sum F_t = x_t + continue_{t-1}·F_{t-1} and the backward
    sum Bk_t = x_t + continue_t·Bk_{t+1}.  x_t, continue_t: [T] -> [T].
    """
    def fwd(f_prev, xc):
        x, c_prev = xc
        f = x + c_prev * f_prev
        return f, f

    c_prev = jnp.concatenate([jnp.zeros((1,), continue_t.dtype), continue_t[:-1]])
    _, f_t = jax.lax.scan(fwd, jnp.zeros((), x_t.dtype), (x_t, c_prev))

    def bwd(b_next, xc):
        x, c = xc
        b = x + c * b_next
        return b, b

    _, b_t = jax.lax.scan(bwd, jnp.zeros((), x_t.dtype), (x_t, continue_t), reverse=True)
    return f_t + b_t - x_t


def segment_start(continue_t: jax.Array) -> jax.Array:
    """start_t = (t = 0) or done_{t-1}: the first step of each segment.  [T] -> [T] bool."""
    return jnp.concatenate([jnp.ones((1,), bool), continue_t[:-1] == 0])


# ------------------------------------------------------------------ importance weights


def log_importance_weights(log_rho_t: jax.Array, continue_t: jax.Array, valid_t: jax.Array,
                           correction: str) -> jax.Array:
    """log w_t of `correction` (untruncated).  All [T, B] -> [T, B]; 0 on padding.

    trajectory: log w(τ) = Σ_{k in seg(t)} log ρ_k; per_decision and clip: log ρ_t; none: 0.
    """
    log_rho_t = jnp.where(valid_t, log_rho_t, 0.0)
    if correction == "trajectory":
        return jax.vmap(segment_sum, in_axes=1, out_axes=1)(log_rho_t, continue_t)
    if correction in ("per_decision", "clip"):
        return log_rho_t
    if correction == "none":
        return jnp.zeros_like(log_rho_t)
    raise ValueError(f"unknown correction {correction!r}; valid: {CORRECTIONS}")


def truncated_log_weights(log_rho_t: jax.Array, continue_t: jax.Array, valid_t: jax.Array, correction: str,
                          clip_weight: float | None = None) -> jax.Array:
    """min(log w_t, log c): the log of the weight an update uses (no cut when c is None).
    All [T, B] -> [T, B]; 0 on padding."""
    log_w = log_importance_weights(log_rho_t, continue_t, valid_t, correction)
    if clip_weight is not None:
        log_w = jnp.minimum(log_w, jnp.log(jnp.float32(clip_weight)))
    return log_w


def importance_weights(log_rho_t: jax.Array, continue_t: jax.Array, valid_t: jax.Array, correction: str,
                       clip_weight: float | None = None) -> jax.Array:
    """w_t = min(exp(log w_t), c) on valid steps, 0 on padding.  [T, B] -> [T, B].

    Truncation is applied in log space, min(log w, log c), so huge trajectory weights do
    not overflow before they are cut. Without it, log w_t > LOG_FLOAT32_MAX gives w_t = inf.
    """
    log_w = truncated_log_weights(log_rho_t, continue_t, valid_t, correction, clip_weight)
    return jnp.where(valid_t, jnp.exp(log_w), 0.0)


def max_log_weight(log_w_t: jax.Array, valid_t: jax.Array) -> jax.Array:
    """max over valid steps of log w_t (-inf when none is valid); w is representable in float32
    iff this is ≤ LOG_FLOAT32_MAX.  [T, B] -> scalar."""
    return jnp.max(jnp.where(valid_t, log_w_t, -jnp.inf))


def log_ess(log_w: jax.Array, mask: jax.Array) -> jax.Array:
    """log ESS = log((Σ_j w_j)² / Σ_j w_j²) of the weights w_j = exp(log_w_j) where mask_j > 0.

    With M = max_j log w_j and u_j = exp(log w_j - M) ∈ (0, 1]:  ESS = (Σ u_j)² / Σ u_j², as ESS
    is invariant to scaling the weights, so neither the weights (log w > 88.7) nor their squares
    (log w > 44.4) overflow, and no 0/0 arises when every weight underflows. ESS ∈ [1, n].
    -inf when no weight is masked in.  Any shape -> scalar.
    """
    m = jnp.max(jnp.where(mask > 0, log_w, -jnp.inf))
    u = jnp.where(mask > 0, jnp.exp(log_w - jnp.where(jnp.isfinite(m), m, 0.0)), 0.0)
    s1, s2 = jnp.sum(u), jnp.sum(u * u)
    return jnp.where(s2 > 0, 2.0 * jnp.log(jnp.where(s1 > 0, s1, 1.0)) - jnp.log(jnp.where(s2 > 0, s2, 1.0)),
                     -jnp.inf)


def is_surrogate(logp_t: jax.Array, adv_t: jax.Array, w_t: jax.Array, valid_t: jax.Array,
                 scale: float | jax.Array) -> jax.Array:
    """J̃(θ') = (1/scale) Σ_{t,i} sg(w_t) · log π_θ'(a_t|s_t) · sg(A_t) · valid_t.

    logp_t = log π_θ'(a_t|s_t) [T, B] (differentiable); adv_t, w_t, valid_t [T, B];
    scale = N, the number of episodes (columns) the batch stands for -> scalar.
    """
    coef = jax.lax.stop_gradient(w_t * adv_t) * valid_t.astype(logp_t.dtype)
    return jnp.sum(logp_t * coef) / scale


# ------------------------------------------------------------------ diagnostics


def weight_diagnostics(log_rho_t: jax.Array, continue_t: jax.Array, valid_t: jax.Array,
                       correction: str) -> dict[str, jax.Array]:
    """Importance-weight health of a batch under π_θ' (untruncated weights).

    One weight per episode segment for `trajectory`, one per valid step otherwise (for
    `none` these are the per-step ratios it ignores). With n weights w_j:
      is_weight_mean = Σw/n,  is_weight_max = max w,  is_ess = (Σw)² / (n·Σw²) ∈ (0, 1]
    (the normalised effective sample size), and log_ratio_std = std of log ρ_t over valid steps.
    Outside moderate weights these come from log w in log space: is_weight_mean =
    exp(logsumexp(log w) - log n) when max log w > 20, is_ess = exp(`log_ess` - log n) when
    max log w is outside [-30, 20] (where w² would overflow, or Σw² fall under the 1e-30 floor);
    inside, the direct sums, bit for bit as before. is_weight_max = exp(max log w) is inf only
    when that weight itself is not representable.
    """
    valid = valid_t.astype(jnp.float32)
    per_episode = correction == "trajectory"
    log_w = log_importance_weights(log_rho_t, continue_t, valid_t, "trajectory" if per_episode else "per_decision")
    if per_episode:
        starts = jax.vmap(segment_start, in_axes=1, out_axes=1)(continue_t) & valid_t
        mask = starts.astype(jnp.float32)
    else:
        mask = valid
    n = jnp.maximum(jnp.sum(mask), 1.0)
    log_n = jnp.log(n)
    nv = jnp.maximum(jnp.sum(valid), 1.0)
    lr = jnp.where(valid_t, log_rho_t, 0.0)
    lr_mean = jnp.sum(lr) / nv
    masked_log_w = jnp.where(mask > 0, log_w, -jnp.inf)
    top = jnp.max(masked_log_w)
    w = jnp.exp(jnp.minimum(log_w, 20.0)) * mask  # the direct sums, used only where top ≤ 20
    s1, s2 = jnp.sum(w), jnp.sum(w * w)
    direct_ess = (top >= -30.0) & (top <= 20.0)
    return {
        "is_weight_mean": jnp.where(top <= 20.0, s1 / n, jnp.exp(jax.nn.logsumexp(masked_log_w) - log_n)),
        "is_weight_max": jnp.exp(top),
        "is_ess": jnp.where(direct_ess, s1 * s1 / (n * jnp.maximum(s2, 1e-30)), jnp.exp(log_ess(log_w, mask) - log_n)),
        "log_ratio_std": jnp.sqrt(jnp.sum(((lr - lr_mean) ** 2) * valid) / nv),
    }


def mean_kl(old_dist: Any, new_dist: Any, valid_t: jax.Array) -> jax.Array:
    """(1/n) Σ_{valid t} KL(π_old(·|s_t) ‖ π_new(·|s_t)).  Distributions over [T, B] -> scalar."""
    return masked_mean(old_dist.kl(new_dist), valid_t)

