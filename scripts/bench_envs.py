"""Env-steps/s of pgrun's pure-JAX envs vs gymnasium's NumPy envs, uniformly random policy.

JAX: one jitted program = `lax.scan` over T steps of a vmapped step (pgrun.envs.step) with
auto-reset, actions sampled inside; compile time is measured apart (AOT lower + compile)
and the run is timed (best of 3) after a warm-up call, with block_until_ready.
gymnasium: `gymnasium.make_vec(gym_id, num_envs=n, vectorization_mode="sync")` stepped
with `action_space.sample()` (its autoreset steps count as steps, as they cost one).
Fewer gymnasium steps are taken for large n so the whole run stays within a few minutes.

    python scripts/bench_envs.py [--envs CartPole,Acrobot] [--counts 1,64,1024] [--steps 1000]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
from gymnasium import spaces

from pgrun.envs import ENVS, make_env, reset, step


def random_action(space, key):
    if isinstance(space, spaces.Discrete):
        return jax.random.randint(key, (), 0, space.n)
    return jax.random.uniform(key, space.shape, jnp.float32, space.low, space.high)


def jax_rollout(env, n_envs: int, n_steps: int):
    """jit(run)(key) -> final (states, step counters, returns) of n_envs envs after n_steps
    steps each, auto-resetting. All of the carry is returned: were only the returns output,
    XLA would drop the state updates of envs with a constant reward (CartPole, MountainCar)."""
    p = env.default_params

    def one(carry, key):
        state, t, ret = carry
        k_a, k_s, k_r = jax.random.split(key, 3)
        out = step(env, p, state, random_action(env.action_space, k_a), k_s, t, env.max_episode_steps)
        done = out.terminated | out.truncated
        s0, _ = reset(env, p, k_r)
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), s0, out.state)
        return state, jnp.where(done, 0, t + 1), ret + out.reward

    def run(key):
        k0, k = jax.random.split(key)
        state, _ = jax.vmap(lambda k: reset(env, p, k))(jax.random.split(k0, n_envs))
        carry = (state, jnp.zeros(n_envs, jnp.int32), jnp.zeros(n_envs, jnp.float32))

        def body(carry, key):
            return jax.vmap(one)(carry, jax.random.split(key, n_envs)), None

        carry, _ = jax.lax.scan(body, carry, jax.random.split(k, n_steps))
        return carry

    return jax.jit(run)


def bench_jax(name: str, n_envs: int, n_steps: int) -> tuple[float, float]:
    """(env-steps/s of the best of 3 timed runs, compile seconds)."""
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    compiled = jax_rollout(make_env(name), n_envs, n_steps).lower(key).compile()
    t_compile = time.perf_counter() - t0
    jax.block_until_ready(compiled(key))
    best = float("inf")
    for i in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.PRNGKey(i + 1)))
        best = min(best, time.perf_counter() - t0)
    return n_envs * n_steps / best, t_compile


def bench_gym(gym_id: str, n_envs: int, n_steps: int) -> float:
    """env-steps/s of gymnasium's NumPy env in a sync vector env."""
    venv = gym.make_vec(gym_id, num_envs=n_envs, vectorization_mode="sync")
    venv.reset(seed=0)
    venv.action_space.seed(0)
    venv.step(venv.action_space.sample())
    t0 = time.perf_counter()
    for _ in range(n_steps):
        venv.step(venv.action_space.sample())
    elapsed = time.perf_counter() - t0
    venv.close()
    return n_envs * n_steps / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default=",".join(ENVS))
    ap.add_argument("--counts", default="1,64,1024")
    ap.add_argument("--steps", type=int, default=1000, help="scan length of the JAX rollout")
    ap.add_argument("--gym-env-steps", type=int, default=20_000,
                    help="env-steps per gymnasium measurement (at most --steps per env)")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, gymnasium {gym.__version__}; "
          f"JAX: {args.steps} scan steps; gymnasium: ~{args.gym_env_steps} env-steps per cell")
    header = f"{'env':<22}{'n':>6}{'jax steps/s':>14}{'compile s':>11}{'gym steps/s':>14}{'jax/gym':>10}"
    print(header + "\n" + "-" * len(header))
    t_start = time.perf_counter()
    for name in args.envs.split(","):
        for n in counts:
            jax_sps, t_compile = bench_jax(name, n, args.steps)
            gym_steps = max(5, min(args.steps, args.gym_env_steps // n))
            gym_sps = bench_gym(ENVS[name].gym_id, n, gym_steps)
            print(f"{name:<22}{n:>6}{jax_sps:>14,.0f}{t_compile:>11.2f}{gym_sps:>14,.0f}"
                  f"{jax_sps / gym_sps:>10.1f}", flush=True)
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
