"""Soft constraints on π_θ' drifting from the sampling policy π_θ: PPO's clip and the KL penalty.

Both start from the per-step ratio surrogate of notes 04 "Timestep-Level",
L(θ') = mean_t ρ_t(θ') A_t with ρ_t = π_θ'(a_t|s_t) / π_θ(a_t|s_t), and keep θ' near θ:

  clip        L^CLIP(θ') = mean_t min(ρ_t A_t, clip(ρ_t, 1 - ε, 1 + ε) A_t)
              (Schulman et al. 2017): no incentive to push ρ_t beyond [1 - ε, 1 + ε].
  kl_penalty  L(θ') - β · mean_s KL(π_θ(·|s) ‖ π_θ'(·|s)), β adapted after each iteration
              toward a target δ: β ← 2β if KL > 1.5 δ, β ← β/2 if KL < δ/1.5.

Means are over the valid steps of a minibatch. Shapes [T, B] (or any, elementwise).

Extremes. exp(log ρ) overflows float32 above log ρ ≈ 88.7, and then the clip's zero gradient
times d ρ / d log ρ = ρ = inf is NaN. The clipped surrogate therefore saturates log ρ at
LOG_RATIO_MAX = 20 (ρ ≤ 4.9e8) before the exp (`saturate_log_ratio`): unchanged below it,
the value and gradient of ρ = e^20 above it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pgrun.core.masked import masked_mean

LOG_RATIO_MAX = 20.0


def saturate_log_ratio(log_rho_t: jnp.ndarray, limit: float = LOG_RATIO_MAX) -> jnp.ndarray:
    """log ρ̂ = log ρ - sg(max(log ρ - limit, 0)) = min(log ρ, limit), whose derivative in log ρ is 1
    everywhere (sg = stop_gradient).

    Below the limit value and gradient are exactly log ρ's (0 is subtracted). Above it ρ̂ = e^limit:
    where the clip is active the surrogate's gradient is 0 as it should be (not 0·inf = NaN), and
    on the unclipped side (A < 0) it is e^limit·A·∇log π, the true ρ·A·∇log π saturated, finite,
    with the right sign. [...] -> [...].
    """
    return log_rho_t - jax.lax.stop_gradient(jnp.maximum(log_rho_t - limit, 0.0))


def clipped_surrogate(log_rho_t: jnp.ndarray, adv_t: jnp.ndarray, valid_t: jnp.ndarray,
                      clip_eps: float | jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(L^CLIP, clip fraction) of one minibatch.

    L^CLIP = mean_valid min(ρ_t A_t, clip(ρ_t, 1-ε, 1+ε) A_t), ρ_t = exp(log_rho_t) with
    log_rho_t = log π_θ'(a_t|s_t) - log π_θ(a_t|s_t) (differentiable in θ').
    clip fraction = mean_valid 1[|ρ_t - 1| > ε] (the baselines / CleanRL definition).
    At θ' = θ (ρ = 1) the gradient is mean_valid ∇log π_θ(a_t|s_t) A_t, the on-policy one.
    log ρ is saturated at LOG_RATIO_MAX first (`saturate_log_ratio`), so ρ never overflows.
    log_rho_t, adv_t, valid_t [...] -> (scalar, scalar).
    """
    rho = jnp.exp(saturate_log_ratio(log_rho_t))
    unclipped = rho * adv_t
    clipped = jnp.clip(rho, 1.0 - clip_eps, 1.0 + clip_eps) * adv_t
    surrogate = masked_mean(jnp.minimum(unclipped, clipped), valid_t)
    clip_frac = masked_mean((jnp.abs(rho - 1.0) > clip_eps).astype(rho.dtype), valid_t)
    return surrogate, clip_frac


def ratio_surrogate(log_rho_t: jnp.ndarray, adv_t: jnp.ndarray, valid_t: jnp.ndarray) -> jnp.ndarray:
    """L(θ') = mean_valid ρ_t(θ') A_t, the unclipped per-step surrogate (TRPO's objective).

    Not saturated: TRPO differentiates it only at θ' = θ (ρ = 1), and its line search rejects a
    candidate whose L is not finite (an overflowing ρ), so inf here keeps θ where it was."""
    return masked_mean(jnp.exp(log_rho_t) * adv_t, valid_t)


def approx_kl(log_rho_t: jnp.ndarray, valid_t: jnp.ndarray) -> jnp.ndarray:
    """mean_valid (ρ_t - 1) - log ρ_t: an unbiased, non-negative sample estimate of
    KL(π_θ ‖ π_θ') from the actions sampled by π_θ (Schulman's k3). Used for early stopping."""
    return masked_mean(jnp.expm1(log_rho_t) - log_rho_t, valid_t)


def adapt_kl_beta(beta, kl, kl_target):
    """β ← 2β if kl > 1.5·δ;  β/2 if kl < δ/1.5;  else β  (δ = kl_target)."""
    return jnp.where(kl > 1.5 * kl_target, beta * 2.0, jnp.where(kl < kl_target / 1.5, beta / 2.0, beta))
