"""gymnasium.make("pgrun/...") wraps our envs; gymnasium's functional envs fit our helpers."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.envs import ENVS, make_env, reset, step
from pgrun.envs.gym_register import gym_id, register_all

KEY = jax.random.PRNGKey(0)


def test_ids_and_idempotent_registration():
    register_all()  # already ran at import: must not re-register (gymnasium would warn)
    assert [gym_id(n) for n in ENVS] == [
        "pgrun/CartPole-v1", "pgrun/Acrobot-v1", "pgrun/MountainCar-v0",
        "pgrun/MountainCarContinuous-v0", "pgrun/Pendulum-v1",
        "pgrun/Bandit-v0", "pgrun/Particle-v0", "pgrun/ParticleContinuous-v0", "pgrun/Chain-v0",
        "pgrun/Tokens-v0",
    ]
    for name, cls in ENVS.items():
        spec = gym.spec(gym_id(name))
        assert spec.max_episode_steps == cls.max_episode_steps
        assert spec.reward_threshold == cls.solved_threshold


def test_cartpole_via_gymnasium_make_matches_step():
    genv = gym.make("pgrun/CartPole-v1")
    env = make_env("CartPole")
    f = jax.jit(lambda s, a, t: step(env, env.default_params, s, a, KEY, t, env.max_episode_steps))
    rng = np.random.default_rng(0)
    policies = [lambda o: int(o[2] + 0.5 * o[3] > 0), lambda o: int(rng.integers(2))]
    for seed, policy in enumerate(policies):
        obs, _ = genv.reset(seed=seed)
        # FunctionalJaxEnv.reset: initial(split(PRNGKey(seed))[0])
        state = env.initial(jax.random.split(jax.random.PRNGKey(seed))[0])
        np.testing.assert_array_equal(obs, state)
        t = 0
        while True:
            a = policy(np.asarray(obs))
            obs, r, term, trunc, _ = genv.step(a)
            out = f(state, a, t)
            np.testing.assert_allclose(obs, out.obs, rtol=1e-6, atol=1e-7)
            assert (r, term, trunc) == (float(out.reward), bool(out.terminated), bool(out.truncated))
            state, t = out.state, t + 1
            if term or trunc:
                break
        if seed == 0:  # the balancing controller is cut by the TimeLimit wrapper at 500
            assert trunc and not term and t == 500
        else:
            assert term and not trunc and t < 500


@pytest.mark.parametrize("name", sorted(set(ENVS) - {"CartPole"}))
def test_make_reset_step(name):
    genv = gym.make(gym_id(name))
    obs, _ = genv.reset(seed=0)
    assert obs.shape == genv.observation_space.shape
    obs, r, term, trunc, _ = genv.step(genv.action_space.sample())
    assert obs.shape == genv.observation_space.shape and isinstance(r, float)


def test_make_kwargs_override_params():
    genv = gym.make("pgrun/Pendulum-v1", g=2.0)
    assert genv.unwrapped.func_env.default_params.g == 2.0
    with pytest.raises(KeyError, match="valid keys"):
        gym.make("pgrun/Pendulum-v1", gg=2.0)


def test_gymnasium_phys2d_pendulum_fits_our_step_and_reset():
    """gymnasium's own functional JAX Pendulum runs through pgrun.envs.step / reset."""
    from gymnasium.envs.phys2d.pendulum import PendulumFunctional, PendulumParams

    theirs, ours = PendulumFunctional(), make_env("Pendulum")
    state, obs = reset(theirs, PendulumParams(), KEY)
    assert obs.shape == (3,) and obs.dtype == jnp.float32
    f = jax.jit(lambda env, p, s, a, t: step(env, p, s, a, KEY, t, 3), static_argnums=0)
    for t in range(3):
        a = jnp.array([1.5 * (-1) ** t], jnp.float32)
        out = f(theirs, PendulumParams(), state, a, t)
        ref = f(ours, ours.default_params, state, a, t)
        np.testing.assert_allclose(out.obs, ref.obs, rtol=1e-6)
        np.testing.assert_allclose(out.reward, ref.reward, rtol=1e-6)
        assert not out.terminated and bool(out.truncated) == (t == 2)
        state = out.state
