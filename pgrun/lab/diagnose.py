"""Gradient diagnostics at a fixed θ: variance, bias and direction of each estimator.

    python -m pgrun.lab.diagnose env=Bandit policy=softmax_linear \\
        diagnose.estimators=[reinforce,reward_to_go,baseline] diagnose.batches=256

Procedure (`diagnose`):
  1. draw M independent batches of N episodes with π_θ (vmapped `rollout_episodes`);
  2. on the SAME M batches (common random numbers) compute each estimator's gradient
     estimate ĝ^(e)_m ∈ R^P, flattened (`pgrun.lab.gradients`, ascent direction);
  3. a reference ∇J: exact (Bandit, tabular envs; `pgrun.lab.reference`) or the mean of
     `ref_batches` further independent batches of `ref_estimator`, with its standard error;
  4. per estimator: mean, total variance tr Cov (the variance of one batch's estimate),
     variance per parameter group, cosine and relative error to the reference, a bias
     test and bias norm with bootstrap CIs, and paired variance ratios between estimators
     (`pgrun.lab.gradstats`);
  5. write gradients.json, gradients.csv and gradients.png into out_dir.
Critic-based estimators (value_baseline, actor_critic) use `critic` when given (a function
obs -> V, or "exact" for the Bandit's V^π), else a critic fitted on `critic_batches`
batches independent of the diagnosed ones; `optimal_baseline_indep` uses the b* of those
same independent batches (`optimal_baseline_loo` estimates b* leave-one-out inside each batch).
A fitted critic or b* is fixed across the M batches, so the variance reported for them is
conditional on that one fit. `optimal_baseline` (and `reinforce_optimal_baseline`, its
total-return form) is the training estimator: its b* sums run from batch to batch with decay
`estimator.baseline_decay`, warmed up on `baseline_warmup` further independent batches and
then carried through the M batches in order (`gradients.running_grads`), as in training
after that many updates at a θ that does not move.

`estimator.gamma_t=true` applies to every diagnosed estimator (and the Monte-Carlo reference):
the reward-to-go and GAE ones get step t's term × γ^t, unbiased for the discounted J; the
total-return ones (reinforce, reinforce_baseline, reinforce_optimal_baseline) are unchanged.

Overrides: every pgrun key (env=, policy=, estimator.*, seed, gamma, +experiment=...), plus
`diagnose.<key>=value` (or `+diagnose.<key>`) for the fields of `DiagnoseConfig`.
θ is the initial policy of seed `seed`, trained first for `diagnose.train_iterations`
iterations with `make_train` (the run's estimator/optimizer) when that is > 0.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from omegaconf import OmegaConf

from pgrun.config import compose, load
from pgrun.config.compose import composition_message
from pgrun.config.schema import Config, closest_option
from pgrun.errors import EXIT_CONFIG, ConfigError, UnknownKeyError
from pgrun.lab import gradients, reference
from pgrun.lab.gradstats import bootstrap_counts, bootstrap_total_variance, estimator_stats, variance_ratio
from pgrun.runner.cache import enable_compilation_cache
from pgrun.train.build import Components, build
from pgrun.train.program import init_seeds, make_train


@dataclass
class DiagnoseConfig:
    estimators: List[str] = field(default_factory=lambda: ["reinforce", "reward_to_go", "baseline"])
    batches: int = 256                 # M independent batches
    episodes: Optional[int] = None     # N episodes per batch; None: episodes_per_iteration
    train_iterations: int = 0          # train θ first with make_train for this many iterations
    seed: int = 12345                  # key of the diagnosis rollouts (θ comes from `seed`)
    critic: str = "fit"                # fit | exact (Bandit's V^π)
    critic_batches: int = 16          # independent batches for the critic / optimal_baseline_indep
    critic_steps: int = 300
    baseline_warmup: int = 128         # batches that warm up optimal_baseline's running b* sums
    reference: str = "auto"            # auto (exact if known, else mc) | exact | mc
    ref_estimator: str = "baseline"
    ref_batches: int = 1024
    bootstrap: int = 1000
    alpha: float = 1e-3                # bias test level (Bonferroni over components)
    out_dir: Optional[str] = None      # None: outputs/diagnose/<date_time>
    plot: bool = True


# ----------------------------------------------------------------------------- setup


def initial_params(cfg: Config, train_iterations: int = 0, parts: Components | None = None):
    """Policy params of seed cfg.seed: the initial ones, or after `train_iterations`
    iterations of `make_train(cfg)` (vmapped over the single seed, as `pgrun.runner.loop` does).
    parts: cfg's env, policy and critic if built already (`pgrun.train.build`)."""
    n = max(int(train_iterations), 1)
    cfg = dataclasses.replace(cfg, iterations=n)
    trainer = make_train(cfg, parts)
    state = init_seeds(trainer.init, jnp.stack([jax.random.PRNGKey(int(cfg.seed))]))
    if train_iterations > 0:
        chunk = jax.jit(jax.vmap(trainer.chunk))
        while int(state.iteration[0]) < n:
            state, _ = chunk(state)
    return jax.tree_util.tree_map(lambda x: x[0], state.params)


def param_groups(params) -> dict[str, np.ndarray]:
    """Layer name -> indices into ravel_pytree(params): the leaf path without a final
    kernel/bias (e.g. "theta", "log_std", "net/params/Dense_0")."""
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    ids, names = [], []
    for path, leaf in paths:
        keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
        if len(keys) > 1 and keys[-1] in ("kernel", "bias", "scale", "embedding"):
            keys = keys[:-1]
        name = "/".join(keys)
        if name not in names:
            names.append(name)
        ids.append(jnp.full(leaf.shape, names.index(name), jnp.int32))
    leaves_ids = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), ids)
    flat = np.asarray(ravel_pytree(leaves_ids)[0]).astype(int)
    return {name: np.nonzero(flat == i)[0] for i, name in enumerate(names)}


# --------------------------------------------------------------------------- diagnose


def diagnose(cfg: Config, params, out_dir: str | None, estimators, batches: int = 256, *,
             episodes: int | None = None, seed: int = 12345, critic: Callable | str | None = None,
             critic_batches: int = 16, critic_steps: int = 300, baseline_warmup: int = 128,
             reference_kind: str = "auto",
             ref_estimator: str = "baseline", ref_batches: int = 1024, bootstrap: int = 1000,
             alpha: float = 1e-3, plot: bool = True, sample_chunk: int = 128,
             parts: Components | None = None) -> dict:
    """Diagnose `estimators` at θ = params (see the module docstring); returns the results
    dict (also written to out_dir unless it is None). Raw samples are under "_samples"
    ({name: [M, P]}), not written to disk. Batches are sampled `sample_chunk` at a time by
    one compiled program (critic, diagnosis and reference batches alike). parts: cfg's env
    and policy if built already (`pgrun.train.build`)."""
    t0 = time.perf_counter()
    estimators = list(estimators)
    for name in estimators + [ref_estimator]:
        if name not in gradients.ALL_ESTIMATORS:
            close = closest_option(name, list(gradients.ALL_ESTIMATORS))
            raise UnknownKeyError(
                f"diagnose.estimators: {name!r} is not an estimator the lab can diagnose"
                + (f" (did you mean {close}?)" if close else "")
                + f"; valid choices: {', '.join(gradients.ALL_ESTIMATORS)}. The group estimators of "
                "env=Tokens (rloo, grpo, ...) are compared with the exact gradient by the lecture "
                "report's llm section (docs/llm.md), not here.")
    parts = build(cfg) if parts is None else parts
    env, env_params, policy, max_steps = parts.env, parts.env_params, parts.policy, parts.max_steps
    gamma, lam, gamma_t = float(cfg.gamma), float(cfg.estimator.gae_lambda), bool(cfg.estimator.gamma_t)
    N = int(episodes or cfg.episodes_per_iteration)
    M = int(batches)
    k_diag, k_critic, k_ref, k_fit = jax.random.split(jax.random.PRNGKey(int(seed)), 4)

    def sample(key, m):
        return gradients.sample_batches(env, env_params, policy, params, jax.random.split(key, m), N, max_steps,
                                        chunk=sample_chunk)

    critic_kind, b_star, indep = None, None, None
    wants_critic = any(gradients.needs_critic(e) for e in estimators + [ref_estimator])
    if (wants_critic and (critic is None or critic == "fit")) or "optimal_baseline_indep" in estimators:
        indep = sample(k_critic, int(critic_batches))  # independent of the diagnosed batches
    if "optimal_baseline_indep" in estimators:
        assert indep is not None
        b_star = gradients.fit_optimal_baseline(policy, params, indep, gamma)
    if wants_critic:
        if critic is None or critic == "fit":
            assert indep is not None
            critic = gradients.fit_critic(
                int(np.prod(env.observation_space.shape)), cfg.estimator.critic_hidden, cfg.policy.activation,
                indep, gamma, k_fit, steps=int(critic_steps))
            critic_kind = f"fitted on {critic_batches} independent batches ({critic_steps} Adam steps)"
        elif critic == "exact":
            critic = reference.exact_state_value(env, env_params, policy, params)
            if critic is None:
                raise ValueError(f"critic=exact needs an env with a known V^π (Bandit), not {env.name}")
            critic_kind = "exact V^pi"
        else:
            critic_kind = "given"
    elif isinstance(critic, str):
        critic = None  # "fit" / "exact" without a critic-based estimator: nothing to build
    del indep

    data = sample(k_diag, M)
    warmup = sample(jax.random.fold_in(k_diag, 1), int(baseline_warmup)) \
        if any(e in gradients.RUNNING for e in estimators) and baseline_warmup > 0 else None
    samples, timings = {}, {}
    for name in estimators:
        t = time.perf_counter()
        if name in gradients.RUNNING:
            warm = warmup if warmup is not None else jax.tree_util.tree_map(lambda x: x[:0], data)
            samples[name] = gradients.running_grads(name, policy, params, warm, data, gamma,
                                                    float(cfg.estimator.baseline_decay), gamma_t)
        else:
            fn = gradients.make_grad_fn(name, policy, gamma, lam, cast(Optional[Callable], critic), b_star,
                                             gamma_t)
            samples[name] = gradients.batched_grads(fn, params, data)
        timings[name] = round(time.perf_counter() - t, 3)

    ref_se = None
    ref = reference.exact_grad(env, env_params, policy, params, gamma, max_steps) \
        if reference_kind in ("auto", "exact") else None
    if ref is None and reference_kind == "exact":
        raise ValueError(f"no exact gradient known for env {env.name}")
    if ref is not None:
        ref_info = {"kind": "exact", "J": reference.exact_value(env, env_params, policy, params, gamma, max_steps)}
    else:
        fn = gradients.make_grad_fn(ref_estimator, policy, gamma, lam, cast(Optional[Callable], critic),
                                    gamma_t=gamma_t)
        ref, ref_se = reference.mc_reference(gradients.batched_grads(fn, params, sample(k_ref, int(ref_batches))))
        ref_info = {"kind": "monte_carlo", "estimator": ref_estimator, "batches": int(ref_batches),
                    "se_norm": float(np.linalg.norm(ref_se))}
    ref_info.update({"norm": float(np.linalg.norm(ref)), "gradient": ref.tolist()})

    t_stats = time.perf_counter()
    groups = param_groups(params)
    counts = bootstrap_counts(M, int(bootstrap), seed=int(seed)) if bootstrap else None
    per_est = {name: estimator_stats(G, ref, ref_se, groups, counts, alpha) for name, G in samples.items()}
    boots = {n: bootstrap_total_variance(G, counts) for n, G in samples.items()} if counts is not None else {}
    ratios = {a: {b: variance_ratio(samples[a], samples[b], counts, boots.get(a), boots.get(b))
                  for b in estimators if b != a} for a in estimators}
    valid = np.asarray(data.valid)
    results = {
        "env": cfg.env.name, "policy": cfg.policy.name, "gamma": gamma, "gamma_t": gamma_t,
        "max_episode_steps": max_steps,
        "batches": M, "episodes_per_batch": N, "num_params": int(ravel_pytree(params)[0].size),
        "mean_episode_length": float(valid.sum() / (M * N)),
        "param_groups": {k: int(len(v)) for k, v in groups.items()},
        "critic": critic_kind, "critic_batches": int(critic_batches), "reference": ref_info,
        "baseline_warmup": int(baseline_warmup), "baseline_decay": float(cfg.estimator.baseline_decay),
        "estimators": per_est, "variance_ratios": ratios,
        "seed": int(seed), "timing_s": {"estimators": timings, "stats": round(time.perf_counter() - t_stats, 3),
                                        "total": round(time.perf_counter() - t0, 3)},
        "config": cfg.to_dict(),
    }
    if out_dir is not None:
        write_outputs(results, out_dir, plot=plot)
    results["_samples"] = samples
    return results


# ---------------------------------------------------------------------------- outputs

CSV_COLUMNS = ["estimator", "batches", "episodes_per_batch", "total_variance", "total_variance_ci_lo",
               "total_variance_ci_hi", "mean_norm", "cosine_to_ref", "relative_error", "bias_norm",
               "noise_floor", "debiased_bias_norm", "debiased_bias_norm_ci_lo", "debiased_bias_norm_ci_hi",
               "max_abs_z",
               "p_value_bonferroni", "fraction_ci_covering_zero", "unbiased_at_alpha"]


def csv_rows(results: dict) -> list[dict]:
    rows = []
    for name, s in results["estimators"].items():
        b = s.get("bias", {})
        tv_ci = s.get("total_variance_ci95", [None, None])
        b_ci = b.get("debiased_norm_ci95", [None, None])
        rows.append({
            "estimator": name, "batches": results["batches"], "episodes_per_batch": results["episodes_per_batch"],
            "total_variance": s["total_variance"], "total_variance_ci_lo": tv_ci[0], "total_variance_ci_hi": tv_ci[1],
            "mean_norm": s["mean_norm"], "cosine_to_ref": s.get("cosine_to_ref"),
            "relative_error": s.get("relative_error"), "bias_norm": b.get("norm"), "noise_floor": b.get("noise_floor"),
            "debiased_bias_norm": b.get("debiased_norm"), "debiased_bias_norm_ci_lo": b_ci[0],
            "debiased_bias_norm_ci_hi": b_ci[1], "max_abs_z": b.get("max_abs_z"),
            "p_value_bonferroni": b.get("p_value_bonferroni"),
            "fraction_ci_covering_zero": b.get("fraction_ci_covering_zero"),
            "unbiased_at_alpha": b.get("unbiased_at_alpha"),
        })
    return rows


def write_outputs(results: dict, out_dir: str, plot: bool = True) -> None:
    os.makedirs(out_dir, exist_ok=True)
    clean = {k: v for k, v in results.items() if not k.startswith("_")}
    with open(os.path.join(out_dir, "gradients.json"), "w") as f:
        json.dump(clean, f, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "gradients.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(csv_rows(results))
    if plot:
        plot_gradients(results, os.path.join(out_dir, "gradients.png"))


def plot_gradients(results: dict, path: str) -> None:
    """Three panels: total variance (log, bootstrap 95% CI), cosine to the reference,
    bias norm ‖m - r‖ against the noise floor of an unbiased estimator, and the debiased norm
    with its 95% CI (gradstats)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["estimators"])
    st = [results["estimators"][n] for n in names]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(4 + 1.6 * len(names), 4))

    def err(vals, cis):
        lo = [v - c[0] if c else 0 for v, c in zip(vals, cis)]
        hi = [c[1] - v if c else 0 for v, c in zip(vals, cis)]
        return np.maximum([lo, hi], 0)

    tv = [s["total_variance"] for s in st]
    axes[0].bar(x, tv, yerr=err(tv, [s.get("total_variance_ci95") for s in st]), capsize=3, color="C0")
    axes[0].set_yscale("log")
    axes[0].set_title("total variance tr Cov (one batch)")
    cos = [s.get("cosine_to_ref", np.nan) for s in st]
    axes[1].bar(x, cos, color="C2")
    axes[1].set_ylim(min(0.0, np.nanmin(cos) - 0.05), 1.02)
    axes[1].set_title(f"cosine(mean, ref) [{results['reference']['kind']}]")
    bn = [s.get("bias", {}).get("norm", np.nan) for s in st]
    axes[2].bar(x, bn, color="C3", alpha=0.5, label="‖mean − ref‖")
    dn = [s.get("bias", {}).get("debiased_norm", np.nan) for s in st]
    axes[2].errorbar(x, dn, yerr=err(dn, [s.get("bias", {}).get("debiased_norm_ci95") for s in st]), fmt="o",
                     capsize=3, color="C3", label="debiased norm, 95% CI")
    axes[2].scatter(x, [s.get("bias", {}).get("noise_floor", np.nan) for s in st], marker="_", s=400,
                    color="k", label="noise floor (unbiased)", zorder=3)
    axes[2].set_title("bias norm")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    fig.suptitle(f"{results['env']} / {results['policy']}: M={results['batches']} batches × "
                 f"N={results['episodes_per_batch']} episodes", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------- CLI


def split_overrides(argv: list[str]) -> tuple[list[str], DiagnoseConfig]:
    """Hydra overrides for the pgrun config, and the `diagnose.*` ones parsed (typed) into
    a DiagnoseConfig; an unknown diagnose key raises with the valid ones."""
    rest, dotlist = [], []
    for a in argv:
        key = a.lstrip("+")
        if key.startswith("diagnose."):
            dotlist.append(key[len("diagnose."):])
        else:
            rest.append(a)
    schema = OmegaConf.structured(DiagnoseConfig)
    try:
        dcfg = OmegaConf.merge(schema, OmegaConf.from_dotlist(dotlist))
    except Exception as e:  # omegaconf's ConfigKeyError / ValidationError
        valid = ", ".join(DiagnoseConfig.__dataclass_fields__)
        raise SystemExit(f"pgrun.diagnose: bad diagnose override: {e}\nvalid diagnose keys: {valid}") from None
    return rest, cast(DiagnoseConfig, OmegaConf.to_object(dcfg))


def run_from_overrides(argv: list[str]) -> dict:
    enable_compilation_cache()
    overrides, d = split_overrides(argv)
    cfg = load(compose(overrides))
    parts = build(cfg)
    out_dir = d.out_dir or os.path.join("outputs", "diagnose", time.strftime("%Y-%m-%d_%H-%M-%S"))
    params = initial_params(cfg, d.train_iterations, parts)
    res = diagnose(cfg, params, out_dir, d.estimators, d.batches, episodes=d.episodes, seed=d.seed,
                   critic=d.critic, critic_batches=d.critic_batches, critic_steps=d.critic_steps,
                   baseline_warmup=d.baseline_warmup, reference_kind=d.reference, ref_estimator=d.ref_estimator,
                   ref_batches=d.ref_batches,
                   bootstrap=d.bootstrap, alpha=d.alpha, plot=d.plot, parts=parts)
    res["out_dir"] = out_dir
    return res


def format_table(results: dict) -> str:
    lines = [f"{'estimator':<20}{'tr Cov':>12}{'95% CI':>26}{'cos':>8}{'|m-r|':>10}{'floor':>10}"
             f"{'debiased [95% CI]':>32}{'p_bias':>10}"]
    for r in csv_rows(results):
        ci = f"[{r['total_variance_ci_lo']:.4g}, {r['total_variance_ci_hi']:.4g}]" \
            if r["total_variance_ci_lo"] is not None else ""
        deb = f"{r['debiased_bias_norm']:.4g}" + (
            f" [{r['debiased_bias_norm_ci_lo']:.4g}, {r['debiased_bias_norm_ci_hi']:.4g}]"
            if r["debiased_bias_norm_ci_lo"] is not None else "")
        lines.append(f"{r['estimator']:<20}{r['total_variance']:>12.4g}{ci:>26}{r['cosine_to_ref']:>8.3f}"
                     f"{r['bias_norm']:>10.4g}{r['noise_floor']:>10.4g}{deb:>32}{r['p_value_bonferroni']:>10.3g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `pgrun-diagnose [pgrun overrides] [diagnose.<key>=value ...]`."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("diagnose keys:", ", ".join(f"{k}={v.default if not callable(v.default_factory) else v.default_factory()}"
                                          for k, v in DiagnoseConfig.__dataclass_fields__.items()))
        return
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        res = run_from_overrides(argv)
    except ConfigError as e:
        print(f"pgrun-diagnose: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except (HydraException, OmegaConfBaseException) as e:  # an override Hydra cannot compose
        print(f"pgrun-diagnose: config error: {composition_message(e)}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    print(format_table(res))
    print(f"gamma = {res['gamma']:g}, estimator.gamma_t = {str(res['gamma_t']).lower()}"
          + (" (step t's term × γ^t for the reward-to-go and GAE estimators)" if res["gamma_t"] else ""))
    print(f"reference: {res['reference']['kind']}, |ref| = {res['reference']['norm']:.4g}; "
          f"wrote {res['out_dir']}/gradients.json, gradients.csv, gradients.png")


if __name__ == "__main__":
    main()
