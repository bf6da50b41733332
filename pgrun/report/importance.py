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

`multiple_updates_per_batch` trains the same policy on the same data budget with K
importance-weighted updates per batch, without and with a KL constraint (notes 04, "Off-Policy
Algorithm" / "Policy Constraint Problem"), and summarises, per variant and K, how far π_θ'
ends from the sampling policy π_θ (mean KL(π_θ ‖ π_θ') over the batch's states), the
per-decision weights' ESS and maximum, and the final return.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.core.batch import Batch


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


def normalized_ess_log(log_w: np.ndarray) -> float:
    """ESS / n = (Σ w)² / (n Σ w²) ∈ [1/n, 1] from the log-weights log w_j.

    ESS does not change when every weight is scaled, so it is computed from u_j = exp(log w_j - M),
    M = max_j log w_j: exact when the weights themselves (or their squares) over- or underflow.
    1 for equal weights; NaN only for an empty array or a log-weight that is NaN or +inf.
    """
    log_w = np.asarray(log_w, np.float64)
    if log_w.size == 0 or not np.all(log_w < np.inf):
        return float("nan")
    u = np.exp(log_w - log_w.max())
    return float(u.sum() ** 2 / (len(u) * np.sum(u**2)))


def normalized_ess(w: np.ndarray) -> float:
    """ESS / n = (Σ w)² / (n Σ w²) ∈ (0, 1]; 1 for equal weights. Scale-free (see
    `normalized_ess_log`), so tiny weights whose squares underflow do not give 0/0; weights
    that are all exactly 0 carry no ratio and give NaN: pass their logs to `normalized_ess_log`."""
    w = np.asarray(w, np.float64)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    if w.size and np.all(w == 0):
        return float("nan")
    return normalized_ess_log(log_w)


def weight_stats(log_w: np.ndarray) -> dict:
    """n, mean, variance (ddof 1), max and ESS/n of the weights w = exp(log_w), computed from
    the log-weights (w = e^M·u with M = max log w, u ∈ (0, 1]): float64 inf only where a figure
    itself exceeds float64, no 0/0 where the weights underflow."""
    log_w = np.asarray(log_w, np.float64)
    m = log_w.max()
    u = np.exp(log_w - m)
    var_u = u.var(ddof=1)
    with np.errstate(over="ignore", divide="ignore"):
        return {"n": int(len(u)), "mean": float(np.exp(m + np.log(u.mean()))),
                "var": float(np.exp(2.0 * m + np.log(var_u))) if var_u > 0 else 0.0,
                "max": float(np.exp(m)), "normalized_ess": normalized_ess_log(log_w)}


def is_weights_vs_horizon(env, env_params, policy, params_behaviour, params_target, horizons,
                          num_episodes: int, key) -> list[dict]:
    """Summarise trajectory-level and per-decision weights towards π_target of
    `num_episodes` episodes of π_behaviour truncated at each horizon H. -> one row per H.

    The episodes are sampled once with the largest H; the H-truncated episode is their
    first H steps (truncation does not change the process before it bites), so every
    horizon uses the same episodes (common random numbers) and one compiled rollout.
    """
    from pgrun.rollout.episodes import rollout_episodes

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
            "trajectory": weight_stats(d.sum(0)),
            "per_decision": weight_stats(d[valid]),
        })
    return rows


# --------------------------------------------------------------- several updates per batch

# The shared setup: the discrete moving particle, softmax over the env's linear features,
# the per-decision IS surrogate (notes 04 "Timestep-Level") on reward-to-go minus the
# batch-mean baseline, whole-batch steps (one minibatch) of constant-step Adam (lr 0.05, as
# configs/experiment/lecture/particle_sigma.yaml), 16 episodes per iteration.
UPDATES_BASE = ("env=Particle", "policy=softmax_linear", "policy.features=env", "estimator=is_per_decision",
                "estimator.minibatches=1", "optimizer=adam", "optimizer.lr=0.05", "optimizer.schedule=constant",
                "optimizer.max_grad_norm=null", "episodes_per_iteration=16", "gamma=0.99", "progress=false",
                "checkpoint_every=0")
LAST_K = 10  # final return: mean of return_mean over the last LAST_K iterations, per seed


def update_variants(epochs, delta: float, ppo_epochs=()) -> list[dict]:
    """The runs of the comparison: {name, overrides, points: [(point, variant)]}.

    For each K in `epochs` one vmapped run with constraint=kl_penalty (target δ) and
    sweep.estimator.kl_beta=[0, 1]: point 0 has β ≡ 0 (β only ever doubles or halves, so 0
    stays 0), the unconstrained per-decision reuse; point 1 starts at β = 1 and adapts β
    toward δ. Same compiled program, same seeds, same data budget; only β differs.
    TRPO (constraint=trust_region, max_kl δ) takes one natural-gradient step per batch (K = 1
    by construction). PPO's clipped surrogate (correction=clip, ε = 0.2) for K in ppo_epochs.
    """
    out = [{"name": f"kl_penalty_K{k}", "epochs": int(k),
            "overrides": [f"estimator.epochs={int(k)}", "estimator.constraint=kl_penalty",
                          f"estimator.kl_target={delta}", "sweep.estimator.kl_beta=[0.0,1.0]"],
            "points": [(0, "unconstrained"), (1, "kl_penalty")]} for k in epochs]
    out.append({"name": "trpo", "epochs": 1,
                "overrides": ["estimator.epochs=1", "estimator.constraint=trust_region", f"estimator.max_kl={delta}"],
                "points": [(None, "trpo")]})
    out += [{"name": f"ppo_K{k}", "epochs": int(k),
             "overrides": [f"estimator.epochs={int(k)}", "estimator.correction=clip", "estimator.clip_eps=0.2"],
             "points": [(None, "ppo")]} for k in ppo_epochs]
    return out


def _floats(rows, key) -> np.ndarray:
    return np.array([float(r[key]) if r[key] != "" else np.nan for r in rows], np.float64)


def summarize_updates(rows: list[dict], last_k: int = LAST_K) -> dict:
    """Per-seed and pooled figures of one variant from its metrics.csv rows (one point).

    Per seed, over iterations: mean and max of kl_old_new, mean is_ess, mean and max of
    is_weight_max (the largest per-decision weight of each batch), mean updates per batch,
    the final return (mean return_mean over the last `last_k` iterations); pooled over
    (iteration, seed): the KL of every update, for quantiles and maxima.
    """
    seeds = sorted({int(r["seed"]) for r in rows})
    per: dict[str, list[float]] = {
        k: [] for k in ("kl_mean", "kl_max", "ess_mean", "wmax_mean", "wmax_max", "updates_mean", "final_return")}
    kl_all = []
    for s in seeds:
        rs = sorted((r for r in rows if int(r["seed"]) == s), key=lambda r: int(r["iteration"]))
        kl, ess, wmax = _floats(rs, "kl_old_new"), _floats(rs, "is_ess"), _floats(rs, "is_weight_max")
        ret = _floats(rs, "return_mean")
        per["kl_mean"].append(kl.mean())
        per["kl_max"].append(kl.max())
        per["ess_mean"].append(ess.mean())
        per["wmax_mean"].append(wmax.mean())
        per["wmax_max"].append(wmax.max())
        per["updates_mean"].append(_floats(rs, "updates").mean())
        per["final_return"].append(ret[-last_k:].mean())
        kl_all.append(kl)
    out: dict[str, Any] = {k: np.asarray(v) for k, v in per.items()}
    out["kl_all"] = np.concatenate(kl_all)
    out["seeds"] = seeds
    out["iterations"] = int(max(int(r["iteration"]) for r in rows))
    return out


def multiple_updates_per_batch(out_dir: str, epochs=(1, 4, 16), num_seeds: int = 8, iterations: int = 40,
                               seed: int = 0, delta: float = 0.01, ppo_epochs=(), overrides=()) -> list[dict]:
    """K updates per batch with and without a KL constraint (notes 04, "Off-Policy Algorithm",
    "Policy Constraint Problem"): train every variant of `update_variants` with
    `pgrun.runner.loop.run` (num_seeds seeds vmapped per run) into out_dir/<name>/.

    overrides: extra config overrides for every run (after UPDATES_BASE). Returns one record
    per (variant, K): {"variant", "epochs", "run" (directory), "point", **summarize_updates}.
    Raises pgrun.errors.TrainingDiverged / ConfigError as `run` does.
    """
    from pgrun.config import compose, load
    from pgrun.runner.loop import run

    records = []
    for v in update_variants(epochs, delta, ppo_epochs):
        cfg = load(compose([*UPDATES_BASE, *v["overrides"], *overrides, f"num_seeds={int(num_seeds)}",
                       f"iterations={int(iterations)}", f"log_every={int(iterations)}", f"seed={int(seed)}"]))
        d = os.path.join(out_dir, v["name"])
        os.makedirs(d, exist_ok=True)
        run(cfg, d)
        with open(os.path.join(d, "metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        for point, variant in v["points"]:
            mine = rows if point is None else [r for r in rows if int(r["point"]) == point]
            records.append({"variant": variant, "epochs": v["epochs"], "run": d, "point": point,
                            **summarize_updates(mine)})
    return records
