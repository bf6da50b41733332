"""Lecture report section 6 (notes 04, "Off-Policy Policy Gradients"), on the discrete moving
particle; see `pgrun.report.importance`.

  off_policy          6.  importance weights vs horizon: trajectory vs per-decision
  off_policy_updates  6b. several updates per batch, with and without a KL constraint
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from pgrun.config import compose, load
from pgrun.report.claims import Claim, Section, fmt_ci
from pgrun.report.importance import UPDATES_BASE, is_weights_vs_horizon, multiple_updates_per_batch
from pgrun.report.lecture_curves import diff_ci
from pgrun.runner.metrics import confidence_interval
from pgrun.train.build import build

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
    cfg = load(compose(["env=Particle", "policy=softmax_linear", "policy.features=env"]))
    parts = build(cfg)
    env, env_params, policy = parts.env, parts.env_params, parts.policy
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
        table.append(f"| {r['horizon']} | {r['mean_length']:.1f} | {r['kl_step_mean']:.4f} | "
                     f"{r['log_weight_std']:.3f} | "
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
        "", "*Several updates per batch, with and without a KL constraint* (notes 04, *Off-Policy Algorithm* / "
        "*Policy Constraint Problem*): section 6b (`--sections off_policy_updates`)."])
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


# ---------------------------------------------------------------------- 6b. several updates per batch

UPDATE_EPOCHS = (1, 4, 16)
TRPO_TOL = 1e-4  # relative: the line search's KL and the reported one are the same float32 quantity
STYLE = {"unconstrained": ("o-", "C3"), "kl_penalty": ("s-", "C0"), "ppo": ("^-", "C2"), "trpo": ("D", "k")}


def _ci(x) -> tuple[float, float]:
    return confidence_interval(np.asarray(x, np.float64))


def plot_updates(recs, delta: float, path: str) -> None:
    """2×2: mean KL(π_θ‖π_θ'), ESS/n, largest weight and final return vs K, 95% CIs over seeds
    (`runner.stats`: percentile bootstrap)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("kl_mean", "mean KL(π_θ ‖ π_θ') after the update"),
              ("ess_mean", "ESS/n of the per-decision weights"),
              ("wmax_mean", "largest weight π_θ'/π_θ of a batch (mean over iterations)"),
              ("final_return", "final return (last 10 iterations)")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, title) in zip(axes.flat, panels):
        for variant, (fmt, color) in STYLE.items():
            rs = sorted((r for r in recs if r["variant"] == variant), key=lambda r: r["epochs"])
            if not rs:
                continue
            k = np.array([r["epochs"] for r in rs], float)
            if variant == "trpo":
                k = k * 1.08  # beside the K = 1 points
            m = np.array([r[key].mean() for r in rs])
            ci = np.array([_ci(r[key]) for r in rs])
            if key == "kl_mean":  # log axis: keep the interval's lower end above 0
                ci[:, 0] = np.maximum(ci[:, 0], 0.1 * m)
            label = "TRPO (one step, max KL δ)" if variant == "trpo" else variant
            ax.errorbar(k, m, yerr=[m - ci[:, 0], ci[:, 1] - m], fmt=fmt, color=color, capsize=3, label=label)
        if key == "kl_mean":
            ax.axhline(delta, ls="--", color="gray", lw=1, label=f"δ = {delta:g}")
            ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ks = sorted({r["epochs"] for r in recs})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("K: updates per batch (epochs)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _trend(recs, key) -> tuple[np.ndarray, np.ndarray]:
    rs = sorted(recs, key=lambda r: r["epochs"])
    return np.array([r["epochs"] for r in rs]), np.array([r[key].mean() for r in rs])


def off_policy_updates(ctx) -> Section:
    sz, out, seed = ctx["sizes"], ctx["out_dir"], ctx["seed"]
    epochs = tuple(sorted(int(k) for k in sz.get("upd_epochs", UPDATE_EPOCHS)))
    ppo_epochs = tuple(int(k) for k in sz.get("upd_ppo_epochs", ()))
    delta = float(sz.get("upd_delta", 0.01))
    seeds, iters = int(sz["upd_seeds"]), int(sz["upd_iterations"])
    recs = multiple_updates_per_batch(os.path.join(out, "runs", "updates"), epochs, seeds, iters, seed, delta,
                                      ppo_epochs)
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    fig = os.path.join("figures", "updates_per_batch.png")
    plot_updates(recs, delta, os.path.join(out, fig))

    by = {(r["variant"], r["epochs"]): r for r in recs}
    un = [r for r in recs if r["variant"] == "unconstrained"]
    kp = [r for r in recs if r["variant"] == "kl_penalty"]
    trpo = by[("trpo", 1)]
    k0, k1 = epochs[0], epochs[-1]

    def d(a, b, key):  # mean(a) - mean(b) over seeds, with a 95% bootstrap CI (independent runs)
        return float(a[key].mean() - b[key].mean()), diff_ci(a[key], b[key])

    # (a) drift and weight degeneration without a constraint
    K, kl_u = _trend(un, "kl_mean")
    _, ess_u = _trend(un, "ess_mean")
    _, wmax_u = _trend(un, "wmax_mean")
    dkl, dkl_ci = d(by[("unconstrained", k1)], by[("unconstrained", k0)], "kl_mean")
    dess, dess_ci = d(by[("unconstrained", k1)], by[("unconstrained", k0)], "ess_mean")
    kl_up = bool(np.all(np.diff(kl_u) > 0)) and dkl_ci[0] > 0
    ess_down = bool(np.all(np.diff(ess_u) < 0)) and bool(np.all(np.diff(wmax_u) > 0)) and dess_ci[1] < 0
    # (b) the KL penalty keeps the per-update KL near / below δ; at K_max it stays closer than no constraint
    kp_med = {r["epochs"]: float(np.median(r["kl_all"])) for r in kp}
    kp_over = {r["epochs"]: float(np.mean(r["kl_all"] > 1.5 * delta)) for r in kp}
    near = all(m <= 1.5 * delta for m in kp_med.values())
    dkk, dkk_ci = d(by[("kl_penalty", k1)], by[("unconstrained", k1)], "kl_mean")
    dke, dke_ci = d(by[("kl_penalty", k1)], by[("unconstrained", k1)], "ess_mean")
    closer = dkk_ci[1] < 0 and dke_ci[0] > 0
    # TRPO: KL ≤ δ on every update, by construction of the line search
    t_max = float(trpo["kl_all"].max())
    t_ok = t_max <= delta * (1 + TRPO_TOL)
    accepted = float(trpo["updates_mean"].mean())
    # learning
    lrn = {v: d(by[(v, k1)], by[(v, k0)], "final_return") for v in ("unconstrained", "kl_penalty")}
    dc, dc_ci = d(by[("kl_penalty", k1)], by[("unconstrained", k1)], "final_return")

    def seq(x):
        return " → ".join(f"{v:.3g}" for v in x)

    claims = [
        Claim("without a constraint, π_θ' drifts further from the sampling policy π_θ per batch as K grows",
              kl_up, f"mean KL(π_θ‖π_θ') after the update at K = {list(map(int, K))}: {seq(kl_u)}; K = {k1} minus "
              f"K = {k0}: {dkl:+.3g}, 95% CI {fmt_ci(dkl_ci)} over seeds (holds if the mean increases with every "
              "step in K and the CI lies above 0)"),
        Claim("…and the importance weights degenerate (ESS falls, the largest weight grows)", ess_down,
              f"ESS/n {seq(ess_u)}; mean largest weight per batch {seq(wmax_u)}; ESS/n at K = {k1} minus K = {k0}: "
              f"{dess:+.3g}, 95% CI {fmt_ci(dess_ci)} (holds if ESS/n falls and the largest weight grows with "
              "every step in K and the CI lies below 0)"),
        Claim(f"the KL penalty (adaptive β, target δ = {delta:g}) keeps the mean KL of an update near or below δ",
              near, "median KL over all updates (iterations × seeds): " + ", ".join(
                  f"K = {k}: {kp_med[k]:.3g}" for k in sorted(kp_med)) + "; mean: " + ", ".join(
                  f"K = {r['epochs']}: {r['kl_mean'].mean():.3g}" for r in kp) + "; share of updates above 1.5δ: "
              + ", ".join(f"K = {k}: {kp_over[k]:.0%}" for k in sorted(kp_over)) + "; largest: " + ", ".join(
                  f"K = {r['epochs']}: {r['kl_all'].max():.3g}" for r in kp)
              + f" (holds if the median is ≤ 1.5δ = {1.5 * delta:g} at every K: a soft constraint, β reacts "
              "one iteration late, so single updates may overshoot)"),
        Claim(f"at K = {k1} the KL constraint keeps π_θ' closer to π_θ than no constraint, and the weights healthier",
              closer, f"mean KL kl_penalty {by[('kl_penalty', k1)]['kl_mean'].mean():.3g} vs unconstrained "
              f"{by[('unconstrained', k1)]['kl_mean'].mean():.3g} (difference {dkk:+.3g}, 95% CI {fmt_ci(dkk_ci)}); "
              f"ESS/n {by[('kl_penalty', k1)]['ess_mean'].mean():.3f} "
              f"vs {by[('unconstrained', k1)]['ess_mean'].mean():.3f} "
              f"(difference {dke:+.3g}, 95% CI {fmt_ci(dke_ci)}) (holds if the KL CI lies below 0 and the ESS CI "
              "above 0)"),
        Claim(f"TRPO's hard constraint: mean KL(π_θ‖π_θ') ≤ δ = {delta:g} after every update", t_ok,
              f"largest KL over {trpo['kl_all'].size} updates ({len(trpo['seeds'])} seeds × {trpo['iterations']} "
              f"iterations): {t_max:.4g}, mean {trpo['kl_mean'].mean():.3g}; line search accepted a step on "
              f"{accepted:.0%} of the iterations (guaranteed by construction: the line search accepts only a step "
              f"whose measured KL on the batch is ≤ δ; tolerance {TRPO_TOL:g} relative)", must_hold=True),
        *[Claim(f"several gradient steps on the same batch learn more from the same data ({v}: K = {k1} vs K = {k0})",
                lrn[v][1][0] > 0,
                f"final return K = {k1} {by[(v, k1)]['final_return'].mean():.3f} vs K = {k0} "
                f"{by[(v, k0)]['final_return'].mean():.3f}, difference {lrn[v][0]:+.3g}, 95% CI {fmt_ci(lrn[v][1])} "
                f"over seeds; worst seed {by[(v, k1)]['final_return'].min():.3f} vs "
                f"{by[(v, k0)]['final_return'].min():.3f} (holds if the CI lies above 0)")
          for v in ("unconstrained", "kl_penalty")],
        Claim(f"the drift costs learning: at K = {k1} the KL-constrained run ends with a higher return than the "
              "unconstrained one", dc_ci[0] > 0,
              f"final return kl_penalty {by[('kl_penalty', k1)]['final_return'].mean():.3f} vs unconstrained "
              f"{by[('unconstrained', k1)]['final_return'].mean():.3f}, difference {dc:+.3g}, 95% CI {fmt_ci(dc_ci)} "
              f"over seeds; worst seed {by[('kl_penalty', k1)]['final_return'].min():.3f} vs "
              f"{by[('unconstrained', k1)]['final_return'].min():.3f} (holds if the CI lies above 0)"),
    ]
    kp1 = max(ppo_epochs, default=None)
    if kp1 is not None and ("unconstrained", kp1) in by:
        dp, dp_ci = d(by[("ppo", kp1)], by[("unconstrained", kp1)], "kl_mean")
        claims.append(Claim(f"PPO's clipped objective (a soft constraint, ε = 0.2) also limits the drift at K = {kp1}",
                            dp_ci[1] < 0,
                            f"mean KL PPO {by[('ppo', kp1)]['kl_mean'].mean():.3g} vs unconstrained "
                            f"{by[('unconstrained', kp1)]['kl_mean'].mean():.3g} (difference {dp:+.3g}, 95% CI "
                            f"{fmt_ci(dp_ci)}; holds if the CI lies below 0)"))

    table = ["| variant | K | mean KL(π_θ‖π_θ') [95% CI] | median KL | max KL | ESS/n | mean / max largest weight | "
             "steps taken per batch | final return [95% CI] |", "|---|---:|---|---:|---:|---:|---|---:|---|"]
    order = {"unconstrained": 0, "kl_penalty": 1, "ppo": 2, "trpo": 3}
    for r in sorted(recs, key=lambda r: (order[r["variant"]], r["epochs"])):
        table.append(f"| {r['variant']} | {r['epochs']} | {r['kl_mean'].mean():.4f} {fmt_ci(_ci(r['kl_mean']))} | "
                     f"{np.median(r['kl_all']):.4f} | {r['kl_all'].max():.4f} | {r['ess_mean'].mean():.3f} | "
                     f"{r['wmax_mean'].mean():.2f} / {r['wmax_max'].max():.2f} | {r['updates_mean'].mean():.2f} | "
                     f"{r['final_return'].mean():.3f} {fmt_ci(_ci(r['final_return']))} |")
    data = {"delta": delta, "epochs": list(epochs), "ppo_epochs": list(ppo_epochs), "seeds": seeds,
            "iterations": iters, "base_overrides": list(UPDATES_BASE), "variants": [
                {"variant": r["variant"], "epochs": r["epochs"], "run": os.path.relpath(r["run"], out),
                 "point": r["point"], "seeds": r["seeds"],
                 **{k: r[k].tolist() for k in ("kl_mean", "kl_max", "ess_mean", "wmax_mean", "wmax_max",
                                              "updates_mean", "final_return")},
                 "kl_quantiles": dict(zip(("p10", "p50", "p90"), np.quantile(r["kl_all"], [0.1, 0.5, 0.9]).tolist()))}
                for r in recs]}
    ppo_txt = (f"; PPO's clipped surrogate (correction=clip, ε = 0.2) at K ∈ {list(ppo_epochs)}" if ppo_epochs else "")
    return Section(
        "off_policy_updates", "6b. Off-policy: several updates per batch, with and without a KL constraint",
        "Notes 04, *Off-Policy Algorithm*: with importance weights one 'can take multiple gradient steps on same batch "
        "before resampling'. *Policy Constraint Problem*: if π_θ' drifts too far from π_θ, the importance weights "
        "become inaccurate and the gradient estimates degrade; constrain E_s KL ≤ δ "
        "(TRPO: hard constraint; PPO: soft). "
        "The notes write KL(π_θ'‖π_θ); the runs measure and constrain KL(π_θ‖π_θ') (TRPO's and the PPO paper's "
        "direction; same second-order behaviour at θ' = θ).",
        f"`pgrun.report.importance.multiple_updates_per_batch`: Particle (8 directions), softmax over the env's linear "
        f"features, per-decision IS surrogate ρ_t·(G_t − b) (reward-to-go, batch-mean baseline), whole-batch Adam "
        f"steps (lr 0.05, constant), 16 episodes per iteration, {iters} iterations, {seeds} vmapped seeds per run (the "
        f"same data budget for every variant; with pgrun's rbg PRNG a vmapped run's random stream depends on its "
        f"position, so the variants' runs are independent, not common-random-number pairs, and differences get "
        f"unpaired CIs). K ∈ {list(epochs)} epochs per batch, each K one run with "
        f"`estimator.constraint=kl_penalty` and `sweep.estimator.kl_beta=[0,1]`: β ≡ 0 (unconstrained) and adaptive β "
        f"from 1 toward δ = {delta:g} in one compiled program. TRPO (`constraint=trust_region`, max_kl δ) takes one "
        f"natural-gradient step per batch{ppo_txt}. Per update: `kl_old_new` (mean over the batch's states, after "
        "the update), `is_ess`, `is_weight_max`; per seed: means over iterations, final return = mean of the last 10 "
        "iterations; CIs: percentile bootstrap over seeds (table) and of differences (claims). Only TRPO's "
        "bound is a must-hold claim (true by construction); the others are measurements.",
        "\n".join(table), claims, [fig], data)
