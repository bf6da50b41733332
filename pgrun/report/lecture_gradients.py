"""Lecture report sections on gradient estimators at a fixed θ (no training):

  raw_returns  notes 03 "Example: Raw Returns" on the two-state Bandit
  causality    notes 04 "Causality (Reward-to-Go)" on the tabular Chain (exact ∇J)
  discounting  the same estimators for the discounted J (γ = 0.9): biased without γ^t, unbiased with it
  baselines    notes 04 "Baselines" / notes 03 Appendix C on the Chain (exact ∇J)
  bc           notes 04 "Relationship to Imitation Learning": equal rewards -> BC

Each function takes the report context `ctx` (out_dir, sizes, seed, a cache shared by the
sections) and returns a `pgrun.report.claims.Section`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pgrun.config import compose, load
from pgrun.lab import reference
from pgrun.lab.diagnose import diagnose, initial_params
from pgrun.lab.gradstats import bias_test
from pgrun.report import bc
from pgrun.report.claims import Claim, Section, fmt_ci
from pgrun.train.build import build

UNBIASED = ("reinforce", "reward_to_go", "baseline", "batch_mean_time", "value_baseline",
            "reinforce_baseline", "optimal_baseline", "reinforce_optimal_baseline", "optimal_baseline_loo",
            "optimal_baseline_indep")
CHAIN_ESTIMATORS = ("reinforce", "reward_to_go", "baseline", "batch_mean_time", "value_baseline",
                    "actor_critic", "reinforce_baseline", "optimal_baseline", "reinforce_optimal_baseline",
                    "optimal_baseline_loo", "optimal_baseline_indep")
# the optimal baselines and the batch-mean baseline with the same weights (the variance claim's pair)
OPTIMAL_VS = {"optimal_baseline": "baseline", "reinforce_optimal_baseline": "reinforce_baseline",
              "optimal_baseline_indep": "reinforce_baseline"}
LABELS = {
    "reinforce": "REINFORCE, total return G(τ)",
    "reward_to_go": "reward-to-go G_t (causality)",
    "baseline": "G_t − batch-mean return (LOO)",
    "batch_mean_time": "G_t − per-step batch mean (LOO)",
    "value_baseline": "G_t − learned V(s_t)",
    "actor_critic": "GAE(λ) with learned V",
    "reinforce_baseline": "G(τ) − batch-mean return (LOO)",
    "optimal_baseline": "G_t − b*_k, b* from running sums over previous batches (estimator=optimal_baseline)",
    "reinforce_optimal_baseline": "G(τ) − b*_k, b* from running sums over previous batches",
    "optimal_baseline_loo": "G(τ) − b*_k, b* leave-one-out in the batch",
    "optimal_baseline_indep": "G(τ) − b*_k, b* from independent batches",
}


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root)


def estimator_table(res: dict, against: str = "reinforce", labels: dict | None = None) -> str:
    """Markdown: one row per estimator of a diagnose result."""
    labels = dict(LABELS, **(labels or {}))
    est = res["estimators"]
    ratios = res["variance_ratios"]
    head = (f"| estimator | tr Cov (95% CI) | ratio to {against} (95% CI) | cos(mean, ∇J) | ‖mean − ∇J‖ | "
            "noise floor | bias p (Bonf.) | CIs covering 0 |")
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, s in est.items():
        r = ratios.get(name, {}).get(against)
        rtxt = f"{r['ratio']:.3f} {fmt_ci(r.get('ci95'))}" if r else "1"
        b = s["bias"]
        lines.append(f"| {name}: {labels.get(name, name)} | {s['total_variance']:.4g} "
                     f"{fmt_ci(s.get('total_variance_ci95'))} | {rtxt} | {s['cosine_to_ref']:.4f} | "
                     f"{b['norm']:.3g} | {b['noise_floor']:.3g} | {b['p_value_bonferroni']:.3g} | "
                     f"{b['fraction_ci_covering_zero']:.2f} |")
    return "\n".join(lines)


def unbiased_claim(res: dict, name: str, where: str) -> Claim:
    b = res["estimators"][name]["bias"]
    ref = res["reference"]["kind"]
    return Claim(
        f"{name} is unbiased ({where})", b["unbiased_at_alpha"],
        f"max|z| = {b['max_abs_z']:.2f} over {b['components_tested']} components, Bonferroni p = "
        f"{b['p_value_bonferroni']:.3g} (α = {b['alpha']:g}) against the {ref} ∇J; ‖mean − ∇J‖ = {b['norm']:.3g} "
        f"vs noise floor {b['noise_floor']:.3g}, debiased {b['debiased_norm']:.3g} "
        f"(95% CI {fmt_ci(b.get('debiased_norm_ci95'))}); "
        f"{100 * b['fraction_ci_covering_zero']:.0f}% of per-component 95% CIs cover 0",
        must_hold=True)


def lower_variance_claim(res: dict, a: str, b: str, text: str, must: bool = False) -> Claim:
    r = res["variance_ratios"][a][b]
    ci = r.get("ci95")
    holds = bool(ci and ci[1] < 1.0)
    ta, tb = res["estimators"][a]["total_variance"], res["estimators"][b]["total_variance"]
    return Claim(text, holds, f"tr Cov {a} / {b} = {ta:.4g} / {tb:.4g} = {r['ratio']:.3f}, paired bootstrap "
                 f"95% CI {fmt_ci(ci)} (holds if the CI lies below 1)", must_hold=must)


# ------------------------------------------------------------------ 1. raw returns


def raw_returns(ctx) -> Section:
    sz, out = ctx["sizes"], ctx["out_dir"]
    cfg = load(compose(["env=Bandit", "policy=softmax_linear", f"episodes_per_iteration={sz['episodes']}",
                   f"seed={ctx['seed']}"]))
    parts = build(cfg)
    env, env_params, policy, max_steps = parts.env, parts.env_params, parts.policy, parts.max_steps
    params = policy.init(jax.random.PRNGKey(0))  # θ = 0: the uniform policy
    s1, s2 = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
    a2 = jnp.int32(1)
    score = jax.jit(lambda p, o, a: ravel_pytree(jax.grad(lambda q: policy.dist(q, o).log_prob(a))(p))[0])
    dprob = jax.jit(lambda p, o, a: ravel_pytree(jax.grad(lambda q: jnp.exp(policy.dist(q, o).log_prob(a)))(p))[0])
    exact = reference.exact_grad(env, env_params, policy, params, 1.0, max_steps)
    rows, data = [], {}
    for name, o, R, b, best in (("(s1, a2)", s1, 7.0, 9.5, False), ("(s2, a2)", s2, 5.0, 3.5, True)):
        g = np.asarray(score(params, o, a2))
        dp = np.asarray(dprob(params, o, a2))
        d = {"R": R, "b": R - b, "score_norm": float(np.linalg.norm(g)),
             "raw_push": float(np.linalg.norm(R * g)), "baseline_push": float(np.linalg.norm((R - b) * g)),
             "dpi_raw": float(dp @ (R * g)), "dpi_baseline": float(dp @ ((R - b) * g)),
             "dpi_exact": float(dp @ exact), "a2_is_best": best}
        data[name] = d
        rows.append(f"| {name} | {R:g} | {np.linalg.norm(g):.4f} | {d['raw_push']:.4f} | {d['dpi_raw']:+.4f} | "
                    f"{R - b:+g} | {d['dpi_baseline']:+.4f} | {d['dpi_exact']:+.4f} |")
    t1, t2 = data["(s1, a2)"], data["(s2, a2)"]
    body = ["Per-sample update terms at the uniform policy θ = 0 (softmax over one_hot(a) ⊗ [s, 1]); "
            "dπ = ∇π(a2|s)·u is the first-order change of π(a2|s) along the term u:", "",
            "| sample | R | ‖∇log π(a2|s)‖ | ‖R ∇log π‖ (raw push) | dπ(a2|s) raw | R − b(s) | "
            "dπ(a2|s) with baseline | "
            "dπ(a2|s) along exact ∇J |", "|---|---:|---:|---:|---:|---:|---:|---:|", *rows]
    claims = [
        Claim("raw REINFORCE gives the sub-optimal (s1, a2) a larger push than the optimal (s2, a2)",
              t1["raw_push"] > t2["raw_push"] and t1["dpi_raw"] > 0,
              f"‖7∇log π(a2|s1)‖ = {t1['raw_push']:.4f} > ‖5∇log π(a2|s2)‖ = {t2['raw_push']:.4f}; the raw term "
              f"raises π(a2|s1) (dπ = {t1['dpi_raw']:+.4f}) although a2 is the worse action in s1 (7 < 12)",
              must_hold=True),
        Claim("the state baseline b(s1) = 9.5, b(s2) = 3.5 fixes the signs: 7 − 9.5 < 0 lowers π(a2|s1), "
              "5 − 3.5 > 0 raises π(a2|s2), as the exact gradient does",
              t1["b"] < 0 < t2["b"] and t1["dpi_baseline"] < 0 < t2["dpi_baseline"]
              and np.sign(t1["dpi_baseline"]) == np.sign(t1["dpi_exact"])
              and np.sign(t2["dpi_baseline"]) == np.sign(t2["dpi_exact"]),
              f"weights {t1['b']:+g}, {t2['b']:+g}; dπ(a2|s1) = {t1['dpi_baseline']:+.4f} (exact ∇J: "
              f"{t1['dpi_exact']:+.4f}), dπ(a2|s2) = {t2['dpi_baseline']:+.4f} (exact ∇J: {t2['dpi_exact']:+.4f})",
              must_hold=True),
    ]
    ddir = os.path.join(out, "diagnose", "bandit_uniform")
    res = diagnose(cfg, params, ddir, ["reinforce", "value_baseline", "baseline", "optimal_baseline"],
                   batches=sz["bandit_batches"], critic="exact", bootstrap=sz["bootstrap"], seed=ctx["seed"] + 1,
                   parts=parts)
    claims.append(lower_variance_claim(
        res, "value_baseline", "reinforce",
        "subtracting the state baseline b(s) = V^π(s) (9.5, 3.5 here) reduces the gradient variance"))
    claims += [unbiased_claim(res, n, "Bandit, θ = 0, exact ∇J") for n in res["estimators"]]
    body += ["", f"Gradient diagnostics at θ = 0 on {res['batches']} batches × {res['episodes_per_batch']} episodes "
             f"(value_baseline uses the exact V^π(s), i.e. the notes' b(s1) = 9.5, b(s2) = 3.5); exact ∇J:", "",
             estimator_table(res, labels={"value_baseline": "R − exact V^π(s) = the notes' b(s)",
                                          "baseline": "R − batch-mean return (LOO)",
                                          "optimal_baseline": "R − b*_k, b* from running sums over previous "
                                                              "batches"})]
    return Section("raw_returns", "1. Raw returns vs a state baseline (two-state bandit)",
                   "Notes 03, *Example: Raw Returns* and *Variance Reduction*: with rewards s1: (12, 7), s2: (2, 5), "
                   "the raw REINFORCE update 7∇log π(a2|s1) + 5∇log π(a2|s2) pushes the wrong action in the "
                   "high-reward state harder; subtracting b(s) (9.5, 3.5) gives −2.5 and +1.5, the right signs, "
                   "and reduces variance.",
                   "Bandit env, softmax_linear policy, θ = 0 (uniform); exact J and ∇J.",
                   "\n".join(body), claims, [_rel(os.path.join(ddir, "gradients.png"), out)],
                   {"terms": data, "diagnose": _strip(res)})


def _strip(res: dict) -> dict:
    """A diagnose result without the per-component lists (kept in diagnose/*/gradients.json)."""
    keep = {}
    for name, s in res["estimators"].items():
        keep[name] = {k: v for k, v in s.items() if k not in ("mean", "per_param_variance")}
    return {"reference": {k: v for k, v in res["reference"].items() if k != "gradient"}, "estimators": keep,
            "variance_ratios": res["variance_ratios"], "batches": res["batches"],
            "episodes_per_batch": res["episodes_per_batch"], "mean_episode_length": res["mean_episode_length"]}


# ------------------------------------------------------- 2 + 3. causality, baselines


def chain_diagnoses(ctx) -> list[tuple[str, dict]]:
    """Diagnose all estimators on the Chain at θ = 0 (and, in full mode, at a trained θ);
    computed once and shared by the causality and baselines sections."""
    if "chain" in ctx["cache"]:
        return ctx["cache"]["chain"]
    sz, out = ctx["sizes"], ctx["out_dir"]
    # γ = 1: the undiscounted objective, for which the lecture's reward-to-go forms are unbiased
    # (for γ < 1 they need γ^t: section `discounting`)
    cfg = load(compose(["env=Chain", "policy=softmax_linear", "policy.features=env", "optimizer.lr=0.1",
                        "optimizer.schedule=constant", "gamma=1.0", f"episodes_per_iteration={sz['episodes']}",
                        f"seed={ctx['seed']}"]))
    thetas = [("θ = 0 (uniform)", "chain_uniform", 0)]
    if sz.get("trained_iterations"):
        k = int(sz["trained_iterations"])
        thetas.append((f"θ after {k} iterations of `baseline` (Adam, lr 0.1)", "chain_trained", k))
    results, parts = [], build(cfg)
    for label, name, iters in thetas:
        params = initial_params(cfg, iters, parts)
        res = diagnose(cfg, params, os.path.join(out, "diagnose", name), sz.get("chain_estimators", CHAIN_ESTIMATORS),
                       batches=sz["chain_batches"], critic_batches=sz["critic_batches"],
                       critic_steps=sz["critic_steps"], bootstrap=sz["bootstrap"], seed=ctx["seed"] + 2 + iters,
                       parts=parts)
        res["_label"], res["_dir"] = label, name
        results.append((label, res))
    ctx["cache"]["chain"] = results
    return results


def past_reward_decomposition(res: dict) -> dict:
    """Var(REINFORCE) = Var(reward-to-go) + Var(D) + 2 Cov(reward-to-go, D), traces over
    parameters, with D = REINFORCE − reward-to-go = (1/N) Σ_i Σ_t ∇log π(a_t|s_t) Σ_{t'<t} γ^t' r_t'
    the zero-mean term that causality drops (same batches)."""
    G_rf, G_rtg = res["_samples"]["reinforce"], res["_samples"]["reward_to_go"]
    D = G_rf - G_rtg
    Dc, Rc = D - D.mean(0), G_rtg - G_rtg.mean(0)
    M = D.shape[0]
    return {"var_reinforce": float(G_rf.var(0, ddof=1).sum()), "var_reward_to_go": float(G_rtg.var(0, ddof=1).sum()),
            "var_dropped": float(D.var(0, ddof=1).sum()),
            "two_cov": float(2.0 * np.sum(Dc * Rc) / (M - 1))}


def causality(ctx) -> Section:
    claims, body, figs, data = [], [], [], {}
    for i, (label, res) in enumerate(chain_diagnoses(ctx)):
        where = f"Chain, γ = 1, {label}"
        # must hold at θ = 0 (the lecture's setting; a bug check); elsewhere measured: reward-to-go only
        # drops zero-mean terms, which is not a theorem of lower variance (see the decomposition)
        claims.append(lower_variance_claim(
            res, "reward_to_go", "reinforce",
            f"reward-to-go has lower gradient variance than total-return REINFORCE ({where})", must=i == 0))
        claims += [unbiased_claim(res, n, where) for n in ("reinforce", "reward_to_go")]
        J = res["reference"]["J"]
        dec = past_reward_decomposition(res)
        body += [f"**{label}** — exact J = {J:.4f}, |∇J| = {res['reference']['norm']:.4f}, mean episode length "
                 f"{res['mean_episode_length']:.2f}, {res['batches']} batches × {res['episodes_per_batch']} episodes:",
                 "", estimator_table(_subset(res, ("reinforce", "reward_to_go"))), "",
                 f"Decomposition on the same batches, D = REINFORCE − reward-to-go (the dropped past-reward term, "
                 f"mean 0): tr Cov REINFORCE {dec['var_reinforce']:.4g} = reward-to-go {dec['var_reward_to_go']:.4g} "
                 f"+ Var(D) {dec['var_dropped']:.4g} + 2 Cov(reward-to-go, D) {dec['two_cov']:+.4g}.", ""]
        if dec["two_cov"] < -dec["var_dropped"]:
            body += ["Here the dropped term is *negatively* correlated with the kept one, enough to outweigh its own "
                     "variance: the move costs paid before a profitable EXIT act, inside the total return, like a "
                     "baseline subtracted from the reward-to-go (G(τ) = G_t + Σ_{t'<t} r_t' with Σ_{t'<t} r_t' ≤ 0). "
                     "Causality guarantees unbiasedness, not lower variance, so this is a counterexample to the "
                     "lecture's variance claim at this θ, not a bug (both estimators pass the bias test).", ""]
        figs.append(_rel(os.path.join(ctx["out_dir"], "diagnose", res["_dir"], "gradients.png"), ctx["out_dir"]))
        data[label] = dict(_strip(_subset(res, ("reinforce", "reward_to_go"))), decomposition=dec)
    return Section("causality", "2. Causality: reward-to-go vs total return (tabular Chain, exact ∇J)",
                   "Notes 04, *Causality (Reward-to-Go)*: the policy at t cannot affect rewards before t, so "
                   "weighting ∇log π(a_t|s_t) by Σ_{t'≥t} r_t' instead of the total return is still unbiased "
                   "and has lower variance (undiscounted: for γ < 1 see section 2b).",
                   "Chain env (12-state slippery ledge, H = 25, γ = 1: the undiscounted objective), tabular softmax "
                   "(policy.features=env); both estimators on the same batches (common random numbers); "
                   "reference = exact ∇J by autodiff of `pgrun.core.exact.exact_J`. The variance claim is must-hold at "
                   "θ = 0 (the uniform policy); at other θ it is measured and reported as it comes out.",
                   "\n".join(body), claims, figs, data)


def _subset(res: dict, names) -> dict:
    out = dict(res)
    out["estimators"] = {n: res["estimators"][n] for n in names if n in res["estimators"]}
    out["variance_ratios"] = {n: res["variance_ratios"][n] for n in names if n in res["variance_ratios"]}
    return out


def baselines(ctx) -> Section:
    claims, body, data = [], [], {}
    for label, res in chain_diagnoses(ctx):
        where = f"Chain, γ = 1, {label}"
        est = res["estimators"]
        claims += [unbiased_claim(res, n, where) for n in est
                   if n in UNBIASED and n not in ("reinforce", "reward_to_go")]
        for n in ("baseline", "batch_mean_time", "value_baseline"):
            if n in est:
                claims.append(lower_variance_claim(
                    res, n, "reward_to_go", f"{LABELS[n]} has lower variance than reward-to-go alone ({where})"))
        for n, vs in OPTIMAL_VS.items():
            if n in est and vs in est:
                weights = "reward-to-go" if n == "optimal_baseline" else "total-return"
                how = LABELS[n].split(", ")[1]
                claims.append(lower_variance_claim(
                    res, n, vs,
                    f"the per-parameter optimal baseline b*_k = E[g_k u_k]/E[g_k²] (App. C), {how}, "
                    f"has lower variance than the batch-mean baseline with the same {weights} weights ({where})"))
        order = sorted(est, key=lambda n: est[n]["total_variance"])
        ac = est.get("actor_critic")
        note = ""
        if ac:
            b = ac["bias"]
            note = (f"actor_critic (GAE λ = 0.95 with the fitted critic) is not claimed unbiased: its bias test gives "
                    f"p = {b['p_value_bonferroni']:.3g}, ‖mean − ∇J‖ = {b['norm']:.3g} vs noise floor "
                    f"{b['noise_floor']:.3g} (debiased bias norm {b['debiased_norm']:.3g}).")
        body += [f"**{label}** — variance ordering (lowest first): " + " < ".join(order), "",
                 estimator_table(res, "reward_to_go"), "", note, ""]
        data[label] = _strip(res)
    return Section("baselines", "3. Baselines: batch mean, learned V(s), optimal b* (tabular Chain, exact ∇J)",
                   "Notes 04, *Baselines*: subtracting a baseline b that does not depend on the action keeps the "
                   "estimator unbiased (here for the undiscounted objective, γ = 1; for γ < 1 the reward-to-go "
                   "forms also need γ^t, section 2b) and reduces variance; notes 03, Appendix C: the "
                   "variance-minimising baseline is b* = E[g²R]/E[g²] (≈ V(s)).",
                   "Same Chain batches as section 2. Batch-mean baselines are leave-one-out (LOO); the learned "
                   "V(s) and the 'independent' b* are fitted on batches independent of the diagnosed ones, "
                   "so all of them are unbiased. Ratios are paired-bootstrap tr Cov ratios to reward-to-go.",
                   "\n".join(body), claims, [], data)


# ------------------------------------------------------------------- 2b. discounting

DISCOUNT_GAMMA = 0.9
DISCOUNT_FORMS = (("reinforce", False), ("reward_to_go", False), ("baseline", False), ("reward_to_go", True),
                  ("baseline", True))


def projected_z(G: np.ndarray, ref: np.ndarray, u: np.ndarray) -> float:
    """z = mean_m s_m / (std(s) / √M) with s_m = u·(G_m − ref): the estimates [M, P] projected on
    one direction u [P] (unit). Along the exact bias direction this one scalar is a sum over
    many components, close to normal where single rare-state components are not."""
    s = (np.asarray(G, np.float64) - ref) @ u
    return float(s.mean() / (s.std(ddof=1) / np.sqrt(len(s))))


def discounting(ctx) -> Section:
    from pgrun.lab.gradients import batched_grads, make_grad_fn, sample_batches
    from pgrun.lab.gradstats import bootstrap_counts, estimator_stats

    sz, seed, g = ctx["sizes"], ctx["seed"], DISCOUNT_GAMMA
    cfg = load(compose(["env=Chain", "policy=softmax_linear", "policy.features=env", f"gamma={g}"]))
    parts = build(cfg)
    env, env_params, policy, H = parts.env, parts.env_params, parts.policy, parts.max_steps
    params = policy.init(jax.random.PRNGKey(0))  # θ = 0: the uniform policy
    exact = reference.exact_grad(env, env_params, policy, params, g, H)
    plain_mean = reference.expected_estimate(env, env_params, policy, params, g, H, gamma_t=False)
    exact_bias = float(np.linalg.norm(plain_mean - exact))
    u = (plain_mean - exact) / exact_bias
    M, N = int(sz["discount_batches"]), int(sz["episodes"])
    data = sample_batches(env, env_params, policy, params, jax.random.split(jax.random.PRNGKey(seed + 40), M), N, H)
    counts = bootstrap_counts(M, int(sz["bootstrap"]), seed=seed)
    stats, rows = {}, []
    for name, gamma_t in DISCOUNT_FORMS:
        G = batched_grads(make_grad_fn(name, policy, g, gamma_t=gamma_t), params, data)
        st = estimator_stats(G, exact, counts=counts)
        st["z_along_bias"] = projected_z(G, exact, u)
        st["z_along_bias_vs_plain_mean"] = projected_z(G, plain_mean, u)
        key = f"{name} × γ^t" if gamma_t else name
        stats[key] = {k: v for k, v in st.items() if k not in ("mean", "per_param_variance")}
        b = st["bias"]
        rows.append(f"| {key} | {st['total_variance']:.4g} | {st['cosine_to_ref']:.4f} | {b['norm']:.3g} "
                    f"{fmt_ci(b.get('norm_ci95'))} | {b['noise_floor']:.3g} | {b['p_value_bonferroni']:.3g} | "
                    f"{st['z_along_bias']:+.2f} | {st['z_along_bias_vs_plain_mean']:+.2f} |")
    plain = [stats[n] for n in ("reward_to_go", "baseline")]
    with_gt = [stats[n] for n in ("reward_to_go × γ^t", "baseline × γ^t")]
    ref_norm = float(np.linalg.norm(exact))

    def ev(sts, names):
        return "; ".join(f"{n}: Bonferroni p = {s['bias']['p_value_bonferroni']:.3g}, ‖mean − ∇J‖ = "
                         f"{s['bias']['norm']:.3g} (noise floor {s['bias']['noise_floor']:.3g}), z along the exact "
                         f"bias direction = {s['z_along_bias']:+.2f}" for n, s in zip(names, sts))

    alpha = plain[0]["bias"]["alpha"]
    claims = [
        Claim(f"at γ = {g:g}, reward-to-go and the batch-mean baseline WITHOUT γ^t are biased for the discounted "
              f"∇J (exact bias ‖E ĝ − ∇J‖ = {exact_bias:.4f} against |∇J| = {ref_norm:.4f})",
              all(not s["bias"]["unbiased_at_alpha"] and s["z_along_bias"] > 4.0 for s in plain),
              ev(plain, ("reward_to_go", "baseline")) + f" (holds if p < α = {alpha:g} and z > 4)", must_hold=True),
        Claim(f"with estimator.gamma_t=true (step t's term × γ^t, t from the episode's start) reward-to-go and the "
              f"batch-mean baseline are unbiased for the discounted ∇J (γ = {g:g})",
              all(s["bias"]["unbiased_at_alpha"] and abs(s["z_along_bias"]) < 3.5 for s in with_gt),
              ev(with_gt, ("reward_to_go × γ^t", "baseline × γ^t")) + f" (holds if p ≥ α = {alpha:g} and |z| < 3.5)",
              must_hold=True),
        unbiased_claim({"estimators": stats, "reference": {"kind": "exact"}}, "reinforce",
                       f"Chain, γ = {g:g}, θ = 0: G(τ) is discounted from t = 0 and needs no γ^t"),
    ]
    body = "\n".join([
        f"Exact at θ = 0: |∇J| = {ref_norm:.4f}; the plain reward-to-go's exact mean "
        f"(`pgrun.core.exact.expected_pg_surrogate`: Σ_t Σ_s d_t(s) Σ_a ∇π(a|s) Q_t(s,a), no γ^t) is "
        f"{exact_bias:.4f} from ∇J (cosine {float(plain_mean @ exact / (np.linalg.norm(plain_mean) * ref_norm)):.4f}). "
        f"{M} batches × {N} episodes, the same batches for every row; z: the estimates projected on the exact bias "
        "direction u = (E[plain] − ∇J)/‖·‖, against ∇J and against the plain form's exact mean.", "",
        "| estimator | tr Cov | cos(mean, ∇J) | ‖mean − ∇J‖ (95% CI) | noise floor | bias p (Bonf.) | "
        "z along u vs ∇J | z along u vs E[plain] |", "|---|---:|---:|---|---:|---:|---:|---:|", *rows])
    return Section("discounting", "2b. Discounting: reward-to-go needs γ^t for γ < 1 (tabular Chain, exact ∇J)",
                   "The lectures' reward-to-go Σ_t ∇log π(a_t|s_t) G_t with G_t = Σ_{k≥t} γ^{k−t} r_k is unbiased for "
                   "the undiscounted objective. The discounted J = E[Σ_t γ^t r_t] has the gradient "
                   "E[Σ_t γ^t ∇log π(a_t|s_t) G_t] (policy gradient theorem; Thomas 2014, Nota & Thomas 2020): "
                   "without γ^t, reward-to-go and every baseline-subtracted or GAE form of it are biased; "
                   "total-return REINFORCE is not.",
                   f"Chain env (H = 25), γ = {g:g}, tabular softmax (policy.features=env) at θ = 0; reference = exact "
                   "∇J; `pgrun-diagnose ... gamma=0.9 estimator.gamma_t=true` gives the γ^t rows.",
                   body, claims, [], {"exact_bias_norm": exact_bias, "grad_norm": ref_norm, "estimators": stats,
                                      "batches": M, "episodes_per_batch": N})


# ---------------------------------------------------------------------------- 7. BC


def behavioral_cloning(ctx) -> Section:
    from pgrun.lab.gradients import batched_grads, make_grad_fn, sample_batches
    from pgrun.rollout.episodes import rollout_episodes

    sz, seed = ctx["sizes"], ctx["seed"]
    c, N, tol = 2.5, sz["episodes"], 1e-4
    cfg = load(compose(["env=Particle", "policy=softmax_linear", "policy.features=env", "env.params.goal_radius=0.0"]))
    parts = build(cfg)
    env, env_params, policy, T = parts.env, parts.env_params, parts.policy, parts.max_steps
    params = {"theta": jnp.asarray(np.random.default_rng(seed).normal(size=6) * 0.5, jnp.float32)}
    batch = jax.jit(lambda k: rollout_episodes(env, env_params, policy, params, k, N, T))(jax.random.PRNGKey(seed))
    lengths = np.asarray(batch.valid.sum(0))

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))

    def cos(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    g_bc = bc.bc_grad(policy, params, batch)
    rows: list[str] = []
    checks: dict[float | str, dict[str, Any]] = {}
    for gamma in (1.0, 0.99):
        rf = jax.jit(make_grad_fn("reinforce", policy, gamma))
        rtg = jax.jit(make_grad_fn("reward_to_go", policy, gamma))
        g_a = rf(params, bc.constant_return(batch, c))
        L = float(bc.discounted_length(batch, gamma)[0])
        g_b = rf(params, bc.constant_step_reward(batch, c))
        g_d = rtg(params, bc.constant_step_reward(batch, c))
        g_d_bc = bc.bc_grad(policy, params, batch, c * bc.discounted_steps_to_go(batch, gamma))
        checks[gamma] = {"a": rel(g_a, c * g_bc), "b": rel(g_b, c * L * g_bc), "L": L,
                         "d": rel(g_d, g_d_bc), "d_cos_bc": cos(g_d, g_bc)}
        rows.append(f"| Particle (T = {int(lengths[0])} for all), γ = {gamma:g} | (a) r(τ) = c: ∇J̃ = c·∇L_BC | "
                    f"{checks[gamma]['a']:.2e} |")
        rows.append(f"| Particle, γ = {gamma:g} | (b) r_t = c: ∇J̃ = c·Σ_(t<T) γ^t·∇L_BC = c·{L:.4g}·∇L_BC | "
                    f"{checks[gamma]['b']:.2e} |")
        rows.append(f"| Particle, γ = {gamma:g} | (d) reward-to-go, r_t = c: ∇J̃ = time-weighted BC "
                    f"(cos to plain BC {checks[gamma]['d_cos_bc']:.3f}) | {checks[gamma]['d']:.2e} |")
    # (c) CartPole: reward exactly 1 per step, episode lengths differ
    cp = load(compose(["env=CartPole", "policy=softmax_linear"]))
    cparts = build(cp)
    cenv, cparams_env, cpol, cT = cparts.env, cparts.env_params, cparts.policy, cparts.max_steps
    cparams = {"theta": jnp.asarray(np.random.default_rng(seed + 1).normal(size=10) * 0.3, jnp.float32)}
    cb = jax.jit(lambda k: rollout_episodes(cenv, cparams_env, cpol, cparams, k, N, cT))(jax.random.PRNGKey(seed + 1))
    gamma = 0.99
    g_c = jax.jit(make_grad_fn("reinforce", cpol, gamma))(cparams, cb)
    w = bc.discounted_length(cb, gamma)
    g_c_bc = bc.bc_grad(cpol, cparams, cb, w)
    c_lengths = np.asarray(cb.valid.sum(0))
    plain = np.asarray(bc.bc_grad(cpol, cparams, cb), np.float64)
    g64 = np.asarray(g_c, np.float64)
    alpha = float(g64 @ plain / (plain @ plain))  # best scalar multiple of plain BC
    checks["cartpole"] = {"c": rel(g_c, g_c_bc), "cos_plain_bc": cos(g_c, plain),
                          "residual_to_multiple": float(np.linalg.norm(g64 - alpha * plain) / np.linalg.norm(g64)),
                          "best_multiple": alpha, "lengths": [int(x) for x in c_lengths]}
    rows.append(f"| CartPole (r_t = 1, lengths {c_lengths.min()}–{c_lengths.max()}), γ = 0.99 | (c) ∇J̃ = BC weighted "
                f"by c·Σ_(t<T_i) γ^t per episode (distance to the nearest multiple of plain BC: "
                f"{checks['cartpole']['residual_to_multiple']:.3f} of ‖∇J̃‖) | {checks['cartpole']['c']:.2e} |")
    # (e) in expectation: constant return -> ∇J = 0, and the estimate averages to 0
    M = sz["bc_batches"]
    batches = sample_batches(env, env_params, policy, params, jax.random.split(jax.random.PRNGKey(seed + 2), M), N, T)
    const = jax.vmap(lambda b: bc.constant_return(b, c))(batches)
    G = batched_grads(make_grad_fn("reinforce", policy, 1.0), params, const)
    zero = bias_test(G, np.zeros(G.shape[1]))
    claims = [
        Claim("with r(τ) = c for every τ, the REINFORCE gradient is exactly c × the BC gradient on the same "
              "(s, a) pairs; with r_t = c and fixed length T it is c·Σ_(t<T)γ^t × BC (= c·T·BC for γ = 1)",
              max(checks[g][k] for g in (1.0, 0.99) for k in ("a", "b")) < tol,
              f"max relative difference {max(checks[g][k] for g in (1.0, 0.99) for k in ('a', 'b')):.2e} "
              f"(float32; tolerance {tol:g}); Σ_(t<50) 0.99^t = {checks[0.99]['L']:.4f}", must_hold=True),
        Claim("with equal per-step rewards but episodes of different lengths (CartPole: r = 1) REINFORCE is BC "
              "weighted by each episode's discounted length — not a multiple of plain BC",
              checks["cartpole"]["c"] < tol and checks["cartpole"]["residual_to_multiple"] > 100 * tol,
              f"relative difference to the weighted BC gradient {checks['cartpole']['c']:.2e}; the nearest multiple "
              f"of plain BC ({checks['cartpole']['best_multiple']:.3g}×) is off by "
              f"{checks['cartpole']['residual_to_multiple']:.3g} of ‖∇J̃‖ "
              f"(cosine {checks['cartpole']['cos_plain_bc']:.4f})",
              must_hold=True),
        Claim("reward-to-go weights with equal rewards give a time-weighted BC (early steps weigh more), "
              "not plain BC", all(checks[g]["d"] < tol and checks[g]["d_cos_bc"] < 0.9999 for g in (1.0, 0.99)),
              f"relative difference to Σ_t c·Σ_(k≥t)γ^(k−t) ∇log π: {max(checks[g]['d'] for g in (1.0, 0.99)):.2e}; "
              f"cosine to plain BC {checks[1.0]['d_cos_bc']:.3f} (γ = 1)", must_hold=True),
        Claim("on the policy's own samples the BC gradient has mean zero, so constant-return REINFORCE is an "
              "unbiased estimate of ∇J = 0 (imitating yourself teaches nothing in expectation)",
              zero["unbiased_at_alpha"],
              f"{M} batches × {N} episodes: max|z| = {zero['max_abs_z']:.2f}, Bonferroni p = "
              f"{zero['p_value_bonferroni']:.3g}", must_hold=True),
    ]
    body = "\n".join(["| batch | relation | max relative difference |", "|---|---|---:|", *rows])
    return Section("bc", "7. Equal rewards: policy gradient reduces to behavioural cloning",
                   "Notes 04, *Relationship to Imitation Learning*: if all rewards are equal (r(τ) = c for all τ), "
                   "policy gradient reduces to behavioural cloning. Exact relations (see `pgrun.report.bc`): "
                   "(a) r(τ) = c ⇒ ∇J̃ = c·∇L_BC; (b) r_t = c, all lengths T ⇒ ∇J̃ = c·(1−γ^T)/(1−γ)·∇L_BC "
                   "(c·T·∇L_BC at γ = 1); (c) r_t = c, lengths T_i ⇒ BC weighted by c·(1−γ^T_i)/(1−γ); "
                   "(d) reward-to-go ⇒ BC weighted by c·(1−γ^(T−t))/(1−γ); with ∇L_BC = (1/N)Σ_iΣ_t∇log π(a_t|s_t).",
                   f"Same sampled batch for PG and BC (rewards replaced by constants c = {c}), Particle with "
                   "goal_radius = 0 (no termination: every episode lasts T = 50), softmax over the env's features "
                   "at a random θ; CartPole at a random linear θ for unequal lengths.",
                   body, claims, [], {"checks": {str(k): v for k, v in checks.items()}, "mean_zero_test": zero,
                                      "tolerance": tol})
