"""Importance weights between two nearby policies (notes 04, "Off-Policy Policy Gradients").

Episodes are sampled with the behaviour policy π_θ and re-weighted for a target π_θ'.
With per-step log-ratios Δ_t = log π_θ'(a_t|s_t) - log π_θ(a_t|s_t) (0 on padding):

  trajectory-level weight   w_i = p_θ'(τ_i) / p_θ(τ_i) = Π_t π_θ'(a_t|s_t)/π_θ(a_t|s_t)
                                = exp(Σ_t Δ_t^i)                         [N]   (dynamics cancel)
  per-decision weight       ρ_t^i = π_θ'(a_t|s_t)/π_θ(a_t|s_t) = exp(Δ_t^i)   one per valid step
                            (the "timestep-level" ratio of the notes: a single ratio, not a product)

Both have expectation 1 under π_θ (E[w] = Σ_τ p_θ' = 1; E[ρ_t | s_t] = Σ_a π_θ'(a|s_t) = 1).
If the Δ_t were i.i.d. with variance σ², log w would have variance Hσ² and, for roughly
Gaussian Δ, Var[w] ≈ exp(Hσ²) - 1: exponential growth with the horizon H, while Var[ρ_t]
does not depend on H. Effective sample size of weights w_1..w_n:
ESS = (Σ w)² / Σ w², reported normalised, ESS / n ∈ (0, 1].

`multiple_updates_per_batch` is a marked TODO hook: several updates on one batch, with and
without a KL constraint, needs the off-policy estimators being built on another branch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.rollout import Batch


def log_ratios(policy, params_target, params_behaviour, batch: Batch) -> jax.Array:
    """Δ_t = log π_target(a_t|s_t) - log π_behaviour(a_t|s_t), 0 on padding.  -> [T, N]."""
    lp_t = policy.dist(params_target, batch.obs).log_prob(batch.action)
    lp_b = policy.dist(params_behaviour, batch.obs).log_prob(batch.action)
    return jnp.where(batch.valid, lp_t - lp_b, 0.0)


def trajectory_weights(delta: jax.Array) -> jax.Array:
    """w_i = exp(Σ_t Δ_t^i).   delta [T, N] -> [N]."""
    return jnp.exp(jnp.sum(delta, axis=0))


def per_decision_weights(delta: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """ρ_t^i = exp(Δ_t^i) for every valid step, flattened.   [T, N] -> [#valid steps]."""
    return np.exp(np.asarray(delta)[np.asarray(valid, bool)])


def normalized_ess(w: np.ndarray) -> float:
    """ESS / n = (Σ w)² / (n Σ w²) ∈ (0, 1]; 1 for equal weights."""
    w = np.asarray(w, np.float64)
    return float(w.sum() ** 2 / (len(w) * np.sum(w**2)))


def weight_stats(w: np.ndarray) -> dict:
    w = np.asarray(w, np.float64)
    return {"n": int(len(w)), "mean": float(w.mean()), "var": float(w.var(ddof=1)),
            "max": float(w.max()), "normalized_ess": normalized_ess(w)}


def is_weights_vs_horizon(env, env_params, policy, params_behaviour, params_target, horizons,
                          num_episodes: int, key) -> list[dict]:
    """Summarise trajectory-level and per-decision weights towards π_target of
    `num_episodes` episodes of π_behaviour truncated at each horizon H. -> one row per H.

    The episodes are sampled once with the largest H; the H-truncated episode is their
    first H steps (truncation does not change the process before it bites), so every
    horizon uses the same episodes (common random numbers) and one compiled rollout.
    """
    from pgrun.rollout import rollout_episodes

    H_max = int(max(horizons))
    batch = jax.jit(lambda k: rollout_episodes(env, env_params, policy, params_behaviour, k, num_episodes,
                                               H_max))(key)
    delta = np.asarray(jax.jit(log_ratios, static_argnums=0)(policy, params_target, params_behaviour, batch),
                       np.float64)
    kl = jax.jit(lambda o: policy.dist(params_target, o).kl(policy.dist(params_behaviour, o)))(batch.obs)
    valid_all, kl = np.asarray(batch.valid), np.asarray(kl, np.float64)
    rows = []
    for H in horizons:
        valid = valid_all[: int(H)]
        d = np.where(valid, delta[: int(H)], 0.0)
        rows.append({
            "horizon": int(H),
            "mean_length": float(valid.sum(0).mean()),
            "kl_step_mean": float(kl[: int(H)][valid].mean()),
            "log_ratio_step_std": float(d[valid].std(ddof=1)),
            "log_weight_std": float(d.sum(0).std(ddof=1)),
            "trajectory": weight_stats(np.exp(d.sum(0))),
            "per_decision": weight_stats(np.exp(d[valid])),
        })
    return rows


def multiple_updates_per_batch(*args, **kwargs):
    """TODO(off-policy branch): K updates per batch with importance-weighted surrogates,
    with and without a KL(π_θ' ‖ π_θ) ≤ δ constraint (notes 04, "Policy Constraint Problem").

    Needs the off-policy / clipped estimators that are being built on another branch; until
    they are merged this hook raises, and the lecture report says the comparison was not run.
    """
    raise NotImplementedError(
        "multiple updates per batch (with/without a KL constraint) awaits the off-policy estimators "
        "being built on another branch")
