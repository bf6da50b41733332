"""Group estimators for sequence tasks (RLOO, GRPO, Dr. GRPO, DAPO, GSPO, REINFORCE++) as
settings of the lecture's surrogate  J̃ = agg_{i,t} ρ_{i,t} A_{i,t}  (docs/llm.md).

A batch of B = N·G episodes holds G completions of each of N prompts, group-major: episodes
gG .. gG + G - 1 share prompt g. Shapes: R [B] (episode returns), per-token arrays [T, B]
time-major like `pgrun.core.batch.Batch`, valid [T, B], |o_i| = Σ_t valid[t, i].

  baseline b_i (from the returns R):
    none        0
    group_mean  (1/G) Σ_{j∈g(i)} R_j          includes R_i: E[∇] scaled by (G-1)/G
    group_loo   (1/(G-1)) Σ_{j∈g(i), j≠i} R_j  RLOO (Ahmadian et al. 2024): unbiased
  scale s_i of A:
    none        1
    group_std   std_{j∈g(i)}(R_j) + ε          GRPO (Shao et al. 2024)
    batch_std   std over the batch's valid tokens of A + ε   REINFORCE++ (Hu 2025)
  aggregation of a per-token loss ℓ [T, B] (k_i ∈ {0, 1} keeps episode i, n = Σ_i k_i):
    seq_sum              (1/n) Σ_i k_i Σ_t ℓ_{i,t}                 the lecture's (1/N) Σ_i Σ_t
    seq_mean_token_mean  (1/n) Σ_i k_i (1/|o_i|) Σ_t ℓ_{i,t}       GRPO
    token_sum_const      (1/(n·C)) Σ_i k_i Σ_t ℓ_{i,t}             Dr. GRPO (Liu et al. 2025), C a constant
    batch_token_mean     Σ_i k_i Σ_t ℓ_{i,t} / Σ_i k_i |o_i|       DAPO (Yu et al. 2025)
  ratios (behaviour π_old, current π_θ):
    token     ρ_{i,t} = π_θ(o_t|s_t) / π_old(o_t|s_t)                          PPO, GRPO
    sequence  ρ_i = exp((1/|o_i|) Σ_t log ρ_{i,t}), the same for every t of i   GSPO (Zheng et al. 2025)
  clipped objective  min(ρA, clip(ρ, 1 - ε_low, 1 + ε_high) A)   (DAPO's clip-higher: ε_high > ε_low)
  KL to a reference π_ref, per token, d = log π_ref - log π:
    k1 = -d                   (folded into the reward:  r_t ← r_t - β k1)
    k3 = e^d - d - 1 ≥ 0      (added to the loss: ℓ ← ℓ + β k3)  GRPO
  dynamic sampling: k_i = 0 for the groups whose returns are all equal (DAPO); with static
  shapes they stay in the batch, masked out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pgrun.core.names import ADV_SCALES, AGGREGATIONS, GROUP_BASELINES, RATIO_LEVELS

STD_EPS = 1e-4


def _groups(x: jax.Array, group_size: int) -> jax.Array:
    """[B] -> [B / G, G]."""
    return x.reshape(-1, group_size)


def group_baseline(returns: jax.Array, group_size: int, kind: str) -> jax.Array:
    """b_i for each episode (module docstring).  returns [B] -> [B]."""
    g = _groups(returns, group_size)
    if kind == "none":
        return jnp.zeros_like(returns)
    if kind == "group_mean":
        return jnp.broadcast_to(g.mean(axis=1, keepdims=True), g.shape).reshape(-1)
    if kind == "group_loo":
        return ((g.sum(axis=1, keepdims=True) - g) / (group_size - 1)).reshape(-1)
    raise ValueError(f"unknown group baseline {kind!r}; valid: none, {', '.join(GROUP_BASELINES)}")


def group_std(returns: jax.Array, group_size: int) -> jax.Array:
    """std_{j∈g(i)} R_j with Bessel's correction (as GRPO's implementations, torch's .std()).  [B] -> [B]."""
    g = _groups(returns, group_size)
    return jnp.broadcast_to(jnp.std(g, axis=1, ddof=1, keepdims=True), g.shape).reshape(-1)


def scale_advantages(adv: jax.Array, returns: jax.Array, valid: jax.Array, group_size: int, kind: str,
                     eps: float = STD_EPS) -> jax.Array:
    """A / s (module docstring).  adv [T, B], returns [B], valid [T, B] -> [T, B] (0 on padding)."""
    v = valid.astype(adv.dtype)
    if kind == "none":
        return adv * v
    if kind == "group_std":
        return adv / (group_std(returns, group_size) + eps)[None, :] * v
    if kind == "batch_std":
        n = jnp.maximum(v.sum(), 1.0)
        mean = jnp.sum(adv * v) / n
        std = jnp.sqrt(jnp.sum((adv - mean) ** 2 * v) / n)
        return adv / (std + eps) * v
    raise ValueError(f"unknown advantage scale {kind!r}; valid: {ADV_SCALES}")


def informative_groups(returns: jax.Array, group_size: int, tol: float = 1e-6) -> jax.Array:
    """k_i: False for every episode of a group whose returns are all equal (DAPO's dynamic
    sampling drops them: their group-relative advantages are 0).  [B] -> bool [B]."""
    g = _groups(returns, group_size)
    spread = g.max(axis=1, keepdims=True) - g.min(axis=1, keepdims=True)
    return jnp.broadcast_to(spread > tol, g.shape).reshape(-1)


def aggregate(per_token: jax.Array, valid: jax.Array, kind: str, const: float = 1.0,
              keep: jax.Array | None = None) -> jax.Array:
    """The batch loss from per-token terms ℓ (module docstring).  [T, B], [T, B], keep [B] -> scalar.

    An all-dropped batch gives 0 (denominators at least 1).
    """
    k = jnp.ones(per_token.shape[1], per_token.dtype) if keep is None else keep.astype(per_token.dtype)
    m = valid.astype(per_token.dtype) * k[None, :]
    per_seq = jnp.sum(per_token * m, axis=0)                       # [B]
    n = jnp.maximum(k.sum(), 1.0)
    if kind == "seq_sum":
        return per_seq.sum() / n
    if kind == "seq_mean_token_mean":
        lengths = jnp.maximum(valid.astype(per_token.dtype).sum(axis=0), 1.0)
        return (per_seq / lengths).sum() / n
    if kind == "token_sum_const":
        return per_seq.sum() / (n * const)
    if kind == "batch_token_mean":
        return per_seq.sum() / jnp.maximum(m.sum(), 1.0)
    raise ValueError(f"unknown aggregation {kind!r}; valid: {AGGREGATIONS}")


def log_ratios(logp: jax.Array, logp_old: jax.Array, valid: jax.Array, level: str) -> jax.Array:
    """log ρ per token: token level log π_θ - log π_old; sequence level its mean over the
    episode's valid tokens, broadcast to each of them (GSPO).  [T, B] -> [T, B] (0 on padding)."""
    v = valid.astype(logp.dtype)
    d = (logp - logp_old) * v
    if level == "token":
        return d
    if level == "sequence":
        mean = d.sum(axis=0) / jnp.maximum(v.sum(axis=0), 1.0)
        return mean[None, :] * v
    raise ValueError(f"unknown ratio level {level!r}; valid: {RATIO_LEVELS}")


def clipped_objective(ratio: jax.Array, adv: jax.Array, eps_low: float | jax.Array,
                      eps_high: float | jax.Array) -> jax.Array:
    """min(ρA, clip(ρ, 1 - ε_low, 1 + ε_high) A), elementwise."""
    return jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv)


def kl_k1(logp: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """k1 = log π - log π_ref per token (an unbiased, sign-indefinite KL(π‖π_ref) estimate)."""
    return logp - logp_ref


def kl_k3(logp: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """k3 = e^d - d - 1, d = log π_ref - log π (Schulman's unbiased, non-negative estimate)."""
    d = logp_ref - logp
    return jnp.exp(d) - d - 1.0
