"""Shared parity loop: a pgrun env against gymnasium's NumPy env over full episodes.

Each step starts both envs from gymnasium's state rounded to float32 (resynchronised every
step, so float64-vs-float32 drift cannot accumulate) and applies the same action; the
episode's obs / reward / terminated / truncated are compared at float32 precision.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import gymnasium as gym
import jax
import numpy as np

from pgrun.envs import make_env, step


class Episode(NamedTuple):
    obs: np.ndarray  # gymnasium's observations after each step [T, obs_dim]
    terminated: bool
    truncated: bool


@functools.cache
def batched_step(name):
    """(env, jit(vmap(step))) over a padded episode, compiled once per process."""
    env = make_env(name)
    key = jax.random.PRNGKey(0)
    one = lambda p, s, a, t: step(env, p, s, a, key, t, env.max_episode_steps)  # noqa: E731
    return env, jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0)))


def _pad(x, n):
    x = np.asarray(x)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def run_parity(name, policy, n_episodes=20, seed=0, overrides=None, gym_kwargs=None,
               gym_attrs=None, rtol=1e-5, atol=1e-5) -> list[Episode]:
    """Play `n_episodes` with `policy(gym_obs, np_rng) -> action` in both envs and compare.

    gymnasium plays the episode, recording each step's start state (rounded to float32 and
    written back before the step) and action; pgrun's `step` then evaluates all of them in
    one vmapped call. overrides go to `params_from_overrides`; gym_kwargs to `gym.make`;
    gym_attrs are set on the unwrapped gymnasium env (constants its constructor lacks).
    """
    env, f = batched_step(name)
    params = env.params_from_overrides(overrides)
    ref = gym.make(env.gym_id, **(gym_kwargs or {}))
    for k, v in (gym_attrs or {}).items():
        setattr(ref.unwrapped, k, v)
    rng = np.random.default_rng(seed)
    n_max = env.max_episode_steps
    episodes = []
    for ep in range(n_episodes):
        obs, _ = ref.reset(seed=1000 * seed + ep)
        states, actions, theirs = [], [], []
        while True:
            state = np.asarray(ref.unwrapped.state, np.float32)
            ref.unwrapped.state = np.asarray(state, np.asarray(ref.unwrapped.state).dtype)
            a = policy(obs, rng)
            obs, r, term, trunc, _ = ref.step(a)
            states.append(state)
            actions.append(a)
            theirs.append((obs, r, term, trunc))
            if term or trunc:
                break
        n = len(states)
        acts = np.asarray(actions, np.float32 if isinstance(a, np.ndarray) else np.int32)
        out = jax.device_get(f(params, _pad(states, n_max), _pad(acts, n_max), np.arange(n_max)))
        ours = [x[:n] for x in (out.obs, out.reward, out.terminated, out.truncated)]
        theirs = [np.asarray(x) for x in zip(*theirs)]
        msg = f"{name} episode {ep} ({n} steps)"
        for i, what in enumerate(["obs", "reward"]):
            np.testing.assert_allclose(ours[i], theirs[i], rtol=rtol, atol=atol, err_msg=f"{msg} {what}")
        for i, what in [(2, "terminated"), (3, "truncated")]:
            np.testing.assert_array_equal(ours[i], theirs[i], err_msg=f"{msg} {what}")
        episodes.append(Episode(theirs[0], bool(term), bool(trunc)))
    return episodes
