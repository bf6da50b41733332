"""Acrobot parity with gymnasium's NumPy Acrobot-v1, step by step over full episodes."""

import jax
import jax.numpy as jnp
import pytest
from parity import run_parity

from pgrun.envs import make_env, reset, step

POLICIES = {
    "random": lambda obs, rng: int(rng.integers(3)),
    "biased": lambda obs, rng: int(rng.choice(3, p=[0.15, 0.15, 0.7])),
    # torque against link 1's velocity pumps energy: reaches the goal in ~100 steps
    "pumping": lambda obs, rng: 0 if obs[4] > 0 else 2,
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_acrobot_matches_gymnasium(policy):
    episodes = run_parity("Acrobot", POLICIES[policy])
    if policy == "pumping":
        assert all(e.terminated for e in episodes)
    else:  # mostly cut at 500 steps, and the random policy also reaches the goal sometimes
        assert any(e.truncated and len(e.obs) == 500 for e in episodes)
        assert policy == "biased" or any(e.terminated for e in episodes)


def test_acrobot_params_override_matches_gymnasium_attributes():
    run_parity("Acrobot", POLICIES["random"], n_episodes=3,
               overrides={"link_mass_2": 2.0, "dt": 0.1},
               gym_attrs={"LINK_MASS_2": 2.0, "dt": 0.1})


def test_reset_and_torque_noise():
    env = make_env("Acrobot")
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    states, obs = jax.jit(jax.vmap(lambda k: reset(env, env.default_params, k)))(keys)
    assert obs.shape == (1000, 6) and obs.dtype == jnp.float32
    assert 0.09 < float(jnp.abs(states).max()) <= 0.1
    # torque noise (0 by default) makes the step depend on the key; params vmap
    params = jax.tree.map(lambda x: jnp.full(2, x, jnp.float32), env.default_params)
    params = params.replace(torque_noise_max=jnp.array([0.0, 0.5]))
    def next_obs(p, k):
        return step(env, p, states[0], 1, k, 0, 500).obs
    o = jax.jit(jax.vmap(lambda p: jax.vmap(lambda k: next_obs(p, k))(keys[:2])))(params)
    assert jnp.array_equal(o[0, 0], o[0, 1]) and not jnp.array_equal(o[1, 0], o[1, 1])
