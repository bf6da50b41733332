#!/usr/bin/env python
"""Measure the uniform-random policy's mean episode return of the classic-control envs
(the `random` of pgrun-compare's normalised score, pgrun/envs/reference_scores.py).

    python scripts/random_scores.py [--episodes 200] [--seed 0]

Uses gymnasium's own envs with their default time limits (pgrun's envs are parity-tested
against them): actions drawn uniformly from the action space, `episodes` episodes each.
"""

import argparse

import gymnasium as gym
import numpy as np

IDS = {"CartPole": "CartPole-v1", "Acrobot": "Acrobot-v1", "MountainCar": "MountainCar-v0",
       "MountainCarContinuous": "MountainCarContinuous-v0", "Pendulum": "Pendulum-v1"}


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
    a = np.asarray(rets)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for name, gid in IDS.items():
        m, se = random_return(gid, a.episodes, a.seed)
        print(f"{name:24s} {gid:26s} mean {m:10.2f}  s.e. {se:.2f}  ({a.episodes} episodes)")


if __name__ == "__main__":
    main()
