"""Lecture report section 6: importance weights vs horizon (notes 04, "Off-Policy Policy
Gradients"), self-contained on the discrete moving particle; see `pgrun.importance`."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from pgrun.claims import Claim, Section
from pgrun.compose import compose
from pgrun.diagnose import build
from pgrun.importance import is_weights_vs_horizon

HORIZONS = (1, 2, 5, 10, 20, 50)


def plot_weights(rows, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    H = [r["horizon"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(H, [r["trajectory"]["var"] for r in rows], "o-", label="trajectory  Π_t π'/π")
    axes[0].plot(H, [r["per_decision"]["var"] for r in rows], "s-", label="per-decision  π'/π at t")
    if min(min(r["trajectory"]["var"], r["per_decision"]["var"]) for r in rows) > 0:
        axes[0].set_yscale("log")
    axes[0].set_title("variance of the importance weights")
    axes[1].plot(H, [r["trajectory"]["normalized_ess"] for r in rows], "o-", label="trajectory")
    axes[1].plot(H, [r["per_decision"]["normalized_ess"] for r in rows], "s-", label="per-decision")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("normalised ESS = (Σw)² / (n Σw²)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("horizon H (steps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def off_policy(ctx) -> Section:
    sz, out, seed = ctx["sizes"], ctx["out_dir"], ctx["seed"]
    step = float(sz.get("is_step", 0.3))
    cfg = compose(["env=Particle", "policy=softmax_linear", "policy.features=env"])
    env, env_params, policy, _ = build(cfg)
    theta = policy.init(jax.random.PRNGKey(0))  # θ = 0: uniform over the 8 directions
    u = np.random.default_rng(seed).normal(size=ravel_size(theta))
    u /= np.linalg.norm(u)
    theta_new = {"theta": theta["theta"] + step * jnp.asarray(u, jnp.float32)}
    horizons = sz.get("horizons", HORIZONS)
    rows = is_weights_vs_horizon(env, env_params, policy, theta, theta_new, horizons, sz["is_episodes"],
                                 jax.random.PRNGKey(seed + 3))
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    fig = os.path.join("figures", "is_weights.png")
    plot_weights(rows, os.path.join(out, fig))

    tv = np.array([r["trajectory"]["var"] for r in rows])
    te = np.array([r["trajectory"]["normalized_ess"] for r in rows])
    pv = np.array([r["per_decision"]["var"] for r in rows])
    pe = np.array([r["per_decision"]["normalized_ess"] for r in rows])
    H = np.array([r["horizon"] for r in rows])
    rho_v = float(stats.spearmanr(H, tv).statistic) if np.ptp(tv) > 0 else 0.0
    rho_e = float(stats.spearmanr(H, te).statistic) if np.ptp(te) > 0 else 0.0
    growth = float(tv[-1] / tv[0]) if tv[0] > 0 else float("nan")
    spread = float(pv.max() / pv.min()) if pv.min() > 0 else float("inf")
    table = ["| H | mean length | KL(π'‖π) per step | std Σ_t log(π'/π) | trajectory: mean w | var w | ESS/n | "
             "per-decision: mean ρ | var ρ | ESS/n |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t, p = r["trajectory"], r["per_decision"]
        table.append(f"| {r['horizon']} | {r['mean_length']:.1f} | {r['kl_step_mean']:.4f} | {r['log_weight_std']:.3f} | "
                     f"{t['mean']:.3f} | {t['var']:.4g} | {t['normalized_ess']:.3f} | {p['mean']:.3f} | "
                     f"{p['var']:.4g} | {p['normalized_ess']:.3f} |")
    claims = [
        Claim("the variance of trajectory-level weights Π_t π'/π grows with the horizon",
              rho_v >= 0.9 and growth >= 10.0,
              f"var(w) from {tv[0]:.3g} at H = {H[0]} to {tv[-1]:.3g} at H = {H[-1]} (×{growth:.3g}); Spearman "
              f"ρ(H, var) = {rho_v:.2f} (holds if ρ ≥ 0.9 and the growth is ≥ ×10)", must_hold=True),
        Claim("…and their effective sample size collapses",
              rho_e <= -0.9 and te[-1] < 0.5 * te[0],
              f"ESS/n from {te[0]:.3f} to {te[-1]:.3f}; Spearman ρ(H, ESS) = {rho_e:.2f} "
              "(holds if ρ ≤ −0.9 and ESS/n halves)", must_hold=True),
        Claim("per-decision weights π'(a_t|s_t)/π(a_t|s_t) stay tame at every horizon",
              spread <= 2.0 and pe.min() >= 0.8 and pv.max() < tv[-1],
              f"var(ρ) between {pv.min():.3g} and {pv.max():.3g} (max/min {spread:.2f}, holds if ≤ 2), "
              f"ESS/n ≥ {pe.min():.3f}", must_hold=True),
    ]
    body = "\n".join(table + [
        "", "**Not run (TODO).** *Multiple updates per batch, with and without a KL constraint* (notes 04, "
        "*Off-Policy Algorithm* / *Policy Constraint Problem*) needs the importance-weighted / clipped estimators "
        "that are being built on another branch. The hook `pgrun.importance.multiple_updates_per_batch` raises "
        "`NotImplementedError` until then; no numbers are reported for it here."])
    return Section("off_policy", "6. Off-policy: importance weights vs horizon",
                   "Notes 04, *Off-Policy Policy Gradients*: the trajectory ratio Π_t π_θ'(a_t|s_t)/π_θ(a_t|s_t) "
                   "(dynamics cancel) can explode or vanish for long horizons; the timestep-level ratio "
                   "π_θ'/π_θ at t is much less likely to, with more stable variance.",
                   f"Particle (8 directions), behaviour π_θ = uniform (θ = 0), target θ' = θ + {step:g}·u "
                   f"(u a random unit vector); {sz['is_episodes']} episodes of π_θ, truncated at H ∈ "
                   f"{list(map(int, H))} (the first H steps of the same episodes); weights from log-prob "
                   "differences; both have expectation 1.",
                   body, claims, [fig], {"rows": rows, "step": step, "spearman_var": rho_v,
                                         "spearman_ess": rho_e})


def ravel_size(params) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
