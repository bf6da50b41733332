"""Part of the report section `llm`: sequence- vs token-level ratios as trajectory- vs per-decision
IS, exactly (`pgrun.lab.ratio_bias`): bias of each estimator's expectation against ∇J(θ) and the
ratios' effective sample size, against the horizon H.
"""

from __future__ import annotations

import os

from pgrun.lab.ratio_bias import ratio_bias
from pgrun.report.claims import Claim

EXACT = 1e-4  # relative bias below this is zero up to float32 enumeration
BIASED = 0.02  # relative bias above this is a bias


def ratio_part(ctx) -> tuple[list[str], list[Claim], str | None, dict]:
    """-> (body lines, claims, figure file or None, data)."""
    hs = tuple(ctx["sizes"].get("llm_ratio_horizons", (1, 2, 3)))
    res = {h: ratio_bias(h, theta_seed=42 + ctx["seed"]) for h in hs}
    rows = [f"| {h} | {r['J_old']:.3f} → {r['J']:.3f} | {r['bias']['sequence']:.1e} | {r['bias']['token']:.3f} "
            f"({r['cosine']['token']:.4f}) | {r['bias']['gspo']:.3f} ({r['cosine']['gspo']:.4f}) | "
            f"{r['on_policy_bias']['token']:.1e} / {r['on_policy_bias']['gspo']:.3f} | {r['ess']['sequence']:.3f} | "
            f"{r['ess']['gspo']:.3f} | {r['ess']['token_min']:.3f} |" for h, r in res.items()]
    body = [
        "", "Sequence- vs token-level ratios (trajectory vs per-decision IS; `pgrun.lab.ratio_bias`): copy "
        "(P 1, V 2, partial credit 0.5), tabular prefix policy, behaviour θ_old ~ N(0, 1), target θ = θ_old + "
        "0.5·N(0, 1) per logit, A = R (no baseline), no clipping. E_{o~π_old}[ĝ] exactly by enumeration; bias = "
        "‖E ĝ − ∇J(θ)‖/‖∇J(θ)‖ (cosine in brackets); ESS/n = (E w)²/E w² of the ratio w under π_old "
        "(token: the smallest over positions). A new random θ_old per H (the table grows with H).", "",
        "| H | J(θ_old) → J(θ) | bias: sequence Πρ_t | bias: token ρ_t | bias: GSPO (Πρ_t)^{1/\\|o\\|} | "
        "at θ = θ_old: token / GSPO | ESS seq | ESS GSPO | ESS token (min) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|", *rows]
    h0, h1 = hs[0], hs[-1]
    longer = [h for h in hs if h >= 2]
    claims = [
        Claim("the full sequence ratio (trajectory IS) is unbiased for ∇J(θ) off-policy; at H = 1 the token, "
              "sequence and GSPO ratios coincide and all are unbiased",
              all(r["bias"]["sequence"] < EXACT for r in res.values())
              and (1 not in res or max(res[1]["bias"].values()) < EXACT),
              "sequence bias " + ", ".join(f"H={h}: {r['bias']['sequence']:.1e}" for h, r in res.items())),
        Claim("the token-level ratio (PPO/GRPO, per-decision) is biased for ∇J(θ) when θ ≠ θ_old (H ≥ 2), "
              "unbiased at θ = θ_old",
              bool(longer) and all(res[h]["bias"]["token"] > BIASED and res[h]["on_policy_bias"]["token"] < EXACT
                                   for h in longer),
              ", ".join(f"H={h}: {res[h]['bias']['token']:.3f} (on-policy {res[h]['on_policy_bias']['token']:.1e})"
                        for h in longer) + f" (biased: > {BIASED})"),
        Claim("GSPO's length-normalised ratio is biased (H ≥ 2), even at θ = θ_old (its 1/|o|)",
              bool(longer) and all(res[h]["bias"]["gspo"] > BIASED and res[h]["on_policy_bias"]["gspo"] > BIASED
                                   for h in longer),
              ", ".join(f"H={h}: {res[h]['bias']['gspo']:.3f} (on-policy {res[h]['on_policy_bias']['gspo']:.3f})"
                        for h in longer)),
        Claim(f"the sequence ratio's ESS is lower at H = {h1} than at H = {h0} and below the per-token ratios' "
              "for H ≥ 2 (one random instance per H: not a monotone trend)",
              len(hs) > 1 and res[h1]["ess"]["sequence"] < res[h0]["ess"]["sequence"]
              and all(res[h]["ess"]["sequence"] < res[h]["ess"]["token_min"] for h in longer),
              "ESS/n sequence " + ", ".join(f"H={h}: {r['ess']['sequence']:.3f}" for h, r in res.items())
              + "; token (min) " + ", ".join(f"H={h}: {r['ess']['token_min']:.3f}" for h, r in res.items())),
    ]
    data = {str(h): {k: v for k, v in r.items() if not k.startswith("theta")} for h, r in res.items()}
    return body, claims, _figure(res, ctx["out_dir"]), data


def _figure(res: dict, out_dir: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hs = sorted(res)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for k, lab in (("sequence", "sequence Πρ (trajectory IS)"), ("token", "token ρ_t (PPO/GRPO)"),
                   ("gspo", "GSPO (Πρ)^{1/|o|}")):
        ax[0].plot(hs, [max(res[h]["bias"][k], 1e-8) for h in hs], "o-", label=lab)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("horizon H")
    ax[0].set_ylabel("‖E ĝ − ∇J(θ)‖ / ‖∇J(θ)‖")
    ax[0].legend(fontsize=8)
    for k, lab in (("sequence", "sequence ratio"), ("gspo", "GSPO ratio"), ("token_min", "token ratio (min over t)")):
        ax[1].plot(hs, [res[h]["ess"][k] for h in hs], "o-", label=lab)
    ax[1].set_xlabel("horizon H")
    ax[1].set_ylabel("ESS / n")
    ax[1].legend(fontsize=8)
    for a in ax:
        a.set_xticks(hs)
    fig.tight_layout()
    path = os.path.join(out_dir, "llm_ratio_bias.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)
