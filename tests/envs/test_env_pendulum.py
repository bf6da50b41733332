"""Pendulum parity with gymnasium's NumPy Pendulum-v1, step by step over full episodes.

θ is never wrapped, so a float32 θ of up to π + 200 · 8 · 0.05 ≈ 83 carries a rounding error
of up to ulp(83)/2 ≈ 4e-6 into cos θ, sin θ and the cost: the largest mismatch seen is 3.3e-6,
inside the default atol of 1e-5.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from parity import run_parity

from pgrun.envs import make_env, reset, step

POLICIES = {  # torques beyond ±2 exercise the clipping
    "random": lambda obs, rng: rng.uniform(-3.0, 3.0, 1).astype(np.float32),
    "biased": lambda obs, rng: rng.normal(1.0, 1.0, 1).astype(np.float32),
    # full torque along θ̇: spins up to max_speed and winds θ far past ±π (angle_normalize)
    "spinning": lambda obs, rng: np.array([2.0 if obs[2] >= 0 else -2.0], np.float32),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_pendulum_matches_gymnasium(policy):
    episodes = run_parity("Pendulum", POLICIES[policy])
    assert all(e.truncated and not e.terminated and len(e.obs) == 200 for e in episodes)
    if policy == "spinning":
        assert np.abs(np.concatenate([e.obs for e in episodes])[:, 2]).max() == 8.0


@pytest.mark.parametrize("g", [2.0, 15.0])
def test_gravity_override_matches_gymnasium_constructor(g):
    run_parity("Pendulum", POLICIES["random"], n_episodes=3, overrides={"g": g}, gym_kwargs={"g": g})


def test_overrides_change_dynamics_and_vmap():
    env = make_env("Pendulum")
    state, a = jnp.array([1.0, 0.5]), jnp.array([0.3])
    gs = jnp.array([2.0, 10.0, 15.0])
    params = jax.tree.map(lambda x: jnp.full(3, x, jnp.float32), env.default_params).replace(g=gs)
    key = jax.random.PRNGKey(0)
    obs = jax.jit(jax.vmap(lambda p: step(env, p, state, a, key, 0, 200).obs))(params)
    for i, g in enumerate([2.0, 10.0, 15.0]):
        ref = gym.make("Pendulum-v1", g=g).unwrapped
        ref.reset(seed=0)
        ref.state = np.array([1.0, 0.5])
        np.testing.assert_allclose(obs[i], ref.step(np.array([0.3], np.float32))[0], rtol=1e-5, atol=1e-6)
    assert len({float(o) for o in obs[:, 2]}) == 3


def test_reset_distribution():
    env = make_env("Pendulum")
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    states, obs = jax.jit(jax.vmap(lambda k: reset(env, env.default_params, k)))(keys)
    assert obs.shape == (1000, 3) and obs.dtype == jnp.float32
    high = np.abs(np.asarray(states)).max(axis=0)
    assert np.all(high <= [np.pi, 1.0]) and np.all(high > [0.99 * np.pi, 0.99])
