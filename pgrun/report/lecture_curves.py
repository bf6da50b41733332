"""Lecture report sections 4 and 5: learning curves (one vmapped multi-seed run per variant,
`pgrun.runner.loop.run`), plotted and scored with `pgrun.report.plot`.

Runs are configured by the experiment files configs/experiment/lecture/*.yaml (what
`pgrun -m +experiment=lecture/<name>` runs) plus the report's size overrides (num_seeds,
iterations). Identical resolved configs are run once and shared between sections.

Comparisons between variants are on per-seed scores: the mean return over all iterations
(area under the learning curve, "AUC": speed of learning) and over the last 10 iterations
(final). Differences of means get percentile-bootstrap 95% CIs over seeds (independent
runs, unpaired); a comparison HOLDS when its CI lies above 0.
"""

from __future__ import annotations

import json
import os

import numpy as np
from scipy import stats

from pgrun.config import compose, load
from pgrun.report import plot
from pgrun.report.claims import Claim, Section, fmt_ci

CARTPOLE_ESTIMATORS = ("reinforce", "reward_to_go", "baseline", "value_baseline", "actor_critic")


def run_variant(ctx, experiment: str, overrides: list[str], name: str) -> str:
    """Run (or reuse) one multi-seed run; returns its directory."""
    from pgrun.runner.loop import run

    sz = ctx["sizes"]
    cfg = load(compose([f"+experiment=lecture/{experiment}", *overrides, f"num_seeds={sz['seeds']}",
                   f"iterations={sz['iterations']}", f"seed={ctx['seed']}", "progress=false"]))
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    runs = ctx["cache"].setdefault("runs", {})
    if key in runs:
        return runs[key]
    out = os.path.join(ctx["out_dir"], "runs", name)
    os.makedirs(out, exist_ok=True)
    run(cfg, out)
    runs[key] = out
    return out


def seed_scores(run_dir: str, y: str = "return_mean", last_k: int = 10) -> dict[str, np.ndarray]:
    r = plot.load_runs([run_dir])[0]
    cols = [r.columns[s][y] for s in sorted(r.columns)]
    return {"auc": np.array([c.mean() for c in cols]), "final": np.array([c[-last_k:].mean() for c in cols])}


def diff_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 4000, seed: int = 0) -> list[float]:
    """95% percentile-bootstrap CI of mean(a) - mean(b), independent samples."""
    res = stats.bootstrap((a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), vectorized=True,
                          paired=False, n_resamples=n_boot, method="percentile",
                          random_state=np.random.default_rng(seed))
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def better_claim(text: str, a: str, b: str, sa: dict, sb: dict, metric: str) -> Claim:
    d = float(sa[metric].mean() - sb[metric].mean())
    ci = diff_ci(sa[metric], sb[metric])
    what = "mean return over all iterations (AUC)" if metric == "auc" else "final return (last 10 iterations)"
    return Claim(text, ci[0] > 0,
                 f"{what}: {a} {sa[metric].mean():.4g} vs {b} {sb[metric].mean():.4g}, difference {d:+.3g}, "
                 f"95% CI {fmt_ci(ci)} over seeds (holds if the CI lies above 0)")


def _curves(ctx, dirs: list[str], group_by: list[str], name: str, title: str, y: str = "return_mean") -> tuple:
    out = os.path.join(ctx["out_dir"], "figures")
    res = plot.plot_runs(dirs, out_dir=out, group_by=group_by, y=y, title=title, formats=("png", "svg"))
    # plot_runs writes learning_curves.* / final_scores.*: give them this section's name
    files = []
    for f in res["files"]:
        base, ext = os.path.splitext(f)
        stem = os.path.basename(base).replace("learning_curves", name).replace("final_scores", f"{name}_scores")
        target = os.path.join(out, stem + ext)
        os.replace(f, target)
        files.append(target)
    return res, files


def estimators_curves(ctx) -> Section:
    sz = ctx["sizes"]
    dirs = {e: run_variant(ctx, "cartpole_estimators", [f"estimator={e}"], f"cartpole_{e}")
            for e in CARTPOLE_ESTIMATORS}
    res, files = _curves(ctx, list(dirs.values()), ["estimator.name"], "cartpole_estimators",
                         f"CartPole (200-step limit), mlp policy: {sz['seeds']} seeds per estimator")
    scores = {e: seed_scores(d) for e, d in dirs.items()}
    claims = [better_claim(f"{e} learns faster than raw REINFORCE", e, "reinforce", scores[e], scores["reinforce"],
                           "auc")
              for e in CARTPOLE_ESTIMATORS if e != "reinforce"]
    claims += [better_claim(f"{e} learns faster than reward-to-go without a baseline", e, "reward_to_go",
                            scores[e], scores["reward_to_go"], "auc")
               for e in ("baseline", "value_baseline", "actor_critic")]
    body = [plot.markdown_table(res["scores"]), "",
            "| estimator | AUC (mean return over all iterations) | 95% CI |", "|---|---:|---|"]
    for e, s in scores.items():
        lo, hi = plot.bootstrap_ci(s["auc"][:, None])
        body.append(f"| {e} | {s['auc'].mean():.1f} | [{lo[0]:.1f}, {hi[0]:.1f}] |")
    png = [os.path.relpath(f, ctx["out_dir"]) for f in files if f.endswith(".png")]
    return Section("curves", "4. Learning curves of the estimators (CartPole)",
                   "Notes 04, *Variance Reduction Techniques* / notes 03, *Variance Reduction*: causality and "
                   "baselines reduce the variance of the gradient estimate, so (at equal step size and batch) the "
                   "policy should improve faster.",
                   f"`pgrun -m +experiment=lecture/cartpole_estimators` with num_seeds={sz['seeds']}, "
                   f"iterations={sz['iterations']}: mlp [64, 64] policy, Adam lr 0.01, 16 episodes per iteration, "
                   "γ = 0.99, CartPole cut at 200 steps; one vmapped run per estimator. Bands: 95% bootstrap CI "
                   "of the mean over seeds (`pgrun-plot`). These are not must-hold claims: learning speed also "
                   "depends on the step size and on Adam's normalisation of the gradient scale.",
                   "\n".join(body), claims, png,
                   {"final_scores": res["scores"], "auc": {e: s["auc"].tolist() for e, s in scores.items()},
                    "runs": {e: os.path.relpath(d, ctx["out_dir"]) for e, d in dirs.items()}})


def policies_curves(ctx) -> Section:
    sz = ctx["sizes"]
    cp = {p: run_variant(ctx, "cartpole_policies", [f"policy={p}"], f"cartpole_policy_{p}")
          for p in ("softmax_linear", "mlp")}
    res_cp, files_cp = _curves(ctx, list(cp.values()), ["policy.name"], "cartpole_policies",
                               f"CartPole, baseline estimator: {sz['seeds']} seeds per policy")
    ps = {s: run_variant(ctx, "particle_sigma", [f"policy.learn_sigma={s}"], f"particle_sigma_{s}")
          for s in ("false", "true")}
    res_ps, files_ps = _curves(ctx, list(ps.values()), ["policy.learn_sigma"], "particle_sigma",
                               f"ParticleContinuous, gaussian_linear: {sz['seeds']} seeds, σ fixed vs learned")
    sc_cp = {p: seed_scores(d) for p, d in cp.items()}
    sc_ps = {s: seed_scores(d) for s, d in ps.items()}
    # σ at the end, from the entropy of the 2-D Gaussian: H = Σ_d (log σ_d + ½(1 + log 2π))
    ent = {s: seed_scores(d, "entropy")["final"] for s, d in ps.items()}
    sigma = {s: float(np.exp(ent[s].mean() / 2 - 0.5 * (1 + np.log(2 * np.pi)))) for s in ps}
    claims = [
        better_claim("a deep policy network (mlp) reaches a higher return than softmax over linear features "
                     "(slides 02: a DPN 'can learn a richer class of policies')", "mlp", "softmax_linear",
                     sc_cp["mlp"], sc_cp["softmax_linear"], "final"),
        better_claim("learning σ as well as θ ends with a higher return than a fixed σ = 1 (the learned σ shrinks "
                     f"to {sigma['true']:.2f} at the end: less action noise once the mean is good)",
                     "learned σ", "fixed σ", sc_ps["true"], sc_ps["false"], "final"),
    ]
    body = ["CartPole, softmax_linear vs mlp:", "", plot.markdown_table(res_cp["scores"]), "",
            f"ParticleContinuous, gaussian_linear with σ fixed at 1 vs learned (final σ from the entropy: "
            f"fixed {sigma['false']:.3f}, learned {sigma['true']:.3f}):", "", plot.markdown_table(res_ps["scores"])]
    png = [os.path.relpath(f, ctx["out_dir"]) for f in files_cp + files_ps if f.endswith(".png")]
    return Section("policies", "5. Policy parameterisations",
                   "Slides 02, *Policy Network*: softmax over linear features x(s, a), a linear Gaussian "
                   "N(θᵀx(s), σ²) trained 'either only learning θ or learning both θ and σ²', and a deep policy "
                   "network that 'can learn a richer class of policies'.",
                   f"`pgrun -m +experiment=lecture/cartpole_policies` (baseline estimator, Adam lr 0.01) and "
                   f"`pgrun -m +experiment=lecture/particle_sigma` (baseline estimator, Adam lr 0.05), "
                   f"num_seeds={sz['seeds']}, iterations={sz['iterations']}. Not must-hold claims. "
                   "Both CartPole policies "
                   "use the same Adam step size (0.01), which favours neither but is not tuned for either: "
                   "CartPole is nearly linearly solvable, so the gap measures learning speed at this step size "
                   "as much as expressiveness.",
                   "\n".join(body), claims, png,
                   {"cartpole": res_cp["scores"], "particle_sigma": res_ps["scores"], "final_sigma": sigma})
