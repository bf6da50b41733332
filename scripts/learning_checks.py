"""Learning checks (not unit tests): do the saved experiment configs actually learn?

Every learning figure the docs quote is produced here: the tables in docs/gym_envs.md and
docs/offpolicy.md are this script's markdown output, pasted with the commit line it prints.
Each check trains in-process through `pgrun.runner.loop.run` and prints, per seed, the final
return (mean of the last 10 iterations' mean returns) and the first iteration whose mean
return reached the threshold, plus the wall time; at the end, the markdown table rows.
Budgets (seeds × iterations × episodes) are the experiment files' own, which pin every
setting they depend on (tests/config/test_experiments.py).

  acrobot      +experiment=acrobot_actor_critic: pass if most seeds end at >= -100
  cartpole     +experiment=cartpole_actor_critic: pass if most seeds end at >= 475
  cartpole_fast  +experiment=cartpole_fast (the default's estimator, fewest env steps): the same rule
  pendulum     +experiment=pendulum_actor_critic: pass if every seed improves by >= 300
               (no solved threshold; the figure to read is how far it gets)
  mountaincar  how often a uniformly random policy reaches the flag (Monte Carlo, pure JAX),
               then +experiment=mountaincar_actor_critic (expected not to learn)
  gym_cartpole, gym_acrobot   the cartpole / acrobot checks on the host path (env=gym:<id>, 4 seeds)
  offpolicy    docs/offpolicy.md's table: `estimator=<name> env=CartPole` with the shipped
               defaults (8 seeds x 100 iterations) for ppo, trpo, kl_penalty, is_trajectory,
               is_per_decision, is_ratio_one

    python scripts/learning_checks.py [acrobot cartpole ...] [key=value ...]
    (default: acrobot cartpole pendulum mountaincar cartpole_fast; run from the repository root; the
    checkout's pgrun is used; runs go to outputs/checks/)
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

# name: (overrides, pass rule on the summary); the default set, then the ones run only by name
CHECKS: dict[str, tuple[list[str], str]] = {
    "acrobot": (["+experiment=acrobot_actor_critic"], "most_final_solved"),
    "cartpole": (["+experiment=cartpole_actor_critic"], "most_final_solved"),
    "pendulum": (["+experiment=pendulum_actor_critic"], "improves_300"),
    "mountaincar": (["+experiment=mountaincar_actor_critic"], "report"),
    "cartpole_fast": (["+experiment=cartpole_fast"], "most_final_solved"),
}
DEFAULT = list(CHECKS)
CHECKS["gym_cartpole"] = (["+experiment=cartpole_actor_critic", "env=gym:CartPole-v1", "num_seeds=4"],
                          "most_final_solved")
CHECKS["gym_acrobot"] = (["+experiment=acrobot_actor_critic", "env=gym:Acrobot-v1", "num_seeds=4"],
                         "most_final_solved")
OFFPOLICY = ("ppo", "trpo", "kl_penalty", "is_trajectory", "is_per_decision", "is_ratio_one")
for _est in OFFPOLICY:
    CHECKS[_est] = ([f"estimator={_est}", "env=CartPole"], "offpolicy")


def commit() -> str:
    """The checkout's commit, with '+dirty' when tracked files differ from it (read at the start)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (git("rev-parse", "--short=10", "HEAD") or "unknown") + dirty


def provenance(started_on: str) -> str:
    """The commit the checks started on, the date, and the machine's load at the end."""
    import datetime

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"commit {started_on}, {when}, jax {jax.__version__}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at the end")


def train(overrides: list[str], tag: str) -> tuple[dict, dict]:
    """Run `pgrun overrides...`; returns (summary, {metric: [iterations, seeds]})."""
    cfg = load(compose(expand_gym_env(["progress=false", *overrides])))
    out = os.path.join(ROOT, "outputs", "checks", tag)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    summary = run(cfg, out)
    summary["wall_s"] = time.perf_counter() - t0
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    seeds = summary["seeds"]

    def column(k: str) -> np.ndarray:
        return np.array([[float(x[k]) if x[k] != "" else np.nan for x in rows if int(x["seed"]) == s]
                         for s in seeds]).T

    keys = ("return_mean", "return_max", "entropy", "env_steps", "is_ess", "kl_beta", "updates",
            "trpo_ls_steps", "trpo_kl")
    return summary, {k: column(k) for k in keys}


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}"


def table_row(name: str, summary: dict, curves: dict) -> str:
    """docs/gym_envs.md's row of one experiment check."""
    cfg = summary["config"]
    final = np.array(list(summary["final_return_per_seed"].values()))
    thr = summary.get("solved_threshold")
    steps = summary["env_steps"] / 1e6
    budget = f"{len(final)} × {summary['iterations']} × {cfg['episodes_per_iteration']} ({steps:.2f} M steps)"
    exp = next((o.split("=", 1)[1] for o in CHECKS[name][0] if o.startswith("+experiment=")), name)
    extra = " ".join(o for o in CHECKS[name][0] if not o.startswith("+experiment="))
    label = f"`{exp}`" + (f" `{extra}`" if extra else "") + (f" ({thr:g})" if thr is not None else "")
    per_seed = " ".join(_fmt(v) for v in final) + f" (mean {final.mean():.1f})"
    if thr is not None:
        solved = f"**{summary['seeds_solved_final']}/{len(final)}**"
        hits = [v for v in summary["first_solved_iteration"].values() if v is not None]
        first = f"{min(hits)}-{max(hits)}" if hits else "never"
        if hits and len(hits) < len(final):
            first += f" ({len(hits)} seeds)"
    else:
        solved = f"{int(np.sum(final >= -200))}/{len(final)} above -200" if "pendulum" in name else "-"
        r = curves["return_mean"]
        hit = [int(np.nonzero(r[:, j] >= -200)[0][0]) + 1 for j in range(r.shape[1]) if (r[:, j] >= -200).any()]
        first = f"{min(hit)}-{max(hit)} (above -200)" if hit else "never"
    wall = f"{summary['wall_s']:.0f} s ({summary['compile_s']:.0f} s)"
    return f"| {label} | {budget} | {solved} | {per_seed} | {first} | {wall} |"


def offpolicy_row(name: str, summary: dict, curves: dict) -> str:
    """docs/offpolicy.md's row of one estimator."""
    final = np.array(list(summary["final_return_per_seed"].values()))
    lo, hi = summary["final_return_ci95"]
    cfg = summary["config"]
    rollout = cfg["estimator"]["rollout"]
    steps = f"{int(np.nanmax(curves['env_steps'][-1])):,}".replace(",", " ") if rollout == "steps" else "episodes"
    last = slice(-10, None)
    notes = []
    hits = [v for v in summary["first_solved_iteration"].values() if v is not None]
    if hits:
        notes.append(f"first solved at iterations {min(hits)}-{max(hits)}")
    if name.startswith("is_") and np.isfinite(curves["is_ess"]).any():
        notes.append(f"ESS/N {np.nanmean(curves['is_ess'][last]):.2f} over the last 10 iterations")
    if name == "trpo":
        notes.append(f"mean KL of accepted steps <= {np.nanmax(curves['trpo_kl']):.5f}; "
                     f"{np.nanmean(curves['updates']):.0%} accepted, "
                     f"{np.nanmean(curves['trpo_ls_steps']):.2f} line-search candidates on average")
    if name == "kl_penalty":
        b = curves["kl_beta"][last]
        notes.append(f"β over the last 10 iterations {np.nanmin(b):.2f}-{np.nanmax(b):.2f}")
    notes.append("final per seed " + " ".join(_fmt(v) for v in final))
    return (f"| `{name}` | {steps} | {final.mean():.1f} [{lo:.1f}, {hi:.1f}] | "
            f"{summary['seeds_solved_final']}/{len(final)} | {'; '.join(notes)} |")


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
    if rule in ("report", "offpolicy"):
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
    names = [a for a in argv if "=" not in a and a != "--"] or DEFAULT
    names = [n for a in names for n in (OFFPOLICY if a == "offpolicy" else [a])]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"unknown check {unknown[0]!r}; checks: {', '.join(CHECKS)}, offpolicy", file=sys.stderr)
        return 2
    overrides = [a for a in argv if "=" in a]
    started_on = commit()
    enable_compilation_cache()
    results, rows = {}, []
    for name in names:
        base, rule = CHECKS[name]
        if name == "mountaincar":
            print("\n== mountaincar, uniform random policy (flag at position 0.5):")
            for T, n in ((200, 20000), (1000, 20000), (5000, 4000)):
                rate, mean_best, max_best = random_flag_rate(T, n)
                print(f"   time limit {T:>4}, {n} episodes: {rate:.2%} reach the flag; furthest position: "
                      f"mean {mean_best:.3f}, max {max_best:.3f}")
        tag = "_".join([name, *overrides]).replace("/", "-").replace(":", "-")
        summary, curves = train([*base, *overrides], tag)
        results[name] = report(name, summary, curves, rule)
        rows.append(offpolicy_row(name, summary, curves) if rule == "offpolicy" else table_row(name, summary, curves))
    print("\n" + "  ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in results.items()))
    print(f"\nMarkdown rows ({' '.join(overrides) or 'no extra overrides'}); {provenance(started_on)}:")
    print("\n".join(rows))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
