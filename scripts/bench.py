"""Speed figures for the core runner (issue: `pgrun estimator=baseline env=CartPole`).

Prints, in one command:
  1. the whole default command's wall time (Python start-up and compilation included), its
     compile and run seconds, and how many of 8 seeds end with a last-10-iteration mean ≥ 475;
  2. the same command again: compile seconds with JAX's persistent cache warm;
  3. training throughput (valid env-steps/s, all seeds together) of the default 64×64 MLP in
     steady state, next to a reference measured in the same process: gymnasium's NumPy
     CartPole-v1 vector env stepping a random policy (no learning at all).

Usage: python scripts/bench.py [--seeds 8] [--chunks 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run_cli(cache_dir: str, out_dir: str, *overrides: str) -> tuple[float, dict]:
    env = dict(os.environ, PGRUN_CACHE_DIR=cache_dir)
    cmd = [os.path.join(os.path.dirname(sys.executable), "pgrun"), "estimator=baseline", "env=CartPole",
           f"hydra.run.dir={out_dir}", "progress=false", *overrides]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out_dir, "summary.json")) as f:
        return wall, json.load(f)


def timed_chunks(chunk, state, m, chunks: int) -> tuple:
    """(state, metrics, env steps, seconds) of `chunks` more calls of the compiled `chunk` after one whose
    metrics `m` it returned for `state` (the state and metrics it reached: the chunk donates its input);
    env_steps is cumulative per seed, so the steps are its last entry's growth."""
    import jax
    import numpy as np

    jax.block_until_ready(state)
    steps0 = int(np.sum(jax.device_get(m["env_steps"])[:, -1]))
    t0 = time.perf_counter()
    for _ in range(chunks):
        state, m = chunk(state)
    m = jax.device_get(m)
    dt = time.perf_counter() - t0
    return state, m, int(np.sum(m["env_steps"][:, -1])) - steps0, dt


def timed_steps(chunk, state, m, chunks: int) -> tuple[int, float]:
    """(env steps, seconds) of `timed_chunks`."""
    return timed_chunks(chunk, state, m, chunks)[2:]


def steady_throughput(num_seeds: int, chunks: int) -> tuple[float, float]:
    """(valid env-steps/s, computed step slots/s) of the default program after training."""
    import jax

    from pgrun.config import compose, load
    from pgrun.train.program import init_seeds, make_train

    cfg = load(compose([f"num_seeds={num_seeds}", "iterations=100000"]))
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), num_seeds))
    chunk = jax.jit(jax.vmap(tr.chunk), donate_argnums=0).lower(state).compile()
    for _ in range(4):  # learn first, so episodes are long as in a real run's later part
        state, m = chunk(state)
    valid, dt = timed_steps(chunk, state, m, chunks)
    slots = chunks * cfg.log_every * num_seeds * cfg.episodes_per_iteration * tr.max_steps
    return valid / dt, slots / dt


def gymnasium_reference(num_envs: int = 128, steps: int = 2000) -> float:
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync")
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        envs.step(rng.integers(0, 2, num_envs))
    return num_envs * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        wall1, s1 = run_cli(cache, os.path.join(tmp, "r1"))
        wall2, s2 = run_cli(cache, os.path.join(tmp, "r2"))
    print("== pgrun estimator=baseline env=CartPole (defaults, 8 seeds)")
    print(f"wall, cold cache      {wall1:7.2f} s   (target <= 15 s)")
    print(f"compile, cold cache   {s1['compile_s']:7.2f} s   (target <= 5 s)")
    print(f"run                   {s1['run_s']:7.2f} s   env-steps/s {s1['env_steps_per_s']:,.0f}")
    print(f"seeds solved          {s1['seeds_solved_final']} / {len(s1['seeds'])}   (target >= 7/8; "
          f"final return {s1['final_return_mean']:.1f})")
    print(f"wall, warm cache      {wall2:7.2f} s")
    print(f"compile, warm cache   {s2['compile_s']:7.2f} s   (target <= 1 s)")
    valid, slots = steady_throughput(args.seeds, args.chunks)
    ref = gymnasium_reference()
    print("== steady-state training throughput, default 64x64 MLP, all seeds together")
    print(f"pgrun valid env-steps/s      {valid:12,.0f}   (target >= 1.5M)")
    print(f"pgrun step slots/s (padded)  {slots:12,.0f}")
    print(f"gymnasium NumPy vector env, random policy, no learning: {ref:12,.0f} steps/s")
    print(f"ratio pgrun training / gymnasium stepping: {valid / ref:6.1f}x")


if __name__ == "__main__":
    main()
