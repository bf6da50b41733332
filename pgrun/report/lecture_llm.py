"""Report section "From the lecture to LLM fine-tuning": the group estimators (docs/llm.md)
against the exact ∇J of a tiny Tokens instance, on the same batches.

Measured with `pgrun.lab.group_gradients`: K gradient draws of 8 episodes (2 prompts × G = 4)
at one random θ of the tabular prefix policy on `copy` (P = 1, V = 2, H = 2, partial credit 0.5).
"""

from __future__ import annotations

import os

import numpy as np

from pgrun.lab.group_gradients import fit_to_gradient, group_draws
from pgrun.report.claims import Claim, Section
from pgrun.report.lecture_llm_length import length_part
from pgrun.report.lecture_llm_ratio import ratio_part

ESTIMATORS = {  # label -> overrides (correction=none: one step per batch, ρ ≡ 1)
    "REINFORCE (no baseline)": ["estimator=rloo", "estimator.baseline=none"],
    "RLOO (group leave-one-out)": ["estimator=rloo"],
    "group mean (own reward included)": ["estimator=rloo", "estimator.baseline=group_mean"],
    "GRPO (group std, 1/|o|)": ["estimator=grpo", "estimator.correction=none"],
    "GRPO without std (1/|o| only)": ["estimator=grpo", "estimator.correction=none", "estimator.adv_scale=none"],
    "GRPO without 1/|o| (std only)": ["estimator=grpo", "estimator.correction=none", "estimator.loss_agg=seq_sum"],
    "Dr. GRPO (token sum / H)": ["estimator=dr_grpo", "estimator.correction=none"],
}
VARIANCE_VS_H = ("REINFORCE (no baseline)", "RLOO (group leave-one-out)", "GRPO (group std, 1/|o|)",
                 "Dr. GRPO (token sum / H)")
CHI2_BIASED = 100.0  # misfit χ² above which E[ĝ] is no multiple of ∇J (a multiple: ≈ dof 11-17, seen up to 37)


def llm_estimators(ctx) -> Section:
    K = int(ctx["sizes"].get("llm_batches", 8000))
    fits, J = {}, None
    for label, overrides in ESTIMATORS.items():
        d = group_draws(overrides, K, seed=7 + ctx["seed"])
        fits[label], J = fit_to_gradient(d["draws"], d["grad"]), d["J"]
    horizons = tuple(ctx["sizes"].get("llm_horizons", (2, 3)))
    variance = {2: {k: fits[k]["total_variance"] for k in VARIANCE_VS_H}}
    for h in horizons:
        if h != 2:
            variance[h] = {k: fit_to_gradient(**_pair(group_draws([*ESTIMATORS[k], f"env.horizon={h}"], K,
                                                                  seed=7 + ctx["seed"])))["total_variance"]
                           for k in VARIANCE_VS_H}
    hs = sorted(variance)
    rows = [f"| {k} | {f['scale']:.3f} ± {f['scale_se']:.3f} | {f['cosine']:.4f} | {f['chi2']:.0f} | "
            f"{f['max_abs_z']:.1f} | {f['total_variance']:.4g} |" for k, f in fits.items()]
    body = "\n".join([
        f"Exact J = {J:.4f} at the random θ; {K} paired batches per estimator. ĉ: E[ĝ] fitted as ĉ·∇J "
        "(± one standard error); χ²: misfit of that fit over the coordinates that vary (≈ their number − 1 "
        "for a multiple of ∇J; correlated coordinates of a softmax row spread it: up to 37 was seen); "
        "max|z|: of the mean against ∇J itself.", "",
        "| estimator | ĉ | cos(E ĝ, ∇J) | χ² misfit | max\\|z\\| vs ∇J | tr Cov(ĝ) |",
        "|---|---:|---:|---:|---:|---:|", *rows, "",
        "tr Cov(ĝ) against the horizon H (a new random θ for each H: the table grows with H):", "",
        "| estimator | " + " | ".join(f"H = {h}" for h in hs) + " |", "|---|" + "---:|" * len(hs),
        *[f"| {k} | " + " | ".join(f"{variance[h][k]:.4g}" for h in hs) + " |" for k in VARIANCE_VS_H]])
    r, gm, dr = fits["RLOO (group leave-one-out)"], fits["group mean (own reward included)"], \
        fits["Dr. GRPO (token sum / H)"]
    grpo = {k: fits[k] for k in ESTIMATORS if k.startswith("GRPO")}
    none = fits["REINFORCE (no baseline)"]
    claims = [
        Claim("RLOO (the leave-one-out group baseline) is unbiased", r["max_abs_z"] < 4.5 and
              abs(r["scale"] - 1) < 4.5 * r["scale_se"],
              f"max|z| = {r['max_abs_z']:.2f} over 18 coordinates (< 4.5), ĉ = {r['scale']:.3f} ± {r['scale_se']:.3f}",
              must_hold=True),
        Claim("the plain group mean (own reward included) scales the expected gradient by (G−1)/G = 0.75",
              abs(gm["scale"] - 0.75) < 4.5 * gm["scale_se"] and abs(gm["scale"] - 1) > 4.5 * gm["scale_se"],
              f"ĉ = {gm['scale']:.3f} ± {gm['scale_se']:.3f}, χ² = {gm['chi2']:.0f}"),
        Claim("GRPO's std scaling and 1/|o| length normalisation each change the expected direction",
              all(f["chi2"] > CHI2_BIASED for f in grpo.values()),
              "; ".join(f"{k}: χ² = {f['chi2']:.0f}, cos = {f['cosine']:.4f}" for k, f in grpo.items())
              + f" (biased if χ² > {CHI2_BIASED:g})"),
        Claim("Dr. GRPO removes the direction bias: E[ĝ] = (G−1)/(G·H)·∇J = 0.375·∇J",
              abs(dr["scale"] - 0.375) < 4.5 * dr["scale_se"] and dr["chi2"] < CHI2_BIASED,
              f"ĉ = {dr['scale']:.3f} ± {dr['scale_se']:.3f}, χ² = {dr['chi2']:.0f}"),
        Claim("the leave-one-out baseline lowers the variance of REINFORCE",
              r["total_variance"] < none["total_variance"],
              f"tr Cov: RLOO {r['total_variance']:.4g} vs no baseline {none['total_variance']:.4g} (same batches)"),
    ]
    if len(hs) > 1:
        grows = all(variance[hs[-1]][k] > variance[hs[0]][k] for k in VARIANCE_VS_H[:2])
        claims.append(Claim(
            f"the variance of the score-function estimator grows with the horizon (H = {hs[0]} → {hs[-1]})", grows,
            "; ".join(f"{k}: {variance[hs[0]][k]:.4g} → {variance[hs[-1]][k]:.4g}" for k in VARIANCE_VS_H[:2])))
    fig = _figure(fits, ctx["out_dir"])
    ratio_body, ratio_claims, ratio_fig, ratio_data = ratio_part(ctx)
    body += "\n" + "\n".join(ratio_body)
    claims += ratio_claims
    length_body, length_fig, length_data = length_part(ctx)
    body += "\n" + "\n".join(length_body)
    return Section(
        "llm", "From the lecture to LLM fine-tuning",
        "notes 03/04 (baselines keep the estimator unbiased when they do not depend on the episode's own "
        "actions; the surrogate (1/N) Σ_i Σ_t log π · A) applied to RLOO, GRPO and Dr. GRPO (docs/llm.md)",
        setup=f"env=Tokens copy (P 1, V 2, H 2), policy=tabular_prefix at a random θ, {K} batches of 2 prompts × "
              "G = 4, estimators through pgrun.train.group (pgrun.lab.group_gradients)",
        body=body, claims=claims, figures=[f for f in (fig, ratio_fig, length_fig) if f],
        data={"J": J, "batches": K, "fits": fits, "variance_vs_horizon": variance, "ratio_vs_horizon": ratio_data,
              "length": length_data})


def _pair(d: dict) -> dict:
    return {"draws": d["draws"], "grad": d["grad"]}


def _figure(fits: dict, out_dir: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(fits)
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    y = np.arange(len(labels))
    ax[0].barh(y, [fits[k]["scale"] for k in labels], xerr=[2 * fits[k]["scale_se"] for k in labels])
    ax[0].axvline(1.0, color="k", lw=0.8)
    ax[0].set_yticks(y, labels, fontsize=8)
    ax[0].set_xlabel("fitted scale ĉ  (E ĝ ≈ ĉ ∇J)")
    ax[1].barh(y, [1 - fits[k]["cosine"] for k in labels])
    ax[1].set_xscale("log")
    ax[1].set_yticks(y, [""] * len(labels))
    ax[1].set_xlabel("1 − cos(E ĝ, ∇J)")
    fig.tight_layout()
    path = os.path.join(out_dir, "llm_estimators.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)
