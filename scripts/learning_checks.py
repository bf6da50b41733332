"""Learning checks (not unit tests): do the saved experiment configs actually learn?

Each check trains `+experiment=<name>` (configs/experiment/) in-process through
`pgrun.runner.loop.run` and prints, per seed, the final return (mean of the last 10 iterations'
mean returns) and the first iteration whose mean return reached the threshold, plus the
wall time. Budgets (seeds × iterations × episodes) are the experiment files' own.

  acrobot      Acrobot-v1, actor-critic: pass if most seeds end at >= -100
  cartpole     CartPole-v1, actor-critic: pass if most seeds end at >= 475
  pendulum     Pendulum-v1, mlp actor-critic: pass if every seed improves by >= 300
               (no solved threshold; the figure to read is how far it gets)
  mountaincar  MountainCar-v0: how often a uniformly random policy reaches the flag within
               200 steps (Monte Carlo, pure JAX), then actor-critic with an entropy bonus

    python scripts/learning_checks.py [acrobot cartpole ...] [key=value ...]
    (run from the repository root; the checkout's pgrun is used; runs go to outputs/checks/)
"""

from __future__ import annotations

import csv
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's pgrun, even where another copy is installed

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from pgrun.cli import expand_gym_env  # noqa: E402
from pgrun.config import compose, load  # noqa: E402
from pgrun.envs import make_env, reset, step  # noqa: E402
from pgrun.runner.cache import enable_compilation_cache  # noqa: E402
from pgrun.runner.loop import run  # noqa: E402

CHECKS = {  # name: (experiment, pass rule on the summary)
    "acrobot": ("acrobot_actor_critic", "most_final_solved"),
    "cartpole": ("cartpole_actor_critic", "most_final_solved"),
    "pendulum": ("pendulum_actor_critic", "improves_300"),
    "mountaincar": ("mountaincar_actor_critic", "report"),
}


def train(experiment: str, overrides: list[str], tag: str) -> tuple[dict, dict]:
    """Run +experiment=<experiment>; returns (summary, {metric: [iterations, seeds]})."""
    cfg = load(compose(expand_gym_env([f"+experiment={experiment}", "progress=false", *overrides])))
    out = os.path.join(ROOT, "outputs", "checks", tag)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    summary = run(cfg, out)
    summary["wall_s"] = time.perf_counter() - t0
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    seeds = summary["seeds"]
    curves = {k: np.array([[float(x[k]) for x in rows if int(x["seed"]) == s] for s in seeds]).T
              for k in ("return_mean", "return_max", "entropy")}
    return summary, curves


def report(name: str, summary: dict, curves: dict, rule: str) -> bool:
    r = curves["return_mean"]
    thr = summary.get("solved_threshold")
    final = np.array(list(summary["final_return_per_seed"].values()))
    first = r[:3].mean(axis=0)  # per seed: mean return of iterations 1-3
    cfg = summary["config"]
    print(f"\n== {name}: env={summary['env']} policy={cfg['policy']['name']} estimator="
          f"{cfg['estimator']['name']}  budget {len(final)} seeds x {summary['iterations']} iterations x "
          f"{cfg['episodes_per_iteration']} episodes")
    print(f"   wall {summary['wall_s']:.0f} s (compile {summary['compile_s']:.0f} s), "
          f"{summary['env_steps']:,} env steps, {summary['env_steps_per_s']:,.0f} steps/s")
    print(f"   return at start (iters 1-3) per seed: {np.round(first, 1).tolist()}")
    print(f"   final return (last 10 iters) per seed: {np.round(final, 1).tolist()}  mean {final.mean():.1f}")
    print(f"   policy entropy at the last iteration per seed: {np.round(curves['entropy'][-1], 2).tolist()}")
    if thr is not None:
        hit = summary["first_solved_iteration"]
        print(f"   threshold {thr}: seeds ending at/above it {summary['seeds_solved_final']}/{len(final)}; "
              f"first iteration at/above it per seed: {list(hit.values())}")
    if rule == "most_final_solved":
        ok = summary["seeds_solved_final"] > len(final) / 2
    elif rule == "improves_300":
        ok = bool(np.all(final - first >= 300))
    else:
        ok = True
    if rule == "report":
        print(f"   (no pass rule) best episode return seen in the whole run: {curves['return_max'].max():.1f}")
    else:
        print(f"   {'PASS' if ok else 'FAIL'} ({rule})")
    return ok


def random_flag_rate(T: int = 200, episodes: int = 20000, seed: int = 0) -> tuple[float, float, float]:
    """MountainCar-v0 under the uniform random policy, episodes of at most T steps: (fraction
    reaching the flag, mean and max over episodes of the furthest position reached)."""
    env = make_env("MountainCar")
    p = env.default_params

    def episode(key):
        k0, k = jax.random.split(key)
        state, _ = reset(env, p, k0)

        def body(carry, xs):
            state, done, best = carry
            t, kt = xs
            ka, ks = jax.random.split(kt)
            out = step(env, p, state, jax.random.randint(ka, (), 0, 3), ks, t, T)
            best = jnp.maximum(best, jnp.where(done, best, out.obs[0]))
            return (out.state, done | out.terminated, best), None

        (_, reached, best), _ = jax.lax.scan(body, (state, False, -1.2), (jnp.arange(T), jax.random.split(k, T)))
        return reached, best

    reached, best = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), episodes))
    return float(np.mean(reached)), float(np.mean(best)), float(np.max(best))


def main(argv: list[str]) -> int:
    names = [a for a in argv if "=" not in a and a != "--"] or list(CHECKS)
    overrides = [a for a in argv if "=" in a]
    enable_compilation_cache()
    results = {}
    for name in names:
        experiment, rule = CHECKS[name]
        if name == "mountaincar":
            print("\n== mountaincar, uniform random policy (flag at position 0.5):")
            for T, n in ((200, 20000), (1000, 20000), (5000, 4000)):
                rate, mean_best, max_best = random_flag_rate(T, n)
                print(f"   time limit {T:>4}, {n} episodes: {rate:.2%} reach the flag; furthest position: "
                      f"mean {mean_best:.3f}, max {max_best:.3f}")
        tag = "_".join([name, *overrides]).replace("/", "-").replace(":", "-")
        summary, curves = train(experiment, overrides, tag)
        results[name] = report(name, summary, curves, rule)
    print("\n" + "  ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
