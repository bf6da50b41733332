"""Training throughput: pgrun's pure-JAX env vs the same task as a host gymnasium env.

Trains `env=<Name>` and `env=gym:<id>` with the same policy, estimator and budget, in one
process through `pgrun.runner.loop.run`, and prints env-steps/s (valid steps over the run time,
compilation excluded) side by side with their ratio.

For the host run it also prints where the time went (gymnasium stepping, the jitted policy
call with its device<->host copies, the jitted update). Caveat when reading the figures: the
pure-JAX rollout always scans T = max_episode_steps steps and masks what follows an episode's
end, while the host loop stops stepping once all copies have ended; so with short episodes
(early CartPole) the pure-JAX path does more padding work per valid step.
Pendulum (always 200 steps) has no such effect.

    python scripts/bench_gym.py [--pairs CartPole=CartPole-v1,Pendulum=Pendulum-v1]
        [--seeds 4] [--episodes 16] [--iterations 20] [-- key=value ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's pgrun, even where another copy is installed

from pgrun.cli import expand_gym_env  # noqa: E402
from pgrun.config import compose, load  # noqa: E402
from pgrun.runner.cache import enable_compilation_cache  # noqa: E402
from pgrun.runner.loop import run  # noqa: E402


def train(env: str, args, extra: list[str]) -> dict:
    overrides = [f"env={env}", f"policy={args.policy}", f"estimator={args.estimator}",
                 f"num_seeds={args.seeds}", f"episodes_per_iteration={args.episodes}",
                 f"iterations={args.iterations}", f"log_every={args.iterations}", "progress=false", *extra]
    cfg = load(compose(expand_gym_env(overrides)))
    with tempfile.TemporaryDirectory() as out:
        return run(cfg, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="CartPole=CartPole-v1", help="Name=gym_id,... (pure-JAX = host)")
    ap.add_argument("--policy", default="mlp")
    ap.add_argument("--estimator", default="actor_critic")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=20)
    args, extra = ap.parse_known_args()
    extra = [e for e in extra if e != "--"]
    enable_compilation_cache()
    print(f"policy={args.policy} estimator={args.estimator} seeds={args.seeds} "
          f"episodes_per_iteration={args.episodes} iterations={args.iterations} {' '.join(extra)}")
    print(f"{'env':<22}{'compile s':>10}{'run s':>9}{'env steps':>12}{'mean len':>10}{'steps/s':>11}")
    for pair in args.pairs.split(","):
        name, gym_id = pair.split("=")
        res = {}
        for env in (name, f"gym:{gym_id}"):
            s = train(env, args, extra)
            length = s["env_steps"] / (s["iterations"] * args.seeds * args.episodes)
            print(f"{env:<22}{s['compile_s']:>10.1f}{s['run_s']:>9.2f}{s['env_steps']:>12,}"
                  f"{length:>10.1f}{s['env_steps_per_s']:>11,.0f}", flush=True)
            res[env] = s["env_steps_per_s"]
        h = s["host_env"]
        print(f"{'':<22}host run time: gymnasium step+reset {h['env_s']:.2f} s, policy sampling "
              f"{h['policy_s']:.2f} s ({1e3 * h['policy_s'] / h['vector_steps']:.2f} ms per vector step), "
              f"update {h['update_s']:.2f} s; {h['vector_steps']:,} vector steps of {h['num_envs']} copies "
              f"({h['vector_steps'] * h['num_envs']:,} copy-steps for {s['env_steps']:,} valid)")
        print(f"{'':<22}pure JAX / host = {res[name] / res[f'gym:{gym_id}']:.1f}x", flush=True)


if __name__ == "__main__":
    main()
