"""CartPole parity with gymnasium's NumPy CartPole-v1, step by step over full episodes."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.envs import make_env, reset, step


@pytest.fixture(scope="module")
def jstep():
    env = make_env("CartPole")
    params = env.default_params
    f = jax.jit(lambda s, a, t: step(env, params, s, a, jax.random.PRNGKey(0), t, env.max_episode_steps))
    return env, f


@pytest.mark.parametrize("policy", ["random", "biased", "balancing"])
def test_cartpole_matches_gymnasium(jstep, policy):
    env, f = jstep
    ref = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    n_episodes, lengths = 20, []
    for ep in range(n_episodes):
        ref_obs, _ = ref.reset(seed=ep)
        state = jnp.asarray(ref.unwrapped.state, jnp.float32)
        np.testing.assert_allclose(np.asarray(state), ref_obs, rtol=0, atol=0)
        t = 0
        while True:
            if policy == "random":
                a = int(rng.integers(2))
            elif policy == "biased":
                a = int(rng.random() < 0.8)
            else:  # a decent controller so episodes reach the time limit
                a = int(ref_obs[2] + 0.5 * ref_obs[3] > 0)
            ref_obs, ref_r, ref_term, ref_trunc, _ = ref.step(a)
            out = f(state, a, t)
            np.testing.assert_allclose(np.asarray(out.obs), ref_obs, rtol=1e-5, atol=1e-5)
            assert float(out.reward) == ref_r
            assert bool(out.terminated) == ref_term
            assert bool(out.truncated) == ref_trunc
            t += 1
            if ref_term or ref_trunc:
                break
            # resynchronise so each step starts from the identical state
            state = jnp.asarray(ref.unwrapped.state, jnp.float32)
            ref.unwrapped.state = np.asarray(state, np.float64)
        lengths.append(t)
    if policy == "balancing":
        assert max(lengths) == 500  # truncation exercised
    assert min(lengths) < 500 or policy == "balancing"


def test_reset_distribution():
    env = make_env("CartPole")
    keys = jax.random.split(jax.random.PRNGKey(1), 1000)
    states, obs = jax.vmap(lambda k: reset(env, env.default_params, k))(keys)
    assert obs.shape == (1000, 4) and obs.dtype == jnp.float32
    assert float(jnp.abs(obs).max()) <= 0.05
    assert float(jnp.abs(obs).max()) > 0.045


def test_params_override_and_error():
    env = make_env("CartPole")
    p = env.params_from_overrides({"gravity": 20.0})
    assert p.gravity == 20.0
    with pytest.raises(KeyError, match="valid keys"):
        env.params_from_overrides({"gravitty": 1.0})
    with pytest.raises(KeyError, match="valid choices"):
        make_env("CartPol")
