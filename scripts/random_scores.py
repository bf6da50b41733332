#!/usr/bin/env python
"""Measure the uniform-random policy's mean episode return (the `random` of pgrun-compare's
normalised score, pgrun/envs/reference_scores.py), for the classic-control envs or gymnax's.

    python scripts/random_scores.py [--episodes 200] [--seed 0]
    python scripts/random_scores.py --gymnax [ID ...] [--episodes 10000] [--seed 0]   (extra pgrun[gymnax])

Classic control: gymnasium's own envs with their default time limits (pgrun's envs are
parity-tested against them): actions drawn uniformly from the action space, `episodes`
episodes each. --gymnax: gymnax's own env API (`gymnax.make(id)`, default params,
`reset` then `step`, whose time limit is params.max_steps_in_episode, pgrun's default T for
gymnax envs), actions uniform over the discrete action space, `episodes` independent
episodes run to their first end (terminated or truncated), vmapped in one jitted loop;
without IDs the envs of GYMNAX_IDS.
"""

import argparse

import gymnasium as gym
import numpy as np

IDS = {"CartPole": "CartPole-v1", "Acrobot": "Acrobot-v1", "MountainCar": "MountainCar-v0",
       "MountainCarContinuous": "MountainCarContinuous-v0", "Pendulum": "Pendulum-v1"}
GYMNAX_IDS = ("DeepSea-bsuite", "UmbrellaChain-bsuite", "MemoryChain-bsuite", "DiscountingChain-bsuite",
              "Catch-bsuite", "Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")


def random_return(gym_id: str, episodes: int, seed: int) -> tuple[float, float]:
    env = gym.make(gym_id)
    env.action_space.seed(seed)
    rets = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
        rets.append(total)
    return mean_se(rets)


def mean_se(returns) -> tuple[float, float]:
    a = np.asarray(returns, np.float64)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))


def gymnax_random_returns(gymnax_id: str, episodes: int, seed: int) -> np.ndarray:
    """[episodes] undiscounted returns of uniform actions: episode i is reset(k0_i), then calls
    of gymnax's `step` (uniform action, own key each step) summing rewards up to and including
    its first step with terminated or truncated (gymnax's step auto-resets after it; later
    rewards are masked out). All episodes step together (vmapped) in a while_loop that stops
    once every one has ended, which params.max_steps_in_episode (truncation) guarantees."""
    import gymnax
    import jax
    import jax.numpy as jnp

    env, params = gymnax.make(gymnax_id)
    n_actions = int(env.action_space(params).n)
    T = int(params.max_steps_in_episode)

    def one_step(state, total, done, k):
        k_a, k_s = jax.random.split(k)
        a = jax.random.randint(k_a, (), 0, n_actions)
        _, state, r, term, trunc, _ = env.step(k_s, state, a, params)
        total = total + jnp.where(done, 0.0, jnp.asarray(r, jnp.float32))
        return state, total, done | term | trunc

    def run(key):
        k0, key = jax.random.split(key)
        _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, episodes), params)
        carry = (states, jnp.zeros(episodes, jnp.float32), jnp.zeros(episodes, bool), key, jnp.int32(0))

        def body(c):
            states, total, done, key, t = c
            key, k = jax.random.split(key)
            states, total, done = jax.vmap(one_step)(states, total, done, jax.random.split(k, episodes))
            return states, total, done, key, t + 1

        _, total, done, _, _ = jax.lax.while_loop(lambda c: ~jnp.all(c[2]) & (c[4] < T), body, carry)
        return total, done

    totals, done = jax.jit(run)(jax.random.key(seed))
    assert bool(np.all(done)), f"{gymnax_id}: an episode did not end within {T} steps"
    return np.asarray(totals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=None, help="episodes per env (200; 10000 with --gymnax)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gymnax", nargs="*", default=None, metavar="ID",
                   help="measure gymnax envs instead (default: " + ", ".join(GYMNAX_IDS) + ")")
    a = p.parse_args()
    if a.gymnax is not None:
        n = a.episodes or 10000
        for gid in a.gymnax or GYMNAX_IDS:
            m, se = mean_se(gymnax_random_returns(gid, n, a.seed))
            print(f"gymnax:{gid:26s} mean {m:10.4f}  s.e. {se:.4f}  ({n} episodes)", flush=True)
        return
    n = a.episodes or 200
    for name, gid in IDS.items():
        m, se = random_return(gid, n, a.seed)
        print(f"{name:24s} {gid:26s} mean {m:10.2f}  s.e. {se:.2f}  ({n} episodes)")


if __name__ == "__main__":
    main()
